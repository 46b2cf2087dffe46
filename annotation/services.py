"""Write paths: imports, consensus, adjudication, gold. Plain functions, keyword arguments.

The annotation queue (assignments and the labels that answer them) is in queue.py."""

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from annotation.agreement import (
    CHOICE_CODES,
    CHOICE_NAMES,
    DIFFICULTY_NAMES,
    DifficultyRule,
    consensus,
)
from annotation.bulk import insert_rows, rows_for_ids, upsert_rows
from annotation.formats import (
    LabelRow,
    PairRow,
    RowError,
    SignalRow,
    content_id,
    read_label_rows,
    read_pair_rows,
    read_signal_rows,
)
from annotation.models import Adjudication, Label, Pair, PairConsensus, Project

IMPORT_BATCH = 5000
MAX_REPORTED_ERRORS = 200


logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def summary(self) -> str:
        text = f"imported {self.imported}, skipped {self.skipped}"
        return text + (f", invalid {len(self.errors)}" if self.errors else "")


class ImportRejected(Exception):
    """Bad rows in a file imported without skip_invalid: nothing was written."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:MAX_REPORTED_ERRORS])
        more = len(errors) - MAX_REPORTED_ERRORS
        super().__init__(
            f"{len(errors)} bad row(s), nothing imported:\n{shown}"
            + (f"\n... and {more} more" if more > 0 else "")
        )


def project_ensure(*, name: str) -> tuple[Project, bool]:
    """The project with this name, created with default settings when there is none."""
    name = name.strip()
    if not name:
        raise ValidationError("A project needs a name.")
    return Project.objects.get_or_create(name=name)


def collect_rows(rows: Iterable, skip_invalid: bool) -> tuple[list, list[RowError]]:
    good, errors = [], []
    for row in rows:
        (errors if isinstance(row, RowError) else good).append(row)
    if errors and not skip_invalid:
        raise ImportRejected(errors)
    return good, errors


def _pair_ids(project: Project, external_ids: list[str]) -> dict[str, int]:
    """Map the external ids that the project already has to pair ids."""
    sql = "SELECT external_id, id FROM annotation_pair WHERE project_id = %s AND external_id {ids}"
    return dict(rows_for_ids(sql, [project.pk], external_ids))


PAIR_COLUMNS = [
    "project_id", "external_id", "prompt", "response_a", "response_b", "source", "metadata",
    "length_a", "length_b", "gold_choice", "slots_taken", "created_at",
]  # fmt: skip


def pairs_import(
    *,
    project: Project,
    stream: BinaryIO,
    filename: str,
    fmt: str = "auto",
    label_source: str = "imported",
    skip_invalid: bool = False,
) -> ImportReport:
    """Import pairs from a file, all or nothing, reading it as a stream: rows are written in
    batches of IMPORT_BATCH inside one transaction, so memory stays flat however long the
    file is.

    Rows whose id (or content, for rows without an id) is already in the project, or earlier
    in the file, are skipped, so importing a file twice adds nothing. Rows that arrive
    labelled (chosen/rejected, HH) also get one label from `label_source`.
    """
    label_source = label_source.strip()
    if not label_source:
        raise ValidationError("The label source needs a name.")
    report = ImportReport()
    default_source = filename.rsplit("/", 1)[-1][:200]
    with transaction.atomic():
        # Imports into one project take turns, so that one finds the pairs another has just
        # written and skips them, as it would one after the other, rather than both writing
        # the same ids. NO KEY: rows that only point at the project are not held up.
        Project.objects.select_for_update(no_key=True).filter(pk=project.pk).exists()
        batch: list[PairRow] = []
        for row in read_pair_rows(stream, filename, fmt):
            if isinstance(row, RowError):
                report.errors.append(row)
            elif skip_invalid or not report.errors:  # past a bad row, only look for more
                batch.append(row)
            if len(batch) == IMPORT_BATCH:
                _pairs_insert(project, batch, default_source, label_source, report)
                batch = []
        if report.errors and not skip_invalid:
            raise ImportRejected(report.errors)  # and the transaction rolls back
        _pairs_insert(project, batch, default_source, label_source, report)
        if report.imported:
            transaction.on_commit(search_index_soon)
    return report


SEARCH_INDEX_TASK = "annotation.index_search"


def search_index_soon() -> None:
    """Ask a worker to index new pairs for search now rather than at the next beat."""
    from config.celery import BrokerUnavailable, enqueue

    try:
        enqueue(SEARCH_INDEX_TASK)
    except BrokerUnavailable:
        logger.warning("new pairs become searchable at the next scheduled indexing")


def _pairs_insert(
    project: Project,
    rows: list[PairRow],
    default_source: str,
    label_source: str,
    report: ImportReport,
) -> None:
    """Write one batch of an import: the pairs not yet in the project, and their labels."""
    unique: dict[str, PairRow] = {}
    for row in rows:
        unique.setdefault(row.external_id, row)
    existing = _pair_ids(project, list(unique))
    new_rows = [row for key, row in unique.items() if key not in existing]
    report.skipped += len(rows) - len(new_rows)
    report.imported += len(new_rows)
    now = timezone.now()
    insert_rows(
        Pair,
        PAIR_COLUMNS,
        [
            (project.pk, row.external_id, json.dumps(row.prompt, ensure_ascii=False),
             row.response_a, row.response_b, row.source or default_source,
             json.dumps(row.metadata, ensure_ascii=False), len(row.response_a),
             len(row.response_b), "", 0, now)
            for row in new_rows
        ],
    )  # fmt: skip
    labelled = [row for row in new_rows if row.preferred]
    pair_ids = _pair_ids(project, [row.external_id for row in labelled])
    insert_rows(
        Label,
        ["pair_id", "source", "choice", "rationale", "shown_left", "created_at", "updated_at"],
        [
            (pair_ids[row.external_id], label_source, row.preferred, "", "", now, now)
            for row in labelled
        ],
    )
    consensus_refresh(pair_ids=pair_ids.values())


def labels_import(
    *,
    project: Project,
    stream: BinaryIO,
    filename: str,
    fmt: str = "auto",
    skip_invalid: bool = False,
) -> ImportReport:
    """Import labels collected elsewhere; each annotator name becomes a label source.

    A label for a pair and annotator that already has one is skipped.
    """
    parsed = list(read_label_rows(stream, filename, fmt))
    pair_ids = _pair_ids(project, list({row.pair for row in parsed if isinstance(row, LabelRow)}))
    checked: list[LabelRow | RowError] = []
    for row in parsed:
        if isinstance(row, LabelRow) and row.pair not in pair_ids:
            row = RowError(row.line, f"no pair with id {row.pair!r} in project {project.name!r}")
        elif isinstance(row, LabelRow) and row.choice == "tie" and not project.allow_ties:
            row = RowError(row.line, "this project does not allow ties")
        checked.append(row)
    rows, errors = collect_rows(checked, skip_invalid)
    report = ImportReport(errors=errors)

    with transaction.atomic():
        taken = set(
            Label.objects.filter(pair__project=project, annotator__isnull=True)
            .filter(pair_id__in=[pair_ids[row.pair] for row in rows])
            .values_list("pair_id", "source")
        )
        new_labels = []
        for row in rows:
            key = (pair_ids[row.pair], row.annotator)
            if key in taken:
                report.skipped += 1
                continue
            taken.add(key)
            new_labels.append(
                Label(
                    pair_id=key[0],
                    source=row.annotator,
                    choice=row.choice,
                    strength=row.strength,
                    rationale=row.rationale,
                )
            )
        Label.objects.bulk_create(new_labels, batch_size=IMPORT_BATCH)
        consensus_refresh(pair_ids=[label.pair_id for label in new_labels])
        report.imported = len(new_labels)
    return report


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
        existing = _pair_ids(project, list(pairs))
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
        pair_ids = _pair_ids(project, list(pairs))
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


# ---------------------------------------------------------------------------------------
# Consensus, adjudication, gold


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


# A pair's searchable words: the strings of its prompt (every turn) and both responses.
SEARCH_DOCUMENT_SQL = (
    "jsonb_to_tsvector('simple', prompt, '[\"string\"]')"
    " || to_tsvector('simple', response_a || ' ' || response_b)"
)
SEARCH_INDEX_BATCH = 2000


UNSEARCHED_IDS_SQL = (
    "SELECT id FROM annotation_pair WHERE search_document IS NULL ORDER BY id LIMIT %s "
    "FOR UPDATE SKIP LOCKED"
)


def pairs_search_index(*, limit: int = SEARCH_INDEX_BATCH) -> int:
    """Index the words of up to `limit` pairs that search cannot find yet (PostgreSQL; see
    migration 0006); returns how many. Workers running it at once take different pairs."""
    if connection.vendor != "postgresql":
        return 0
    update = f"UPDATE annotation_pair SET search_document = {SEARCH_DOCUMENT_SQL} WHERE id "
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute(f"{update} IN ({UNSEARCHED_IDS_SQL})", [limit])
                return cursor.rowcount
        except DatabaseError:
            # A pair past PostgreSQL's limits for a text search document (1 MB) fails the
            # batch: index this batch a pair at a time, such a pair with no words, so that
            # it does not stop every pair after it from being indexed.
            pass
        count = 0
        with transaction.atomic():
            cursor.execute(UNSEARCHED_IDS_SQL, [limit])
            for (pair_id,) in cursor.fetchall():
                try:
                    with transaction.atomic():
                        cursor.execute(f"{update} = %s", [pair_id])
                except DatabaseError:
                    logger.warning("pair %s has too many words to search", pair_id)
                    cursor.execute(
                        "UPDATE annotation_pair SET search_document = ''::tsvector WHERE id = %s",
                        [pair_id],
                    )
                count += 1
        return count


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


def pair_adjudicate(*, pair: Pair, lead: AbstractBaseUser, choice: str, note: str = "") -> None:
    """Record a lead's final decision; it overrides the majority from now on."""
    if choice not in CHOICE_CODES:
        raise ValidationError({"choice": "Choose a, b or tie."})
    with transaction.atomic():
        Adjudication.objects.update_or_create(
            pair=pair, defaults={"choice": choice, "decided_by": lead, "note": note.strip()}
        )
        consensus_refresh(pair_ids=[pair.pk])


def pair_adjudication_clear(*, pair: Pair) -> None:
    with transaction.atomic():
        Adjudication.objects.filter(pair=pair).delete()
        consensus_refresh(pair_ids=[pair.pk])


def pair_set_gold(*, pair: Pair, choice: str) -> None:
    """Mark a pair as gold with its known answer, or unmark it with an empty choice."""
    if choice not in ("", *CHOICE_CODES):
        raise ValidationError({"gold_choice": "Choose a, b, tie, or nothing to unmark."})
    with transaction.atomic():
        Pair.objects.filter(pk=pair.pk).update(gold_choice=choice)
        consensus_refresh(pair_ids=[pair.pk])  # marks the figures out of date
