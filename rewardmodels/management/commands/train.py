from argparse import BooleanOptionalAction

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction

from annotation.curation.selectors import dataset_get
from annotation.management.commands._common import validation_message
from config.celery import queue_is_served
from rewardmodels.management.commands._follow import follow_run
from rewardmodels.models import TrainingRun
from rewardmodels.training.services import training_run_create


def add_setting(parser, field) -> None:
    """A --flag for a training setting, with the model field's type, default, choices and
    help text: the command offers exactly what the form offers."""
    flag = "--" + field.name.replace("_", "-")
    described = str(field.help_text).replace("%", "%%")  # argparse formats help with %
    if isinstance(field, models.BooleanField):
        parser.add_argument(flag, action=BooleanOptionalAction, default=field.default,
                            help=described)  # fmt: skip
        return
    kind = {models.FloatField: float, models.CharField: str}.get(type(field), int)
    parser.add_argument(
        flag, type=kind, default=field.get_default(), help=described or None,
        choices=[value for value, _ in field.choices] if field.choices else None,
    )  # fmt: skip


class Command(BaseCommand):
    help = (
        "Queue a reward-model training run on a curated dataset version (name@vN) and print its "
        "id. With --wait, follow it, print the artifact and final metrics (held-out accuracy with "
        "its 95% interval against the untrained model's, and a warning on stderr when the "
        "interval includes it), and end with the new reward model's identifier; exit non-zero "
        "if the run fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="Dataset version, e.g. harmless@v1")
        for name in TrainingRun.SETTINGS:
            add_setting(parser, TrainingRun._meta.get_field(name))
        parser.add_argument("--wait", action="store_true", help="Follow the run to its end")

    def handle(self, *args, **options):
        if options["wait"] and not queue_is_served("gpu"):
            raise CommandError(
                "No worker serves the gpu queue: start one with "
                "`celery -A workers worker -Q gpu -c 1` (make run starts one)."
            )
        try:
            run = training_run_create(
                dataset=dataset_get(options["dataset"]),
                user=None,
                **{name: options[name] for name in TrainingRun.SETTINGS},
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(f"queued training run {run.pk}")
        run.refresh_from_db(fields=["sent_at", "log_tail"])
        if run.sent_at is None and not transaction.get_connection().in_atomic_block:
            # Saved all the same: a script that retries would train it twice.
            self.stderr.write(
                f"warning: {run.log_tail.split(' ', 1)[-1]}. The run is saved; it is sent once "
                "the broker is back (any worker's sweep sends it)."
            )
            if options["wait"]:
                self.stderr.write("Not waiting for it: follow it later on its page.")
                return
        if options["wait"]:
            run = follow_run(self, run.pk)
            self.stdout.write(run.reward_model.identifier)
