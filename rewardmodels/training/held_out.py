"""Checks of held-out figures before a model is trusted: accuracy with its interval against
chance and the untrained model, and the warnings a run's or a model's page shows."""

from dataclasses import dataclass

from rewardmodels.models import TrainingRun
from rewardmodels.training.selectors import run_latest_eval, run_trained_yet, run_untrained
from workers.ml.metrics import wilson_interval

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
    low, high = wilson_interval(round(accuracy * n), n)  # what the worker records
    return low, high


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
        (worse than the baseline), 'too_few' (so few pairs that even all of them right
        would leave the baseline inside the interval) or 'nothing_to_measure' (the model
        started at 100% on these pairs, and kept it: no number of pairs could show a gain)."""
        low, high = self.interval
        if self.n > 0 and self.measured and self.baseline >= 1.0:
            return "below" if high < self.baseline else "nothing_to_measure"
        if self.n <= 0 or best_possible_low(self.n) <= self.baseline:
            return "too_few"
        if low > self.baseline:
            return "clear"
        return "below" if high < self.baseline else "inside"

    @property
    def settled(self) -> bool:
        """Whether more training steps cannot change the verdict (the test split is too
        small, or the model started at 100%): said plainly at once, even while it trains."""
        return self.verdict in ("too_few", "nothing_to_measure")

    @property
    def flag(self) -> str:
        """The warning in a few words, for a list's row."""
        return {"too_few": "too few pairs to tell", "nothing_to_measure": "nothing to measure"}.get(
            self.verdict, "may not have worked"
        )

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
        if self.verdict == "nothing_to_measure":
            return (
                "The starting model is already at 100% on these pairs: nothing to measure. "
                "No training can show a gain on them; judge the new model by its evaluations "
                "on other held-out pairs."
            )
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
        if self.settled:
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


def final_check(*, run: TrainingRun) -> HeldOutCheck | None:
    """A run's final held-out accuracy against the untrained model's (lists load no
    timelines)."""
    return held_out_check(figures=run.final_metrics, untrained=run_untrained(run=run))
