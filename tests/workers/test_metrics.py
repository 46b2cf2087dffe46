"""The length-debiased accuracy and the calibration against people's votes, by hand."""

import math

import numpy as np
import pytest

from workers.ml.metrics import (
    length_debiased_accuracy,
    people_calibration,
    preference_metrics,
    share_chosen_of,
)
from workers.ml.scoring import pair_metrics

Z = 1.959963985  # the standard normal's 97.5th percentile


def wilson(right: int, n: int) -> tuple[float, float]:
    """The Wilson score interval, written out."""
    p = right / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def test_length_debiased_accuracy_weighs_both_sides_alike():
    # Chosen shorter in 3 pairs, all right; longer in 2, both wrong; one of equal length.
    # Accuracy 4/6 flatters the model: by side it is 100% and 0%, so 50% debiased.
    figures = preference_metrics(
        chosen=[1.0, 1.0, 1.0, 0.0, 0.0, 1.0],
        rejected=[0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        chosen_tokens=[5, 5, 5, 20, 20, 7],
        rejected_tokens=[10, 10, 10, 10, 10, 7],
    )
    assert figures["accuracy"] == pytest.approx(4 / 6)
    assert figures["length_debiased_accuracy"] == 0.5
    # Wilson 3/3 is [3 / (3 + z²), 1] and 0/2 is [0, z² / (2 + z²)]; MOVER takes half the
    # distance from each side's accuracy to its limit, added in quadrature.
    low = 0.5 - 0.5 * (1 - 3 / (3 + Z * Z))
    high = 0.5 + 0.5 * Z * Z / (2 + Z * Z)
    assert figures["length_debiased_accuracy_ci95"] == pytest.approx([low, high], abs=1e-6)
    length = figures["length"]
    assert length["accuracy_chosen_shorter_ci95"] == pytest.approx([3 / (3 + Z * Z), 1.0])
    assert length["accuracy_chosen_longer_ci95"] == pytest.approx([0.0, Z * Z / (2 + Z * Z)])


def test_length_debiased_interval_combines_both_sides_in_quadrature():
    # Shorter: 1 right of 2 (50%); longer: 3 right of 4 (75%); mean 62.5%.
    value, (low, high) = length_debiased_accuracy(
        np.array([True, False]), np.array([True, True, True, False])
    )
    (low1, high1), (low2, high2) = wilson(1, 2), wilson(3, 4)
    assert value == 0.625
    assert low == pytest.approx(0.625 - 0.5 * math.hypot(0.5 - low1, 0.75 - low2))
    assert high == pytest.approx(0.625 + 0.5 * math.hypot(high1 - 0.5, high2 - 0.75))
    assert 0 <= low < value < high <= 1


def test_no_debiased_accuracy_without_pairs_on_both_sides():
    figures = preference_metrics([1.0, 0.0], [0.0, 1.0], [3, 3], [9, 9])  # chosen always shorter
    assert figures["length_debiased_accuracy"] is None
    assert figures["length_debiased_accuracy_ci95"] is None
    assert figures["length"]["accuracy_chosen_longer_ci95"] is None
    assert figures["length"]["accuracy_chosen_shorter_ci95"] == pytest.approx(wilson(1, 2))


def test_brier_score_against_people_by_hand():
    # σ(0) = 0.5, σ(ln 3) = 0.75, σ(−ln 3) = 0.25; the last pair has no share of votes.
    gap = [0.0, math.log(3), -math.log(3), math.log(3), 2.0]
    calibration = people_calibration(np.array(gap), np.zeros(5), [0.5, 1.0, 0.5, 1.0, None])
    assert calibration["n"] == 4
    # (0.5 − 0.5)², (0.75 − 1)², (0.25 − 0.5)², (0.75 − 1)²
    assert calibration["brier"] == pytest.approx(3 * 0.0625 / 4)
    # Always 0.75, the mean share: 0.25² on every pair.
    assert calibration["mean_share"] == pytest.approx(0.75)
    assert calibration["brier_baseline"] == pytest.approx(0.0625)
    assert calibration["bins"] == [
        {"predicted": pytest.approx(0.25), "observed": 0.5, "n": 1},
        {"predicted": pytest.approx(0.5), "observed": 0.5, "n": 1},
        {"predicted": pytest.approx(0.75), "observed": 1.0, "n": 2},
    ]
    assert people_calibration(np.zeros(2), np.zeros(2), [None, None]) == {"n": 0}


def test_share_of_people_comes_from_two_or_more_votes():
    # A curated row's agreement: the chosen response's votes over all votes, ties included.
    assert share_chosen_of({"agreement": 0.666667, "n_votes": 3}) == 0.666667
    assert share_chosen_of({"agreement": 1.0, "n_votes": 1}) is None  # one vote: no split
    assert share_chosen_of({"prompt": "p", "chosen": "a", "rejected": "b"}) is None
    assert share_chosen_of({"agreement": "most", "n_votes": 3}) is None
    assert share_chosen_of({"agreement": 1.5, "n_votes": 3}) is None
    assert share_chosen_of({"agreement": float("nan"), "n_votes": 3}) is None


def test_evaluation_figures_carry_the_calibration_where_rows_have_votes():
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b", "agreement": 1.0, "n_votes": 2},
        {"prompt": "p", "chosen": "a", "rejected": "b", "agreement": 0.5, "n_votes": 4},
        {"prompt": "p", "chosen": "a", "rejected": "b"},  # from a file without votes
    ]
    scores = {
        "chosen": np.array([math.log(3), 0.0, 5.0]), "rejected": np.zeros(3),
        "chosen_tokens": np.array([4, 4, 4]), "rejected_tokens": np.array([2, 2, 2]),
        "truncated": np.zeros(3, dtype=bool),
    }  # fmt: skip
    calibration = pair_metrics(rows, scores)["people_calibration"]
    assert calibration["n"] == 2
    assert calibration["brier"] == pytest.approx((0.25**2 + 0) / 2)
    assert calibration["brier_baseline"] == pytest.approx(0.25**2)
