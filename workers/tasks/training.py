"""Training runs on the gpu queue, and the retraining loop's schedule."""

import logging
import time
import traceback
from dataclasses import replace
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from config.celery import app
from workers.leases import Lease
from workers.tasks.jobs import fails_its_job

logger = logging.getLogger(__name__)
LOG_LINES = 200


def run_folder(run_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / str(run_id)


@app.task(
    name="rewardmodels.train",
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker's run goes back to the queue and resumes
)
@fails_its_job("rewardmodels.TrainingRun")
def train_reward_model(run_id: int) -> None:
    from rewardmodels.models import TrainingRun

    run = TrainingRun.objects.select_related("dataset").filter(pk=run_id).first()
    if run is None:
        return
    # Done already or held by another worker (a message sent twice does no harm), or
    # trained now: either way, a retraining waiting on the run moves on.
    lease = Lease(run.pk)
    if lease.take():
        try:
            if _count_delivery(run):
                _execute(run, lease)
        except Exception as exc:  # noqa: BLE001 - before training (its rows, say): recorded
            from rewardmodels.training.services import training_run_fail

            logger.exception("training run %s failed", run.pk)
            # While the lease is held: no moment where the run looks running and unowned.
            training_run_fail(
                run_id=run.pk, owner=lease.owner, error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            lease.release()
    advance_retraining(training_run=run.pk)


def advance_retraining(*, training_run: int | None = None, job=None) -> None:
    """A retraining waiting on this run, or on this evaluation or audit, moves on
    (rewardmodels.retraining)."""
    from rewardmodels.models import Retraining
    from rewardmodels.retraining.services import retraining_advance

    if job is not None:
        retraining_id = job.retraining_id
    else:
        retraining_id = (
            Retraining.objects.filter(run_id=training_run).values_list("pk", flat=True).first()
        )
    if retraining_id is not None:
        retraining_advance(retraining_id)


def _count_delivery(run) -> bool:
    """Count this delivery of the run; False (and the run FAILED) when it has already been
    delivered TRAINING_MAX_DELIVERIES times without finishing.

    A delivery that finds the run unfinished means every earlier one lost its worker (an
    ended task records its outcome): a run killed each time, out of memory say, would
    otherwise come back forever and hold a gpu worker. The count is an F() update, so two
    workers handed the same message (a visibility timeout passing) both count."""
    from rewardmodels.models import TrainingRun
    from rewardmodels.training.services import training_run_fail

    TrainingRun.objects.filter(pk=run.pk).update(deliveries=F("deliveries") + 1)
    run.refresh_from_db(fields=["deliveries"])
    limit = settings.TRAINING_MAX_DELIVERIES
    if run.deliveries <= limit:
        return True
    error = (
        f"Gave up: the worker running it stopped {limit} time{'s' * (limit != 1)} without "
        "finishing (out of memory? try a smaller batch size or max length, or gradient "
        "checkpointing). TRAINING_MAX_DELIVERIES sets how many times a run is tried."
    )
    logger.error("training run %s: %s", run.pk, error)
    lines = [*run.log_tail.splitlines()[-(LOG_LINES - 1) :], f"{timezone.now():%H:%M:%S} {error}"]
    training_run_fail(run_id=run.pk, error=error, log_tail="\n".join(lines))
    return False


def _execute(run, lease: "Lease") -> None:
    import transformers

    from annotation.curation.selectors import dataset_rows
    from rewardmodels.training import services as runs
    from workers.ml import launch, training
    from workers.ml.config import TrainConfig

    transformers.logging.set_verbosity_error()
    owner = lease.owner
    if not runs.training_run_start(run_id=run.pk, owner=owner):
        return  # cancelled while it waited
    lines: list[str] = run.log_tail.splitlines()[-LOG_LINES:]
    last_write = [0.0]

    def log(line: str) -> None:
        lines.append(f"{timezone.now():%H:%M:%S} {line}")
        del lines[:-LOG_LINES]
        runs.training_run_progress(run_id=run.pk, owner=owner, log_tail="\n".join(lines))

    def progress(step: int, total: int, metrics: dict) -> None:
        # A resumed run trains again the steps after its checkpoint: keep one entry a step.
        while run.metrics and run.metrics[-1].get("step", 0) >= step:
            run.metrics.pop()
        run.metrics.append(metrics)
        now = time.monotonic()
        if "eval" in metrics or step == total or now - last_write[0] > 2.0:
            last_write[0] = now
            runs.training_run_progress(
                run_id=run.pk, owner=owner, step=step, total_steps=total,
                eta_seconds=metrics.get("eta_seconds"), metrics=run.metrics,
            )  # fmt: skip
        if "eval" in metrics:
            accuracy = metrics["eval"].get("accuracy") or 0.0
            if step == 0:  # the untrained model, measured before the first step
                log(f"untrained model: held-out accuracy {accuracy:.3f}")
            else:
                log(
                    f"step {step}/{total}: loss {metrics['loss']:.4f}, "
                    f"held-out accuracy {accuracy:.3f}"
                )

    def should_stop() -> bool:
        return lease.lost.is_set() or lease.mine().filter(cancel_requested=True).exists()

    # The method and learning rate on record as soon as the trainer settles them.
    chosen = partial(runs.training_run_settings_chosen, run_id=run.pk, owner=owner)
    config = TrainConfig(**run.train_settings())
    rows = dataset_rows(run.dataset)
    folder = run_folder(run.pk)
    try:
        final = launch.run_training(
            config,
            [r for r in rows if r["split"] == "train"],
            [r for r in rows if r["split"] == "test"],
            folder,
            training.Reporter(
                progress=progress, log=log, should_stop=should_stop, settings_chosen=chosen
            ),
        )
    except training.Cancelled as exc:
        if lease.lost.is_set():
            return  # another worker has the run now: leave it every row
        log(str(exc))
        runs.training_run_cancelled(run_id=run.pk, owner=owner)
        return
    except Exception as exc:  # noqa: BLE001 - recorded on the run for the UI
        logger.exception("training run %s failed", run.pk)
        runs.training_run_fail(
            run_id=run.pk, owner=owner, error=f"{type(exc).__name__}: {exc}",
            log_tail="\n".join([*lines, traceback.format_exc(limit=3)]),
        )  # fmt: skip
        return
    artifact = _write_card(folder / "model", config, final, run.dataset)
    if runs.training_run_succeed(run=run, owner=owner, final=final, artifact=str(artifact)):
        log(f"saved to {artifact}; held-out accuracy {final.get('accuracy', 0):.3f}")


def _write_card(artifact: Path, config, final: dict, dataset) -> Path:
    """The saved model's card, with the settings the run chose and its dataset version."""
    from workers.ml.models import model_card

    chosen = final["settings"]
    card = model_card(replace(config, **chosen), final, dataset.identifier, dataset.sha256)
    (artifact / "README.md").write_text(card)
    return artifact


@app.task(name="rewardmodels.retrain_due")
def retrain_due() -> list[int]:
    """On Celery beat's schedule: move on retrainings under way (an event lost with a killed
    worker would otherwise leave one waiting) and start those the label count asks for.
    Returns the ids of the retrainings started."""
    from rewardmodels.models import Retraining
    from rewardmodels.retraining import services as retraining

    under_way = Retraining.objects.filter(status__in=retraining.UNDER_WAY)
    for retraining_id in under_way.values_list("pk", flat=True):
        retraining.retraining_advance(retraining_id)
    return [started.pk for started in retraining.retrain_due()]
