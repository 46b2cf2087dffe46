"""Write paths: imports, the annotation queue, labels. Plain functions, keyword arguments."""

import json
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from annotation.agreement import CHOICE_CODES, CHOICE_NAMES, DIFFICULTY_NAMES, consensus
from annotation.bulk import insert_rows, rows_for_ids, upsert_rows
from annotation.formats import LabelRow, PairRow, RowError, read_label_rows, read_pair_rows
from annotation.models import (
    Adjudication,
    Assignment,
    ConsistencyCheck,
    Label,
    Pair,
    PairConsensus,
    Project,
    Side,
)

IMPORT_BATCH = 5000
MAX_REPORTED_ERRORS = 200
MAX_DURATION_MS = 24 * 3600 * 1000
QUEUE_LOOKAHEAD = 100
QUEUE_SWEEP_SECONDS = 5


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


class QueueConflict(Exception):
    """An assignment that can no longer be answered (expired and reissued, or finished)."""


def project_ensure(*, name: str) -> tuple[Project, bool]:
    """The project with this name, created with default settings when there is none."""
    name = name.strip()
    if not name:
        raise ValidationError("A project needs a name.")
    return Project.objects.get_or_create(name=name)


def _collect(rows: Iterable, skip_invalid: bool) -> tuple[list, list[RowError]]:
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


def pairs_import(
    *,
    project: Project,
    stream: BinaryIO,
    filename: str,
    fmt: str = "auto",
    label_source: str = "imported",
    skip_invalid: bool = False,
) -> ImportReport:
    """Import pairs from a file, all or nothing.

    Rows whose id (or content, for rows without an id) is already in the project are skipped,
    so importing a file twice adds nothing. Rows that arrive labelled (chosen/rejected, HH)
    also get one label from `label_source`.
    """
    label_source = label_source.strip()
    if not label_source:
        raise ValidationError("The label source needs a name.")
    rows, errors = _collect(read_pair_rows(stream, filename, fmt), skip_invalid)
    report = ImportReport(errors=errors)
    default_source = filename.rsplit("/", 1)[-1][:200]

    unique: dict[str, PairRow] = {}
    for row in rows:
        if row.external_id in unique:
            report.skipped += 1
        else:
            unique[row.external_id] = row

    with transaction.atomic():
        existing = _pair_ids(project, list(unique))
        report.skipped += len(existing)
        new_rows = [row for key, row in unique.items() if key not in existing]
        now = timezone.now()
        insert_rows(
            Pair,
            ["project_id", "external_id", "prompt", "response_a", "response_b", "source"]
            + ["metadata", "length_a", "length_b", "gold_choice", "slots_taken", "created_at"],
            [
                (
                    project.pk,
                    row.external_id,
                    json.dumps(row.prompt, ensure_ascii=False),
                    row.response_a,
                    row.response_b,
                    row.source or default_source,
                    json.dumps(row.metadata, ensure_ascii=False),
                    len(row.response_a),
                    len(row.response_b),
                    "",
                    0,
                    now,
                )
                for row in new_rows
            ],
        )
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
        report.imported = len(new_rows)
    return report


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
    rows, errors = _collect(checked, skip_invalid)
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


# ---------------------------------------------------------------------------------------
# The annotation queue


def _expire_stale_assignments(*, project: Project, now: datetime, always: bool) -> int:
    """Give the places of unanswered, timed-out assignments back to their pairs.

    Unless `always`, sweeps at most every few seconds per project and process: timeouts are
    minutes long, and the queue's hot path should not pay for a sweep on every request.
    """
    if not always and not cache.add(f"queue-sweep:{project.pk}", 1, QUEUE_SWEEP_SECONDS):
        return 0
    stale = list(
        Assignment.objects.filter(
            state=Assignment.State.ACTIVE, expires_at__lte=now, pair__project=project
        )
        .select_for_update(skip_locked=True)
        .values_list("id", "pair_id", "kind")[:1000]
    )
    if not stale:
        return 0
    Assignment.objects.filter(id__in=[a for a, _, _ in stale]).update(
        state=Assignment.State.EXPIRED
    )
    regular = Counter(p for _, p, kind in stale if kind == Assignment.Kind.REGULAR)
    for pair_id, count in sorted(regular.items()):
        Pair.objects.filter(pk=pair_id).update(slots_taken=F("slots_taken") - count)
    return len(stale)


def _pick_pair(*, project: Project, annotator: AbstractBaseUser) -> Pair | None:
    """Lock the open pair this annotator should label next, or return None."""
    already_had = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator).exclude(
        state=Assignment.State.EXPIRED
    )
    open_pairs = Pair.objects.filter(
        project=project, slots_taken__lt=project.annotators_per_pair, gold_choice=""
    )
    # Look for the nearest-to-done pair among the first hundred in queue order only: a fast
    # annotator's own half-finished pairs sit there, and stepping over thousands of them one
    # by one is what makes a queue slow. Past that, fresh pairs come first.
    nearest = open_pairs.order_by("-slots_taken", "id").values("id")[:QUEUE_LOOKAHEAD]
    candidates = open_pairs.exclude(Exists(already_had)).select_for_update(skip_locked=True)
    return (
        candidates.filter(id__in=Subquery(nearest)).order_by("-slots_taken", "id").first()
        or candidates.order_by("slots_taken", "-id").first()
    )


def _issue_gold(*, project: Project, annotator: AbstractBaseUser, now: datetime):
    """A gold pair this annotator has not had, looking like any other pair; None if none."""
    had = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator).exclude(
        state=Assignment.State.EXPIRED
    )
    gold = (
        Pair.objects.filter(project=project)
        .exclude(gold_choice="")
        .exclude(Exists(had))
        .values_list("id", flat=True)[:QUEUE_LOOKAHEAD]
    )
    candidates = list(gold)
    if not candidates:
        return None
    return Assignment.objects.create(
        pair_id=random.choice(candidates),
        annotator=annotator,
        kind=Assignment.Kind.GOLD,
        left=random.choice([Side.A, Side.B]),
        expires_at=now + project.assignment_timeout,
    )


def _issue_repeat(*, project: Project, annotator: AbstractBaseUser, now: datetime):
    """One of the annotator's recent labels shown again with the sides swapped; None if none."""
    repeated = Assignment.objects.filter(
        pair=OuterRef("pair"), annotator=annotator, kind=Assignment.Kind.REPEAT
    ).exclude(state=Assignment.State.EXPIRED)
    recent = list(
        Label.objects.filter(annotator=annotator, pair__project=project)
        .exclude(Exists(repeated))
        .order_by("-id")
        .values_list("pair_id", "shown_left")[:QUEUE_LOOKAHEAD]
    )
    if not recent:
        return None
    pair_id, shown_left = random.choice(recent)
    swapped = {Side.A: Side.B, Side.B: Side.A}.get(shown_left, random.choice([Side.A, Side.B]))
    return Assignment.objects.create(
        pair_id=pair_id,
        annotator=annotator,
        kind=Assignment.Kind.REPEAT,
        left=swapped,
        expires_at=now + project.assignment_timeout,
    )


def assignment_next(*, project: Project, annotator: AbstractBaseUser) -> Assignment | None:
    """The annotator's live assignment, or a new one; None when nothing is left for them.

    Prefers the pairs closest to `annotators_per_pair` so that pairs finish before new ones
    start. The chosen pair row is locked (skipping rows other requests hold), and its place
    count re-checked, so no pair is ever handed to more annotators than the project allows.
    """
    now = timezone.now()
    with transaction.atomic():
        live = (
            Assignment.objects.filter(
                annotator=annotator,
                state=Assignment.State.ACTIVE,
                expires_at__gt=now,
                pair__project=project,
            )
            .select_related("pair")
            .order_by("issued_at")
            .first()
        )
        if live:
            return live
        draw = random.random()
        if draw < project.gold_rate:
            gold = _issue_gold(project=project, annotator=annotator, now=now)
            if gold:
                return gold
        elif draw < project.gold_rate + project.repeat_rate:
            repeat = _issue_repeat(project=project, annotator=annotator, now=now)
            if repeat:
                return repeat
        _expire_stale_assignments(project=project, now=now, always=False)
        pair = _pick_pair(project=project, annotator=annotator)
        if pair is None and _expire_stale_assignments(project=project, now=now, always=True):
            pair = _pick_pair(project=project, annotator=annotator)
        if pair is None:
            return None
        Pair.objects.filter(pk=pair.pk).update(slots_taken=F("slots_taken") + 1)
        return Assignment.objects.create(
            pair=pair,
            annotator=annotator,
            left=random.choice([Side.A, Side.B]),
            expires_at=now + project.assignment_timeout,
        )


def _lock_answerable(assignment_id: int, annotator: AbstractBaseUser) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update()
        .select_related("pair__project")
        .get(pk=assignment_id, annotator=annotator)
    )
    if assignment.state in (Assignment.State.DONE, Assignment.State.SKIPPED):
        raise QueueConflict(f"This assignment is already {assignment.get_state_display().lower()}.")
    if assignment.state == Assignment.State.EXPIRED and assignment.kind == Assignment.Kind.REGULAR:
        # Its place went back to the pool; take it again if nobody else has.
        pair = Pair.objects.select_for_update().get(pk=assignment.pair_id)
        if pair.slots_taken >= assignment.pair.project.annotators_per_pair:
            raise QueueConflict("This assignment expired and the pair went to someone else.")
        Pair.objects.filter(pk=pair.pk).update(slots_taken=F("slots_taken") + 1)
    return assignment


def label_submit(
    *,
    assignment_id: int,
    annotator: AbstractBaseUser,
    screen_choice: str,
    strength: int | None = None,
    rationale: str = "",
    duration_ms: int | None = None,
) -> Label | ConsistencyCheck:
    """Record the annotator's answer, given in screen terms (left, right or tie).

    The stored choice always names the stored response (a or b), whatever side it was on.
    """
    with transaction.atomic():
        assignment = _lock_answerable(assignment_id, annotator)
        project = assignment.pair.project
        if screen_choice == "tie":
            if not project.allow_ties:
                raise ValidationError({"choice": "This project does not allow ties."})
            choice, strength = Label.Choice.TIE, None
        elif screen_choice in ("left", "right"):
            choice = assignment.left if screen_choice == "left" else assignment.right
            if not project.ask_strength:
                strength = None
            elif strength is None:
                raise ValidationError({"strength": "Say how much better: 0, 1, 2 or 3."})
        else:
            raise ValidationError({"choice": "Choose left, right or tie."})
        if strength is not None and strength not in Label.Strength.values:
            raise ValidationError({"strength": "Strength must be 0, 1, 2 or 3."})
        now = timezone.now()
        if duration_ms is None:
            duration_ms = int((now - assignment.issued_at) / timedelta(milliseconds=1))
        duration_ms = max(0, min(int(duration_ms), MAX_DURATION_MS))

        assignment.state = Assignment.State.DONE
        assignment.finished_at = now
        assignment.save(update_fields=["state", "finished_at"])
        if assignment.kind == Assignment.Kind.REPEAT:
            original = Label.objects.get(pair=assignment.pair, annotator=annotator)
            check = ConsistencyCheck.objects.create(
                label=original, assignment=assignment, choice=choice, shown_left=assignment.left
            )
            consensus_refresh(pair_ids=[assignment.pair_id])  # marks the figures out of date
            return check
        try:
            with transaction.atomic():
                label = Label.objects.create(
                    pair=assignment.pair,
                    annotator=annotator,
                    choice=choice,
                    strength=strength,
                    rationale=rationale.strip(),
                    duration_ms=duration_ms,
                    shown_left=assignment.left,
                    assignment=assignment,
                )
        except IntegrityError as exc:
            raise QueueConflict("You have already labelled this pair.") from exc
        consensus_refresh(pair_ids=[assignment.pair_id])
        return label


def assignment_skip(*, assignment_id: int, annotator: AbstractBaseUser) -> Assignment:
    """Pass on a pair: its place goes back to the pool and it will not come back to you."""
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update().get(
            pk=assignment_id, annotator=annotator
        )
        if assignment.state != Assignment.State.ACTIVE:
            raise QueueConflict("Only a live assignment can be skipped.")
        assignment.state = Assignment.State.SKIPPED
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["state", "finished_at"])
        if assignment.kind == Assignment.Kind.REGULAR:
            Pair.objects.filter(pk=assignment.pair_id).update(slots_taken=F("slots_taken") - 1)
        return assignment


# ---------------------------------------------------------------------------------------
# Consensus, adjudication, gold


def _nullable(values) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


VOTE_TOTALS_SQL = """
    SELECT pair_id,
           SUM(CASE WHEN choice = 'a' THEN 1 ELSE 0 END),
           SUM(CASE WHEN choice = 'b' THEN 1 ELSE 0 END),
           SUM(CASE WHEN choice = 'tie' THEN 1 ELSE 0 END),
           SUM(CASE WHEN choice = 'a' THEN strength ELSE 0 END),
           COUNT(CASE WHEN choice = 'a' THEN strength END),
           SUM(CASE WHEN choice = 'b' THEN strength ELSE 0 END),
           COUNT(CASE WHEN choice = 'b' THEN strength END)
    FROM annotation_label WHERE pair_id {ids} GROUP BY pair_id
"""


def consensus_refresh(*, pair_ids: Iterable[int]) -> None:
    """Recompute the consensus rows of these pairs from their labels and adjudications.

    Called wherever labels or decisions change, for just the pairs they touch.
    """
    import numpy as np

    ids = sorted(set(pair_ids))
    if not ids:
        return
    totals = {row[0]: row[1:] for row in rows_for_ids(VOTE_TOTALS_SQL, [], ids)}
    decided = dict(
        rows_for_ids(
            "SELECT pair_id, choice FROM annotation_adjudication WHERE pair_id {ids}", [], ids
        )
    )
    project_of = dict(
        rows_for_ids("SELECT id, project_id FROM annotation_pair WHERE id {ids}", [], ids)
    )
    now = timezone.now()
    rows = []
    for project in Project.objects.filter(pk__in=set(project_of.values())):
        members = [pid for pid in ids if project_of.get(pid) == project.pk]
        table = np.array([totals.get(pid, (0,) * 7) for pid in members], dtype=float)
        final = np.array([CHOICE_CODES.get(decided.get(pid, ""), -1) for pid in members])
        result = consensus(
            table[:, 0:3].astype(int),
            table[:, [3, 5]],
            table[:, [4, 6]].astype(int),
            final,
            project.difficulty_rule,
        )
        rows.extend(
            zip(
                members,
                [project.pk] * len(members),
                *(table[:, i].astype(int).tolist() for i in range(3)),
                [CHOICE_NAMES.get(w, "") for w in result.winner.tolist()],
                result.contested.tolist(),
                [pid in decided for pid in members],
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
