"""Read paths for training runs and reward models: who may see what, and what pages show."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from annotation.access import ADMIN, project_role, user_is_admin
from annotation.models import CuratedDataset, Membership, Project
from rewardmodels.models import EvaluationRun, Promotion, RewardModel, TrainingRun

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


# ---------------------------------------------------------------------------------------
# Did training work? A held-out accuracy set against the untrained model's, each with its
# 95% interval: an accuracy whose interval includes the untrained model's tells nothing.

CHANCE = 0.5  # what guessing gets: the reference for runs that did not measure their start


def accuracy_interval(figures: dict) -> tuple[float, float] | None:
    """The 95% (Wilson) interval of figures' accuracy: as recorded, or for figures from before
    it was recorded, from the accuracy and the number of pairs. None without them."""
    recorded = figures.get("accuracy_ci95")
    if recorded and len(recorded) == 2:
        return float(recorded[0]), float(recorded[1])
    accuracy, n = figures.get("accuracy"), figures.get("n")
    if accuracy is None or not n:
        return None
    from scipy.stats import binomtest  # the worker records the interval; this is the fallback

    interval = binomtest(round(accuracy * n), n).proportion_ci(method="wilson")
    return float(interval.low), float(interval.high)


Z_95 = 1.959964  # the standard normal's 97.5th percentile


def best_possible_low(n: int) -> float:
    """The lower end of the 95% Wilson interval of n right out of n: the best any accuracy
    on n pairs can show."""
    return n / (n + Z_95 * Z_95)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def interval_text(interval: tuple[float, float]) -> str:
    """53.3–63.4%"""
    return f"{100 * interval[0]:.1f}–{_percent(interval[1])}"


@dataclass(frozen=True)
class HeldOutCheck:
    """A held-out accuracy against the baseline: the untrained model's accuracy on the same
    pairs where it was measured, else chance. Its texts are what pages and commands print."""

    accuracy: float
    n: int
    interval: tuple[float, float]
    baseline: float
    baseline_interval: tuple[float, float] | None
    measured: bool  # the baseline is the untrained model's accuracy, not chance

    @property
    def verdict(self) -> str:
        """'clear' (the interval lies above the baseline), 'inside' (it includes it), 'below'
        (worse than the baseline) or 'too_few' (so few pairs that even all of them right
        would leave the baseline inside the interval)."""
        if self.n <= 0 or best_possible_low(self.n) <= self.baseline:
            return "too_few"
        low, high = self.interval
        if low > self.baseline:
            return "clear"
        return "below" if high < self.baseline else "inside"

    @property
    def gain_points(self) -> float:
        return 100 * (self.accuracy - self.baseline)

    @property
    def summary(self) -> str:
        """58.4% (95% CI 53.3–63.4%) on 363 pairs"""
        pairs = "pair" if self.n == 1 else "pairs"
        return (
            f"{_percent(self.accuracy)} (95% CI {interval_text(self.interval)}) on {self.n} {pairs}"
        )

    @property
    def baseline_text(self) -> str:
        """untrained: 50.4% (95% CI 45.3–55.5%), or chance: 50.0% (not measured)"""
        if not self.measured:
            return f"chance: {_percent(self.baseline)} (the untrained model was not measured)"
        shown = _percent(self.baseline)
        if self.baseline_interval:
            shown += f" (95% CI {interval_text(self.baseline_interval)})"
        return f"untrained: {shown}"

    @property
    def gain_text(self) -> str:
        """+8.0 points over the untrained model"""
        over = "the untrained model" if self.measured else "chance"
        return f"{self.gain_points:+.1f} points over {over}"

    @property
    def _baseline_named(self) -> str:
        if self.measured:
            return f"the untrained model's accuracy ({_percent(self.baseline)})"
        return f"{_percent(self.baseline)}, what guessing gets"

    @property
    def warning(self) -> str:
        """Why the figures do not show that training worked; empty when they do."""
        interval, baseline = interval_text(self.interval), self._baseline_named
        if self.verdict == "too_few":
            return (
                f"Too few held-out pairs to tell whether training worked: with {self.n}, even "
                f"all of them right would leave {baseline} inside the 95% interval. Curate a "
                "version with a larger test split."
            )
        if self.verdict == "inside":
            return (
                f"Training may not have worked: the held-out accuracy's 95% interval "
                f"({interval}) includes {baseline}. Try more pairs, more epochs or another "
                "learning rate."
            )
        if self.verdict == "below":
            return (
                f"Training made the model worse: the held-out accuracy's 95% interval "
                f"({interval}) lies below {baseline}. Try another learning rate, or check the "
                "labels."
            )
        return ""

    @property
    def progress_note(self) -> str:
        """The same for the latest evaluation of a run still training, said quietly: early
        evaluations are often still near where the model started."""
        interval, baseline = interval_text(self.interval), self._baseline_named
        if self.verdict == "too_few":
            return self.warning
        if self.verdict == "clear":
            return f"So far clear of {baseline}: the latest 95% interval is {interval}."
        where = "includes" if self.verdict == "inside" else "lies below"
        return f"Not clear of {baseline} yet: the latest 95% interval ({interval}) {where} it."

    @property
    def confirmation(self) -> str:
        """What a clear gain means, said as plainly as a warning; empty otherwise."""
        if self.verdict != "clear":
            return ""
        return (
            f"Better than {'the untrained model' if self.measured else 'chance'}: the held-out "
            f"accuracy's 95% interval ({interval_text(self.interval)}) lies above "
            f"{self._baseline_named}."
        )


def held_out_check(*, figures: dict, untrained: dict | None) -> HeldOutCheck | None:
    """`figures` against `untrained` (figures of the untrained model on the same pairs, or
    empty, when chance is the baseline); None when figures hold no accuracy over pairs."""
    interval = accuracy_interval(figures)
    if interval is None or figures.get("accuracy") is None or not figures.get("n"):
        return None
    measured = bool(untrained) and untrained.get("accuracy") is not None
    return HeldOutCheck(
        accuracy=figures["accuracy"],
        n=figures["n"],
        interval=interval,
        baseline=untrained["accuracy"] if measured else CHANCE,
        baseline_interval=accuracy_interval(untrained) if measured else None,
        measured=measured,
    )


def run_check(*, run: TrainingRun) -> HeldOutCheck | None:
    """The run's newest held-out accuracy (final, or the latest evaluation while it trains)
    against its untrained model's; None before any evaluation of a trained model."""
    if not run_trained_yet(run=run):
        return None
    return held_out_check(figures=run_latest_eval(run=run), untrained=run_untrained(run=run))


# ---------------------------------------------------------------------------------------
# Reward models, their evaluations and filter runs. Admins and the leads of a model's
# dataset project see everything about it and may queue evaluations and filter runs.


def model_role(*, user: AbstractBaseUser, reward_model: RewardModel) -> str | None:
    """'admin', 'lead', or None (no business here)."""
    role = project_role(user=user, project=reward_model.project)
    return role if role in (ADMIN, Membership.Role.LEAD) else None


def reward_model_get(*, key: str) -> RewardModel:
    """A model by identifier (or number), whoever asks; 404 when there is none."""
    lookup = {"pk": int(key)} if key.isascii() and key.isdigit() else {"identifier": key}
    return get_object_or_404(
        RewardModel.objects.select_related("project", "dataset", "run").defer(
            "run__metrics", "run__log_tail"
        ),
        **lookup,
    )


def reward_model_for(*, user: AbstractBaseUser, key: str) -> RewardModel:
    """A model by identifier (or number), for those who may see it; 404 for anyone else,
    so that outsiders learn nothing about which models exist."""
    reward_model = reward_model_get(key=key)
    if model_role(user=user, reward_model=reward_model) is None:
        raise Http404("No such reward model.")
    return reward_model


def projects_led(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects whose models the user sees: every one for admins, else those they lead."""
    if user_is_admin(user):
        return Project.objects.order_by("name")
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return Project.objects.filter(pk__in=led).order_by("name")


def models_visible(*, user: AbstractBaseUser) -> QuerySet[RewardModel]:
    """Admins see every model; leads those of their projects."""
    models = RewardModel.objects.select_related("project", "dataset", "run").defer(
        "run__metrics", "run__log_tail", "run__error"
    )
    if user_is_admin(user):
        return models
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return models.filter(project_id__in=led)


def final_check(*, run: TrainingRun) -> HeldOutCheck | None:
    """A run's final held-out accuracy against the untrained model's (lists load no
    timelines)."""
    return held_out_check(figures=run.final_metrics, untrained=run_untrained(run=run))


def promoted_model(*, project_id: int) -> RewardModel | None:
    """The model serving the project: the newest decision's, if it was a promotion."""
    decision = (
        Promotion.objects.filter(project_id=project_id).select_related("reward_model").first()
    )
    return decision.reward_model if decision and decision.promoted else None


def promotions(*, project_id: int) -> QuerySet[Promotion]:
    return Promotion.objects.filter(project_id=project_id).select_related(
        "reward_model", "decided_by"
    )


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
    """The figures to compare a model by. With no `dataset`, on its own version's test split:
    the final figures its run measured there, else its latest succeeded evaluation there.
    On a chosen version's test split: its latest evaluation there, else, when that version
    is its own, its run's final figures (an evaluation of those very pairs). Empty figures
    when there are none yet (always, for a registered model's own split: it has none)."""
    final = reward_model.run.final_metrics if reward_model.run_id else {}
    if dataset is None and final:
        return final, None
    target = dataset or reward_model.dataset
    if target is None:
        return {}, None
    evaluation = evaluation_latest(reward_model=reward_model, dataset=target)
    if evaluation:
        return evaluation.metrics, evaluation
    if final and target.pk == reward_model.dataset_id:
        return final, None
    return {}, None


def people_calibration_latest(*, reward_model: RewardModel) -> tuple[dict, EvaluationRun | None]:
    """The newest calibration against people's votes measured for a model: its newest
    succeeded evaluation on pairs with two or more votes, else its run's final held-out
    figures where they had such pairs; ({}, None) when neither did."""
    evaluation = (
        reward_model.evaluations.filter(
            status=EvaluationRun.Status.SUCCEEDED, metrics__people_calibration__n__gt=0
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if evaluation:
        return evaluation.metrics["people_calibration"], evaluation
    final = reward_model.run.final_metrics if reward_model.run_id else {}
    calibration = (final or {}).get("people_calibration") or {}
    return (calibration, None) if calibration.get("n") else ({}, None)
