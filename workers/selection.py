"""Choosing among scored responses: best-of-N ranking and rejection-sampling filters.
Pure numpy: the API ranks a worker's rewards with it without importing torch."""

import math

import numpy as np


def rank(rewards, tokens, normalize: str = "none") -> list[dict]:
    """Candidates best first. normalize="per_token" ranks by reward per response token,
    which stops a padded long answer from winning on length alone."""
    if normalize not in ("none", "per_token"):
        raise ValueError("normalize is 'none' or 'per_token'")
    rewards, tokens = np.asarray(rewards, dtype=float), np.asarray(tokens)
    keys = rewards / np.maximum(tokens, 1) if normalize == "per_token" else rewards
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
    threshold: float | None, normalize: str = "none",
) -> list[dict]:  # fmt: skip
    """The kept candidates, best first within each prompt, with their reward and rank."""
    scores = rewards / np.maximum(tokens, 1) if normalize == "per_token" else rewards
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
    return kept
