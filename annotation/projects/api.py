"""REST API: the projects a person sees, a project's settings, and its order of precedence
for unlabelled work."""

from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from annotation.access import IsProjectLead, IsProjectMember, ProjectScopedView, project_role
from annotation.labelling.selectors import precedence_of
from annotation.models import Project
from annotation.projects.forms import ProjectSettingsForm
from annotation.projects.selectors import projects_visible, projects_with_roles
from annotation.projects.serializers import PlaceSerializer, ProjectSerializer
from annotation.projects.services import precedence_set, project_update


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return projects_visible(user=self.request.user).order_by("name")

    def get_serializer_context(self):
        roles = {p.pk: role for p, role in projects_with_roles(user=self.request.user)}
        return {**super().get_serializer_context(), "roles": roles}


class ProjectDetail(ProjectScopedView):
    """A project's settings: every member reads them; leads and admins change any of the
    settings page's fields with PATCH (the assignment timeout in minutes), checked as the page
    checks them."""

    def get_permissions(self):
        lead = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return [IsProjectLead()] if lead else [IsProjectMember()]

    def _shown(self, project: Project):
        role = project_role(user=self.request.user, project=project)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: role}}).data)

    @extend_schema(responses=ProjectSerializer)
    def get(self, request, pk: int):
        return self._shown(self.get_project())

    @extend_schema(request=OpenApiTypes.OBJECT, responses=ProjectSerializer)
    def patch(self, request, pk: int):
        project = self.get_project()
        names = ProjectSettingsForm.Meta.fields
        given = request.data.dict() if hasattr(request.data, "dict") else request.data
        if not isinstance(given, dict):
            return Response(
                {"detail": "Send a JSON object of settings."}, status=status.HTTP_400_BAD_REQUEST
            )
        unknown = sorted(set(given) - set(names))
        if unknown:
            return Response(
                {"detail": f"Not a setting: {', '.join(unknown)}. Settings: {', '.join(names)}."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        current = ProjectSettingsForm(instance=project)
        data = {name: current[name].value() for name in names} | given
        # A copy: validating writes into the instance, and project_update compares.
        form = ProjectSettingsForm(data, instance=Project.objects.get(pk=project.pk))
        if not form.is_valid():
            errors = {name: [str(m) for m in found] for name, found in form.errors.items()}
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        project_update(project=project, fields=form.cleaned_data)  # errors: 400 (errors.py)
        return self._shown(project)


class ProjectPrecedence(ProjectScopedView):
    """The order in which the queue serves a project's unlabelled work, highest first, with
    each place's unlabelled pairs: every member reads it; leads and admins replace it with
    PUT [{"kind": "round"|"source", "name": ..., "paused": bool}, ...]. Places left out fall
    in by default; an unknown name or a malformed list is a 400 that changes nothing."""

    def get_permissions(self):
        lead = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return [IsProjectLead()] if lead else [IsProjectMember()]

    @extend_schema(responses=PlaceSerializer(many=True))
    def get(self, request, pk: int):
        order = precedence_of(project=self.get_project(), counts=True)
        return Response(PlaceSerializer(order, many=True).data)

    @extend_schema(request=PlaceSerializer(many=True), responses=PlaceSerializer(many=True))
    def put(self, request, pk: int):
        order = precedence_set(project=self.get_project(), places=request.data)
        return Response(PlaceSerializer(order, many=True).data)
