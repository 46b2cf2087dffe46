"""Training runs: checked and queued, then through their states (started, progress,
succeeded, failed, cancelled) while their worker holds the run's lease, and resent when a
broker lost them."""

import json
import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.activity import Kind, record
from annotation.models import CuratedDataset
from config.celery import BrokerUnavailable, enqueue
from rewardmodels.models import RewardModel, TrainingRun
from workers.ml.config import (
    FULL,
    METHODS,
    PACKAGED_MODEL,
    lora_targets_problem,
    resolve_model_path,
)

logger = logging.getLogger(__name__)


TRAIN_TASK = "rewardmodels.train"


def model_folder(name: str) -> Path | None:
    """The folder holding a base model's files, found offline; None if there is none."""
    if name == PACKAGED_MODEL:
        try:
            return Path(resolve_model_path(name))
        except ImportError:
            return None
    if Path(name, "config.json").is_file():
        return Path(name)
    if _is_hub_id(name):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
        if isinstance(cached, str):
            return Path(cached).parent
    return None


def _is_hub_id(name: str) -> bool:
    """owner/name as the Hub spells model ids (a URL or a deeper path is none)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return "/" in name


def _check_base_model(name: str) -> Path:
    """A check of this web host: the base model's files must be here, offline, so that a typo
    fails now, not on a worker. Workers load the same name on their own machine, so deploy
    base models (or the Hugging Face cache) to the same path on web and worker hosts."""
    if "://" in name:
        raise ValidationError(
            {
                "base_model": f"{name!r} is a URL: base models load offline. Give "
                f"{PACKAGED_MODEL}, a folder with config.json, or a Hugging Face id "
                "(owner/name) already in the Hugging Face cache."
            }
        )
    folder = model_folder(name)
    if folder is None:
        raise ValidationError(
            {
                "base_model": f"Cannot find {name!r} on this web host: give a folder with "
                "config.json, or a model id already in the Hugging Face cache (workers have no "
                "network, and load it from the same path on their machine)."
            }
        )
    return folder


def module_names(folder: Path) -> set[str] | None:
    """The last part of every module name holding weights, read from the safetensors
    headers without loading anything; None when the weights are in another format."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weights = json.loads(index.read_text())["weight_map"].keys()
    elif (folder / "model.safetensors").is_file():
        with safe_open(folder / "model.safetensors", framework="numpy") as f:
            weights = f.keys()
    else:
        return None
    return {w.rsplit(".", 2)[-2] for w in weights if w.count(".") >= 1}


def _check_lora_targets(folder: Path, targets: str) -> None:
    wanted = [t.strip() for t in targets.split(",") if t.strip()]
    names = module_names(folder) if wanted else None
    problem = lora_targets_problem(wanted, names) if names is not None else None
    if problem:
        raise ValidationError({"lora_target_modules": problem})


def training_run_create(
    *, dataset: CuratedDataset, user: AbstractBaseUser | None, **options
) -> TrainingRun:
    """Validate and queue a training run on the `gpu` queue."""
    if dataset.n_test == 0:
        raise ValidationError(
            f"{dataset.identifier} has no test split; curate it with --test-fraction above 0."
        )
    run = TrainingRun(dataset=dataset, created_by=user, **options)
    run.method_asked = run.method  # `method` becomes the worker's choice when it starts
    run.full_clean(exclude=["dataset", "created_by", "start_from"])
    if run.method not in METHODS:
        raise ValidationError({"method": "Choose auto, lora or full."})
    if run.start_from_id:
        folder = Path(run.start_from.artifact)
        if run.start_from.project_id != dataset.project_id:
            raise ValidationError({"start_from": "Start from a model of the dataset's project."})
        if not (folder / "config.json").is_file():
            raise ValidationError({"start_from": f"{run.start_from} has no model in {folder}."})
    else:
        folder = _check_base_model(run.base_model)
    if run.method != FULL:  # "auto" may choose LoRA for a large model
        _check_lora_targets(folder, run.lora_target_modules)
    with transaction.atomic():
        run.save()
        start = run.start_from if run.start_from_id else run.base_model
        summary = f"{start} on {dataset.identifier}"
        record(
            Kind.TRAINING_LAUNCHED, actor=user, project=dataset.project, target=run, summary=summary
        )
        transaction.on_commit(lambda: training_run_send(run))
    return run


def training_run_send(run: TrainingRun) -> bool:
    """Send the run's task and record when. With the broker down nothing is raised: the run
    stays queued, unsent, with the reason in its log, and the recovery sweep sends it once
    the broker answers. Returns whether it was sent."""
    try:
        enqueue(TRAIN_TASK, run.pk)
    except BrokerUnavailable as exc:
        logger.warning("training run %s not sent: %s", run.pk, exc)
        note = f"{timezone.now():%H:%M:%S} not sent yet: {exc}; it is sent once the broker answers"
        TrainingRun.objects.filter(pk=run.pk).update(log_tail=note)
        return False
    TrainingRun.objects.filter(pk=run.pk).update(sent_at=timezone.now())
    return True


def training_runs_recover() -> list[int]:
    """Send again the runs no worker holds: running with a lease run out (their worker died;
    the next worker resumes from the checkpoint), queued and never sent (the broker was
    down), or queued and sent long ago yet never taken (the broker lost the message). Each
    is claimed by a compare-and-set first, so sweeps running at once send it once. Returns
    the ids sent."""
    now = timezone.now()
    resend_before = now - timedelta(seconds=settings.TRAINING_RESEND_SECONDS)
    sent = []
    stale = TrainingRun.objects.filter(
        Q(status=TrainingRun.Status.RUNNING, lease_expires_at__lt=now)
        | Q(status=TrainingRun.Status.QUEUED, sent_at__isnull=True,
            created_at__lt=now - timedelta(seconds=10))
        | Q(status=TrainingRun.Status.QUEUED, sent_at__lt=resend_before)
    ).values_list("pk", "status", "sent_at")  # fmt: skip
    for pk, status, sent_at in stale:
        claim = TrainingRun.objects.filter(pk=pk, status=status, sent_at=sent_at)
        changes = {"sent_at": now}
        if status == TrainingRun.Status.RUNNING:  # queued again, to resume
            claim = claim.filter(lease_expires_at__lt=now)
            changes.update(status=TrainingRun.Status.QUEUED, lease_owner="", lease_expires_at=None)
        if claim.update(**changes):  # claimed: another sweep now sees it as just sent
            run = TrainingRun(pk=pk)
            if training_run_send(run):
                sent.append(pk)
            else:
                TrainingRun.objects.filter(pk=pk).update(sent_at=None)
                break  # the broker is down: the next sweep tries again
    if sent:
        logger.info("training runs sent again: %s", sent)
    return sent


UNDER_WAY = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)


def _held(run_id: int, owner: str | None):
    """The run while it is under way and `owner` holds its lease (any holder with None):
    updates through it change nothing otherwise."""
    runs = TrainingRun.objects.filter(pk=run_id, status__in=UNDER_WAY)
    return runs if owner is None else runs.filter(lease_owner=owner)


def training_run_start(*, run_id: int, owner: str) -> bool:
    """Mark the run running for the worker holding its lease; False when it was cancelled
    (or finished) while it waited."""
    return bool(
        _held(run_id, owner).update(
            status=TrainingRun.Status.RUNNING,
            error="",
            started_at=Coalesce("started_at", Value(timezone.now())),
        )  # fmt: skip
    )


def training_run_progress(*, run_id: int, owner: str, **fields) -> None:
    """Record the step, metrics or log of a run the worker still holds."""
    _held(run_id, owner).update(**fields)


def training_run_settings_chosen(
    *, run_id: int, owner: str, method: str, learning_rate: float
) -> None:
    """Record the method and learning rate the trainer settled on (its choice where the run
    left them to it) as soon as it has, so that a run under way, or one that fails later,
    shows what it trains with. A resumed run reads them back and keeps them."""
    _held(run_id, owner).update(method=method, learning_rate=learning_rate)


def training_run_cancelled(*, run_id: int, owner: str) -> None:
    """The worker stopped the run as asked."""
    _held(run_id, owner).update(status=TrainingRun.Status.CANCELLED, finished_at=timezone.now())


def training_run_fail(*, run_id: int, error: str, owner: str | None = None, **fields) -> bool:
    """Mark an unfinished run failed with the reason (and, say, its log's last lines)."""
    return bool(
        _held(run_id, owner).update(
            status=TrainingRun.Status.FAILED, error=error, finished_at=timezone.now(), **fields
        )
    )


def training_run_succeed(*, run: TrainingRun, owner: str, final: dict, artifact: str) -> bool:
    """Record the run's final figures and register its reward model, together: a worker lost
    between the two would leave a succeeded run, which is never trained again, without its
    model. False when the lease was lost at the last moment (the new holder registers it)."""
    chosen = final["settings"]  # the method and learning rate, where "auto" left them open
    with transaction.atomic():
        finished = _held(run.pk, owner).update(
            status=TrainingRun.Status.SUCCEEDED, method=chosen["method"],
            learning_rate=chosen["learning_rate"], final_metrics=final, artifact=artifact,
            finished_at=timezone.now(), step=F("total_steps"),
        )  # fmt: skip
        if not finished:
            return False
        RewardModel.objects.get_or_create(
            run=run,
            defaults={
                "identifier": f"rm-{run.pk}-{run.dataset.name}-v{run.dataset.version}",
                "project_id": run.dataset.project_id,
                "dataset": run.dataset,
                "base_model": run.base_model,
                "artifact": artifact,
            },
        )
    return True


def training_run_cancel(*, run: TrainingRun) -> None:
    """Ask the worker to stop after its current step; a queued run is cancelled at once."""
    record(Kind.TRAINING_CANCELLED, project=run.dataset.project, target=run)
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED
    )
