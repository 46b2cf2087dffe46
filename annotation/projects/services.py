"""Writes of a project's setup: creating it, changing its settings, and its members."""

import logging
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from annotation.agreement.services import consensus_fit, consensus_refresh
from annotation.models import Membership, PairConsensus, Project

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
    return project


def project_update(*, project: Project, fields: dict) -> list[str]:
    """Save changed settings; returns the names of those that changed. A new difficulty rule
    has a worker (the web process, with no broker) re-grade every labelled pair of the project
    (project_regrade), so that its dashboard, review pages and curation filters follow the
    rule on screen."""
    before = (project.difficulty_rule, project.consensus_rule)
    changed = [name for name, value in fields.items() if getattr(project, name) != value]
    for name in changed:
        setattr(project, name, fields[name])
    project.full_clean()
    with transaction.atomic():
        project.save()
        if (project.difficulty_rule, project.consensus_rule) != before:
            transaction.on_commit(partial(_regrade_soon, project.pk))
    return changed


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
    return Membership.objects.create(project=project, user=user, role=role)


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


def membership_remove(
    *, membership: Membership, actor: AbstractBaseUser, actor_is_admin: bool
) -> None:
    """Take someone off the project. Their labels stay; the pairs they hold go back to the
    pool at once."""
    _guard_self(membership, actor, actor_is_admin)
    membership.delete()


def project_ensure(*, name: str) -> tuple[Project, bool]:
    """The project with this name, created with default settings when there is none."""
    name = name.strip()
    if not name:
        raise ValidationError("A project needs a name.")
    return Project.objects.get_or_create(name=name)
