"""Consensus per pair from its votes: winner, agreement, margin and difficulty, by the project's
difficulty rule. Pure numpy, like the agreement maths."""

from dataclasses import dataclass

import numpy as np

from annotation.agreement.maths import (
    CHOICE_TIE,
    EASY,
    HARD,
    MEDIUM,
    N_CHOICES,
    UNKNOWN_STRENGTH,
    UNLABELLED,
    vote_counts,
)


@dataclass(frozen=True)
class DifficultyRule:
    """easy = unanimous (two or more votes) and mean strength >= easy_min_strength;
    hard = contested, or agreement < hard_below_agreement, or mean strength <
    hard_below_strength; medium otherwise (including single votes). A tie winner has no
    strength, so agreement alone sets its difficulty: a unanimous tie is easy."""

    easy_min_strength: float = 2.0
    hard_below_agreement: float = 2 / 3
    hard_below_strength: float = 1.0


@dataclass
class Consensus:
    votes: np.ndarray  # (n, 3) votes for a, b, tie
    winner: np.ndarray  # CHOICE_* or -1 when there is none
    contested: np.ndarray  # the top choices had equal votes
    agreement: np.ndarray  # winner's (or the top choice's) votes / all votes; NaN if none
    mean_strength: np.ndarray  # mean strength of the winning votes; NaN when unknown
    margin: np.ndarray  # see consensus(); NaN when there is no winner
    difficulty: np.ndarray  # EASY, MEDIUM, HARD or UNLABELLED


def consensus(
    votes: np.ndarray,
    strength_sum: np.ndarray,
    strength_count: np.ndarray,
    decided: np.ndarray | None = None,
    rule: DifficultyRule | None = None,
) -> Consensus:
    """Winner, agreement, strength, margin and difficulty for every item.

    votes: (n, 3) counts for a, b, tie. strength_sum / strength_count: (n, 2) sums and counts
    of the strengths given with a and b votes. decided: (n,) a lead's final choice or -1; it
    overrides the majority.

    The margin grows with how strongly and how unanimously the winner was preferred:
    agreement × mean strength of the winning votes / 3, so it runs from 0 (a split or
    negligible preference) to 1 (unanimous, strongly better), the range of the margins
    Llama 2 added to its Bradley-Terry loss. Where no winning vote gave a strength, the
    scale's middle (UNKNOWN_STRENGTH) stands in for it. A tie's margin is 0.

    Difficulty follows DifficultyRule; a tie winner's mean strength is 0 but says nothing
    about how contested the pair is, so only agreement counts for it.
    """
    rule = rule or DifficultyRule()
    n_items = votes.shape[0]
    decided = np.full(n_items, -1) if decided is None else np.asarray(decided, dtype=np.int64)
    total = votes.sum(axis=1)
    top = votes.max(axis=1)
    contested = ((votes == top[:, None]).sum(axis=1) > 1) & (total > 0)
    winner = np.where((total > 0) & ~contested, votes.argmax(axis=1), -1)
    winner = np.where(decided >= 0, decided, winner)

    with np.errstate(invalid="ignore", divide="ignore"):
        winner_votes = np.where(winner >= 0, votes[np.arange(n_items), np.maximum(winner, 0)], top)
        agreement = np.where(total > 0, winner_votes / total, np.nan)
        side = np.clip(winner, 0, 1)
        picked_sum = strength_sum[np.arange(n_items), side]
        picked_count = strength_count[np.arange(n_items), side]
        mean_strength = np.where(picked_count > 0, picked_sum / np.maximum(picked_count, 1), np.nan)
    mean_strength = np.where(winner == CHOICE_TIE, 0.0, mean_strength)
    mean_strength = np.where(winner < 0, np.nan, mean_strength)
    assumed = np.where(np.isnan(mean_strength), UNKNOWN_STRENGTH, mean_strength)
    margin = np.where(winner >= 0, agreement * assumed / 3.0, np.nan)
    margin = np.where(winner == CHOICE_TIE, 0.0, margin)

    # Everyone agreeing that the responses are equally good is agreement, not a weak
    # preference: strength thresholds apply to a and b winners only.
    graded = ~np.isnan(mean_strength) & (winner != CHOICE_TIE)
    unanimous = (top == total) & (total >= 2)
    hard = (
        contested
        | (agreement < rule.hard_below_agreement)
        | (graded & (mean_strength < rule.hard_below_strength))
    )
    easy = unanimous & ~hard & (~graded | (mean_strength >= rule.easy_min_strength))
    difficulty = np.where(hard, HARD, np.where(easy, EASY, MEDIUM))
    difficulty = np.where(total == 0, UNLABELLED, difficulty)
    return Consensus(votes, winner, contested, agreement, mean_strength, margin, difficulty)


@dataclass
class LabelTable:
    """Every label of a project as arrays, plus what is known about each item and rater."""

    item: np.ndarray  # int64
    rater: np.ndarray  # int64
    choice: np.ndarray  # int64, CHOICE_*
    strength: np.ndarray  # float, NaN where not given
    shown_left: np.ndarray  # int64, CHOICE_A / CHOICE_B, -1 unknown
    duration_ms: np.ndarray  # float, NaN unknown
    day: np.ndarray  # int64, days since 1970-01-01
    length_a: np.ndarray  # per item: characters in response a
    length_b: np.ndarray
    gold: np.ndarray  # per item: known answer or -1
    decided: np.ndarray  # per item: a lead's decision or -1
    rater_names: list[str]
    rater_kinds: list[str]  # "annotator" or "source"

    @property
    def n_items(self) -> int:
        return len(self.length_a)

    @property
    def n_raters(self) -> int:
        return len(self.rater_names)


def item_consensus(table: LabelTable, rule: DifficultyRule | None = None) -> Consensus:
    votes = vote_counts(table.item, table.choice, table.n_items, N_CHOICES)
    given = ~np.isnan(table.strength) & (table.choice != CHOICE_TIE)
    side = table.item[given] * 2 + table.choice[given]
    strength_sum = np.bincount(side, weights=table.strength[given], minlength=2 * table.n_items)
    strength_count = np.bincount(side, minlength=2 * table.n_items)
    return consensus(
        votes,
        strength_sum.reshape(-1, 2),
        strength_count.reshape(-1, 2),
        table.decided,
        rule,
    )
