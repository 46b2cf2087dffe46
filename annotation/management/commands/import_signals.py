from django.core.management.base import BaseCommand

from annotation.management.commands._common import PROJECT_HELP, project_for_import, run_import
from annotation.pairs.readers import FORMATS
from annotation.rounds.signals import signals_import


class Command(BaseCommand):
    help = (
        "Import implicit signals (upvotes, ratings, task completion) as preferences: rows "
        "{prompt, response, score}; each prompt's responses whose scores differ by at least "
        "--min-gap become a pair labelled by --source for the higher score, the strength "
        "following the size of the difference (quarters of the file's score range). The "
        "project is created if new. All or nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("file", help="JSONL, CSV or Parquet file")
        parser.add_argument("--source", required=True, help="The label source, e.g. upvotes")
        parser.add_argument("--min-gap", type=float, default=0.0, help="Smallest score gap kept")
        parser.add_argument("--format", default="auto", choices=[f for f in FORMATS if f != "hh"])
        parser.add_argument("--skip-invalid", action="store_true")

    def handle(self, *args, **options):
        project = project_for_import(self, options["project"])
        run_import(
            self, signals_import, path=options["file"], skip_invalid=options["skip_invalid"],
            project=project, fmt=options["format"], source=options["source"],
            min_gap=options["min_gap"],
        )  # fmt: skip
