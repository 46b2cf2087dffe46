"""The annotation queue: handing pairs out to annotators (regular, gold and repeat
assignments) and taking their answers back (labels, consistency checks, skips)."""

import random
from collections import Counter
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotation.access import user_is_admin
from annotation.activity import Kind, changed, record
from annotation.agreement.services import consensus_refresh
from annotation.labelling.selectors import paused_work, queue_levels
from annotation.models import (
    Assignment,
    ConsistencyCheck,
    Label,
    Membership,
    Pair,
    Project,
    Side,
)

QUEUE_LOOKAHEAD = 100
QUEUE_SWEEP_SECONDS = 5
MAX_DURATION_MS = 24 * 3600 * 1000


class QueueConflict(Exception):
    """An assignment that can no longer be answered (expired and reissued, or finished)."""


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
    return _give_back(stale)


def _give_back(assignments: list[tuple[int, int, str]]) -> int:
    """Expire (id, pair id, kind) assignments, locked by the caller, and give their places
    back to their pairs."""
    if not assignments:
        return 0
    Assignment.objects.filter(id__in=[a for a, _, _ in assignments]).update(
        state=Assignment.State.EXPIRED
    )
    regular = Counter(p for _, p, kind in assignments if kind == Assignment.Kind.REGULAR)
    for pair_id, count in sorted(regular.items()):
        Pair.objects.filter(pk=pair_id).update(slots_taken=F("slots_taken") - count)
    return len(assignments)


def assignments_release(*, project_id: int, annotator_id: int) -> int:
    """Give back the places an annotator holds in a project's queue (they left it): their
    pairs go to others at once rather than after the timeout."""
    with transaction.atomic():
        held = list(
            Assignment.objects.filter(
                annotator_id=annotator_id, pair__project_id=project_id,
                state=Assignment.State.ACTIVE,
            )
            .select_for_update()
            .values_list("id", "pair_id", "kind")
        )  # fmt: skip
        return _give_back(held)


def _pick_pair(*, project: Project, annotator: AbstractBaseUser) -> Pair | None:
    """Lock the open pair this annotator should label next, from the highest level of the
    project's precedence that has one for them; or return None."""
    already_had = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator).exclude(
        state=Assignment.State.EXPIRED
    )
    for level in queue_levels(project=project):
        open_pairs = Pair.objects.filter(
            level, project=project, slots_taken__lt=project.annotators_per_pair, gold_choice=""
        )
        # Look for the nearest-to-done pair among the level's first hundred in queue order
        # only: a fast annotator's own half-finished pairs sit there, and stepping over
        # thousands of them one by one is what makes a queue slow. Past that, the freshest
        # pair. Both in one statement: the freshest pair ranks after any of the hundred, so
        # the first of them in queue order is the one to take. Only when that one is locked
        # by another request (or the level is empty) does a second statement look further.
        new_to_them = open_pairs.exclude(Exists(already_had))
        nearest = open_pairs.order_by("-slots_taken", "id").values("id")[:QUEUE_LOOKAHEAD]
        freshest = new_to_them.order_by("slots_taken", "-id").values("id")[:1]
        candidates = new_to_them.select_for_update(skip_locked=True)
        pair = (
            candidates.filter(id__in=nearest.union(freshest, all=True))
            .order_by("-slots_taken", "id")
            .first()
        ) or candidates.order_by("slots_taken", "-id").first()
        if pair is not None:
            return pair
    return None


def _issue_gold(*, project: Project, annotator: AbstractBaseUser, now: datetime):
    """A gold pair this annotator has not had, looking like any other pair, from a place in
    the queue's order that is not paused; None if none."""
    had = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator).exclude(
        state=Assignment.State.EXPIRED
    )
    gold = (
        Pair.objects.filter(project=project)
        .exclude(gold_choice="")
        .exclude(Exists(had))
        .exclude(paused_work(project=project))
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

    Serves the project's order of precedence (rounds and sources; paused ones not at all),
    and within a level prefers the pairs closest to `annotators_per_pair` so that pairs
    finish before new ones start. The chosen pair row is locked (skipping rows other
    requests hold), and its place count re-checked, so no pair is ever handed to more
    annotators than the project allows.
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


def _lock_own(assignment_id: int, annotator: AbstractBaseUser, *related: str) -> Assignment:
    """The annotator's assignment with its pair and project, locked, and `is_member` telling
    whether they still belong to the project.

    The assignment and its pair are locked, not the project: answers on other pairs go ahead
    at once. The pair's lock orders two answers to one pair, so each consensus recount sees
    the labels committed before it.
    """
    member = Membership.objects.filter(project=OuterRef("pair__project"), user=annotator)
    return (
        Assignment.objects.select_for_update(of=("self", "pair"))
        .select_related("pair__project", *related)
        .annotate(is_member=Exists(member))
        .get(pk=assignment_id, annotator=annotator)
    )


def _require_membership(assignment: Assignment, annotator: AbstractBaseUser) -> None:
    if not assignment.is_member and not user_is_admin(annotator):
        raise PermissionDenied("You are no longer a member of this project.")


def _check_answerable(assignment: Assignment, annotator: AbstractBaseUser) -> None:
    """Raises unless the locked assignment may take an answer now (an expired one takes its
    place back if the pair still has one)."""
    if assignment.state in (Assignment.State.DONE, Assignment.State.SKIPPED):
        raise QueueConflict(f"This assignment is already {assignment.get_state_display().lower()}.")
    _require_membership(assignment, annotator)
    repeat = Q(kind=Assignment.Kind.REPEAT)
    same_kind = repeat if assignment.kind == Assignment.Kind.REPEAT else ~repeat
    if assignment.state == Assignment.State.EXPIRED and (
        Assignment.objects.filter(same_kind, pair_id=assignment.pair_id, annotator=annotator)
        .exclude(state=Assignment.State.EXPIRED)
        .exists()
    ):
        raise QueueConflict("This pair came back to you in a newer assignment: answer it there.")
    if assignment.state == Assignment.State.EXPIRED and assignment.kind == Assignment.Kind.REGULAR:
        # Its place went back to the pool; take it again if nobody else has.
        pair = Pair.objects.select_for_update().get(pk=assignment.pair_id)
        if pair.slots_taken >= assignment.pair.project.annotators_per_pair:
            raise QueueConflict("This assignment expired and the pair went to someone else.")
        Pair.objects.filter(pk=pair.pk).update(slots_taken=F("slots_taken") + 1)


def _answer_sent_again(
    assignment: Assignment, screen_choice: str, strength: int | None, rationale: str
) -> Label | ConsistencyCheck:
    """The answer a done assignment holds, when the one sent is the same: a client sends it
    again when the reply to the first was lost (the database dropped the connection after
    the commit), and is told it is stored rather than that something went wrong."""
    kind = "repeat" if assignment.kind == Assignment.Kind.REPEAT else "label"
    stored = getattr(assignment, kind, None)
    if stored is None:
        raise QueueConflict(f"This assignment is already {assignment.get_state_display().lower()}.")
    choice, strength = _stored_answer(assignment, screen_choice, strength)
    same = stored.choice == choice
    if isinstance(stored, Label):
        same = same and stored.strength == strength and stored.rationale == rationale.strip()
    if not same:
        raise QueueConflict(
            "You have already labelled this pair, with another answer; that answer is kept."
        )
    return stored


def _stored_answer(
    assignment: Assignment, screen_choice: str, strength: int | None
) -> tuple[str, int | None]:
    """(choice about the stored responses, strength) from an answer in screen terms."""
    project = assignment.pair.project
    if screen_choice == "tie":
        if not project.allow_ties:
            raise ValidationError({"choice": "This project does not allow ties."})
        return Label.Choice.TIE, None
    if screen_choice not in ("left", "right"):
        raise ValidationError({"choice": "Choose left, right or tie."})
    choice = assignment.left if screen_choice == "left" else assignment.right
    if not project.ask_strength:
        return choice, None
    if strength is None:
        raise ValidationError({"strength": "Say how much better: 0, 1, 2 or 3."})
    if strength not in Label.Strength.values:
        raise ValidationError({"strength": "Strength must be 0, 1, 2 or 3."})
    return choice, strength


def label_change(
    *,
    assignment_id: int,
    annotator: AbstractBaseUser,
    screen_choice: str,
    strength: int | None = None,
    rationale: str = "",
) -> Label:
    """Change an answer already given (the annotator went back a pair): allowed until the
    assignment's time would have run out, and only while no version of the project has been
    curated since the label was made."""
    with transaction.atomic():
        assignment = _lock_own(assignment_id, annotator, "label")
        label = getattr(assignment, "label", None)
        if assignment.state != Assignment.State.DONE or label is None:
            raise QueueConflict("Only a pair you have labelled can be labelled again.")
        _require_membership(assignment, annotator)
        project = assignment.pair.project
        if timezone.now() >= assignment.expires_at:
            raise QueueConflict("Too late to change this label: its time has run out.")
        if project.datasets.filter(created_at__gte=label.created_at).exists():
            raise QueueConflict("This label is in a curated version already; it cannot change.")
        before = {"choice": label.choice, "strength": label.strength, "rationale": label.rationale}
        label.choice, label.strength = _stored_answer(assignment, screen_choice, strength)
        label.rationale = rationale.strip()
        label.save(update_fields=["choice", "strength", "rationale", "updated_at"])
        consensus_refresh(pair_ids=[assignment.pair_id])
        summary, changes = f"Pair {assignment.pair.external_id}", changed(before, label)
        record(Kind.LABEL_CHANGED, actor=annotator, project=project, target=label,
               summary=summary, changes=changes)  # fmt: skip
        return label


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
    The same answer sent again returns what is stored and adds nothing.
    """
    with transaction.atomic():
        assignment = _lock_own(assignment_id, annotator, "label", "repeat")
        if assignment.state == Assignment.State.DONE:
            return _answer_sent_again(assignment, screen_choice, strength, rationale)
        _check_answerable(assignment, annotator)
        choice, strength = _stored_answer(assignment, screen_choice, strength)
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
            # No savepoint: a duplicate ends the whole transaction, which rolls back.
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
        record(Kind.LABEL_CREATED, actor=annotator, project=assignment.pair.project, target=label,
               summary=f"Pair {assignment.pair.external_id}: {choice}")  # fmt: skip
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
