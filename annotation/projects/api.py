"""REST API: the projects a person sees, and a project's settings."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response

from annotation.access import ProjectScopedView, project_role
from annotation.projects.selectors import projects_visible, projects_with_roles
from annotation.projects.serializers import ProjectSerializer


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return projects_visible(user=self.request.user).order_by("name")

    def get_serializer_context(self):
        roles = {p.pk: role for p, role in projects_with_roles(user=self.request.user)}
        return {**super().get_serializer_context(), "roles": roles}


class ProjectDetail(ProjectScopedView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request, pk: int):
        project = self.get_project()
        role = project_role(user=request.user, project=project)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: role}}).data)
