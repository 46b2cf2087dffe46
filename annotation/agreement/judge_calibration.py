"""How far each LLM judge can stand in for the people: how often it picks the people's winner,
on pairs easy, medium and hard for them, and whether it stays sure of its pick (the same in
both orders) where the people split. Pure numpy over a LabelTable, like trust.py.

The people's winner is the most probable answer of a Dawid-Skene fit to the people's labels
alone (annotators; no judge or imported source), and a pair's difficulty is what the
consensus makes of that fit (annotation.agreement.consensus), so easy, medium and hard mean
what they mean everywhere else, weighed by the people's reliability.
"""

from dataclasses import dataclass, replace

import numpy as np

from annotation.agreement.consensus import DifficultyRule, LabelTable, item_consensus
from annotation.agreement.maths import DIFFICULTY_NAMES
from annotation.agreement.reliability import dawid_skene, enough_for_estimate
from annotation.agreement.trust import DASHBOARD_ITERATIONS
from workers.ml.metrics import wilson_interval

# The people split on a pair (two or more of them labelled it) when its top two answers are
# level (consensus.CONTESTED_GAP) or its winner is less probable than this; they agreed on
# it otherwise.
SPLIT_BELOW_CONFIDENCE = 2 / 3


@dataclass(frozen=True)
class PeopleVerdict:
    """Per item, from the people's labels alone."""

    winner: np.ndarray  # their most probable answer (CHOICE_*); -1 where no person labelled it
    difficulty: np.ndarray  # EASY, MEDIUM, HARD; UNLABELLED where no person labelled it
    split: np.ndarray  # bool: two or more people, level or winner below SPLIT_BELOW_CONFIDENCE
    agreed: np.ndarray  # bool: two or more people, not split


def position_consistency(consistent: np.ndarray) -> float | None:
    """The share of a judge's labels whose pick held in both orders (consistent: 1, 0, or -1
    unknown, per label), over those recorded; None before any was."""
    recorded = consistent[consistent >= 0]
    return float(np.mean(recorded == 1)) if recorded.size else None


def people_verdict(
    table: LabelTable,
    rule: DifficultyRule | None = None,
    *,
    iterations: int = DASHBOARD_ITERATIONS,
) -> PeopleVerdict | None:
    """The people's winner, difficulty and split per item; None when their labels are too
    few for an estimate (reliability.enough_for_estimate). A lead's decision plays no part:
    this is what the people's labels say."""
    is_person = np.array([kind == "annotator" for kind in table.rater_kinds], dtype=bool)
    people = is_person[table.rater] if table.n_raters else np.zeros(table.item.size, dtype=bool)
    theirs = replace(table.labels_where(people), decided=np.full(table.n_items, -1))
    if not enough_for_estimate(theirs.item, table.n_items):
        return None
    fit = theirs.fit(dawid_skene, iterations=iterations)
    result = item_consensus(theirs, rule, posterior=fit.posterior)
    votes = result.votes
    known = ~np.isnan(fit.posterior[:, 0])
    winner = np.where(known, np.nan_to_num(fit.posterior).argmax(axis=1), -1)
    several = votes.sum(axis=1) >= 2
    split = several & (result.contested | (result.confidence < SPLIT_BELOW_CONFIDENCE))
    return PeopleVerdict(winner, result.difficulty, split, several & ~split)


def _share(hits: np.ndarray) -> dict:
    n, right = int(hits.size), int(hits.sum())
    return {
        "agreement": right / n if n else None,
        "agreement_ci95": wilson_interval(right, n),
        "n": n,
    }


def judge_figures(
    verdict: PeopleVerdict, item: np.ndarray, choice: np.ndarray, consistent: np.ndarray
) -> dict:
    """One judge's calibration against the people, from its labels (item, choice, and
    consistent: 1 when both orders picked the same response, 0 when not, -1 unknown).

    agreement (with agreement_ci95 and n): the share of its labels on pairs the people
    labelled that pick the people's winner, overall and by_difficulty (easy, medium, hard,
    each with agreement, agreement_ci95 and n). consistent_when_split / n_split: the share
    of its labels on pairs the people split on that held in both orders, over labels whose
    consistency is known; consistent_when_agreed / n_agreed the same on pairs they agreed on.
    A share over no labels is None."""
    winner = verdict.winner[item]
    on_people = winner >= 0
    hits = choice == winner
    difficulty = verdict.difficulty[item]
    known = consistent >= 0
    split = known & verdict.split[item]
    agreed = known & verdict.agreed[item]
    when_split, when_agreed = _share(consistent[split] == 1), _share(consistent[agreed] == 1)
    return {
        **_share(hits[on_people]),
        "by_difficulty": {
            name: _share(hits[on_people & (difficulty == code)])
            for code, name in DIFFICULTY_NAMES.items()
            if name
        },
        "consistent_when_split": when_split["agreement"],
        "n_split": when_split["n"],
        "consistent_when_agreed": when_agreed["agreement"],
        "n_agreed": when_agreed["n"],
    }


def judge_calibrations(
    table: LabelTable,
    judges: list[int],
    consistent: np.ndarray,
    rule: DifficultyRule | None = None,
    *,
    iterations: int = DASHBOARD_ITERATIONS,
) -> dict[int, dict | None]:
    """judge_figures for each judge (a rater index of the table), all against one fit of the
    people's labels; consistent is per label of the table (-1 for everyone else's). Each is
    None when the people's labels are too few; without judges nothing is fitted."""
    if not judges:
        return {}
    verdict = people_verdict(table, rule, iterations=iterations)
    figures: dict[int, dict | None] = {}
    for judge in judges:
        own = table.rater == judge
        figures[judge] = (
            judge_figures(verdict, table.item[own], table.choice[own], consistent[own])
            if verdict is not None
            else None
        )
    return figures
