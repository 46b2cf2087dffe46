"""REST API: a project's models by rounds."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import IsProjectLead
from annotation.models import Project
from rewardmodels.evaluation.drift import project_drift


class ProjectDrift(APIView):
    """Each model of the project on each round's fresh held-out set (accuracy, its 95%
    interval, pairs), the promoted model marked, and the drift warning (null when none);
    for the project's leads and admins."""

    permission_classes = [IsProjectLead]

    @extend_schema(responses=dict)
    def get(self, request, pk: int):
        project = get_object_or_404(Project, pk=pk)
        self.check_object_permissions(request, project)
        return Response(project_drift(project=project).as_json())
