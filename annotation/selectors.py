"""Read paths: who may see what, queues' progress, labels."""

from datetime import datetime, time

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotation.models import Assignment, Label, Membership, Pair, Project

ADMIN = "admin"


def user_is_admin(user: AbstractBaseUser) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.is_staff))


def project_role(*, user: AbstractBaseUser, project: Project) -> str | None:
    """'admin', 'lead', 'annotator', or None for someone with no business in the project."""
    if not user.is_authenticated:
        return None
    if user_is_admin(user):
        return ADMIN
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def can_manage_project(*, user: AbstractBaseUser, project: Project) -> bool:
    """Leads and admins see a project's data and import into it."""
    return project_role(user=user, project=project) in (ADMIN, Membership.Role.LEAD)


def can_annotate_project(*, user: AbstractBaseUser, project: Project) -> bool:
    return project_role(user=user, project=project) is not None


def projects_visible(*, user: AbstractBaseUser) -> QuerySet[Project]:
    if user_is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def projects_with_roles(*, user: AbstractBaseUser) -> list[tuple[Project, str]]:
    if user_is_admin(user):
        return [(project, ADMIN) for project in Project.objects.all()]
    return [
        (m.project, m.role) for m in Membership.objects.filter(user=user).select_related("project")
    ]


def pairs_for_project(*, project: Project) -> QuerySet[Pair]:
    return project.pairs.order_by("id")


def start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def queue_progress(*, project: Project, annotator: AbstractBaseUser) -> dict[str, int]:
    """What the annotator has labelled today and how many pairs are still open to them."""
    labelled_today = Label.objects.filter(
        annotator=annotator, pair__project=project, created_at__gte=start_of_today()
    ).count()
    labelled_total = Label.objects.filter(annotator=annotator, pair__project=project).count()
    already_had = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator).exclude(
        state=Assignment.State.EXPIRED
    )
    remaining = (
        Pair.objects.filter(project=project, slots_taken__lt=project.annotators_per_pair)
        .exclude(Exists(already_had))
        .count()
    )
    return {
        "labelled_today": labelled_today,
        "labelled_total": labelled_total,
        "remaining": remaining,
    }


def labels_of_annotator(*, annotator: AbstractBaseUser) -> QuerySet[Label]:
    return (
        Label.objects.filter(annotator=annotator)
        .select_related("pair__project")
        .order_by("-created_at", "-id")
    )


def labels_for_export(*, project: Project) -> QuerySet[Label]:
    return (
        Label.objects.filter(pair__project=project)
        .select_related("annotator")
        .order_by("pair_id", "id")
        .values(
            "pair__external_id",
            "annotator__username",
            "source",
            "choice",
            "strength",
            "rationale",
            "shown_left",
            "duration_ms",
            "created_at",
        )
    )
