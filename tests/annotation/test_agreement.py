"""Agreement maths against scikit-learn, statsmodels and krippendorff on random data."""

import math
import warnings

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from annotation.agreement.consensus import LabelTable, consensus
from annotation.agreement.maths import (
    CHOICE_A,
    CHOICE_B,
    CHOICE_TIE,
    DIFFICULTY_NAMES,
    N_CHOICES,
    SIGNED_VALUES,
    UNKNOWN_STRENGTH,
    agreement_with_majority,
    confusion_by_rater_pair,
    fleiss_kappa,
    gold_accuracy,
    krippendorff_alpha,
    longer_choice_rate,
    majority_2to1_rate,
    median_seconds,
    pairwise_kappas,
    percent_agreement,
    position_bias,
    signed_strength,
    vote_counts,
)
from annotation.agreement.report import agreement_report

TOLERANCE = 1e-9


@st.composite
def label_sets(draw, complete: bool = False, max_choice: int = 2):
    """Random labels: some raters, some items, each rater labelling a random subset."""
    n_items = draw(st.integers(1, 25))
    n_raters = draw(st.integers(2, 6))
    cells = [(i, r) for i in range(n_items) for r in range(n_raters)]
    if complete:
        present = cells
    else:
        mask = draw(st.lists(st.booleans(), min_size=len(cells), max_size=len(cells)))
        present = [cell for cell, keep in zip(cells, mask, strict=True) if keep]
    choices = draw(
        st.lists(st.integers(0, max_choice), min_size=len(present), max_size=len(present))
    )
    item = np.array([c[0] for c in present], dtype=np.int64)
    rater = np.array([c[1] for c in present], dtype=np.int64)
    return item, rater, np.array(choices, dtype=np.int64), n_items, n_raters


def same(ours, reference) -> bool:
    if reference is None or (isinstance(reference, float) and not math.isfinite(reference)):
        return ours is None
    return ours is not None and abs(ours - reference) <= TOLERANCE


def reference_or_none(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(function(*args, **kwargs))
        except (ValueError, ZeroDivisionError):
            return None
    return value if math.isfinite(value) else None


@settings(max_examples=150, deadline=None)
@given(label_sets())
def test_cohen_kappa_matches_scikit_learn(labels):
    item, rater, choice, n_items, n_raters = labels
    confusions = confusion_by_rater_pair(item, rater, choice, n_raters, N_CHOICES)
    found = {(i, j): (n, k) for i, j, n, k in pairwise_kappas(confusions)}
    for i in range(n_raters):
        for j in range(i + 1, n_raters):
            by_i = dict(zip(item[rater == i], choice[rater == i], strict=True))
            by_j = dict(zip(item[rater == j], choice[rater == j], strict=True))
            common = sorted(set(by_i) & set(by_j))
            if not common:
                assert (i, j) not in found  # no overlap: no figure
                continue
            y1, y2 = [by_i[c] for c in common], [by_j[c] for c in common]
            reference = reference_or_none(cohen_kappa_score, y1, y2, labels=[0, 1, 2])
            n, kappa = found[(i, j)]
            assert n == len(common)
            assert same(kappa, reference), (kappa, reference)


@settings(max_examples=150, deadline=None)
@given(label_sets(max_choice=len(SIGNED_VALUES) - 1))
def test_quadratic_weighted_kappa_matches_scikit_learn(labels):
    item, rater, code, n_items, n_raters = labels  # codes index SIGNED_VALUES, −3…+3
    confusions = confusion_by_rater_pair(item, rater, code, n_raters, len(SIGNED_VALUES))
    for i, j, _, kappa in pairwise_kappas(confusions, weights="quadratic"):
        by_i = dict(zip(item[rater == i], code[rater == i], strict=True))
        by_j = dict(zip(item[rater == j], code[rater == j], strict=True))
        common = sorted(set(by_i) & set(by_j))
        reference = reference_or_none(
            cohen_kappa_score,
            [by_i[c] for c in common],
            [by_j[c] for c in common],
            labels=list(range(len(SIGNED_VALUES))),
            weights="quadratic",
        )
        assert same(kappa, reference), (kappa, reference)


@settings(max_examples=150, deadline=None)
@given(label_sets(complete=True))
def test_fleiss_kappa_matches_statsmodels(labels):
    item, rater, choice, n_items, _ = labels
    counts = vote_counts(item, choice, n_items, N_CHOICES)
    reference = reference_or_none(statsmodels_fleiss, counts)
    assert same(fleiss_kappa(counts), reference)


def krippendorff_reference(item, rater, values, n_items, n_raters, level):
    data = np.full((n_raters, n_items), np.nan)
    data[rater, item] = values
    return reference_or_none(krippendorff.alpha, reliability_data=data, level_of_measurement=level)


@settings(max_examples=150, deadline=None)
@given(label_sets())
def test_krippendorff_nominal_matches_the_package(labels):
    item, rater, choice, n_items, n_raters = labels
    counts = vote_counts(item, choice, n_items, N_CHOICES)
    reference = krippendorff_reference(item, rater, choice, n_items, n_raters, "nominal")
    assert same(krippendorff_alpha(counts), reference)


@settings(max_examples=150, deadline=None)
@given(label_sets(max_choice=len(SIGNED_VALUES) - 1))
def test_krippendorff_interval_matches_the_package(labels):
    item, rater, code, n_items, n_raters = labels
    counts = vote_counts(item, code, n_items, len(SIGNED_VALUES))
    signed = SIGNED_VALUES[code]
    reference = krippendorff_reference(item, rater, signed, n_items, n_raters, "interval")
    assert same(krippendorff_alpha(counts, SIGNED_VALUES), reference)


def label_table(
    item, rater, choice, strength, n_items: int, n_raters: int, *, shown_left=None, kinds=None
) -> LabelTable:
    """A LabelTable of these labels (strength None: not asked; shown_left None: unknown;
    kinds: each rater's, annotators by default); everything else unknown."""
    n = len(item)
    return LabelTable(
        item=np.asarray(item, dtype=np.int64),
        rater=np.asarray(rater, dtype=np.int64),
        choice=np.asarray(choice, dtype=np.int64),
        strength=np.full(n, np.nan) if strength is None else np.asarray(strength, dtype=float),
        shown_left=np.full(n, -1, dtype=np.int64)
        if shown_left is None
        else np.asarray(shown_left, dtype=np.int64),
        duration_ms=np.full(n, np.nan),
        day=np.zeros(n, dtype=np.int64),
        length_a=np.ones(n_items, dtype=np.int64),
        length_b=np.ones(n_items, dtype=np.int64),
        gold=np.full(n_items, -1, dtype=np.int64),
        decided=np.full(n_items, -1, dtype=np.int64),
        rater_names=[f"rater{r}" for r in range(n_raters)],
        rater_kinds=kinds or ["annotator"] * n_raters,
    )


@st.composite
def labels_with_strengths(draw, missing: bool):
    """Random a/b/tie labels; a/b votes carry a strength 0-3, or (if `missing`) maybe none."""
    item, rater, choice, n_items, n_raters = draw(label_sets())
    options = st.one_of(st.none(), st.integers(0, 3)) if missing else st.integers(0, 3)
    drawn = draw(st.lists(options, min_size=item.size, max_size=item.size))
    strength = np.array([np.nan if s is None else s for s in drawn], dtype=float)
    strength[choice == CHOICE_TIE] = np.nan  # a tie never carries a strength
    return item, rater, choice, strength, n_items, n_raters


def signed_reference(choice, strength):
    """The signed scale worked out independently: a/b votes without a strength at the
    middle, UNKNOWN_STRENGTH."""
    assumed = np.where(np.isnan(strength), UNKNOWN_STRENGTH, strength)
    return np.select([choice == CHOICE_A, choice == CHOICE_B], [-assumed, assumed], 0.0)


def weighted_kappa_references(item, rater, signed, n_raters, scale) -> dict:
    """scikit-learn's quadratic kappa per rater pair with overlap. `scale` lists the signed
    values in order, equally spaced, so distances between positions on it are the value
    distances (scaled); scikit-learn is given positions, as it takes no half values."""
    position = {value: k for k, value in enumerate(scale)}
    result = {}
    for i in range(n_raters):
        for j in range(i + 1, n_raters):
            by_i = dict(zip(item[rater == i], signed[rater == i], strict=True))
            by_j = dict(zip(item[rater == j], signed[rater == j], strict=True))
            common = sorted(set(by_i) & set(by_j))
            if common:
                result[(f"rater{i}", f"rater{j}")] = reference_or_none(
                    cohen_kappa_score,
                    [position[by_i[c]] for c in common],
                    [position[by_j[c]] for c in common],
                    labels=list(range(len(scale))),
                    weights="quadratic",
                )
    return result


def assert_signed_figures_match(report, item, rater, signed, n_items, n_raters, scale):
    reference = krippendorff_reference(item, rater, signed, n_items, n_raters, "interval")
    alpha = report["krippendorff_alpha_interval"]
    assert same(alpha, reference), (alpha, reference)
    kappas = weighted_kappa_references(item, rater, signed, n_raters, scale)
    found = {(k["a"], k["b"]): k["weighted_kappa"] for k in report["cohen_kappa"]}
    assert found.keys() == kappas.keys()
    for pair, reference in kappas.items():
        assert same(found[pair], reference), (pair, found[pair], reference)


def test_ab_votes_without_strength_count_on_the_signed_scale():
    # Imported labels: nobody said how much better, and ties never do. Three raters agree
    # on the side of three pairs, split 2:1 on one, and agree on a tie.
    A, B, T = CHOICE_A, CHOICE_B, CHOICE_TIE
    item = np.repeat(np.arange(5), 3)
    rater = np.tile(np.arange(3), 5)
    choice = np.array([A, A, A, B, B, B, A, A, A, A, A, B, T, T, T])
    strength = np.full(item.size, np.nan)
    report = agreement_report(label_table(item, rater, choice, strength, 5, 3))
    # Ties alone are a single value (no figure); the a/b votes must count, at ±UNKNOWN_STRENGTH.
    assert report["krippendorff_alpha_interval"] is not None
    assert report["krippendorff_alpha_interval"] > 0.5
    assert all(k["weighted_kappa"] is not None for k in report["cohen_kappa"])
    signed = np.select([choice == A, choice == B], [-1.5, 1.5], 0.0)
    assert_signed_figures_match(report, item, rater, signed, 5, 3, scale=[-1.5, 0.0, 1.5])


def test_ab_votes_without_strength_sit_at_the_margins_assumed_strength():
    choice = np.array([CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_B])
    strength = np.array([np.nan, np.nan, np.nan, 3.0])
    signed = signed_strength(choice, strength)
    assert signed.tolist() == [-UNKNOWN_STRENGTH, UNKNOWN_STRENGTH, 0.0, 3.0]


@settings(max_examples=100, deadline=None)
@given(labels_with_strengths(missing=True))
def test_signed_figures_with_missing_strengths_match_the_packages(labels):
    item, rater, choice, strength, n_items, n_raters = labels
    report = agreement_report(label_table(item, rater, choice, strength, n_items, n_raters))
    signed = signed_reference(choice, strength)
    scale = (np.arange(-6, 7) / 2).tolist()  # half steps: ±1.5 is on it, equally spaced
    assert_signed_figures_match(report, item, rater, signed, n_items, n_raters, scale)


@settings(max_examples=100, deadline=None)
@given(labels_with_strengths(missing=False))
def test_signed_figures_with_every_strength_given_are_unchanged(labels):
    # Every a/b vote says how much better: the integer −3…+3 scale, as before the fix.
    item, rater, choice, strength, n_items, n_raters = labels
    report = agreement_report(label_table(item, rater, choice, strength, n_items, n_raters))
    signed = np.select([choice == CHOICE_A, choice == CHOICE_B], [-strength, strength], 0)
    scale = list(range(-3, 4))
    assert_signed_figures_match(report, item, rater, signed, n_items, n_raters, scale)


def test_edge_cases_give_none_not_errors():
    # One category only: kappa and alpha are undefined.
    item, rater, choice = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.zeros(4, int)
    counts = vote_counts(item, choice, 2, 3)
    assert fleiss_kappa(counts) is None
    assert krippendorff_alpha(counts) is None
    confusions = confusion_by_rater_pair(item, rater, choice, 2, 3)
    assert pairwise_kappas(confusions) == [(0, 1, 2, None)]
    # Single labels per item: nothing is pairable.
    single = vote_counts(np.array([0, 1]), np.array([0, 1]), 2, 3)
    assert percent_agreement(single) is None
    assert majority_2to1_rate(single) is None
    assert fleiss_kappa(single) is None
    assert krippendorff_alpha(single) is None
    # No labels at all.
    empty = np.zeros(0, dtype=np.int64)
    assert pairwise_kappas(confusion_by_rater_pair(empty, empty, empty, 2, 3)) == []


def test_percent_agreement_and_majority_rate_by_hand():
    counts = np.array([[3, 0, 0], [2, 1, 0], [1, 1, 1], [1, 0, 0]])
    # Item pairs agreeing: 3/3, 1/3, 0/3; the single-label item does not count.
    assert percent_agreement(counts) == pytest.approx((1 + 1 / 3 + 0) / 3)
    # 3:0 and 2:1 have a 2:1 majority; 1:1:1 does not.
    assert majority_2to1_rate(counts) == pytest.approx(2 / 3)


def test_per_rater_figures_by_hand():
    # Four raters on two items; rater 3 always disagrees with the other three.
    item = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    rater = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    choice = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    counts = vote_counts(item, choice, 2, 3)
    assert agreement_with_majority(item, rater, choice, counts, 4) == [1.0, 1.0, 1.0, 0.0]

    shown_left = np.array([0, 1, 1, 1, 1, 0, 0, 0])  # stored response shown on the left
    assert position_bias(rater, choice, shown_left, 4) == [1.0, 0.0, 0.0, 1.0]

    length_a, length_b = np.array([10, 5]), np.array([4, 5])  # item 1: equal lengths
    assert longer_choice_rate(item, rater, choice, length_a, length_b, 4) == [1.0, 1.0, 1.0, 0.0]

    gold = np.array([0, -1])  # item 0's answer is a; item 1 is not gold
    assert gold_accuracy(item, rater, choice, gold, 4) == [1.0, 1.0, 1.0, 0.0]

    duration = np.array([1000, 3000, np.nan, 2000, 5000, 4000, 6000, 8000.0])
    assert median_seconds(rater, duration, 4) == [3.0, 3.5, 6.0, 5.0]


def test_majority_is_left_out_when_the_others_split():
    item, rater, choice = np.array([0, 0, 0]), np.array([0, 1, 2]), np.array([0, 0, 1])
    counts = vote_counts(item, choice, 1, 3)
    # Rater 0's others are a and b: no majority. Rater 2's others are a, a: disagrees.
    assert agreement_with_majority(item, rater, choice, counts, 3) == [None, None, 0.0]


def test_rater_with_no_overlap_has_no_majority_figure():
    item, rater, choice = np.array([0, 0, 1]), np.array([0, 1, 2]), np.array([0, 0, 1])
    counts = vote_counts(item, choice, 2, 3)
    assert agreement_with_majority(item, rater, choice, counts, 3)[2] is None


def test_consensus_by_hand():
    votes = np.array(
        [
            [3, 0, 0],  # unanimous a, strong
            [2, 1, 0],  # 2:1 for a, weak
            [1, 1, 0],  # contested
            [1, 1, 0],  # contested, adjudicated to b
            [0, 0, 2],  # tie
            [0, 0, 0],  # no votes
            [0, 2, 0],  # unanimous b without strengths
        ]
    )
    strength_sum = np.array([[9, 0], [1, 3], [2, 2], [2, 2], [0, 0], [0, 0], [0, 0]], float)
    strength_count = np.array([[3, 0], [2, 1], [1, 1], [1, 1], [0, 0], [0, 0], [0, 0]])
    decided = np.array([-1, -1, -1, CHOICE_B, -1, -1, -1])
    result = consensus(votes, strength_sum, strength_count, decided)
    assert result.winner.tolist() == [0, 0, -1, 1, 2, -1, 1]
    assert result.contested.tolist() == [False, False, True, True, False, False, False]
    assert result.agreement[:5].tolist() == pytest.approx([1, 2 / 3, 0.5, 0.5, 1])
    assert np.isnan(result.agreement[5])
    assert result.mean_strength[:2].tolist() == [3.0, 0.5]
    assert result.margin[0] == pytest.approx(1.0)
    assert result.margin[1] == pytest.approx(2 / 3 * 0.5 / 3)
    assert np.isnan(result.margin[2])
    assert result.margin[3] == pytest.approx(0.5 * 2 / 3)
    assert result.margin[4] == 0.0
    assert result.margin[6] == pytest.approx(1.0 * 1.5 / 3)  # unknown strength: the middle
    names = [DIFFICULTY_NAMES[d] for d in result.difficulty]
    assert names == ["easy", "hard", "hard", "hard", "easy", "", "easy"]


def test_tie_winners_difficulty_follows_agreement_not_strength():
    votes = np.array(
        [
            [0, 0, 3],  # everyone says tie
            [0, 0, 2],  # both say tie
            [1, 0, 2],  # tie at 2/3 agreement
            [1, 1, 2],  # tie at 1/2 agreement
            [0, 0, 1],  # a single tie vote
            [3, 0, 0],  # unanimous a, all negligible: strength still counts for a and b
        ]
    )
    strength_sum = np.zeros((6, 2))
    strength_count = np.array([[0, 0], [0, 0], [1, 0], [1, 1], [0, 0], [3, 0]])
    result = consensus(votes, strength_sum, strength_count)
    assert result.winner.tolist() == [2, 2, 2, 2, 2, 0]
    names = [DIFFICULTY_NAMES[d] for d in result.difficulty]
    assert names == ["easy", "easy", "medium", "hard", "medium", "hard"]
