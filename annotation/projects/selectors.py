"""Reads of projects: which ones a person sees, and in which role."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotation.access import ADMIN, user_is_admin
from annotation.models import (
    Membership,
    Project,
)


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
