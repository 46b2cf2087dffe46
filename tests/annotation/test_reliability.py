"""Rater reliability (Dawid-Skene, MACE): the same figures as crowd-kit where the models
coincide, the known truth of simulated crowds recovered, a left clicker recognised, and
degenerate labels handled without NaN or exceptions."""

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import MACE, DawidSkene

from annotation.agreement.maths import CHOICE_A, CHOICE_B, CHOICE_TIE, N_CHOICES, vote_counts
from annotation.agreement.reliability import (
    SCREEN_LEFT,
    SCREEN_RIGHT,
    dawid_skene,
    enough_for_estimate,
    mace,
)
from tests.factories import simulated_crowd

TOLERANCE = 1e-6
ESTIMATORS = [dawid_skene, mace]
CAREFUL = [("careful", a) for a in (0.85, 0.86, 0.87, 0.88, 0.89, 0.90)]
CARELESS = ["random", "random", "left"]
SEEDS = range(6)


def random_labels(seed: int, n_items: int = 200, n_raters: int = 8, per_item: int = 3):
    """Labels of raters of mixed accuracy, in the row order crowd-kit needs (see below)."""
    rng = np.random.default_rng(seed)
    item = np.repeat(np.arange(n_items), per_item)
    rater = np.concatenate([rng.choice(n_raters, per_item, replace=False) for _ in range(n_items)])
    truth = rng.integers(0, N_CHOICES, n_items)
    accuracy = rng.uniform(0.4, 0.9, n_raters)
    right = rng.random(item.size) < accuracy[rater]
    choice = np.where(right, truth[item], rng.integers(0, N_CHOICES, item.size))
    # crowd-kit's MACE sums its per-worker counts in sorted order but indexes its parameters
    # in order of first appearance; rows sorted by worker, then answer, make the two agree.
    order = np.lexsort((choice, rater))
    item, rater, choice = item[order], rater[order], choice[order]
    assert set(choice[rater == 0]) == {0, 1, 2} and set(rater) == set(range(n_raters))
    return item, rater, choice, n_items, n_raters


def crowdkit_fit(model, item, rater, choice):
    frame = pd.DataFrame({"task": item, "worker": rater, "label": choice})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(frame)


def crowdkit_posterior(model, n_items):
    return model.probas_.reindex(index=range(n_items), columns=range(N_CHOICES)).to_numpy()


def a_on_the_left(item):
    return np.full(item.size, CHOICE_A)


@pytest.mark.parametrize("iterations", [1, 5, 40])
@pytest.mark.parametrize("seed", [0, 1])
def test_dawid_skene_without_smoothing_is_crowdkits(seed, iterations):
    item, rater, choice, n_items, n_raters = random_labels(seed)
    theirs = crowdkit_fit(DawidSkene(n_iter=iterations, tol=-np.inf), item, rater, choice)
    ours = dawid_skene(
        item, rater, choice, a_on_the_left(item), n_items, n_raters,
        iterations=iterations, tol=None, smoothing=0.0,
    )  # fmt: skip
    assert ours.iterations == iterations
    np.testing.assert_allclose(ours.posterior, crowdkit_posterior(theirs, n_items), atol=TOLERANCE)
    # crowd-kit keeps rows only for answers a worker gave; ours has every row.
    for (worker, given), row in theirs.errors_.iterrows():
        for truth in range(N_CHOICES):
            assert ours.confusion[worker, truth, given] == pytest.approx(row[truth], abs=TOLERANCE)


@pytest.mark.parametrize("method", ["vb", "em"])
@pytest.mark.parametrize("iterations", [1, 10, 50])
def test_mace_is_crowdkits(method, iterations):
    # crowd-kit draws every restart from the same random_state, so its restarts repeat one
    # another and n_restarts=1 is its default model (test_crowdkits_restarts_repeat).
    item, rater, choice, n_items, n_raters = random_labels(2)
    model = MACE(n_restarts=1, n_iter=iterations, method=method, random_state=0)
    theirs = crowdkit_fit(model, item, rater, choice)
    ours = mace(
        item, rater, choice, a_on_the_left(item), n_items, n_raters,
        iterations=iterations, tol=None, method=method, seed=0,
    )  # fmt: skip
    assert ours.iterations == iterations
    np.testing.assert_allclose(ours.posterior, crowdkit_posterior(theirs, n_items), atol=TOLERANCE)
    np.testing.assert_allclose(ours.competence, theirs.spamming_[:, 1], atol=TOLERANCE)
    np.testing.assert_allclose(ours.spamming, theirs.thetas_, atol=TOLERANCE)


def test_crowdkits_restarts_repeat():
    item, rater, choice, n_items, _ = random_labels(3)
    once = crowdkit_fit(MACE(n_restarts=1, n_iter=5), item, rater, choice)
    thrice = crowdkit_fit(MACE(n_restarts=3, n_iter=5), item, rater, choice)
    np.testing.assert_array_equal(
        crowdkit_posterior(once, n_items), crowdkit_posterior(thrice, n_items)
    )


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_an_unknown_side_counts_as_a_on_the_left(estimator):
    item, rater, choice, n_items, n_raters = random_labels(4)
    known = estimator(item, rater, choice, a_on_the_left(item), n_items, n_raters)
    unknown = estimator(item, rater, choice, np.full(item.size, -1), n_items, n_raters)
    np.testing.assert_array_equal(known.posterior, unknown.posterior)
    np.testing.assert_array_equal(known.score, unknown.score)


# Dawid-Skene keeps a prior over stored a / b / tie (an import may favour one side), which
# the swap moves a little (by 0.001 in scores, 0.06 on its most doubtful pair); MACE's
# prior is uniform.
@pytest.mark.parametrize(
    "estimator, score_tolerance, posterior_tolerance",
    [(dawid_skene, 0.01, 0.1), (mace, 1e-9, 1e-9)],
)
def test_which_response_is_stored_as_a_changes_no_reliability(
    estimator, score_tolerance, posterior_tolerance
):
    """Swapping a and b of some pairs, in the labels and in what was shown on the left, is
    the same crowd seeing the same screens: the same scores, the posteriors swapped."""
    rng = np.random.default_rng(5)
    crowd = simulated_crowd(200, CAREFUL + CARELESS, (3, 5), rng)
    item, choice, shown = crowd["item"], crowd["choice"], crowd["shown_left"]
    swapped = rng.random(crowd["n_items"]) < 0.5
    swap = np.array([CHOICE_B, CHOICE_A, CHOICE_TIE])
    flip = swapped[item]
    args = (crowd["n_items"], crowd["n_raters"])
    before = estimator(item, crowd["rater"], choice, shown, *args)
    after = estimator(
        item, crowd["rater"], np.where(flip, swap[choice], choice),
        np.where(flip, swap[shown], shown), *args,
    )  # fmt: skip
    np.testing.assert_allclose(after.score, before.score, atol=score_tolerance)
    expected = np.where(swapped[:, None], before.posterior[:, swap], before.posterior)
    np.testing.assert_allclose(after.posterior, expected, atol=posterior_tolerance)


def head_count_accuracy(crowd) -> float:
    """Share of pairs whose majority is the truth, ties between top choices broken by a fair
    coin (counted in expectation)."""
    votes = vote_counts(crowd["item"], crowd["choice"], crowd["n_items"], N_CHOICES)
    top = votes == votes.max(axis=1, keepdims=True)
    truth_on_top = top[np.arange(crowd["n_items"]), crowd["truth"]]
    return float(np.mean(truth_on_top / top.sum(axis=1)))


def fitted(estimator, crowd):
    return estimator(
        crowd["item"], crowd["rater"], crowd["choice"], crowd["shown_left"],
        crowd["n_items"], crowd["n_raters"],
    )  # fmt: skip


def winner_accuracy(result, crowd) -> float:
    return float(np.mean(result.posterior.argmax(axis=1) == crowd["truth"]))


def crowds(raters):
    return [simulated_crowd(300, raters, (3, 5), np.random.default_rng(s)) for s in SEEDS]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_careful_raters_rank_above_random_and_left_clickers(estimator):
    for crowd in crowds(CAREFUL + CARELESS):
        score = fitted(estimator, crowd).score
        assert score[: len(CAREFUL)].min() > score[len(CAREFUL) :].max() + 0.15


def test_a_left_clicker_is_recognised_though_its_stored_choices_look_even():
    left = len(CAREFUL) + 2
    for crowd in crowds(CAREFUL + CARELESS):
        mine = crowd["rater"] == left
        assert 0.35 < np.mean(crowd["choice"][mine] == CHOICE_A) < 0.65
        ds, mc = fitted(dawid_skene, crowd), fitted(mace, crowd)
        assert ds.left_rate[left] == 1.0 and mc.left_rate[left] == 1.0
        for truth in (SCREEN_LEFT, SCREEN_RIGHT):
            assert ds.confusion[left, truth, SCREEN_LEFT] > 0.9
        assert ds.score[left] < 0.65
        assert mc.score[left] < 0.1 and mc.spamming[left, SCREEN_LEFT] > 0.8
        assert np.all(ds.ci95[left] <= 0.7) and np.all(mc.ci95[left] <= 0.2)


@pytest.mark.parametrize("estimator, gain", [(dawid_skene, 0.04), (mace, 0.015)])
def test_the_posterior_beats_the_head_count_when_careless_raters_vote(estimator, gain):
    all_crowds = crowds(CAREFUL + CARELESS)
    head = np.mean([head_count_accuracy(c) for c in all_crowds])
    ours = np.mean([winner_accuracy(fitted(estimator, c), c) for c in all_crowds])
    assert ours > head + gain


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_the_posterior_is_no_worse_than_the_head_count_among_careful_raters(estimator):
    all_crowds = crowds(CAREFUL)
    head = np.mean([head_count_accuracy(c) for c in all_crowds])
    ours = np.mean([winner_accuracy(fitted(estimator, c), c) for c in all_crowds])
    assert ours > head - 0.005


def careful_width(result) -> float:
    return float((result.ci95[:, 1] - result.ci95[:, 0])[: len(CAREFUL)].mean())


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_intervals_hold_the_score_and_narrow_with_votes(estimator):
    crowd = crowds(CAREFUL + CARELESS)[0]
    result = fitted(estimator, crowd)
    assert np.all(result.ci95[:, 0] <= result.score) and np.all(result.score <= result.ci95[:, 1])
    few = simulated_crowd(30, CAREFUL + CARELESS, (3, 5), np.random.default_rng(0))
    assert careful_width(result) < careful_width(fitted(estimator, few))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_a_tolerance_stops_early(estimator):
    crowd = crowds(CAREFUL + CARELESS)[0]
    args = [crowd[k] for k in ("item", "rater", "choice", "shown_left", "n_items", "n_raters")]
    full = estimator(*args, iterations=500, tol=None)
    early = estimator(*args, iterations=500, tol=1e-4)
    assert full.iterations == 500 and early.iterations < 500
    np.testing.assert_allclose(early.posterior, full.posterior, atol=1e-2)


def degenerate_cases():
    none = np.zeros(0, dtype=np.int64)
    items = np.arange(10)
    return {
        "no labels": (none, none, none, none, 5, 3),
        "one rater": (items, np.zeros(10), items % 3, items % 2, 10, 1),
        "one vote a pair": (items, items % 4, items % 2, np.full(10, -1), 10, 4),
        "all ties": (items % 5, items % 3, np.full(10, CHOICE_TIE), items % 2, 5, 3),
        "a rater without labels, a pair without labels": (
            items % 4, items % 2, items % 2, items % 2, 6, 3
        ),
    }  # fmt: skip


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("case", list(degenerate_cases()))
def test_degenerate_labels_give_finite_reliabilities(estimator, case):
    item, rater, choice, shown, n_items, n_raters = degenerate_cases()[case]
    result = estimator(item, rater, choice, shown, n_items, n_raters)
    assert result.score.shape == (n_raters,) and result.ci95.shape == (n_raters, 2)
    assert np.all(np.isfinite(result.score)) and np.all(np.isfinite(result.ci95))
    assert np.all((result.ci95 >= 0) & (result.ci95 <= 1))
    labelled = np.bincount(item, minlength=n_items) > 0
    assert np.isnan(result.posterior[~labelled]).all()
    np.testing.assert_allclose(result.posterior[labelled].sum(axis=1), 1.0)
    assert result.votes.tolist() == np.bincount(rater.astype(int), minlength=n_raters).tolist()


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_codes_out_of_range_are_refused(estimator):
    with pytest.raises(ValueError, match="choice"):
        estimator([0], [0], [3], [0], 1, 1)
    with pytest.raises(ValueError, match="rater"):
        estimator([0], [1], [0], [0], 1, 1)


def test_enough_for_estimate_wants_most_pairs_seen_twice():
    twice = np.repeat(np.arange(30), 2)
    assert enough_for_estimate(twice, 30)
    assert not enough_for_estimate(np.arange(30), 30)  # one vote a pair
    assert not enough_for_estimate(np.repeat(np.arange(10), 2), 10)  # too few pairs
    assert not enough_for_estimate(np.concatenate([twice, np.arange(30, 100)]), 100)
    assert not enough_for_estimate(np.zeros(0, dtype=np.int64), 0)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_labels_are_counted_in_vectorised_passes(estimator):
    """200,000 labels in well under the seconds a loop over them would take."""
    rng = np.random.default_rng(0)
    crowd = simulated_crowd(60_000, CAREFUL * 4 + CARELESS * 2, (3, 4), rng)
    started = time.perf_counter()
    fitted(estimator, crowd)
    assert time.perf_counter() - started < 3.0
