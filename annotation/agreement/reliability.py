"""How far each annotator or judge can be trusted, estimated from the labels alone: Dawid-Skene
(a confusion matrix per rater) and MACE (a competence per rater, Hovy et al. 2013). Pure numpy
over the same integer arrays as the agreement maths, plus scipy's special functions.

Both models see a rater's answers as the rater saw the pair: left / right / tie on the screen
(SCREEN_*), where the true answer lands through `shown_left` (the stored response shown on the
left; unknown counts as a on the left). A rater who always clicks the left response is then
one whose answers never depend on the truth, not one who likes stored response a. When every
shown_left is a or unknown the models are plain Dawid-Skene and MACE, and with the matching
settings they give crowd-kit's figures (tests/annotation/test_reliability.py).

A label counts only by its kind (rater, the response on the left, screen answer: 6 a rater),
so an iteration is two bincount passes over the labels and work on small kind tables.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv, digamma

from annotation.agreement.maths import CHOICE_B, N_CHOICES, position_bias, vote_counts

SCREEN_LEFT, SCREEN_RIGHT, SCREEN_TIE = 0, 1, 2
SCREEN_NAMES = {SCREEN_LEFT: "left", SCREEN_RIGHT: "right", SCREEN_TIE: "tie"}

# Stored choice -> screen answer for a left side of a (or unknown), then of b. Each row is its
# own inverse, so it maps screen answers back to stored choices as well.
_TO_SCREEN = np.array([[0, 1, 2], [1, 0, 2]])
_EPS = 1e-10  # crowd-kit's floor for probabilities that would otherwise be 0 (and a log of 0)
_INTERVAL = (0.025, 0.975)


@dataclass(frozen=True)
class Reliability:
    """What an estimator found, per rater and per item.

    score (n_raters,), ci95 (n_raters, 2): the rater's reliability in [0, 1] and its 95%
    interval (see the estimator), finite even for a rater without labels. votes: labels the
    rater gave. left_rate: share of their a/b answers that went to the
    response shown on the left, over labels whose side is known (NaN where there are none;
    near 1 is a left clicker, whatever the stored choices look like).
    posterior: (n_items, 3) probability that stored a, b or tie is the true answer; NaN rows
    for items without labels. iterations: EM rounds run after the start.
    confusion (Dawid-Skene): (n_raters, 3, 3) P(screen answer | true answer on the screen),
    rows and columns SCREEN_*. competence, spamming (MACE): θ, the weight of answering
    truthfully the model used, and ξ (n_raters, 3), the screen answers given otherwise.
    answers (n_raters, 3, 3), prior (3,): either model's weight of each screen answer given
    the truth on the screen, and its prior over a / b / tie (for posterior_given).
    """

    score: np.ndarray
    ci95: np.ndarray
    votes: np.ndarray
    left_rate: np.ndarray
    posterior: np.ndarray
    iterations: int
    answers: np.ndarray
    prior: np.ndarray
    confusion: np.ndarray | None = None
    competence: np.ndarray | None = None
    spamming: np.ndarray | None = None


@dataclass(frozen=True)
class _Labels:
    """The labels sorted by item, as kinds; items numbered among the labelled (`labelled`)."""

    item: np.ndarray
    kind: np.ndarray  # (rater * 2 + left side is b) * 3 + screen answer
    stored_cell: np.ndarray  # choice * n + item: the label's own cell in a (3, n) table
    n: int  # labelled items
    n_raters: int
    labelled: np.ndarray  # per item of the caller's
    shares: np.ndarray  # (3, n) each item's vote shares for a, b, tie
    votes: np.ndarray  # per rater
    left_rate: np.ndarray  # per rater
    kind_size: np.ndarray  # labels of each kind
    kind_rater: np.ndarray
    kind_flip: np.ndarray
    kind_screen: np.ndarray
    kind_choice: np.ndarray  # the stored choice a label of the kind made


def _labels(item, rater, choice, shown_left, n_items: int, n_raters: int) -> _Labels:
    item, rater, choice, shown_left = (
        np.asarray(a, dtype=np.int64).ravel() for a in (item, rater, choice, shown_left)
    )
    for name, codes, bound in (
        ("item", item, n_items),
        ("rater", rater, n_raters),
        ("choice", choice, N_CHOICES),
    ):
        if codes.size and (codes.min() < 0 or codes.max() >= bound):
            raise ValueError(f"{name} codes must lie in [0, {bound})")
    per_item = np.bincount(item, minlength=n_items)
    labelled = per_item > 0
    n = int(labelled.sum())
    order = np.argsort(item, kind="stable")  # neighbouring labels touch neighbouring items
    compact = (np.cumsum(labelled) - 1)[item[order]]
    flip = (shown_left == CHOICE_B).astype(np.int64)
    kind = ((rater * 2 + flip) * 3 + _TO_SCREEN[flip, choice])[order]
    kinds = np.arange(n_raters * 6)
    flips, screens = (kinds // 3) % 2, kinds % 3
    left = position_bias(rater, choice, shown_left, n_raters)
    shares = vote_counts(compact, choice[order], n, N_CHOICES) / per_item[labelled][:, None]
    return _Labels(
        item=compact,
        kind=kind,
        stored_cell=choice[order] * n + compact,
        n=n,
        n_raters=n_raters,
        labelled=labelled,
        shares=np.ascontiguousarray(shares.T),
        votes=np.bincount(rater, minlength=n_raters),
        left_rate=np.array([np.nan if x is None else x for x in left], dtype=float),
        kind_size=np.bincount(kind, minlength=kinds.size).astype(float),
        kind_rater=kinds // 6,
        kind_flip=flips,
        kind_screen=screens,
        kind_choice=_TO_SCREEN[flips, screens],
    )


def _item_sums(labels: _Labels, column: np.ndarray) -> np.ndarray:
    """(n,): the sum of column[kind] over each item's labels."""
    return np.bincount(labels.item, weights=column[labels.kind], minlength=labels.n)


def _kind_sums(labels: _Labels, posterior: np.ndarray) -> np.ndarray:
    """(n_kinds, 3): per stored truth, the posterior summed over each kind's labels (the tie
    column is what the other two leave)."""
    sums = np.empty((labels.kind_size.size, 3))
    for truth in (0, 1):
        weights = posterior[truth][labels.item]
        sums[:, truth] = np.bincount(labels.kind, weights=weights, minlength=sums.shape[0])
    sums[:, 2] = labels.kind_size - sums[:, 0] - sums[:, 1]
    return sums


def _own_sums(labels: _Labels, posterior: np.ndarray) -> np.ndarray:
    """(n_kinds,): P(the label's own choice is the truth), summed over the labels of each kind."""
    weights = posterior.ravel()[labels.stored_cell]
    return np.bincount(labels.kind, weights=weights, minlength=labels.kind_size.size)


def _normalised(log_likelihood: np.ndarray) -> np.ndarray:
    """(3, n) posteriors from (3, n) log-likelihoods, in place."""
    log_likelihood -= np.maximum.reduce(log_likelihood)
    np.exp(log_likelihood, out=log_likelihood)
    log_likelihood /= log_likelihood.sum(axis=0)
    return log_likelihood


def _beta_summary(hits: np.ndarray, misses: np.ndarray, a: float, b: float):
    """Mean and 95% interval of Beta(hits + a, misses + b)."""
    hits, misses = hits + a, np.maximum(misses, 0.0) + b
    interval = np.stack([betaincinv(hits, misses, q) for q in _INTERVAL], axis=1)
    return hits / (hits + misses), interval


def _moved(old: np.ndarray, new: np.ndarray, tol: float | None) -> bool:
    """Whether some item's posterior moved by tol or more (always, without a tol)."""
    return tol is None or float(np.abs(new - old).max()) >= tol


def _posterior_rows(posterior: np.ndarray, labels: _Labels) -> np.ndarray:
    rows = np.full((labels.labelled.size, N_CHOICES), np.nan)
    rows[labels.labelled] = posterior.T
    return rows


def _class_prior(posterior: np.ndarray, smoothing: float) -> np.ndarray:
    counts = posterior.sum(axis=1) + smoothing
    total = counts.sum()
    return counts / total if total > 0 else np.full(N_CHOICES, 1.0 / N_CHOICES)


def _confusion(labels: _Labels, kind_sums: np.ndarray, smoothing: float) -> np.ndarray:
    """(n_raters, 3, 3) P(screen answer | screen truth) from the soft counts of each kind."""
    truth_on_screen = _TO_SCREEN[labels.kind_flip]  # (n_kinds, 3): stored truth -> screen
    cell = (labels.kind_rater[:, None] * 3 + truth_on_screen) * 3 + labels.kind_screen[:, None]
    size = labels.n_raters * 9
    soft = np.bincount(cell.ravel(), weights=kind_sums.ravel(), minlength=size)
    soft = np.maximum(soft.reshape(labels.n_raters, 3, 3) + smoothing, _EPS)
    return soft / soft.sum(axis=2, keepdims=True)


def _ds_posterior(labels: _Labels, confusion: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """E-step: (3, n) P(stored truth | labels), from log-likelihoods relative to truth a."""
    truth_on_screen = _TO_SCREEN[labels.kind_flip]
    rater = labels.kind_rater[:, None]
    table = np.log(confusion[rater, truth_on_screen, labels.kind_screen[:, None]])
    log_prior = np.log(np.maximum(prior, _EPS))
    log_likelihood = np.empty((N_CHOICES, labels.n))
    log_likelihood[0] = log_prior[0]
    for truth in (1, 2):
        relative = table[:, truth] - table[:, 0]
        log_likelihood[truth] = _item_sums(labels, relative) + log_prior[truth]
    return _normalised(log_likelihood)


def dawid_skene(
    item: np.ndarray,
    rater: np.ndarray,
    choice: np.ndarray,
    shown_left: np.ndarray,
    n_items: int,
    n_raters: int,
    *,
    iterations: int = 100,
    tol: float | None = 1e-6,
    smoothing: float = 2.0,
) -> Reliability:
    """Dawid-Skene by EM: a 3×3 confusion per rater in screen terms, a prior over a/b/tie.

    Starts from each item's vote shares (the majority vote, soft), then runs at most
    `iterations` rounds of E-step and M-step, stopping early once no posterior moves by more
    than `tol` (None: always the full budget). `smoothing` pseudo-counts go into every
    confusion cell and every class of the prior: a rater with few votes keeps a middling
    confusion, and a row seldom met (a true tie) stays near uniform, so that a few tie votes
    cannot outvote a clear majority. 0 is crowd-kit's plain maximum likelihood (1e-10 floor).

    score: with correct = the sum over the rater's labels of P(their answer is the true one
    | all labels), the expected number of their labels that match the truth under the fitted
    model, score = (correct + 1/2) / (votes + 1), the mean of Beta(correct + 1/2, votes -
    correct + 1/2), and ci95 that Beta's 2.5% and 97.5% quantiles. A rater without labels
    scores 1/2 with the widest interval; a left clicker scores about the share of pairs whose
    better response happened to be on the left.
    """
    labels = _labels(item, rater, choice, shown_left, n_items, n_raters)
    posterior = labels.shares
    prior = _class_prior(posterior, smoothing)
    kind_sums = _kind_sums(labels, posterior)
    confusion = _confusion(labels, kind_sums, smoothing)
    done = 0
    while done < iterations and labels.n:
        new = _ds_posterior(labels, confusion, prior)
        done += 1
        moved = _moved(posterior, new, tol)
        posterior = new
        prior = _class_prior(posterior, smoothing)
        kind_sums = _kind_sums(labels, posterior)
        confusion = _confusion(labels, kind_sums, smoothing)
        if not moved:
            break
    own = kind_sums[np.arange(kind_sums.shape[0]), labels.kind_choice]
    correct = np.bincount(labels.kind_rater, weights=own, minlength=n_raters)
    score, interval = _beta_summary(correct, labels.votes - correct, 0.5, 0.5)
    return Reliability(
        score=score,
        ci95=interval,
        votes=labels.votes,
        left_rate=labels.left_rate,
        posterior=_posterior_rows(posterior, labels),
        iterations=done,
        answers=confusion,
        prior=prior,
        confusion=confusion,
    )


def _mace_start(n_raters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """crowd-kit's start: rows of uniform(1, 2.5) draws, normalised, both from the same seed."""
    weights = 1.0 + 1.5 * np.random.RandomState(seed).random_sample((n_raters, 2))
    strategy = 1.0 + 1.5 * np.random.RandomState(seed).random_sample((n_raters, 3))
    return weights / weights.sum(axis=1, keepdims=True), strategy / strategy.sum(1, keepdims=True)


def _mace_posterior(labels: _Labels, weights: np.ndarray, strategy: np.ndarray):
    """E-step: (3, n) P(stored truth | labels), and for each kind the share of its labels
    that are truthful among those that match the truth.

    A label's likelihood is spam = (weight of spamming)·ξ[answer] whatever the truth, plus
    θ where the truth is its own choice, so only the log-ratio of the two lands in the
    column of its own choice."""
    rater = labels.kind_rater
    spam = np.maximum(weights[rater, 0] * strategy[rater, labels.kind_screen], 1e-300)
    hit = spam + weights[rater, 1]
    gain = np.log(hit) - np.log(spam)
    cells = N_CHOICES * labels.n
    log_likelihood = np.bincount(
        labels.stored_cell, weights=gain[labels.kind], minlength=cells
    ).astype(float)  # an empty count comes back as integers
    posterior = _normalised(log_likelihood.reshape(N_CHOICES, labels.n))
    return posterior, weights[rater, 1] / hit


def _mace_counts(labels: _Labels, posterior: np.ndarray, truthful_share: np.ndarray):
    """Expected truthful and spamming labels per rater, and spamming answers per screen side."""
    knowing = truthful_share * _own_sums(labels, posterior)
    spamming = labels.kind_size - knowing
    per_rater = [
        np.bincount(labels.kind_rater, weights=w, minlength=labels.n_raters)
        for w in (knowing, spamming)
    ]
    cell = labels.kind_rater * 3 + labels.kind_screen
    strategy = np.bincount(cell, weights=spamming, minlength=labels.n_raters * 3)
    return per_rater[0], per_rater[1], strategy.reshape(labels.n_raters, 3)


def _vb_normalise(counts: np.ndarray, prior) -> np.ndarray:
    """Variational M-step: exp(E[log p]) under the Dirichlet posterior of each row."""
    return np.exp(digamma(counts + prior) - digamma((counts + prior).sum(axis=1, keepdims=True)))


def _em_normalise(counts: np.ndarray) -> np.ndarray:
    """Plain M-step with crowd-kit's smoothing, 0.01 / number of answers."""
    smoothed = counts + 0.01 / N_CHOICES
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def mace(
    item: np.ndarray,
    rater: np.ndarray,
    choice: np.ndarray,
    shown_left: np.ndarray,
    n_items: int,
    n_raters: int,
    *,
    iterations: int = 50,
    tol: float | None = 1e-6,
    method: str = "vb",
    alpha: float = 0.5,
    beta: float = 0.5,
    strategy_prior: float = 10.0,
    seed: int = 0,
) -> Reliability:
    """MACE: each rater answers truthfully with weight θ, otherwise from their own ξ over
    screen answers; the truth's prior is uniform. crowd-kit's method and defaults: variational
    Bayes ("vb") with Beta(alpha, beta) on spamming / truthful and a symmetric
    Dirichlet(strategy_prior) on ξ, or plain EM ("em") with crowd-kit's 0.01 / 3 smoothing;
    crowd-kit's start drawn from `seed`; at most `iterations` rounds of M-step and E-step.
    Unlike crowd-kit it stops early once no posterior moves by more than `tol` (None: the
    full budget, as crowd-kit runs).

    score: with truthful = the expected number of the rater's labels given truthfully under
    the fitted model and spam = votes − truthful, the mean of θ's posterior Beta(truthful +
    beta, spam + alpha), and ci95 its 2.5% and 97.5% quantiles. A left clicker's answers are
    all explained by ξ ≈ (left 1, right 0, tie 0), so θ is low; a rater without labels
    scores beta / (alpha + beta).
    """
    if method not in ("vb", "em"):
        raise ValueError(f"method must be 'vb' or 'em', not {method!r}")
    labels = _labels(item, rater, choice, shown_left, n_items, n_raters)
    weights, strategy = _mace_start(n_raters, seed)
    posterior, truthful_share = _mace_posterior(labels, weights, strategy)
    done = 0
    while done < iterations and labels.n:
        knowing, spamming, strategy_counts = _mace_counts(labels, posterior, truthful_share)
        split = np.stack([spamming, knowing], axis=1)
        if method == "vb":
            weights = _vb_normalise(split, np.array([alpha, beta]))
            strategy = _vb_normalise(strategy_counts, strategy_prior)
        else:
            weights, strategy = _em_normalise(split), _em_normalise(strategy_counts)
        new, truthful_share = _mace_posterior(labels, weights, strategy)
        done += 1
        moved = _moved(posterior, new, tol)
        posterior = new
        if not moved:
            break
    knowing, spamming, _ = _mace_counts(labels, posterior, truthful_share)
    score, interval = _beta_summary(knowing, spamming, beta, alpha)
    return Reliability(
        score=score,
        ci95=interval,
        votes=labels.votes,
        left_rate=labels.left_rate,
        posterior=_posterior_rows(posterior, labels),
        iterations=done,
        answers=weights[:, :1, None] * strategy[:, None, :] + weights[:, 1, None, None] * np.eye(3),
        prior=np.full(N_CHOICES, 1.0 / N_CHOICES),
        competence=weights[:, 1],
        spamming=strategy,
    )


def posterior_given(
    item: np.ndarray,
    rater: np.ndarray,
    choice: np.ndarray,
    shown_left: np.ndarray,
    n_items: int,
    answers: np.ndarray,
    prior: np.ndarray,
) -> np.ndarray:
    """(n_items, 3) P(stored a, b, tie | labels) under a fit's answers and prior, without
    fitting again (new labels between fits); NaN rows for items without labels."""
    labels = _labels(item, rater, choice, shown_left, n_items, answers.shape[0])
    posterior = _ds_posterior(labels, np.maximum(answers, _EPS), prior)
    return _posterior_rows(posterior, labels)


def enough_for_estimate(item: np.ndarray, n_items: int, *, min_items: int = 20) -> bool:
    """Whether the labels can carry an estimate: at least `min_items` items with two or more
    labels, and those at least half of the labelled items. With fewer, a rater's answers meet
    too few others', and callers should keep the head count and say so."""
    per_item = np.bincount(np.asarray(item, dtype=np.int64), minlength=n_items)
    shared = int((per_item >= 2).sum())
    return shared >= min_items and 2 * shared >= int((per_item > 0).sum())
