"""Imports of pairs and labels: atomic, in batches, every bad line named (up to a limit), nothing
written when the file is refused."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.activity import Kind, record
from annotation.agreement.services import consensus_refresh
from annotation.bulk import insert_rows, rows_for_ids
from annotation.models import Label, Pair, Project
from annotation.pairs.formats import (
    LabelRow,
    PairRow,
    read_label_rows,
    read_pair_rows,
)
from annotation.pairs.readers import RowError
from annotation.pairs.search import search_index_soon

IMPORT_BATCH = 5000
MAX_REPORTED_ERRORS = 200


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


def collect_rows(rows: Iterable, skip_invalid: bool) -> tuple[list, list[RowError]]:
    good, errors = [], []
    for row in rows:
        (errors if isinstance(row, RowError) else good).append(row)
    if errors and not skip_invalid:
        raise ImportRejected(errors)
    return good, errors


def pair_ids_by_external_id(project: Project, external_ids: list[str]) -> dict[str, int]:
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
        record(Kind.PAIRS_IMPORTED, project=project, summary=f"{default_source}: {report.summary}")
    return report


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
    existing = pair_ids_by_external_id(project, list(unique))
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
             json.dumps(row.metadata, ensure_ascii=False),
             *Pair.lengths(row.response_a, row.response_b), "", 0, now)
            for row in new_rows
        ],
    )  # fmt: skip
    labelled = [row for row in new_rows if row.preferred]
    pair_ids = pair_ids_by_external_id(project, [row.external_id for row in labelled])
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

    Which response was shown on the left and how long the label took are kept as given, so
    that what export_labels writes imports back whole. A label for a pair and annotator that
    already has one is skipped.
    """
    parsed = list(read_label_rows(stream, filename, fmt))
    pair_ids = pair_ids_by_external_id(
        project, list({row.pair for row in parsed if isinstance(row, LabelRow)})
    )
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
                    shown_left=row.shown_left,
                    duration_ms=row.duration_ms,
                )
            )
        Label.objects.bulk_create(new_labels, batch_size=IMPORT_BATCH)
        consensus_refresh(pair_ids=[label.pair_id for label in new_labels])
        report.imported = len(new_labels)
        name = filename.rsplit("/", 1)[-1][:200]
        record(Kind.LABELS_IMPORTED, project=project, summary=f"{name}: {report.summary}")
    return report
