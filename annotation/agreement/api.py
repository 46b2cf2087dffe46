"""REST API: a project's agreement figures."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from annotation.access import IsProjectLead, ProjectScopedView
from annotation.agreement.selectors import agreement_summary


class ProjectAgreement(ProjectScopedView):
    """The dashboard's figures as JSON; a figure that cannot be computed is null."""

    permission_classes = [IsProjectLead]

    @extend_schema(responses={200: OpenApiResponse(description="Agreement figures")})
    def get(self, request, pk: int):
        return Response(agreement_summary(project=self.get_project()))
