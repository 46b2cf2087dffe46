"""Reads of training runs: who may see them, their latest evaluations and curves."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotation.access import ADMIN, project_role, user_is_admin
from annotation.models import CuratedDataset, Membership
from rewardmodels.models import TrainingRun

FINISHED = (
    TrainingRun.Status.SUCCEEDED,
    TrainingRun.Status.FAILED,
    TrainingRun.Status.CANCELLED,
)


def run_role(*, user: AbstractBaseUser, run: TrainingRun) -> str | None:
    """'admin' (may launch and cancel), 'lead' (may watch), or None (no business here)."""
    role = project_role(user=user, project=run.dataset.project)
    return role if role in (ADMIN, Membership.Role.LEAD) else None


def runs_visible(*, user: AbstractBaseUser) -> QuerySet[TrainingRun]:
    """Admins see every run; leads the runs on their projects' datasets. Heavy columns are
    left out: a list shows no timelines or logs."""
    runs = TrainingRun.objects.select_related("dataset").defer("metrics", "log_tail", "error")
    if user_is_admin(user):
        return runs
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return runs.filter(dataset__project_id__in=led)


def _timeline_evals(run: TrainingRun) -> list[tuple[int, dict]]:
    """(step, held-out figures) for each evaluation logged during training, in order; step 0
    is the untrained model, measured before the first step."""
    return [(entry.get("step"), entry["eval"]) for entry in run.metrics if entry.get("eval")]


def run_latest_eval(*, run: TrainingRun) -> dict:
    """The newest held-out figures (workers.ml.metrics' dictionary): the final ones once the run
    is over, else the last evaluation logged during training (empty before the first)."""
    if run.final_metrics:
        return run.final_metrics
    evals = _timeline_evals(run)
    return evals[-1][1] if evals else {}


def run_untrained(*, run: TrainingRun) -> dict:
    """The untrained model's held-out figures: recorded with the final ones, or (while the run
    is under way) the timeline's step-0 evaluation. Empty for runs from before the trainer
    measured it, and where the timeline was not loaded (lists and model pages)."""
    untrained = run.final_metrics.get("untrained")
    if untrained:
        return untrained
    if "metrics" in run.get_deferred_fields():
        return {}
    return next((figures for step, figures in _timeline_evals(run) if step == 0), {})


def run_trained_yet(*, run: TrainingRun) -> bool:
    """Whether the newest held-out figures come from a trained model: false while the only
    evaluation is the untrained model's, before the first step."""
    if run.final_metrics:
        return True
    evals = _timeline_evals(run)
    return bool(evals) and evals[-1][0] != 0


def run_curves(*, run: TrainingRun) -> dict[str, list[tuple[float, float]]]:
    """Training loss per step, held-out loss and accuracy at the evaluation points (from step
    0, the untrained model, where the run measured it)."""
    train_loss, eval_loss, eval_accuracy = [], [], []
    for entry in run.metrics:
        step = entry.get("step")
        if entry.get("loss") is not None:  # step 0 is an evaluation of the untrained model only
            train_loss.append((step, entry["loss"]))
        held_out = entry.get("eval") or {}
        if held_out:
            eval_loss.append((step, held_out.get("loss")))
            eval_accuracy.append((step, held_out.get("accuracy")))
    return {"train_loss": train_loss, "eval_loss": eval_loss, "eval_accuracy": eval_accuracy}


def runs_of_dataset(*, dataset: CuratedDataset, limit: int = 10) -> list[TrainingRun]:
    """The newest runs trained on a version, without their timelines or logs."""
    return list(dataset.runs.defer("metrics", "log_tail", "error")[:limit])
