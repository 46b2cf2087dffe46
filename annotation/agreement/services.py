"""Consensus kept current: every pair's votes, winner, margin and difficulty rewritten from its
labels, gold and adjudication."""

import math
from collections.abc import Iterable

from django.utils import timezone

from annotation.agreement.consensus import DifficultyRule, consensus
from annotation.agreement.maths import CHOICE_CODES, CHOICE_NAMES, DIFFICULTY_NAMES
from annotation.bulk import rows_for_ids, upsert_rows
from annotation.models import PairConsensus


def _nullable(values) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


CONSENSUS_INPUTS_SQL = """
    SELECT p.id, p.project_id,
           r.easy_min_strength, r.hard_below_agreement, r.hard_below_strength,
           SUM(CASE WHEN l.choice = 'a' THEN 1 ELSE 0 END),
           SUM(CASE WHEN l.choice = 'b' THEN 1 ELSE 0 END),
           SUM(CASE WHEN l.choice = 'tie' THEN 1 ELSE 0 END),
           SUM(CASE WHEN l.choice = 'a' THEN l.strength ELSE 0 END),
           COUNT(CASE WHEN l.choice = 'a' THEN l.strength END),
           SUM(CASE WHEN l.choice = 'b' THEN l.strength ELSE 0 END),
           COUNT(CASE WHEN l.choice = 'b' THEN l.strength END),
           MAX(d.choice)
    FROM annotation_pair p
    JOIN annotation_project r ON r.id = p.project_id
    LEFT JOIN annotation_label l ON l.pair_id = p.id
    LEFT JOIN annotation_adjudication d ON d.pair_id = p.id
    WHERE p.id {ids}
    GROUP BY p.id, p.project_id, r.easy_min_strength, r.hard_below_agreement,
             r.hard_below_strength
"""


def consensus_refresh(*, pair_ids: Iterable[int]) -> None:
    """Recompute the consensus rows of these pairs from their labels and adjudications.

    Called wherever labels or decisions change, for just the pairs they touch.
    """
    import numpy as np

    ids = sorted(set(pair_ids))
    if not ids:
        return
    # Votes, the lead's decision and the project's difficulty rule, in one round trip.
    by_project: dict[tuple, list[tuple]] = {}
    for pid, project_id, easy, hard_agreement, hard_strength, *row in rows_for_ids(
        CONSENSUS_INPUTS_SQL, [], ids
    ):
        rule = DifficultyRule(easy, hard_agreement, hard_strength)
        by_project.setdefault((project_id, rule), []).append((pid, *row))
    now = timezone.now()
    rows = []
    for (project_id, rule), inputs in by_project.items():
        members = [pid for pid, *_ in inputs]
        table = np.array([row[1:8] for row in inputs], dtype=float)
        decided = [row[8] for row in inputs]
        final = np.array([CHOICE_CODES.get(choice or "", -1) for choice in decided])
        result = consensus(
            table[:, 0:3].astype(int),
            table[:, [3, 5]],
            table[:, [4, 6]].astype(int),
            final,
            rule,
        )
        rows.extend(
            zip(
                members,
                [project_id] * len(members),
                *(table[:, i].astype(int).tolist() for i in range(3)),
                [CHOICE_NAMES.get(w, "") for w in result.winner.tolist()],
                result.contested.tolist(),
                [choice is not None for choice in decided],
                *(
                    _nullable(column)
                    for column in (result.agreement, result.mean_strength, result.margin)
                ),
                [DIFFICULTY_NAMES[d] for d in result.difficulty.tolist()],
                [now] * len(members),
                strict=True,
            )
        )
    upsert_rows(
        PairConsensus,
        ["pair_id", "project_id", "votes_a", "votes_b", "votes_tie", "winner", "contested"]
        + ["adjudicated", "agreement", "mean_strength", "margin", "difficulty", "updated_at"],
        rows,
        key="pair_id",
    )
