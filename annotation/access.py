"""Who may see and change what: roles in a project, and the same rules for pages (project_for) and
for the API (DRF permission classes and the base of every project-scoped view). Someone with no role
in a project is told 404, not 403, so that ids do not leak."""

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from annotation.models import (
    Membership,
    Project,
)

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


def may_create_projects(user: AbstractBaseUser) -> bool:
    """Admins, and leads of a project, who then lead the project they start."""
    return (
        user_is_admin(user)
        or Membership.objects.filter(user=user, role=Membership.Role.LEAD).exists()
    )


def project_for(request, pk: int, *, manage: bool = False) -> tuple[Project, str]:
    project = get_object_or_404(Project, pk=pk)
    role = project_role(user=request.user, project=project)
    if role is None or (manage and role not in (ADMIN, "lead")):
        raise Http404("No such project.")
    return project, role


class IsProjectMember(IsAuthenticated):
    """Annotators, leads and admins of the object's project."""

    not_found = "No such project."

    def has_object_permission(self, request, view, obj) -> bool:
        project = obj if isinstance(obj, Project) else obj.project
        role = project_role(user=request.user, project=project)
        if role is None:
            raise NotFound(self.not_found)
        return self.role_allowed(role)

    def role_allowed(self, role: str) -> bool:
        return True


class IsProjectLead(IsProjectMember):
    """Leads and admins of the object's project; its annotators get 403."""

    message = "Only the project's leads and admins can do this."

    def role_allowed(self, role: str) -> bool:
        return role in (ADMIN, Membership.Role.LEAD)


class ProjectScopedView(APIView):
    """A view on one project or its rows. Every row it loads goes through `checked`, which
    applies `permission_classes` to it: members by default, leads and admins where a view
    says IsProjectLead."""

    permission_classes = [IsProjectMember]

    def checked(self, obj):
        """obj (the project, or a row of it), once the requester may act on it."""
        self.check_object_permissions(self.request, obj)
        return obj

    def get_project(self) -> Project:
        return self.checked(get_object_or_404(Project, pk=self.kwargs["pk"]))
