"""Agreement maths: plain functions over numpy arrays, no ORM.

Labels arrive as parallel arrays, one entry per label: the item (pair), the rater, and the choice as
a code (CHOICE_CODES). Every figure is checked against scikit-learn, statsmodels and krippendorff on
random data in the tests."""

import numpy as np

CHOICE_A, CHOICE_B, CHOICE_TIE = 0, 1, 2


CHOICE_CODES = {"a": CHOICE_A, "b": CHOICE_B, "tie": CHOICE_TIE}  # stored names -> codes
CHOICE_NAMES = {code: name for name, code in CHOICE_CODES.items()}
N_CHOICES = 3


EASY, MEDIUM, HARD, UNLABELLED = 0, 1, 2, -1


DIFFICULTY_NAMES = {EASY: "easy", MEDIUM: "medium", HARD: "hard", UNLABELLED: ""}
DIFFICULTIES = tuple(name for name in DIFFICULTY_NAMES.values() if name)  # easiest first


# Strength assumed for an a/b vote that did not say how much better (the scale's middle): by
# the margin when no winning vote gave one, and on the signed scale for every such vote.
UNKNOWN_STRENGTH = 1.5


# a strongly better (-3) ... tie (0) ... b strongly better (+3), in half steps so that
# ±UNKNOWN_STRENGTH has a place; labels give whole strengths, so the halves are otherwise empty
# and change no figure (interval distances are between values, the kappa's are scaled alike).
SIGNED_STEP = 0.5
SIGNED_VALUES = np.arange(-3, 3 + SIGNED_STEP, SIGNED_STEP)


def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator == 0 or not np.isfinite(denominator):
        return None
    value = float(numerator / denominator)
    return value if np.isfinite(value) else None


def vote_counts(item: np.ndarray, code: np.ndarray, n_items: int, n_codes: int) -> np.ndarray:
    """An (n_items, n_codes) table: how many labels of each code every item got."""
    flat = item.astype(np.int64) * n_codes + code.astype(np.int64)
    return np.bincount(flat, minlength=n_items * n_codes).reshape(n_items, n_codes)


def signed_strength(choice: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """The −3…+3 scale: negative prefers a, positive prefers b, 0 is a tie or negligible.

    An a or b vote without a strength (imported labels, projects that do not ask) counts at
    ±UNKNOWN_STRENGTH, the scale's middle, the strength the consensus margin assumes too.
    Dropping those votes would leave only the ties on the scale and bias interval alpha and
    weighted kappa; the middle is the guess never more than 1.5 from the unsaid strength.
    So two such votes agree or disagree on the side, never on the strength, and a vote
    given as 1 or 2 on the same side sits half a step from them.
    """
    sign = np.where(choice == CHOICE_A, -1.0, 1.0)
    assumed = np.where(np.isnan(strength), UNKNOWN_STRENGTH, strength)
    return np.where(choice == CHOICE_TIE, 0.0, sign * assumed)


def signed_codes(signed: np.ndarray) -> np.ndarray:
    """Index of each signed value in SIGNED_VALUES."""
    return np.rint((signed - SIGNED_VALUES[0]) / SIGNED_STEP).astype(np.int64)


def percent_agreement(counts: np.ndarray) -> float | None:
    """Mean over items with two or more labels of the share of label pairs that agree."""
    n = counts.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        return None
    agreeing = (counts[keep] * (counts[keep] - 1)).sum(axis=1)
    return float(np.mean(agreeing / (n[keep] * (n[keep] - 1))))


def majority_2to1_rate(counts: np.ndarray) -> float | None:
    """Share of items with two or more labels whose top choice has at least a 2:1 majority."""
    n = counts.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        return None
    top = counts[keep].max(axis=1)
    return float(np.mean(top >= 2 * (n[keep] - top)))


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa over items with two or more labels; any number of labels per item.

    With the same number of labels on every item this is Fleiss' original statistic.
    """
    n = counts.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        return None
    table, n = counts[keep].astype(float), n[keep].astype(float)
    p_item = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    p_category = table.sum(axis=0) / n.sum()
    expected = float((p_category**2).sum())
    return _ratio(float(p_item.mean()) - expected, 1.0 - expected)


def krippendorff_alpha(counts: np.ndarray, values: np.ndarray | None = None) -> float | None:
    """Krippendorff's alpha from an items × values count table.

    Nominal when `values` is None; interval (squared distance between `values`) otherwise.
    Items with fewer than two labels are not pairable and drop out.
    """
    m = counts.sum(axis=1)
    keep = m >= 2
    if not keep.any():
        return None
    table = counts[keep].astype(float)
    weights = 1.0 / (m[keep] - 1.0)
    coincidence = (table * weights[:, None]).T @ table - np.diag(weights @ table)
    marginals = coincidence.sum(axis=0)
    total = marginals.sum()
    if values is None:
        distance = 1.0 - np.eye(len(marginals))
    else:
        distance = np.subtract.outer(values, values).astype(float) ** 2
    observed = float((coincidence * distance).sum())
    expected = float((np.outer(marginals, marginals) * distance).sum()) / (total - 1.0)
    if expected == 0:
        return None
    return 1.0 - observed / expected


def cooccurrences(item: np.ndarray, rater: np.ndarray, code: np.ndarray):
    """Every ordered pair of labels that two different raters gave the same item.

    Returns (rater_1, rater_2, code_1, code_2) arrays, each pair in both orders.
    """
    order = np.argsort(item, kind="stable")
    item, rater, code = item[order], rater[order], code[order]
    firsts, seconds = [], []
    candidates = np.nonzero(item[:-1] == item[1:])[0]
    step = 1
    while candidates.size:
        firsts.append(candidates)
        seconds.append(candidates + step)
        step += 1
        candidates = candidates[candidates + step < item.size]
        candidates = candidates[item[candidates + step] == item[candidates]]
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    r1 = np.concatenate([rater[first], rater[second]])
    r2 = np.concatenate([rater[second], rater[first]])
    c1 = np.concatenate([code[first], code[second]])
    c2 = np.concatenate([code[second], code[first]])
    return r1, r2, c1, c2


def confusion_by_rater_pair(
    item: np.ndarray, rater: np.ndarray, code: np.ndarray, n_raters: int, n_codes: int
) -> np.ndarray:
    """(n_raters, n_raters, n_codes, n_codes): for raters i, j, how i's codes met j's codes."""
    r1, r2, c1, c2 = cooccurrences(item, rater, code)
    flat = ((r1 * n_raters + r2) * n_codes + c1) * n_codes + c2
    size = n_raters * n_raters * n_codes * n_codes
    return np.bincount(flat, minlength=size).reshape(n_raters, n_raters, n_codes, n_codes)


def cohen_kappa(confusion: np.ndarray, weights: str | None = None) -> float | None:
    """Cohen's kappa from a confusion matrix; weights None (nominal) or 'quadratic'."""
    confusion = confusion.astype(float)
    total = confusion.sum()
    if total == 0:
        return None
    size = confusion.shape[0]
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / total
    if weights == "quadratic":
        distance = np.subtract.outer(np.arange(size), np.arange(size)).astype(float) ** 2
    else:
        distance = 1.0 - np.eye(size)
    disagreement_expected = float((distance * expected).sum())
    if disagreement_expected == 0:
        return None
    return 1.0 - float((distance * confusion).sum()) / disagreement_expected


def pairwise_kappas(confusions: np.ndarray, weights: str | None = None) -> list[tuple]:
    """(i, j, n, kappa) for each pair of raters i < j who labelled at least one item in common."""
    result = []
    n_raters = confusions.shape[0]
    overlap = confusions.sum(axis=(2, 3))
    for i in range(n_raters):
        for j in range(i + 1, n_raters):
            if overlap[i, j]:
                result.append((i, j, int(overlap[i, j]), cohen_kappa(confusions[i, j], weights)))
    return result


def _per_rater_mean(rater: np.ndarray, hits: np.ndarray, mask: np.ndarray, n_raters: int):
    counted = np.bincount(rater[mask], minlength=n_raters)
    hit = np.bincount(rater[mask], weights=hits[mask].astype(float), minlength=n_raters)
    return [float(h / c) if c else None for h, c in zip(hit, counted, strict=True)]


def agreement_with_majority(
    item: np.ndarray,
    rater: np.ndarray,
    choice: np.ndarray,
    counts: np.ndarray,
    n_raters: int,
    in_counts: np.ndarray | None = None,
) -> list[float | None]:
    """Per rater: share of their labels that match the majority of the other labels on the item.

    The rater's own label is left out of `counts` where it is in them (`in_counts`, a mask
    over the labels: all by default; counts of people's labels only leave a judge's labels
    out); items where the others have no label or no single majority do not count.
    """
    own = np.eye(N_CHOICES, dtype=counts.dtype)[choice]
    if in_counts is not None:
        own = own * in_counts[:, None].astype(counts.dtype)
    others = counts[item] - own
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    counted = (top > 0) & unique_top
    return _per_rater_mean(rater, others.argmax(axis=1) == choice, counted, n_raters)


def position_bias(
    rater: np.ndarray, choice: np.ndarray, shown_left: np.ndarray, n_raters: int
) -> list[float | None]:
    """Per rater: share of a/b choices that went to the response shown on the left (0.5 = none)."""
    counted = (choice != CHOICE_TIE) & (shown_left >= 0)
    return _per_rater_mean(rater, choice == shown_left, counted, n_raters)


def longer_choice_rate(
    item: np.ndarray,
    rater: np.ndarray,
    choice: np.ndarray,
    length_a: np.ndarray,
    length_b: np.ndarray,
    n_raters: int,
) -> list[float | None]:
    """Per rater: share of a/b choices that went to the longer response (pairs of equal length
    do not count)."""
    la, lb = length_a[item], length_b[item]
    counted = (choice != CHOICE_TIE) & (la != lb)
    longer = np.where(la > lb, CHOICE_A, CHOICE_B)
    return _per_rater_mean(rater, choice == longer, counted, n_raters)


def gold_accuracy(
    item: np.ndarray, rater: np.ndarray, choice: np.ndarray, gold: np.ndarray, n_raters: int
) -> list[float | None]:
    """Per rater: share of labels on gold items (gold >= 0) that match the known answer."""
    known = gold[item]
    return _per_rater_mean(rater, choice == known, known >= 0, n_raters)


def median_seconds(rater: np.ndarray, duration_ms: np.ndarray, n_raters: int) -> list:
    """Per rater: median seconds per label over labels with a recorded duration."""
    valid = np.isfinite(duration_ms)
    rater, seconds = rater[valid], duration_ms[valid] / 1000.0
    order = np.lexsort((seconds, rater))
    rater, seconds = rater[order], seconds[order]
    starts = np.searchsorted(rater, np.arange(n_raters), side="left")
    ends = np.searchsorted(rater, np.arange(n_raters), side="right")
    result = []
    for start, end in zip(starts, ends, strict=True):
        if end == start:
            result.append(None)
        else:
            mid = (start + end - 1) / 2
            result.append(float((seconds[int(np.floor(mid))] + seconds[int(np.ceil(mid))]) / 2))
    return result
