from django.core.management.base import BaseCommand

from annotation.management.commands._common import PROJECT_HELP, project_for_import, run_import
from annotation.pairs.imports import pairs_import
from annotation.pairs.readers import FORMATS


class Command(BaseCommand):
    help = (
        "Import pairs into a project (created with default settings if new). Rows are "
        "{prompt, response_a, response_b}, {prompt, chosen, rejected} or HH-RLHF "
        "{chosen, rejected} dialogues. All or nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("file", help="JSONL, CSV or Parquet file")
        parser.add_argument("--format", default="auto", choices=FORMATS)
        parser.add_argument(
            "--source", default="imported", help="Label source for rows that arrive labelled"
        )
        parser.add_argument(
            "--skip-invalid", action="store_true", help="Import the good rows, report the bad"
        )

    def handle(self, *args, **options):
        project = project_for_import(self, options["project"])
        run_import(
            self,
            pairs_import,
            path=options["file"],
            skip_invalid=options["skip_invalid"],
            project=project,
            fmt=options["format"],
            label_source=options["source"],
        )
