"""The charts of the run, evaluation and comparison pages, drawn with the SVG primitives of
annotation.charts: training curves, and accuracy by difficulty and by response length."""

from django.utils.safestring import SafeString

from annotation.agreement import DIFFICULTIES
from annotation.charts import curves, grouped_bars
from rewardmodels.models import TrainingRun

MODEL_COLOURS = ("#2f5bd3", "#d97706", "#207a45", "#9333ea", "#b42318", "#0e7490", "#6b7280")
UNTRAINED_COLOUR = "#6b7280"


def loss_chart(run: TrainingRun, train_loss: list, eval_loss: list) -> SafeString:
    """Training and held-out loss per step."""
    return curves(
        [("training loss", "#2f5bd3", train_loss), ("held-out loss", "#d97706", eval_loss)],
        x_max=run.total_steps,
        x_label="step",
    )


def accuracy_chart(run: TrainingRun, points: list[tuple[float, float]], untrained: dict):
    """Held-out accuracy per evaluation, from step 0 (the untrained model) where the run
    measured it, with the untrained model's accuracy drawn across as the line to beat."""
    series = [("held-out accuracy", "#207a45", points)]
    if untrained.get("accuracy") is not None:
        end = max([run.total_steps or 0] + [step for step, _ in points if step is not None])
        level = untrained["accuracy"]
        series.append(("untrained model", UNTRAINED_COLOUR, [(0, level), (max(end, 1), level)]))
    return curves(
        series,
        x_max=run.total_steps,
        x_label="step",
        y_range=(0.0, 1.0),
        reference=("chance", 0.5),
    )


def difficulty_chart(series: list[tuple[str, str, dict]]):
    """Accuracy overall and by difficulty, one bar per (name, colour, figures)."""
    return grouped_bars(
        ["all pairs", *DIFFICULTIES],
        [
            (
                name,
                colour,
                [figures.get("accuracy")]
                + [
                    figures.get("by_difficulty", {}).get(d, {}).get("accuracy")
                    for d in DIFFICULTIES
                ],
            )
            for name, colour, figures in series
        ],
        reference=("chance", 0.5),
        percent=True,
    )


def length_chart(series: list[tuple[str, str, dict]]):
    """Accuracy when the chosen response is the shorter or the longer one: a model that
    rewards length does well on the second and badly on the first."""
    keys = ("accuracy_chosen_shorter", "accuracy_chosen_longer")
    return grouped_bars(
        ["chosen is shorter", "chosen is longer"],
        [
            (name, colour, [figures.get("length", {}).get(key) for key in keys])
            for name, colour, figures in series
        ],
        reference=("chance", 0.5),
        percent=True,
    )
