"""Who may use the API on a project's rows, as DRF permission classes.

Someone with no role in the project is told 404, not 403, so that ids do not leak (as DRF's
own DjangoObjectPermissions does for users who may not even read an object). A member who may
look but not do this gets 403 with `message`. Anonymous requests are refused before any
lookup, as IsAuthenticated does. Views call `self.check_object_permissions(request, obj)`
with the project, or with a row that has a `.project`.
"""

from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated

from annotation.models import Membership, Project
from annotation.selectors import ADMIN, project_role


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
