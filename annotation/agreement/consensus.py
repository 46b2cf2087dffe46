"""Consensus per pair from its votes: winner, agreement, margin and difficulty, by the project's
difficulty rule. Pure numpy, like the agreement maths."""

from dataclasses import dataclass, field, replace

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

# Under a weighted rule: answers whose posteriors lie this close are a split, and a pair
# whose winner is at least this probable counts as unanimous.
CONTESTED_GAP = 0.1
UNANIMOUS_CONFIDENCE = 0.9


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
    confidence: np.ndarray  # P(winner is the true answer) or its share of the votes; NaN if none


def consensus(
    votes: np.ndarray,
    strength_sum: np.ndarray,
    strength_count: np.ndarray,
    decided: np.ndarray | None = None,
    rule: DifficultyRule | None = None,
    posterior: np.ndarray | None = None,
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

    posterior: (n, 3) the probability of a, b and tie under a reliability-weighted rule
    (annotation.agreement.reliability), NaN rows where it has none. Where it is given, the
    most probable answer wins, its probability (the confidence) stands in for agreement in
    the margin and the difficulty, a pair is contested when its top two answers are within
    CONTESTED_GAP of each other, and unanimous when its confidence is at least
    UNANIMOUS_CONFIDENCE. Without one, the confidence is the winner's share of the votes.
    """
    rule = rule or DifficultyRule()
    n_items = votes.shape[0]
    decided = np.full(n_items, -1) if decided is None else np.asarray(decided, dtype=np.int64)
    total = votes.sum(axis=1)
    top = votes.max(axis=1)
    weighed, tied_top, leader = _leaders(votes, top, posterior)
    contested = tied_top & (total > 0)
    winner = np.where((total > 0) & ~contested, leader, -1)
    winner = np.where(decided >= 0, decided, winner)

    with np.errstate(invalid="ignore", divide="ignore"):
        winner_votes = np.where(winner >= 0, votes[np.arange(n_items), np.maximum(winner, 0)], top)
        agreement = np.where(total > 0, winner_votes / total, np.nan)
        confidence = agreement
        if weighed.any():
            belief = np.nan_to_num(posterior)
            believed = np.where(winner >= 0, belief[np.arange(n_items), np.maximum(winner, 0)],
                                belief.max(axis=1))  # fmt: skip
            confidence = np.where(weighed, believed, agreement)
        side = np.clip(winner, 0, 1)
        picked_sum = strength_sum[np.arange(n_items), side]
        picked_count = strength_count[np.arange(n_items), side]
        mean_strength = np.where(picked_count > 0, picked_sum / np.maximum(picked_count, 1), np.nan)
    mean_strength = np.where(winner == CHOICE_TIE, 0.0, mean_strength)
    mean_strength = np.where(winner < 0, np.nan, mean_strength)
    assumed = np.where(np.isnan(mean_strength), UNKNOWN_STRENGTH, mean_strength)
    margin = np.where(winner >= 0, confidence * assumed / 3.0, np.nan)
    margin = np.where(winner == CHOICE_TIE, 0.0, margin)

    # Everyone agreeing that the responses are equally good is agreement, not a weak
    # preference: strength thresholds apply to a and b winners only.
    graded = ~np.isnan(mean_strength) & (winner != CHOICE_TIE)
    unanimous = np.where(weighed, confidence >= UNANIMOUS_CONFIDENCE, top == total) & (total >= 2)
    hard = (
        contested
        | (confidence < rule.hard_below_agreement)
        | (graded & (mean_strength < rule.hard_below_strength))
    )
    easy = unanimous & ~hard & (~graded | (mean_strength >= rule.easy_min_strength))
    difficulty = np.where(hard, HARD, np.where(easy, EASY, MEDIUM))
    difficulty = np.where(total == 0, UNLABELLED, difficulty)
    return Consensus(
        votes, winner, contested, agreement, mean_strength, margin, difficulty, confidence
    )


def _leaders(votes: np.ndarray, top: np.ndarray, posterior: np.ndarray | None):
    """Which items a posterior weighs, whether each item's top answers are level (equal
    votes, or posteriors within CONTESTED_GAP), and each item's leading answer."""
    total = votes.sum(axis=1)
    weighed = np.zeros(len(votes), dtype=bool) if posterior is None else ~np.isnan(posterior[:, 0])
    weighed &= total > 0
    level = (votes == top[:, None]).sum(axis=1) > 1
    leader = votes.argmax(axis=1)
    if weighed.any():
        belief = np.where(weighed[:, None], np.nan_to_num(posterior), 0.0)
        ranked = np.sort(belief, axis=1)
        level = np.where(weighed, ranked[:, 2] - ranked[:, 1] < CONTESTED_GAP, level)
        leader = np.where(weighed, belief.argmax(axis=1), leader)
    return weighed, level, leader


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
    rater_keys: list[str] = field(default_factory=list)  # "annotator:<id>" or "source:<name>"

    @property
    def n_items(self) -> int:
        return len(self.length_a)

    @property
    def n_raters(self) -> int:
        return len(self.rater_names)

    def labels_where(self, mask: np.ndarray) -> "LabelTable":
        """The same table with only the labels `mask` keeps (items and raters as they were)."""
        per_label = ("item", "rater", "choice", "strength", "shown_left", "duration_ms", "day")
        return replace(self, **{name: getattr(self, name)[mask] for name in per_label})

    def fit(self, estimate, **options):
        """An estimator of annotation.agreement.reliability (dawid_skene, mace) on the labels."""
        return estimate(self.item, self.rater, self.choice, self.shown_left, self.n_items,
                        self.n_raters, **options)  # fmt: skip


def item_consensus(
    table: LabelTable, rule: DifficultyRule | None = None, posterior: np.ndarray | None = None
) -> Consensus:
    """consensus() of the table's labels; `posterior` (n_items, 3) as consensus() takes it."""
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
        posterior,
    )
