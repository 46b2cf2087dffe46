"""Implicit signals: ratings and engagement of policy outputs turned into pairs with a strength."""

import json
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.agreement.services import consensus_refresh
from annotation.bulk import insert_rows
from annotation.models import Label, Pair, Project
from annotation.pairs.formats import (
    SignalRow,
    content_id,
    read_signal_rows,
)
from annotation.pairs.imports import (
    PAIR_COLUMNS,
    ImportReport,
    collect_rows,
    pair_ids_by_external_id,
)


def signal_strength(gap: float, spread: float) -> int:
    """How much better, from a score difference: its share of the file's score range in
    quarters (a gap of a quarter of the range or less: 0, up to the whole range: 3)."""
    return min(3, int(4 * gap / spread)) if spread > 0 else 0


def signals_import(
    *,
    project: Project,
    stream: BinaryIO,
    filename: str,
    source: str,
    fmt: str = "auto",
    min_gap: float = 0.0,
    skip_invalid: bool = False,
) -> ImportReport:
    """Implicit signals (upvotes, ratings, task completion) as preferences: each prompt's
    responses are paired wherever their scores differ by more than zero and at least
    `min_gap`, and each pair gets a label from `source` for the higher-scored response, its
    strength following the size of the difference. All or nothing; importing a file again
    adds nothing (pairs are known by their content, labels by pair and source)."""
    source = source.strip()
    if not source:
        raise ValidationError("The label source needs a name.")
    if min_gap < 0:
        raise ValidationError("--min-gap cannot be negative.")
    rows, errors = collect_rows(read_signal_rows(stream, filename, fmt), skip_invalid)
    report = ImportReport(errors=errors)
    by_prompt: dict[str, dict[str, SignalRow]] = {}
    for row in rows:  # a response scored twice for one prompt keeps its first score
        key = json.dumps(row.prompt, sort_keys=True, ensure_ascii=False)
        by_prompt.setdefault(key, {}).setdefault(row.response, row)
    scores = [row.score for row in rows]
    spread = max(scores) - min(scores) if scores else 0.0
    pairs: dict[str, tuple] = {}
    for responses in by_prompt.values():
        ranked = list(responses.values())
        for i, first in enumerate(ranked):
            for second in ranked[i + 1 :]:
                gap = first.score - second.score
                if gap and abs(gap) >= min_gap:
                    key = content_id(first.prompt, first.response, second.response)
                    choice = "a" if gap > 0 else "b"
                    pairs[key] = (first, second, choice, signal_strength(abs(gap), spread))
    with transaction.atomic():
        existing = pair_ids_by_external_id(project, list(pairs))
        now = timezone.now()
        new = [(key, value) for key, value in pairs.items() if key not in existing]
        insert_rows(
            Pair,
            PAIR_COLUMNS,
            [
                (project.pk, key, json.dumps(first.prompt, ensure_ascii=False), first.response,
                 second.response, source, json.dumps({"scores": [first.score, second.score]}),
                 len(first.response), len(second.response), "", 0, now)
                for key, (first, second, _, _) in new
            ],
        )  # fmt: skip
        pair_ids = pair_ids_by_external_id(project, list(pairs))
        labelled = set(
            Label.objects.filter(pair_id__in=pair_ids.values(), annotator__isnull=True,
                                 source=source).values_list("pair_id", flat=True)
        )  # fmt: skip
        # A pair already here may hold the two responses the other way round.
        stored_a = dict(
            Pair.objects.filter(pk__in=[existing[key] for key, _ in pairs.items()
                                        if key in existing]).values_list("pk", "response_a")
        )  # fmt: skip
        labels = []
        for key, (first, _, choice, strength) in pairs.items():
            pair_id = pair_ids[key]
            if pair_id in labelled:
                continue
            if stored_a.get(pair_id, first.response) != first.response:
                choice = {"a": "b", "b": "a"}[choice]
            labels.append((pair_id, source, choice, strength, "", "", now, now))
        insert_rows(
            Label,
            ["pair_id", "source", "choice", "strength", "rationale", "shown_left", "created_at",
             "updated_at"],
            labels,
        )  # fmt: skip
        consensus_refresh(pair_ids=[label[0] for label in labels])
    report.imported, report.skipped = len(labels), len(pairs) - len(labels)
    return report
