from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._common import validation_message
from rewardmodels.models import RewardModel
from rewardmodels.registry.services import model_demote, model_promote


class Command(BaseCommand):
    help = (
        "Promote a reward model: it then serves its project's scoring when no model is named "
        "(POST /api/projects/{id}/score and /best-of-n), and the one promoted before steps "
        "down. --demote takes the promoted model down. Each decision is recorded with --reason. "
        "Promoting needs an audit of the model on its project's held-out data (`audit`); "
        "one that holds it back refuses it, naming the probe, unless --override (with --reason)."
    )

    def add_arguments(self, parser):
        parser.add_argument("model", help="A registered model's identifier")
        parser.add_argument("--demote", action="store_true")
        parser.add_argument("--reason", default="")
        parser.add_argument(
            "--override", action="store_true",
            help="Promote although its audit holds it back (needs --reason)",
        )  # fmt: skip

    def handle(self, *args, **options):
        reward_model = RewardModel.objects.filter(identifier=options["model"]).first()
        if reward_model is None:
            raise CommandError(f"No reward model {options['model']!r}.")
        try:
            if options["demote"]:
                model_demote(reward_model=reward_model, user=None, reason=options["reason"])
            else:
                model_promote(reward_model=reward_model, user=None, reason=options["reason"],
                              override=options["override"])  # fmt: skip
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        action = "demoted" if options["demote"] else "promoted"
        self.stdout.write(f"{reward_model.identifier} {action} in {reward_model.project}")
