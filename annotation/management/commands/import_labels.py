from django.core.management.base import BaseCommand

from annotation.management.commands._common import PROJECT_HELP, project_argument, run_import
from annotation.pairs.imports import labels_import
from annotation.pairs.readers import FORMATS


class Command(BaseCommand):
    help = (
        "Import labels collected elsewhere: rows {pair, annotator, choice, strength?, "
        "rationale?, shown_left?, duration_ms?} where pair is the pair's external id and "
        "choice is a, b or tie. shown_left (a, b or empty: the response shown on the left) "
        "and duration_ms (milliseconds the label took) are kept as given, so a file from "
        "export_labels imports back whole. Each annotator name becomes a label source. "
        "All or nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("file", help="JSONL, CSV or Parquet file")
        parser.add_argument("--format", default="auto", choices=[f for f in FORMATS if f != "hh"])
        parser.add_argument("--skip-invalid", action="store_true")

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        run_import(
            self,
            labels_import,
            path=options["file"],
            skip_invalid=options["skip_invalid"],
            project=project,
            fmt=options["format"],
        )
