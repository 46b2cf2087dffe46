"""Writes of a project's setup: creating it, changing its settings and its order of
precedence for unlabelled work, and its members."""

import logging
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from annotation.activity import Kind, record
from annotation.agreement.services import consensus_fit, consensus_refresh
from annotation.labelling.selectors import ROUND, SOURCE, Place, precedence_of
from annotation.models import Membership, Pair, PairConsensus, Project, QueuePrecedence, Round

logger = logging.getLogger(__name__)

# Pairs whose consensus rows are recomputed per statement when the difficulty rule changes.
REFRESH_BATCH = 5000


def project_create(*, fields: dict, lead: AbstractBaseUser | None = None) -> Project:
    """A new project; `lead` (a lead of another project who starts this one) becomes its
    first lead, so that it is theirs to set up."""
    project = Project(**fields)
    project.full_clean()
    with transaction.atomic():
        project.save()
        if lead is not None:
            Membership.objects.create(project=project, user=lead, role=Membership.Role.LEAD)
        record(Kind.PROJECT_CREATED, project=project, target=project)
    return project


def project_update(*, project: Project, fields: dict) -> list[str]:
    """Save changed settings; returns the names of those that changed. A new difficulty rule
    has a worker (the web process, with no broker) re-grade every labelled pair of the project
    (project_regrade), so that its dashboard, review pages and curation filters follow the
    rule on screen."""
    before = (project.difficulty_rule, project.consensus_rule)
    changed = {
        name: (getattr(project, name), value)
        for name, value in fields.items()
        if getattr(project, name) != value
    }
    for name in changed:
        setattr(project, name, fields[name])
    project.full_clean()
    with transaction.atomic():
        project.save()
        if (project.difficulty_rule, project.consensus_rule) != before:
            transaction.on_commit(partial(_regrade_soon, project.pk))
        if changed:
            record(Kind.PROJECT_CHANGED, project=project, target=project, changes=changed)
    return list(changed)


REGRADE_TASK = "annotation.regrade"


def _regrade_soon(project_id: int) -> None:
    from config.celery import BrokerUnavailable, enqueue

    try:
        enqueue(REGRADE_TASK, project_id)
    except BrokerUnavailable:  # slower here, but the figures must follow the rule
        logger.warning("no broker: re-grading project %s in the web process", project_id)
        project_regrade(project_id=project_id)


def project_regrade(*, project_id: int) -> int:
    """Fit the project's consensus rule to its labels where it weighs votes (consensus_fit),
    then recompute the consensus rows (difficulty included) of every labelled pair of the
    project, REFRESH_BATCH pairs a statement; each batch reads the rules as they are then.
    Returns how many pairs were re-graded."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    consensus_fit(project=project)
    pair_ids = list(
        PairConsensus.objects.filter(project_id=project_id)
        .order_by("pair_id")
        .values_list("pair_id", flat=True)
    )
    for start in range(0, len(pair_ids), REFRESH_BATCH):
        consensus_refresh(pair_ids=pair_ids[start : start + REFRESH_BATCH])
    return len(pair_ids)


def _user_named(identifier: str) -> AbstractBaseUser:
    users = get_user_model().objects.filter(is_active=True)
    matches = list(users.filter(Q(username=identifier) | Q(email__iexact=identifier))[:2])
    if len(matches) != 1:
        reason = "No active account has" if not matches else "More than one account has"
        raise ValidationError({"user": f"{reason} the name or e-mail {identifier!r}."})
    return matches[0]


def membership_add(*, project: Project, identifier: str, role: str) -> Membership:
    """Add someone with an account to the project, by user name or e-mail address."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": "Choose annotator or lead."})
    user = _user_named(identifier)
    if Membership.objects.filter(project=project, user=user).exists():
        raise ValidationError({"user": f"{user.get_username()} is in the project already."})
    membership = Membership.objects.create(project=project, user=user, role=role)
    record(
        Kind.MEMBER_ADDED,
        project=project,
        target=membership,
        summary=f"{user.get_username()} as {role}",
    )
    return membership


def _guard_self(membership: Membership, actor: AbstractBaseUser, actor_is_admin: bool) -> None:
    # A lead who demoted or removed themselves would lose the page they did it on.
    if membership.user_id == actor.pk and not actor_is_admin:
        raise ValidationError("You cannot change your own membership; ask another lead.")


def membership_role_set(
    *, membership: Membership, role: str, actor: AbstractBaseUser, actor_is_admin: bool
) -> None:
    if role not in Membership.Role.values:
        raise ValidationError({"role": "Choose annotator or lead."})
    _guard_self(membership, actor, actor_is_admin)
    Membership.objects.filter(pk=membership.pk).update(role=role)
    if role != membership.role:
        record(
            Kind.MEMBER_CHANGED,
            actor=actor,
            project=membership.project,
            target=membership,
            summary=membership.user.get_username(),
            changes={"role": (membership.role, role)},
        )


def membership_remove(
    *, membership: Membership, actor: AbstractBaseUser, actor_is_admin: bool
) -> None:
    """Take someone off the project. Their labels stay; the pairs they hold go back to the
    pool at once."""
    _guard_self(membership, actor, actor_is_admin)
    project, target_repr = membership.project, str(membership)
    membership.delete()
    record(
        Kind.MEMBER_REMOVED,
        actor=actor,
        project=project,
        summary=f"{target_repr}; their labels stay",
    )


def project_ensure(*, name: str) -> tuple[Project, bool]:
    """The project with this name, created with default settings when there is none."""
    name = name.strip()
    if not name:
        raise ValidationError("A project needs a name.")
    return Project.objects.get_or_create(name=name)


PRECEDENCE_MOVES = ("up", "down", "pause", "resume")


def _checked_places(project: Project, places: object) -> list[QueuePrecedence]:
    """The rows for `places`, [{"kind": "round"|"source", "name": ..., "paused": bool}],
    highest first; a ValidationError naming the first thing wrong, if anything is."""
    if not isinstance(places, list):
        raise ValidationError('Send a list of {"kind", "name", "paused"}, highest first.')
    rows, seen = [], set()
    for position, place in enumerate(places, 1):
        if not isinstance(place, dict) or not set(place) <= {"kind", "name", "paused"}:
            raise ValidationError(f"Place {position}: give kind, name and paused only.")
        kind, name, paused = place.get("kind"), place.get("name"), place.get("paused", False)
        if kind not in (ROUND, SOURCE):
            raise ValidationError(f'Place {position}: kind is "round" or "source".')
        if not isinstance(name, str) or not isinstance(paused, bool):
            raise ValidationError(f"Place {position}: name is text and paused true or false.")
        if (kind, name) in seen:
            raise ValidationError(f"Place {position}: {kind} {name!r} is placed twice.")
        seen.add((kind, name))
        if kind == ROUND:
            round_id = Round.objects.filter(project=project, name=name).values_list("id", flat=True)
            row = QueuePrecedence(round_id=round_id.first(), paused=paused)
            known = row.round_id is not None
        else:
            row = QueuePrecedence(source=name, paused=paused)
            known = Pair.objects.filter(project=project, round__isnull=True, source=name).exists()
        if not known:
            raise ValidationError(f"Place {position}: {project.name} has no {kind} {name!r}.")
        rows.append(row)
    return rows


def precedence_set(*, project: Project, places: object) -> list[Place]:
    """Replace the project's order of precedence for its unlabelled work with `places`
    (rounds and sources, highest first, each paused or not); those left out fall in where
    they do by default. Bad input changes nothing. Returns the whole order, with counts."""
    rows = _checked_places(project, places)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).exists()  # one change at a time
        QueuePrecedence.objects.filter(project=project).delete()
        for position, row in enumerate(rows, 1):
            row.project, row.position = project, position
        QueuePrecedence.objects.bulk_create(rows)
        order = ", ".join(
            f"{place['kind']} {place['name']}" + (" (paused)" if place.get("paused") else "")
            for place in places
        )
        record(Kind.QUEUE_ORDER_CHANGED, project=project, target=project, summary=order)
    return precedence_of(project=project, counts=True)


def precedence_move(*, project: Project, kind: str, name: str, move: str) -> list[Place]:
    """Move one place of the project's precedence up or down a step, or pause or resume it;
    the whole order shown (places that fell in by default included) is then the one set."""
    order = precedence_of(project=project, counts=True)
    at = next((i for i, place in enumerate(order) if place.key == (kind, name)), None)
    if at is None or move not in PRECEDENCE_MOVES:
        raise ValidationError(f"No {kind} {name!r} to {move} in {project.name}.")
    if move in ("pause", "resume"):
        order[at].paused = move == "pause"
    else:
        other = at - 1 if move == "up" else at + 1
        if 0 <= other < len(order):
            order[at], order[other] = order[other], order[at]
    places = [{"kind": p.kind, "name": p.name, "paused": p.paused} for p in order]
    return precedence_set(project=project, places=places)
