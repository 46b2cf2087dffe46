"""Who to believe, for the dashboard: each rater's Dawid-Skene and MACE reliability with its
interval and a flag, and the pairs whose reliability-weighted winner differs from the head
count's. Pure numpy over a LabelTable, like report.py."""

import numpy as np

from annotation.agreement.consensus import Consensus, LabelTable
from annotation.agreement.maths import CHOICE_NAMES
from annotation.agreement.reliability import dawid_skene, enough_for_estimate, mace

# Below this a rater's Dawid-Skene reliability (the chance their answer is the true one) is
# about what answering without looking gets: 0.5 between two responses.
NEAR_CHANCE = 0.6
SHOWN_DISAGREEMENTS = 50  # pairs listed where weighing votes changes the winner
# The dashboard's estimates run at most this many rounds (a fit for the consensus, 100): at
# 100,000 labels later rounds move no rater's reliability by a point, and would cost the
# page its 500 ms (docs/benchmarks.md).
DASHBOARD_ITERATIONS = 40
# The weighted consensus rules (Project.consensus_rule) and the estimator each one fits.
ESTIMATORS = {"dawid_skene": dawid_skene, "mace": mace}


def _interval(ci95: np.ndarray) -> list[float]:
    return [float(ci95[0]), float(ci95[1])]


def rater_reliability(table: LabelTable, min_reliability: float, weighted: str = "dawid_skene"):
    """(per rater: reliability figures or None, the pairs' weighted consensus or None).

    Per rater: {"dawid_skene", "dawid_skene_ci95", "mace", "mace_ci95", "flag"}, the flag
    "near chance" (Dawid-Skene below NEAR_CHANCE), "below the bar" (below min_reliability)
    or None. The posterior is `weighted`'s (the project's rule, else Dawid-Skene). None
    for both when the labels are too few for an estimate (enough_for_estimate)."""
    if not enough_for_estimate(table.item, table.n_items):
        return [None] * table.n_raters, None
    found = {
        name: table.fit(estimate, iterations=DASHBOARD_ITERATIONS)
        for name, estimate in ESTIMATORS.items()
    }
    ds, mc = found["dawid_skene"], found["mace"]
    raters = []
    for r in range(table.n_raters):
        score = float(ds.score[r])
        flag = "near chance" if score < NEAR_CHANCE else None
        flag = flag or ("below the bar" if score < min_reliability else None)
        raters.append({
            "dawid_skene": score, "dawid_skene_ci95": _interval(ds.ci95[r]),
            "mace": float(mc.score[r]), "mace_ci95": _interval(mc.ci95[r]), "flag": flag,
        })  # fmt: skip
    return raters, found.get(weighted, ds).posterior


def weighted_disagreements(head: Consensus, posterior: np.ndarray) -> tuple[int, list[dict]]:
    """How many labelled pairs have a different winner weighed than counted (no winner on
    one side counts as different), and the SHOWN_DISAGREEMENTS most confident of them: item
    index, head-count winner, weighted winner and its probability."""
    known = ~np.isnan(posterior[:, 0])
    weighted = np.where(known, np.nan_to_num(posterior).argmax(axis=1), -1)
    confidence = np.where(known, np.nan_to_num(posterior).max(axis=1), 0.0)
    differ = known & (weighted != head.winner)
    order = np.argsort(-np.where(differ, confidence, -1.0), kind="stable")[: int(differ.sum())]
    shown = [
        {
            "item": int(i),
            "head_count_winner": CHOICE_NAMES.get(int(head.winner[i]), ""),
            "weighted_winner": CHOICE_NAMES[int(weighted[i])],
            "confidence": float(confidence[i]),
        }
        for i in order[:SHOWN_DISAGREEMENTS]
    ]
    return int(differ.sum()), shown
