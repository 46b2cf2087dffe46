"""Choosing a version's pairs: their consensus by the project's rule, the filters on it, the
length balance of the train split, and the split by prompt."""

import hashlib
import json
import random
from dataclasses import dataclass, field

import numpy as np
from django.core.exceptions import ValidationError

from annotation.agreement.consensus import item_consensus
from annotation.agreement.maths import (
    CHOICE_A,
    CHOICE_TIE,
    DIFFICULTIES,
    DIFFICULTY_NAMES,
    N_CHOICES,
    confusion_by_rater_pair,
    pairwise_kappas,
)
from annotation.agreement.reliability import dawid_skene, enough_for_estimate
from annotation.agreement.selectors import label_table
from annotation.agreement.trust import ESTIMATORS
from annotation.bulk import rows_for_ids
from annotation.models import CuratedDataset, Label, Pair, Project, Round

NAME_MAX_CHARS = CuratedDataset._meta.get_field("name").max_length


# Lower-case letters and digits in hyphen-joined words: what the API's schema states too.
NAME_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


@dataclass
class CurationFilters:
    min_votes: int = 1
    min_agreement: float = 0.0
    exclude_contested: bool = False
    exclude_ties: bool = False
    difficulty: tuple[str, ...] = DIFFICULTIES
    exclude_sources: tuple[str, ...] = ()
    min_annotator_kappa: float | None = None
    min_annotator_reliability: float | None = None
    min_confidence: float = 0.0
    test_fraction: float = 0.1
    seed: int = 0
    balance_length: bool = False

    def __post_init__(self):
        problems = {}
        if self.min_votes < 1:
            problems["min_votes"] = "must be at least 1"
        if not 0.0 <= self.min_agreement <= 1.0:
            problems["min_agreement"] = "must be between 0 and 1"
        unknown = set(self.difficulty) - set(DIFFICULTIES)
        if unknown or not self.difficulty:
            problems["difficulty"] = f"choose from {', '.join(DIFFICULTIES)}"
        if not 0.0 <= self.test_fraction < 1.0:
            problems["test_fraction"] = "must be at least 0 and below 1"
        if self.min_annotator_kappa is not None and not -1.0 <= self.min_annotator_kappa <= 1.0:
            problems["min_annotator_kappa"] = "must be between -1 and 1"
        reliability = self.min_annotator_reliability
        if reliability is not None and not 0.0 <= reliability <= 1.0:
            problems["min_annotator_reliability"] = "must be between 0 and 1"
        if not 0.0 <= self.min_confidence <= 1.0:
            problems["min_confidence"] = "must be between 0 and 1"
        if problems:
            raise ValidationError(problems)
        self.difficulty = tuple(self.difficulty)
        self.exclude_sources = tuple(self.exclude_sources)


@dataclass
class Selection:
    """What the filters keep: pair ids with their consensus, and why the rest went.
    consensus: the rule that gave it, as the manifest records it (see _weighed); notes: what
    the filters could not do, in words."""

    pair_ids: list[int]
    winner: list[int]
    margin: list[float]
    difficulty: list[str]
    agreement: list[float]
    confidence: list[float]
    n_votes: list[int]
    consensus: dict = field(default_factory=lambda: {"rule": "count"})
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    by_difficulty: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    dropped_annotators: list[str] = field(default_factory=list)
    balance_length: dict | None = None

    @property
    def count(self) -> int:
        return len(self.pair_ids)


def _check_sources(project: Project, filters: CurationFilters) -> None:
    if not filters.exclude_sources:
        return
    known = set(
        Label.objects.filter(pair__project=project, annotator__isnull=True)
        .values_list("source", flat=True)
        .distinct()
    )
    unknown = sorted(set(filters.exclude_sources) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        message = f"No label source named {', '.join(unknown)} here (known: {listed})."
        raise ValidationError({"exclude_sources": message})


def _low_kappa_raters(table, min_kappa: float | None) -> list[int]:
    """Raters whose mean Cohen's kappa with the others is below `min_kappa`. Raters with no
    overlap cannot be judged by kappa and keep their labels."""
    if min_kappa is None or not table.n_raters:
        return []
    confusions = confusion_by_rater_pair(
        table.item, table.rater, table.choice, table.n_raters, N_CHOICES
    )
    kappas: list[list[float]] = [[] for _ in range(table.n_raters)]
    for i, j, _, kappa in pairwise_kappas(confusions):
        if kappa is not None:
            kappas[i].append(kappa)
            kappas[j].append(kappa)
    return [r for r in range(table.n_raters) if kappas[r] and np.mean(kappas[r]) < min_kappa]


TOO_FEW_FOR_ESTIMATE = "too few pairs with two or more votes"


def _unreliable_raters(table, min_reliability: float | None):
    """(raters with labels whose Dawid-Skene reliability, estimated on all the table's labels,
    is below `min_reliability`; a note when the labels are too few for an estimate, when
    nobody is left out; the fit, or None)."""
    if min_reliability is None or not table.n_raters:
        return [], [], None
    if not enough_for_estimate(table.item, table.n_items):
        note = f"min_annotator_reliability left no annotator out: {TOO_FEW_FOR_ESTIMATE} "
        return [], [note + "to estimate reliability"], None
    found = table.fit(dawid_skene)
    low = [r for r in range(table.n_raters) if found.votes[r] and found.score[r] < min_reliability]
    return low, [], found


def _weighed(table, rule_name: str, fitted=None) -> tuple[np.ndarray | None, dict]:
    """The posterior of the project's consensus rule fitted (its estimator's defaults) on
    these labels, None under the head count, and the rule as the manifest records it: the
    weighted rule with its parameters, or the head count with, when a weighted rule was asked
    for and the labels are too few for it, the rule asked for and why. `fitted`: a
    Dawid-Skene fit with the defaults on these same labels, used rather than fitting again."""
    rule_name = str(rule_name)
    estimate = ESTIMATORS.get(rule_name)
    if estimate is None:
        return None, {"rule": "count"}
    if not enough_for_estimate(table.item, table.n_items):
        return None, {"rule": "count", "asked": rule_name, "why": TOO_FEW_FOR_ESTIMATE}
    reuse = fitted is not None and estimate is dawid_skene
    found = fitted if reuse else table.fit(estimate)
    return found.posterior, {"rule": rule_name, **estimate.__kwdefaults__}


def _reasons(project, filters, pair_ids, result, n_votes, held_out_of) -> list[tuple]:
    """Each reason to leave pairs out, with its mask over `pair_ids` (None: not asked for)."""
    votes = result.votes
    held_out = Pair.objects.filter(project=project, held_out=True)
    if held_out_of is None:
        # A round's fresh held-out pairs measure drift; they never enter a training split.
        ids = list(held_out.values_list("id", flat=True))
        drift = ("held out to measure drift", np.isin(pair_ids, ids) if ids else None)
    else:
        ids = list(held_out.filter(round=held_out_of).values_list("id", flat=True))
        drift = ("not in the round's held-out set", ~np.isin(pair_ids, ids))
    wanted = [k for k, v in DIFFICULTY_NAMES.items() if v in filters.difficulty]
    return [
        ("no labels", n_votes == 0),
        drift,
        ("fewer votes than asked for", n_votes < filters.min_votes),
        ("no majority (contested, not adjudicated)", result.winner < 0),
        ("consensus is a tie", result.winner == CHOICE_TIE),
        ("contested", result.contested if filters.exclude_contested else None),
        ("has tie votes", votes[:, CHOICE_TIE] > 0 if filters.exclude_ties else None),
        ("agreement lower than asked for", result.agreement < filters.min_agreement),
        ("confidence lower than asked for", result.confidence < filters.min_confidence),
        ("difficulty not selected", ~np.isin(result.difficulty, wanted)),
    ]


def _kept_mask(reasons: list[tuple], n: int) -> tuple[np.ndarray, dict[str, int]]:
    """The pairs no reason leaves out, and how many each reason left out first."""
    keep = np.ones(n, dtype=bool)
    dropped: dict[str, int] = {}
    for reason, mask in reasons:
        if mask is None:
            continue
        newly = keep & mask
        if newly.any():
            dropped[reason] = int(newly.sum())
        keep &= ~mask
    return keep, dropped


def curation_select(
    *, project: Project, filters: CurationFilters, held_out_of: Round | None = None
) -> Selection:
    """Apply the filters to the project's current labels (reads only), the consensus by the
    project's rule fitted on the labels the filters leave. Rounds' fresh held-out pairs are
    left out; with `held_out_of`, only that round's are kept."""
    _check_sources(project, filters)
    table, pair_ids = label_table(project=project, exclude_sources=filters.exclude_sources)
    unreliable, notes, fit = _unreliable_raters(table, filters.min_annotator_reliability)
    low = sorted(set(_low_kappa_raters(table, filters.min_annotator_kappa)) | set(unreliable))
    table = table.labels_where(~np.isin(table.rater, low))
    # Nobody left out: the reliability fit is the one the rule would make.
    posterior, rule_used = _weighed(table, project.consensus_rule, None if low else fit)
    result = item_consensus(table, project.difficulty_rule, posterior)
    n_votes = result.votes.sum(axis=1)
    reasons = _reasons(project, filters, pair_ids, result, n_votes, held_out_of)
    keep, dropped = _kept_mask(reasons, len(pair_ids))
    balance = None
    if filters.balance_length:
        balance, excess = _length_balance(table, result.winner, pair_ids, keep, filters)
        if excess.size:
            dropped[LENGTH_BALANCE_REASON] = int(excess.size)
            keep[excess] = False
    kept = np.nonzero(keep)[0]
    names = [DIFFICULTY_NAMES[int(d)] for d in result.difficulty[kept]]
    on_kept = np.isin(table.item, kept)
    raters, counts = np.unique(table.rater[on_kept], return_counts=True)
    return Selection(
        pair_ids=[pair_ids[i] for i in kept],
        winner=result.winner[kept].tolist(),
        margin=result.margin[kept].tolist(),
        difficulty=names,
        agreement=result.agreement[kept].tolist(),
        confidence=result.confidence[kept].tolist(),
        n_votes=n_votes[kept].tolist(),
        consensus=rule_used,
        notes=notes,
        dropped=dropped,
        by_difficulty={d: names.count(d) for d in DIFFICULTIES},
        by_source={table.rater_names[int(r)]: int(c) for r, c in zip(raters, counts, strict=True)},
        dropped_annotators=[table.rater_names[r] for r in low],
        balance_length=balance,
    )


LENGTH_BALANCE_REASON = "balancing length (train split)"
PAIR_PROMPTS_SQL = "SELECT id, CAST(prompt AS TEXT) FROM annotation_pair WHERE id {ids}"


def _length_balance(table, winner, pair_ids, keep, filters) -> tuple[dict, np.ndarray]:
    """The counts of a length balance of the train split, and the items it drops: as many
    pairs whose chosen response is the longer (in characters) as pairs whose chosen response
    is the shorter, the excess drawn at random by the seed; pairs of equal length stay.
    The test split is left as drawn, the same pairs as a version made without balancing,
    so that a model trained on either is measured on the same pairs, length bias included."""
    kept = np.nonzero(keep)[0]
    prompts = dict(rows_for_ids(PAIR_PROMPTS_SQL, [], [int(pair_ids[i]) for i in kept]))
    splits = np.array(
        [
            _split_of(json.loads(prompts[int(pair_ids[i])]), filters.seed, filters.test_fraction)
            for i in kept
        ],
        dtype=str,
    )
    chosen_a = winner[kept] == CHOICE_A
    chosen = np.where(chosen_a, table.length_a[kept], table.length_b[kept])
    rejected = np.where(chosen_a, table.length_b[kept], table.length_a[kept])

    def counts(members: np.ndarray) -> dict[str, int]:
        return {
            "chosen_longer": int((members & (chosen > rejected)).sum()),
            "chosen_shorter": int((members & (chosen < rejected)).sum()),
            "equal": int((members & (chosen == rejected)).sum()),
        }

    train = splits == "train"
    before = counts(train)
    longer = kept[train & (chosen > rejected)].tolist()
    shorter = kept[train & (chosen < rejected)].tolist()
    larger, smaller = (longer, shorter) if len(longer) > len(shorter) else (shorter, longer)
    excess = np.array(
        sorted(random.Random(filters.seed).sample(larger, len(larger) - len(smaller))),
        dtype=np.int64,
    )
    after = counts(train & ~np.isin(kept, excess))
    record = {
        "measure": "characters of the response text",
        "split": "train",
        "chosen_longer_before": before["chosen_longer"],
        "chosen_shorter_before": before["chosen_shorter"],
        "dropped": int(excess.size),
        **after,
        "test": counts(splits == "test"),
    }
    return record, excess


def _split_of(prompt, seed: int, test_fraction: float) -> str:
    """'test' or 'train', decided by a hash of the prompt: a prompt is never in both."""
    key = json.dumps([seed, prompt], ensure_ascii=False, sort_keys=True).encode()
    share = int(hashlib.sha256(key).hexdigest()[:12], 16) / 16**12
    return "test" if share < test_fraction else "train"


PAIR_TEXTS_SQL = """
    SELECT id, external_id, CAST(prompt AS TEXT), response_a, response_b
    FROM annotation_pair WHERE id {ids}
"""


def selection_rows(selection: Selection, filters: CurationFilters) -> tuple[list[dict], bool]:
    pairs = {
        pid: (external_id, json.loads(prompt), a, b)
        for pid, external_id, prompt, a, b in rows_for_ids(PAIR_TEXTS_SQL, [], selection.pair_ids)
    }
    conversational = any(isinstance(pairs[pid][1], list) for pid in selection.pair_ids)
    rows = []
    for i, pid in enumerate(selection.pair_ids):
        external_id, original_prompt, response_a, response_b = pairs[pid]
        chosen, rejected = (
            (response_a, response_b)
            if selection.winner[i] == CHOICE_A
            else (response_b, response_a)
        )
        prompt = original_prompt
        if conversational:
            if isinstance(prompt, str):
                prompt = [{"role": "user", "content": prompt}]
            chosen = [{"role": "assistant", "content": chosen}]
            rejected = [{"role": "assistant", "content": rejected}]
        rows.append(
            {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "margin": round(selection.margin[i], 6),
                "confidence": round(selection.confidence[i], 6),
                "difficulty": selection.difficulty[i],
                "agreement": round(selection.agreement[i], 6),
                "n_votes": selection.n_votes[i],
                "pair_id": external_id,
                "split": _split_of(original_prompt, filters.seed, filters.test_fraction),
            }
        )
    return rows, conversational
