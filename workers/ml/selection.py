"""Choosing among scored responses: best-of-N ranking and rejection-sampling filters.
Pure numpy: the API ranks a worker's rewards with it without importing torch.

Length normalisation subtracts the model's length trend: a length-adjusted reward is
reward − reward_per_token × response tokens, where reward_per_token is the least-squares
slope of reward on response length over the held-out responses at the end of training
(training.json's metrics.length.reward_per_token). Unlike reward / tokens it keeps the order
of rewards of either sign: with reward centring about half of all rewards are negative, and
dividing them by length would rank a longer, worse answer first.
"""

import math

import numpy as np

NORMALIZE = ("none", "length")


def adjusted_scores(
    rewards, tokens, normalize: str = "none", reward_per_token: float | None = None
) -> np.ndarray:
    """What ranking and filters compare: the rewards, or with normalize="length" the
    length-adjusted rewards. A model whose training did not record its slope
    (reward_per_token None) has no known length trend: its rewards stay as they are."""
    if normalize not in NORMALIZE:
        raise ValueError("normalize is 'none' or 'length'")
    rewards = np.asarray(rewards, dtype=float)
    if normalize == "none" or not reward_per_token:
        return rewards
    return rewards - reward_per_token * np.asarray(tokens, dtype=float)


def rank(
    rewards, tokens, normalize: str = "none", reward_per_token: float | None = None
) -> list[dict]:
    """Candidates best first, ties in the order given. normalize="length" ranks by reward
    with the model's length trend removed (see the module's docstring), so that a padded
    long answer does not win on length alone."""
    keys = adjusted_scores(rewards, tokens, normalize, reward_per_token)
    rewards, tokens = np.asarray(rewards, dtype=float), np.asarray(tokens)
    order = sorted(range(len(rewards)), key=lambda i: (-keys[i], i))
    return [
        {"index": i, "reward": float(rewards[i]), "score": float(keys[i]),
         "tokens": int(tokens[i])}
        for i in order
    ]  # fmt: skip


def keep_mask(
    groups: list, scores: np.ndarray, keep_top: float | None = None,
    threshold: float | None = None,
) -> np.ndarray:  # fmt: skip
    """Which rows to keep: the best `keep_top` share of each group (at least one, ties broken
    by order), and/or those scoring at least `threshold`."""
    keep = np.ones(len(scores), dtype=bool)
    if keep_top is not None:
        if not 0 < keep_top <= 1:
            raise ValueError("keep_top is a share between 0 and 1")
        by_group: dict = {}
        for i, group in enumerate(groups):
            by_group.setdefault(group, []).append(i)
        top = np.zeros(len(scores), dtype=bool)
        for members in by_group.values():
            best = sorted(members, key=lambda i: (-scores[i], i))
            top[best[: max(1, math.ceil(keep_top * len(members)))]] = True
        keep &= top
    if threshold is not None:
        keep &= scores >= threshold
    return keep


def filter_rows(
    rows: list[dict], rewards: np.ndarray, tokens: np.ndarray, keep_top: float | None,
    threshold: float | None, normalize: str = "none", reward_per_token: float | None = None,
) -> list[dict]:  # fmt: skip
    """The kept candidates, best first within each prompt, with their reward and rank. The
    share, the threshold and the rank all apply to the scores `normalize` picks."""
    return _filtered(rows, rewards, tokens, keep_top, threshold, normalize, reward_per_token)[0]


def filter_with_lengths(
    rows: list[dict], rewards: np.ndarray, tokens: np.ndarray, keep_top: float | None,
    threshold: float | None, normalize: str = "none", reward_per_token: float | None = None,
) -> tuple[list[dict], dict]:  # fmt: skip
    """filter_rows' kept candidates, and kept_lengths of them against all candidates."""
    kept, keep = _filtered(rows, rewards, tokens, keep_top, threshold, normalize, reward_per_token)
    tokens = np.asarray(tokens)
    return kept, kept_lengths(tokens[keep], tokens)


def _filtered(rows, rewards, tokens, keep_top, threshold, normalize, reward_per_token):
    scores = adjusted_scores(rewards, tokens, normalize, reward_per_token)
    groups = [r["group"] for r in rows]
    keep = keep_mask(groups, scores, keep_top, threshold)
    order = sorted(range(len(rows)), key=lambda i: (groups[i], -scores[i], i))
    kept, rank, previous = [], 0, None
    for i in order:
        rank = rank + 1 if groups[i] == previous else 1
        previous = groups[i]
        if keep[i]:
            kept.append({"prompt": rows[i]["prompt"], "response": rows[i]["response"],
                         "reward": float(rewards[i]), "rank": rank})  # fmt: skip
    return kept, keep


# Kept responses this much longer (median against median) than the candidates they were
# chosen from: the reward model likely pays for length, and a policy tuned on them pads.
LONGER_RATIO = 1.25


def length_spread(tokens) -> dict:
    """n, median and quartiles of response lengths in tokens (None when there are none)."""
    tokens = np.asarray(tokens, dtype=float)
    if not tokens.size:
        return {"n": 0, "q1": None, "median": None, "q3": None}
    q1, median, q3 = np.percentile(tokens, [25, 50, 75])
    return {"n": int(tokens.size), "q1": float(q1), "median": float(median), "q3": float(q3)}


def kept_lengths(kept_tokens, all_tokens, longer_ratio: float = LONGER_RATIO) -> dict:
    """The lengths of the kept responses beside those of all candidates, the ratio of their
    medians, and whether the kept are markedly longer (ratio at least `longer_ratio`)."""
    kept, candidates = length_spread(kept_tokens), length_spread(all_tokens)
    ratio = None
    if kept["median"] is not None and candidates["median"]:
        ratio = kept["median"] / candidates["median"]
    return {
        "kept": kept,
        "candidates": candidates,
        "median_ratio": ratio,
        "longer_ratio": longer_ratio,
        "kept_longer": ratio is not None and ratio >= longer_ratio,
    }
