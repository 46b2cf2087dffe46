"""The charts of the run, evaluation and comparison pages, drawn with the SVG primitives of
annotation.charts: training curves, and accuracy by difficulty and by response length."""

from django.utils.safestring import SafeString

from annotation.agreement.charts import curves, grouped_bars
from annotation.agreement.maths import DIFFICULTIES
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


KEPT_COLOUR, CANDIDATES_COLOUR = "#2f5bd3", "#6b7280"


def kept_lengths_chart(lengths: dict) -> SafeString:
    """Response lengths in tokens, first quartile, median and third quartile, of the kept
    responses beside all candidates: kept bars standing taller mean the model paid for length."""
    points = ("q1", "median", "q3")
    kept, candidates = lengths["kept"], lengths["candidates"]
    top = max([figures[p] or 0 for figures in (kept, candidates) for p in points] + [1])
    return grouped_bars(
        ["first quartile", "median", "third quartile"],
        [
            ("kept", KEPT_COLOUR, [kept[p] for p in points]),
            ("all candidates", CANDIDATES_COLOUR, [candidates[p] for p in points]),
        ],
        y_range=(0.0, float(top)),
    )


def people_reliability_chart(calibration: dict) -> SafeString:
    """The model's probability that the chosen response wins against the share of people
    who chose it, a point per bin of the probability (workers.ml.metrics.people_calibration),
    beside the diagonal where the two agree: below it the model is surer than people are."""
    points = [(part["predicted"], part["observed"]) for part in calibration.get("bins", [])]
    return curves(
        [
            ("people's share, by the model's probability", MODEL_COLOURS[0], points),
            ("as sure as people", UNTRAINED_COLOUR, [(0.0, 0.0), (1.0, 1.0)]),
        ],
        x_max=1.0,
        y_range=(0.0, 1.0),
        x_label="model's probability that the chosen answer wins",
    )
