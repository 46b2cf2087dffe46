import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.management.commands._common import (
    PROJECT_HELP,
    project_argument,
    validation_message,
)
from config.celery import queue_is_served
from rewardmodels.management.commands._follow import follow_run
from rewardmodels.models import Retraining, RewardModel
from rewardmodels.retraining.services import retraining_start


class Command(BaseCommand):
    help = (
        "Retrain: curate the next version of --dataset with its last version's filters (every "
        "round's new labels in, held-out pairs out), train on it from --from MODEL's weights "
        "(default: from the base model) with that model's run settings, evaluate the new and "
        "the promoted model on every round's fresh held-out set, and promote the new one "
        "unless it is worse on the newest round by more than the project's tolerance. With "
        "--wait, follow it to the decision; the last line is the new model's identifier."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("--dataset", required=True, help="The dataset's name, e.g. harmless")
        parser.add_argument(
            "--from", dest="start_from", metavar="MODEL",
            help="Start from this reward model's weights; 'promoted': the promoted model",
        )  # fmt: skip
        parser.add_argument("--wait", action="store_true", help="Follow it to the decision")

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        start_from = self._model(project, options["start_from"])
        if options["wait"]:
            for queue in ("gpu", "scoring"):
                if not queue_is_served(queue):
                    raise CommandError(
                        f"No worker serves the {queue} queue: start one with "
                        f"`celery -A workers worker -Q {queue} -c 1` (make run starts one)."
                    )
        try:
            retraining = retraining_start(
                project=project, dataset_name=options["dataset"], start_from=start_from, user=None
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        run = retraining.run
        origin = f"from {start_from.identifier}" if start_from else "from the base model"
        self.stdout.write(
            f"retraining {retraining.pk}: {run.dataset.identifier} ({run.dataset.n_train} "
            f"train, {run.dataset.n_test} test pairs), training run {run.pk} {origin}"
        )
        if not options["wait"]:
            return
        run = follow_run(self, run.pk)
        retraining = self._decision(retraining.pk)
        for name, figures in retraining.decision.get("rounds", {}).items():
            for identifier, shown in figures.items():
                interval = shown["accuracy_ci95"]
                self.stdout.write(
                    f"round {name}: {identifier} {shown['accuracy']:.1%} "
                    f"(95% CI {interval[0]:.1%}-{interval[1]:.1%}, {shown['n']} pairs)"
                )
        verdict = "promoted" if retraining.promoted else "not promoted"
        self.stdout.write(f"{verdict}: {retraining.decision['reason']}")
        self.stdout.write(run.reward_model.identifier)

    def _model(self, project, name: str | None) -> RewardModel | None:
        if not name:
            return None
        if name == "promoted":
            from rewardmodels.access import promoted_model

            model = promoted_model(project_id=project.pk)
            if model is None:
                raise CommandError(f"No model is promoted in {project.name!r}.")
            return model
        model = RewardModel.objects.filter(identifier=name, project=project).first()
        if model is None:
            raise CommandError(f"No reward model {name!r} in {project.name!r}.")
        return model

    def _decision(self, retraining_id: int) -> Retraining:
        while True:
            retraining = Retraining.objects.get(pk=retraining_id)
            if retraining.status == Retraining.Status.FAILED:
                raise CommandError(f"retraining {retraining.pk} failed: {retraining.error}")
            if retraining.status == Retraining.Status.DECIDED:
                return retraining
            time.sleep(1.0)
