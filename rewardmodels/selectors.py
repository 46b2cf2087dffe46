"""Read paths for training runs and reward models: who may see what, and what pages show."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from annotation.models import CuratedDataset, Membership
from annotation.selectors import ADMIN, project_role, user_is_admin
from rewardmodels.models import EvaluationRun, RewardModel, TrainingRun

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


def run_latest_eval(*, run: TrainingRun) -> dict:
    """The newest held-out figures (workers.metrics' dictionary): the final ones once the run
    is over, else the last evaluation logged during training (empty before the first)."""
    return run.final_metrics or next(
        (entry["eval"] for entry in reversed(run.metrics) if entry.get("eval")), {}
    )


def run_curves(*, run: TrainingRun) -> dict[str, list[tuple[float, float]]]:
    """Training loss per step, held-out loss and accuracy at the evaluation points."""
    train_loss, eval_loss, eval_accuracy = [], [], []
    for entry in run.metrics:
        step = entry.get("step")
        train_loss.append((step, entry.get("loss")))
        held_out = entry.get("eval") or {}
        if held_out:
            eval_loss.append((step, held_out.get("loss")))
            eval_accuracy.append((step, held_out.get("accuracy")))
    return {"train_loss": train_loss, "eval_loss": eval_loss, "eval_accuracy": eval_accuracy}


# ---------------------------------------------------------------------------------------
# Reward models, their evaluations and filter runs. Admins and the leads of a model's
# dataset project see everything about it and may queue evaluations and filter runs.


def model_role(*, user: AbstractBaseUser, reward_model: RewardModel) -> str | None:
    """'admin', 'lead', or None (no business here)."""
    role = project_role(user=user, project=reward_model.dataset.project)
    return role if role in (ADMIN, Membership.Role.LEAD) else None


def reward_model_for(*, user: AbstractBaseUser, key: str) -> RewardModel:
    """A model by identifier (or number), for those who may see it; 404 for anyone else,
    so that outsiders learn nothing about which models exist."""
    lookup = {"pk": int(key)} if key.isdigit() else {"identifier": key}
    reward_model = get_object_or_404(
        RewardModel.objects.select_related("dataset__project", "run").defer(
            "run__metrics", "run__log_tail"
        ),
        **lookup,
    )
    if model_role(user=user, reward_model=reward_model) is None:
        raise Http404("No such reward model.")
    return reward_model


def models_visible(*, user: AbstractBaseUser) -> QuerySet[RewardModel]:
    """Admins see every model; leads those trained on their projects' datasets."""
    models = RewardModel.objects.select_related("dataset__project", "run").defer(
        "run__metrics", "run__log_tail", "run__error"
    )
    if user_is_admin(user):
        return models
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return models.filter(dataset__project_id__in=led)


def datasets_with_test_split(*, user: AbstractBaseUser) -> QuerySet[CuratedDataset]:
    """Dataset versions with a test split that the user may evaluate on, newest first."""
    datasets = CuratedDataset.objects.filter(n_test__gt=0).select_related("project")
    if user_is_admin(user):
        return datasets
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return datasets.filter(project_id__in=led)


def evaluation_latest(
    *, reward_model: RewardModel, dataset: CuratedDataset, succeeded: bool = True
) -> EvaluationRun | None:
    """The newest succeeded evaluation on a version's test split, or (succeeded=False) the
    newest one still queued or running."""
    wanted = (
        [EvaluationRun.Status.SUCCEEDED]
        if succeeded
        else [EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
    )
    return (
        reward_model.evaluations.filter(dataset=dataset, status__in=wanted)
        .order_by("-created_at", "-pk")
        .first()
    )


def model_figures(
    *, reward_model: RewardModel, dataset: CuratedDataset | None
) -> tuple[dict, EvaluationRun | None]:
    """The figures to compare a model by: on `dataset`'s test split, its latest succeeded
    evaluation there; with no dataset, its own test split, where training's final figures
    stand unless they are missing. Empty figures when there are none yet."""
    if dataset is None:
        if reward_model.run.final_metrics:
            return reward_model.run.final_metrics, None
        dataset = reward_model.dataset
    evaluation = evaluation_latest(reward_model=reward_model, dataset=dataset)
    return (evaluation.metrics if evaluation else {}), evaluation
