"""What a reward model gets right on preference pairs. Pure numpy, checked by hand in tests.

Every figure takes the rewards of the chosen and the rejected responses, pair by pair, and
the responses' lengths in tokens: training, evaluation and comparison all report the same
dictionary, so that figures from different places can be set side by side.
"""

import math

import numpy as np

CALIBRATION_BINS = 10


def wilson_interval(right: int, n: int) -> list[float] | None:
    """The 95% Wilson score interval of an accuracy of right / n: unlike the normal
    approximation it stays inside [0, 1] and holds up for small n and accuracies near 0 or 1."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    interval = binomtest(right, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(interval.low), float(interval.high)]


def expected_calibration_error(
    chosen: np.ndarray, rejected: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """ECE of σ(r_chosen − r_rejected) as the model's belief in its own pick.

    The model picks the response with the higher reward, with confidence σ(|Δ|) in
    [0.5, 1); its pick is right when the chosen response scored higher. Confidences fall
    into `bins` equal bins over [0.5, 1]; ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|.
    """
    difference = np.asarray(chosen, float) - np.asarray(rejected, float)
    if not difference.size:
        return 0.0
    confidence = 1.0 / (1.0 + np.exp(-np.abs(difference)))
    right = difference > 0
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(right[members].mean() - confidence[members].mean())
    return float(error)


def length_figures(
    chosen: np.ndarray,
    rejected: np.ndarray,
    chosen_tokens: np.ndarray,
    rejected_tokens: np.ndarray,
) -> dict:
    """How much the rewards follow response length: the correlation of reward with length
    over all responses, the least-squares slope of reward on length (reward per token, what
    length-adjusted ranking subtracts), and accuracy where the chosen response is the
    shorter / longer one. A model that learnt "longer is better" is right on the second and
    wrong on the first."""
    rewards = np.concatenate([chosen, rejected]).astype(float)
    lengths = np.concatenate([chosen_tokens, rejected_tokens]).astype(float)
    correlation = slope = None
    if rewards.size > 1 and lengths.std() > 0:
        slope = float(np.cov(lengths, rewards, bias=True)[0, 1] / lengths.var())
        if rewards.std() > 0:
            correlation = float(np.corrcoef(rewards, lengths)[0, 1])
    right = np.asarray(chosen) > np.asarray(rejected)
    shorter, longer = _length_sides(chosen_tokens, rejected_tokens)
    return {
        "reward_length_correlation": correlation,
        "reward_per_token": slope,
        "accuracy_chosen_shorter": float(right[shorter].mean()) if shorter.any() else None,
        "accuracy_chosen_longer": float(right[longer].mean()) if longer.any() else None,
        "accuracy_chosen_shorter_ci95": wilson_interval(
            int(right[shorter].sum()), int(shorter.sum())
        ),
        "accuracy_chosen_longer_ci95": wilson_interval(int(right[longer].sum()), int(longer.sum())),
        "pairs_chosen_shorter": int(shorter.sum()),
        "pairs_chosen_longer": int(longer.sum()),
    }


def _length_sides(chosen_tokens, rejected_tokens) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs' chosen response is the shorter, and which the longer; equal lengths are
    in neither."""
    chosen_tokens, rejected_tokens = np.asarray(chosen_tokens), np.asarray(rejected_tokens)
    return chosen_tokens < rejected_tokens, chosen_tokens > rejected_tokens


def length_debiased_accuracy(
    right_shorter: np.ndarray, right_longer: np.ndarray
) -> tuple[float | None, list[float] | None]:
    """The mean of the accuracy where the chosen response is the shorter and where it is the
    longer (given as each side's right / wrong picks), with its 95% interval; None where
    either side has no pairs. A model that only follows length is right on one side and
    wrong on the other, so it scores 50% here whatever the data's mix of the two.

    The interval is MOVER-Wilson (Newcombe 1998; Zou & Donner 2008): each side's Wilson
    interval, combined as the interval of a sum of independent estimates,
    mean ± ½·√(d_shorter² + d_longer²) with each d the distance from that side's accuracy to
    its Wilson limit in the same direction. It is asymmetric where a side is near 0 or 1,
    never leaves [0, 1] (each limit is at most the mean of the two Wilson limits), and keeps
    its coverage with few pairs on a side, where a normal approximation on the mean is
    too narrow or, with a side at 0% or 100%, collapses."""
    right_shorter, right_longer = np.asarray(right_shorter, bool), np.asarray(right_longer, bool)
    if not right_shorter.size or not right_longer.size:
        return None, None
    p1, p2 = float(right_shorter.mean()), float(right_longer.mean())
    low1, high1 = wilson_interval(int(right_shorter.sum()), right_shorter.size)
    low2, high2 = wilson_interval(int(right_longer.sum()), right_longer.size)
    mean = (p1 + p2) / 2
    below = 0.5 * math.hypot(p1 - low1, p2 - low2)
    above = 0.5 * math.hypot(high1 - p1, high2 - p2)
    return mean, [max(0.0, mean - below), min(1.0, mean + above)]


MIN_PEOPLE_VOTES = 2  # one vote is a hard label: it says nothing of how people split


def share_chosen_of(row: dict) -> float | None:
    """The share of people who chose a row's chosen response, where two or more voted: a
    curated row's `agreement` (the chosen response's votes over all of the pair's votes,
    tie votes included, so a tie vote counts as not choosing it) with its `n_votes`. None
    for a row without them, with fewer votes, or with values that are not a share."""
    agreement, votes = row.get("agreement"), row.get("n_votes")
    if isinstance(agreement, bool) or isinstance(votes, bool):
        return None
    try:
        agreement, votes = float(agreement), float(votes)
    except (TypeError, ValueError):
        return None
    if not (votes >= MIN_PEOPLE_VOTES and 0.0 <= agreement <= 1.0):  # NaN fails it too
        return None
    return agreement


def people_calibration(
    chosen: np.ndarray,
    rejected: np.ndarray,
    share_chosen: np.ndarray,
    bins: int = CALIBRATION_BINS,
) -> dict:
    """How the model's probability that the chosen response wins, σ(r_chosen − r_rejected),
    matches the share of people who chose it, on the pairs with a share (NaN or None
    elsewhere): a model should be sure where people agree and unsure where they split.

    brier = mean (σ(Δ) − share)²; brier_baseline is the same for always predicting the mean
    share over these pairs, the best any constant does, so a model below it tells agreed
    pairs from split ones. Bins: `bins` equal bins of σ(Δ) over [0, 1], the mean predicted
    and observed (people's) share and the pairs in each, empty bins left out."""
    share = np.array([np.nan if s is None else s for s in share_chosen], dtype=float)
    voted = ~np.isnan(share)
    difference = (np.asarray(chosen, float) - np.asarray(rejected, float))[voted]
    share = share[voted]
    if not share.size:
        return {"n": 0}
    predicted = np.exp(-np.logaddexp(0.0, -difference))  # σ(Δ), without overflow
    mean_share = float(share.mean())
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, predicted, side="right") - 1, 0, bins - 1)
    return {
        "n": int(share.size),
        "brier": float(np.mean((predicted - share) ** 2)),
        "brier_baseline": float(np.mean((mean_share - share) ** 2)),
        "mean_share": mean_share,
        "bins": [
            {
                "predicted": float(predicted[which == b].mean()),
                "observed": float(share[which == b].mean()),
                "n": int((which == b).sum()),
            }
            for b in range(bins)
            if (which == b).any()
        ],
    }


def preference_metrics(
    chosen,
    rejected,
    chosen_tokens,
    rejected_tokens,
    difficulty=None,
    share_chosen=None,
) -> dict:
    """Loss, pairwise accuracy, mean reward gap, calibration, reward spread, accuracy by
    difficulty and length bias of one model on a set of pairs; with `share_chosen` (each
    pair's share_chosen_of, None where unknown), calibration against people's votes too."""
    chosen, rejected = np.asarray(chosen, float), np.asarray(rejected, float)
    if not chosen.size:
        return {"n": 0}
    difference = chosen - rejected
    right = difference > 0
    rewards = np.concatenate([chosen, rejected])
    by_difficulty = {}  # by the curation's labels (easy, medium, hard); unlabelled pairs aside
    if difficulty is not None:
        difficulty = np.asarray(difficulty)
        for name in dict.fromkeys(difficulty.tolist()):  # the labels present, as met
            members = difficulty == name
            if name:
                by_difficulty[name] = {
                    "accuracy": float(right[members].mean()),
                    "n": int(members.sum()),
                }
    shorter, longer = _length_sides(chosen_tokens, rejected_tokens)
    debiased, debiased_interval = length_debiased_accuracy(right[shorter], right[longer])
    figures = {
        "n": int(chosen.size),
        "accuracy": float(right.mean()),
        "accuracy_ci95": wilson_interval(int(right.sum()), int(chosen.size)),
        "length_debiased_accuracy": debiased,
        "length_debiased_accuracy_ci95": debiased_interval,
        "loss": float(np.logaddexp(0.0, -difference).mean()),  # −log σ(Δ), stably
        "mean_reward_gap": float(difference.mean()),
        "ece": expected_calibration_error(chosen, rejected),
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std(ddof=1)) if rewards.size > 1 else 0.0,
        "by_difficulty": by_difficulty,
        "length": length_figures(chosen, rejected, chosen_tokens, rejected_tokens),
    }
    if share_chosen is not None:
        figures["people_calibration"] = people_calibration(chosen, rejected, share_chosen)
    return figures
