"""Consensus kept current: every pair's votes, winner, margin and difficulty rewritten from its
labels, gold and adjudication, by the project's consensus rule; and the rater reliabilities a
weighted rule weighs votes by, fitted from all of a project's labels."""

import math
from collections.abc import Iterable

from django.utils import timezone

from annotation.agreement.consensus import DifficultyRule, consensus
from annotation.agreement.maths import CHOICE_CODES, CHOICE_NAMES, DIFFICULTY_NAMES
from annotation.agreement.selectors import label_table, rater_key
from annotation.bulk import rows_for_ids, upsert_rows
from annotation.models import ConsensusFit, PairConsensus, Project


def _nullable(values) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


CONSENSUS_INPUTS_SQL = """
    SELECT p.id, p.project_id, r.consensus_rule,
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
    GROUP BY p.id, p.project_id, r.consensus_rule, r.easy_min_strength,
             r.hard_below_agreement, r.hard_below_strength
"""

VOTES_SQL = """
    SELECT l.pair_id, l.annotator_id, l.source, l.choice, l.shown_left FROM annotation_label l
    WHERE l.pair_id {ids}
"""


def consensus_refresh(*, pair_ids: Iterable[int]) -> None:
    """Recompute the consensus rows of these pairs from their labels and adjudications, by
    their project's rule (a weighted rule with the project's last fit).

    Called wherever labels or decisions change, for just the pairs they touch.
    """
    import numpy as np

    ids = sorted(set(pair_ids))
    if not ids:
        return
    # Votes, the lead's decision and the project's rules, in one round trip.
    by_project: dict[tuple, list[tuple]] = {}
    for pid, project_id, rule_name, easy, hard_agreement, hard_strength, *row in rows_for_ids(
        CONSENSUS_INPUTS_SQL, [], ids
    ):
        rule = DifficultyRule(easy, hard_agreement, hard_strength)
        by_project.setdefault((project_id, rule_name, rule), []).append((pid, *row))
    fits = _fits_in_use({(project_id, name) for project_id, name, _ in by_project})
    now = timezone.now()
    rows = []
    for (project_id, _, rule), inputs in by_project.items():
        members = [pid for pid, *_ in inputs]
        table = np.array([row[1:8] for row in inputs], dtype=float)
        decided = [row[8] for row in inputs]
        final = np.array([CHOICE_CODES.get(choice or "", -1) for choice in decided])
        fit = fits.get(project_id)
        result = consensus(
            table[:, 0:3].astype(int),
            table[:, [3, 5]],
            table[:, [4, 6]].astype(int),
            final,
            rule,
            posterior=_posterior(fit, members) if fit else None,
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
                    for column in (
                        result.agreement,
                        result.mean_strength,
                        result.margin,
                        result.confidence,
                    )
                ),
                [DIFFICULTY_NAMES[d] for d in result.difficulty.tolist()],
                [now] * len(members),
                strict=True,
            )
        )
    upsert_rows(
        PairConsensus,
        ["pair_id", "project_id", "votes_a", "votes_b", "votes_tie", "winner", "contested"]
        + ["adjudicated", "agreement", "mean_strength", "margin", "confidence", "difficulty"]
        + ["updated_at"],
        rows,
        key="pair_id",
    )


def _fits_in_use(projects: set[tuple[int, str]]) -> dict[int, ConsensusFit]:
    """The fits that weigh votes: a weighted rule's, made by that rule on enough labels."""
    weighted = [pk for pk, name in projects if name != Project.ConsensusRule.COUNT]
    if not weighted:
        return {}
    fits = ConsensusFit.objects.filter(project_id__in=weighted, enough=True)
    chosen = dict(projects)
    return {fit.project_id: fit for fit in fits if fit.rule == chosen[fit.project_id]}


def _posterior(fit: ConsensusFit, pair_ids: list[int]):
    """(n, 3) each pair's probability of a, b and tie from its labels under the fit."""
    import numpy as np

    from annotation.agreement.reliability import posterior_given

    index = {pid: i for i, pid in enumerate(pair_ids)}
    position = {key: i for i, key in enumerate(fit.answers)}
    unknown = len(position)  # a rater who joined after the fit: an average one
    item, rater, choice, shown_left = [], [], [], []
    for pid, annotator_id, source, picked, left in rows_for_ids(VOTES_SQL, [], pair_ids):
        item.append(index[pid])
        rater.append(position.get(rater_key(annotator_id, source), unknown))
        choice.append(CHOICE_CODES[picked])
        shown_left.append(CHOICE_CODES.get(left or "", -1))
    answers = np.array(list(fit.answers.values()))  # a fit with enough labels has raters
    return posterior_given(
        np.array(item, dtype=np.int64),
        np.array(rater, dtype=np.int64),
        np.array(choice, dtype=np.int64),
        np.array(shown_left, dtype=np.int64),
        len(pair_ids),
        np.concatenate([answers, answers.mean(axis=0, keepdims=True)]),
        np.array(fit.prior),
    )


def consensus_fit(*, project: Project) -> ConsensusFit | None:
    """Fit the project's weighted consensus rule to all its labels and keep what it found
    (None, and no fit kept, under the head count). With too few pairs of two or more votes
    the fit is kept as not enough, and the head count stands."""
    from annotation.agreement.reliability import enough_for_estimate
    from annotation.agreement.trust import ESTIMATORS

    if project.consensus_rule not in ESTIMATORS:
        ConsensusFit.objects.filter(project=project).delete()
        return None
    table, _ = label_table(project=project)
    enough = enough_for_estimate(table.item, table.n_items)
    found = None
    if enough:
        estimate = ESTIMATORS[project.consensus_rule]
        found = table.fit(estimate)
    fit, _ = ConsensusFit.objects.update_or_create(
        project=project,
        defaults={
            "rule": project.consensus_rule,
            "n_labels": int(table.item.size),
            "enough": enough,
            "prior": found.prior.tolist() if found else [],
            "answers": dict(zip(table.rater_keys, found.answers.tolist(), strict=True))
            if found
            else {},
        },
    )
    return fit
