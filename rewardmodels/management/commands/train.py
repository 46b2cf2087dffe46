import sys
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.curation import dataset_get
from annotation.management.commands._common import validation_message
from rewardmodels.models import DEFAULT_BASE_MODEL, TrainingRun
from rewardmodels.selectors import held_out_check, run_untrained
from rewardmodels.services import training_run_create

WAIT_FOR_WORKER_SECONDS = 3.0


def gpu_queue_is_served() -> bool:
    """Whether any running worker consumes the gpu queue (always true when tasks run inline)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return True
    from workers.celery import app

    queues = app.control.inspect(timeout=WAIT_FOR_WORKER_SECONDS).active_queues() or {}
    return any(q["name"] == "gpu" for worker in queues.values() for q in worker)


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
        parser.add_argument("--base-model", default=DEFAULT_BASE_MODEL)
        parser.add_argument(
            "--method", choices=TrainingRun.Method.values, default=TrainingRun.Method.AUTO,
            help="auto (default): full fine-tuning below 1B parameters, LoRA above",
        )  # fmt: skip
        parser.add_argument("--epochs", type=float, default=1.0)
        parser.add_argument("--max-pairs", type=int, default=None)
        parser.add_argument(
            "--learning-rate", type=float, default=None,
            help="Default: chosen for the method and model",
        )  # fmt: skip
        parser.add_argument("--batch-size", type=int, default=16, help="Pairs per step")
        parser.add_argument("--gradient-accumulation", type=int, default=1)
        parser.add_argument("--max-length", type=int, default=512)
        parser.add_argument("--lora-rank", type=int, default=16)
        parser.add_argument("--lora-alpha", type=int, default=32)
        parser.add_argument("--lora-target-modules", default="", help="e.g. q_proj,v_proj")
        parser.add_argument("--margin-loss", action="store_true")
        parser.add_argument("--center-rewards", type=float, default=0.0)
        parser.add_argument("--length-penalty", type=float, default=0.0)
        parser.add_argument("--eval-every", type=int, default=50)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--wait", action="store_true", help="Follow the run to its end")

    def handle(self, *args, **options):
        if options["wait"] and not gpu_queue_is_served():
            raise CommandError(
                "No worker serves the gpu queue: start one with "
                "`celery -A workers worker -Q gpu -c 1` (make run starts one)."
            )
        try:
            run = training_run_create(
                dataset=dataset_get(options["dataset"]),
                user=None,
                base_model=options["base_model"],
                method=options["method"],
                epochs=options["epochs"],
                max_pairs=options["max_pairs"],
                learning_rate=options["learning_rate"],
                batch_size=options["batch_size"],
                gradient_accumulation=options["gradient_accumulation"],
                max_length=options["max_length"],
                lora_rank=options["lora_rank"],
                lora_alpha=options["lora_alpha"],
                lora_target_modules=options["lora_target_modules"],
                margin_loss=options["margin_loss"],
                center_rewards=options["center_rewards"],
                length_penalty=options["length_penalty"],
                eval_every=options["eval_every"],
                seed=options["seed"],
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(f"queued training run {run.pk}")
        if options["wait"]:
            self._follow(run.pk)

    def _follow(self, run_id: int) -> None:
        finished = (
            TrainingRun.Status.SUCCEEDED,
            TrainingRun.Status.FAILED,
            TrainingRun.Status.CANCELLED,
        )
        while True:
            run = TrainingRun.objects.get(pk=run_id)
            if run.total_steps:
                done = int(30 * run.progress)
                eta = f", about {run.eta_seconds:.0f} s left" if run.eta_seconds else ""
                sys.stderr.write(
                    f"\r[{'#' * done}{'.' * (30 - done)}] {run.step}/{run.total_steps}{eta}  "
                )
            if run.status in finished:
                sys.stderr.write("\n")
                break
            time.sleep(1.0)
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}: {run.error or 'see its log'}")
        metrics = run.final_metrics
        self.stdout.write(f"artifact {run.artifact}")
        check = held_out_check(figures=metrics, untrained=run_untrained(run=run))
        if check:
            self.stdout.write(
                f"held-out accuracy {check.summary}; {check.baseline_text}, {check.gain_text}"
            )
        self.stdout.write(
            f"mean margin {metrics.get('mean_margin', 0):.3f}, "
            f"{metrics.get('truncated_pairs', 0)} pairs shortened to fit"
        )
        if check and check.warning:  # on stderr: the last line of stdout stays the identifier
            self.stderr.write(f"warning: {check.warning}")
        self.stdout.write(run.reward_model.identifier)
