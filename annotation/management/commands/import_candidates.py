from django.core.management.base import BaseCommand

from annotation.management.commands._common import PROJECT_HELP, project_for_import, run_import
from annotation.models import Round
from annotation.pairs.readers import FORMATS
from annotation.rounds.services import candidates_import


class Command(BaseCommand):
    help = (
        "Import a round of policy outputs: rows {prompt, responses: [...]} or {prompt, "
        "response}. The round is created on first use; a share of its prompts (the project's "
        "held_out_share, 20% by default) is its fresh held-out set, labelled but never trained "
        "on. The project is created if new. All or nothing unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("file", help="JSONL, CSV or Parquet file")
        parser.add_argument("--round", required=True, help="The round's name, e.g. r2")
        parser.add_argument("--policy", default="", help="The policy that wrote the responses")
        parser.add_argument("--format", default="auto", choices=[f for f in FORMATS if f != "hh"])
        parser.add_argument("--skip-invalid", action="store_true")

    def handle(self, *args, **options):
        project = project_for_import(self, options["project"])
        run_import(
            self, candidates_import, path=options["file"], skip_invalid=options["skip_invalid"],
            project=project, fmt=options["format"], round_name=options["round"],
            policy=options["policy"],
        )  # fmt: skip
        round_ = Round.objects.get(project=project, name=options["round"].strip())
        held = round_.candidates.filter(held_out=True).values("prompt_key").distinct().count()
        self.stdout.write(
            f"round {round_.name}: {round_.n_prompts} prompts, {round_.n_candidates} candidates; "
            f"{held} prompts held out"
        )
