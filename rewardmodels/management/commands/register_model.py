from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._common import (
    PROJECT_HELP,
    project_argument,
    validation_message,
)
from rewardmodels.registry.services import model_register


class Command(BaseCommand):
    help = (
        "Register an existing reward model (sequence classification, one output) in a project "
        "without training it: from a folder, or a Hugging Face model id already in the cache "
        "(nothing is downloaded). It can then be evaluated, compared with the project's own "
        "models, used for scoring, best-of-N and make_pairs, promoted, and trained on "
        "(retrain --from NAME). Prints its identifier."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The identifier to give it")
        parser.add_argument("source", help="A folder with config.json, or a Hub model id")
        parser.add_argument(
            "--project", required=True, help=f"The project it serves: {PROJECT_HELP}"
        )

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        try:
            reward_model = model_register(
                project=project, identifier=options["name"], source=options["source"]
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(f"registered from {reward_model.artifact}")
        self.stdout.write(reward_model.identifier)
