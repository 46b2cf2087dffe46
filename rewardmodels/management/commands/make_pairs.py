from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._common import (
    PROJECT_HELP,
    project_argument,
    validation_message,
)
from annotation.models import Round
from annotation.rounds.services import NEEDS_SCORES, STRATEGIES, pairs_from_round
from rewardmodels.access import promoted_model
from rewardmodels.models import RewardModel
from rewardmodels.scoring.services import WorkerUnavailable, candidates_score

PROMOTED = "promoted"


class Command(BaseCommand):
    help = (
        "Make pairs among each prompt's candidates in a round and put them in the annotators' "
        "queue: uncertain (the pairs whose reward gap under --model is smallest: where the "
        "model is least sure), random, or extremes (best against worst under --model). At "
        "most --per-prompt pairs from each prompt and --limit in all, the most informative "
        "first. Scoring runs on a worker serving the scoring queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("--round", required=True)
        parser.add_argument("--strategy", choices=STRATEGIES, default="uncertain")
        parser.add_argument(
            "--model",
            help="A registered reward model's identifier, or 'promoted': the project's",
        )
        parser.add_argument("--per-prompt", type=int, default=1)
        parser.add_argument("--limit", type=int)
        parser.add_argument("--seed", type=int, default=0, help="For --strategy random")

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        round_ = Round.objects.filter(project=project, name=options["round"]).first()
        if round_ is None:
            raise CommandError(f"No round {options['round']!r} in {project.name!r}.")
        model = None
        if options["model"] == PROMOTED:
            model = promoted_model(project_id=project.pk)
            if model is None:
                raise CommandError(
                    f"No model is promoted in {project.name!r}: name one with --model IDENTIFIER."
                )
        elif options["model"]:
            model = RewardModel.objects.filter(identifier=options["model"]).first()
            if model is None:
                raise CommandError(f"No reward model {options['model']!r}.")
        strategy = options["strategy"]
        if strategy in NEEDS_SCORES:
            if model is None:
                raise CommandError(f"--strategy {strategy} needs --model.")
            try:
                scored = candidates_score(round_=round_, reward_model=model)
            except WorkerUnavailable as exc:
                raise CommandError(str(exc)) from exc
            self.stderr.write(f"scored {scored} candidates with {model.identifier}")
        try:
            made = pairs_from_round(
                round_=round_, strategy=strategy, model=model.identifier if model else "",
                per_prompt=options["per_prompt"], limit=options["limit"], seed=options["seed"],
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(f"made {made} pairs ({strategy}) from round {round_.name}")
