"""What a reward model gets right on preference pairs. Pure numpy, checked by hand in tests.

Every figure takes the rewards of the chosen and the rejected responses, pair by pair, and
the responses' lengths in tokens: training, evaluation and comparison all report the same
dictionary, so that figures from different places can be set side by side.
"""

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
    shorter = np.asarray(chosen_tokens) < np.asarray(rejected_tokens)
    longer = np.asarray(chosen_tokens) > np.asarray(rejected_tokens)
    return {
        "reward_length_correlation": correlation,
        "reward_per_token": slope,
        "accuracy_chosen_shorter": float(right[shorter].mean()) if shorter.any() else None,
        "accuracy_chosen_longer": float(right[longer].mean()) if longer.any() else None,
        "pairs_chosen_shorter": int(shorter.sum()),
        "pairs_chosen_longer": int(longer.sum()),
    }


def preference_metrics(
    chosen,
    rejected,
    chosen_tokens,
    rejected_tokens,
    difficulty=None,
) -> dict:
    """Loss, pairwise accuracy, mean margin, calibration, reward spread, accuracy by
    difficulty and length bias of one model on a set of pairs."""
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
    return {
        "n": int(chosen.size),
        "accuracy": float(right.mean()),
        "accuracy_ci95": wilson_interval(int(right.sum()), int(chosen.size)),
        "loss": float(np.logaddexp(0.0, -difference).mean()),  # −log σ(Δ), stably
        "mean_margin": float(difference.mean()),
        "ece": expected_calibration_error(chosen, rejected),
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std(ddof=1)) if rewards.size > 1 else 0.0,
        "by_difficulty": by_difficulty,
        "length": length_figures(chosen, rejected, chosen_tokens, rejected_tokens),
    }
