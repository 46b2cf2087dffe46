"""Every dashboard figure at once: the whole-set, rater-pair, per-rater and consensus
maths of annotation.agreement.maths run over one LabelTable, plus the daily timeline.

Pure numpy like agreement.py; a figure that cannot be computed is None, never an error.
"""

import numpy as np

from annotation.agreement.consensus import DifficultyRule, LabelTable, item_consensus
from annotation.agreement.maths import (
    DIFFICULTY_NAMES,
    N_CHOICES,
    SIGNED_VALUES,
    agreement_with_majority,
    confusion_by_rater_pair,
    fleiss_kappa,
    gold_accuracy,
    krippendorff_alpha,
    longer_choice_rate,
    majority_2to1_rate,
    median_seconds,
    pairwise_kappas,
    percent_agreement,
    position_bias,
    signed_codes,
    signed_strength,
    vote_counts,
)
from annotation.agreement.trust import ESTIMATORS, rater_reliability, weighted_disagreements


def rater_pair_kappas(table: LabelTable, signed_code: np.ndarray) -> tuple[list, list]:
    """Cohen's kappa (and its weighted twin on the signed scale) of every rater pair that
    met, and each rater's kappas."""
    nominal = confusion_by_rater_pair(
        table.item, table.rater, table.choice, table.n_raters, N_CHOICES
    )
    weighted = confusion_by_rater_pair(
        table.item, table.rater, signed_code, table.n_raters, len(SIGNED_VALUES)
    )
    weighted_by_pair = {(i, j): k for i, j, _, k in pairwise_kappas(weighted, "quadratic")}
    kappas = []
    per_rater: list[list[float]] = [[] for _ in range(table.n_raters)]
    for i, j, n, kappa in pairwise_kappas(nominal):
        kappas.append(
            {
                "a": table.rater_names[i],
                "b": table.rater_names[j],
                "n": n,
                "kappa": kappa,
                "weighted_kappa": weighted_by_pair.get((i, j)),
            }
        )
        if kappa is not None:
            per_rater[i].append(kappa)
            per_rater[j].append(kappa)
    return kappas, per_rater


def agreement_with_people(table: LabelTable, counts: np.ndarray, majority: list) -> list:
    """Each rater's agreement with the people's majority alone: how far a judge (or any
    label source) can stand in for them."""
    is_person = np.array([kind == "annotator" for kind in table.rater_kinds], dtype=bool)
    if is_person.all():
        return majority
    by_people = is_person[table.rater]
    people_counts = vote_counts(
        table.item[by_people], table.choice[by_people], table.n_items, N_CHOICES
    )
    return agreement_with_majority(
        table.item, table.rater, table.choice, people_counts, table.n_raters, by_people
    )


def rater_figures(table: LabelTable, counts: np.ndarray, per_rater_kappas: list) -> list[dict]:
    """Per annotator or judge: labels, agreement, mean kappa, biases, gold and speed."""
    n_labels = np.bincount(table.rater, minlength=table.n_raters)
    majority = agreement_with_majority(
        table.item, table.rater, table.choice, counts, table.n_raters
    )
    with_people = agreement_with_people(table, counts, majority)
    left = position_bias(table.rater, table.choice, table.shown_left, table.n_raters)
    longer = longer_choice_rate(
        table.item, table.rater, table.choice, table.length_a, table.length_b, table.n_raters
    )
    gold = gold_accuracy(table.item, table.rater, table.choice, table.gold, table.n_raters)
    seconds = median_seconds(table.rater, table.duration_ms, table.n_raters)
    return [
        {
            "name": table.rater_names[r],
            "kind": table.rater_kinds[r],
            "n": int(n_labels[r]),
            "agreement_with_majority": majority[r],
            "agreement_with_people": with_people[r],
            "mean_kappa": float(np.mean(per_rater_kappas[r])) if per_rater_kappas[r] else None,
            "left_rate": left[r],
            "longer_rate": longer[r],
            "gold_accuracy": gold[r],
            "median_seconds": seconds[r],
        }
        for r in range(table.n_raters)
    ]


def agreement_report(
    table: LabelTable,
    rule: DifficultyRule | None = None,
    *,
    min_reliability: float = 0.7,
    consensus_rule: str = "count",
) -> dict:
    """Every dashboard figure; a figure that cannot be computed is None. Each rater's
    reliability and the pairs whose weighted winner differs (annotation.agreement.trust)
    are `consensus_rule`'s where it weighs votes, Dawid-Skene's otherwise."""
    counts = vote_counts(table.item, table.choice, table.n_items, N_CHOICES)
    labelled = counts.sum(axis=1) > 0
    signed_code = signed_codes(signed_strength(table.choice, table.strength))
    signed_counts = vote_counts(table.item, signed_code, table.n_items, len(SIGNED_VALUES))
    kappas, per_rater_kappas = rater_pair_kappas(table, signed_code)
    result = item_consensus(table, rule)
    difficulty = {
        name: int(np.sum(result.difficulty == code))
        for code, name in DIFFICULTY_NAMES.items()
        if name
    }
    difficulty["contested"] = int(np.sum(result.contested & labelled))
    weighted = consensus_rule if consensus_rule in ESTIMATORS else "dawid_skene"
    reliability, posterior = rater_reliability(table, min_reliability, weighted)
    annotators = rater_figures(table, counts, per_rater_kappas)
    for entry, found in zip(annotators, reliability, strict=True):
        entry["reliability"] = found
    n_differ, differ = (
        weighted_disagreements(result, posterior) if posterior is not None else (0, [])
    )
    return {
        "n_labels": int(table.item.size),
        "n_pairs": int(labelled.sum()),
        "n_annotators": table.n_raters,
        "percent_agreement": percent_agreement(counts),
        "majority_2to1_rate": majority_2to1_rate(counts),
        "fleiss_kappa": fleiss_kappa(counts),
        "krippendorff_alpha": krippendorff_alpha(counts),
        "krippendorff_alpha_interval": krippendorff_alpha(signed_counts, SIGNED_VALUES),
        "cohen_kappa": kappas,
        "annotators": annotators,
        "difficulty": difficulty,
        "weighted": {
            "rule": weighted,
            "enough_labels": posterior is not None,
            "n_disagreements": n_differ,
            "disagreements": differ,
        },
        "timeline": agreement_timeline(table, counts),
    }


def agreement_timeline(table: LabelTable, counts: np.ndarray) -> list[dict]:
    """Per day: how many labels came in, and the share that matched the others' majority."""
    others = counts[table.item] - np.eye(N_CHOICES, dtype=counts.dtype)[table.choice]
    top = others.max(axis=1)
    counted = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
    agrees = others.argmax(axis=1) == table.choice
    days, index = np.unique(table.day, return_inverse=True)
    n = np.bincount(index, minlength=days.size)
    n_counted = np.bincount(index, weights=counted, minlength=days.size)
    n_agree = np.bincount(index, weights=counted & agrees, minlength=days.size)
    return [
        {
            "day": int(day),
            "n": int(total),
            "agreement": float(agree / judged) if judged else None,
        }
        for day, total, judged, agree in zip(days, n, n_counted, n_agree, strict=True)
    ]
