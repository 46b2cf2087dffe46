"""REST API: curation previews, a project's versions, a version and its files."""

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from annotation.access import IsProjectLead, ProjectScopedView
from annotation.curation.selection import curation_select
from annotation.curation.selectors import dataset_download
from annotation.curation.serializers import (
    CurationFiltersSerializer,
    CurationPreviewSerializer,
    CurationRequestSerializer,
    DatasetSerializer,
)
from annotation.curation.services import dataset_curate
from annotation.models import CuratedDataset


class CurationPreview(ProjectScopedView):
    """How many pairs the filters would keep (query parameters as in POST .../datasets/)."""

    permission_classes = [IsProjectLead]

    @extend_schema(parameters=[CurationFiltersSerializer], responses=CurationPreviewSerializer)
    def get(self, request, pk: int):
        project = self.get_project()
        form = CurationFiltersSerializer.from_query(request.query_params)
        form.is_valid(raise_exception=True)
        selection = curation_select(project=project, filters=form.filters())
        return Response(
            {
                "count": selection.count,
                "by_difficulty": selection.by_difficulty,
                "dropped": selection.dropped,
                "dropped_annotators": selection.dropped_annotators,
                "consensus": selection.consensus,
                "notes": selection.notes,
            }
        )


class ProjectDatasets(ProjectScopedView):
    permission_classes = [IsProjectLead]

    @extend_schema(responses=DatasetSerializer(many=True))
    def get(self, request, pk: int):
        project = self.get_project()
        return Response(DatasetSerializer(project.datasets.all(), many=True).data)

    @extend_schema(request=CurationRequestSerializer, responses={201: DatasetSerializer})
    def post(self, request, pk: int):
        project = self.get_project()
        form = CurationRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        dataset = dataset_curate(
            project=project,
            name=form.validated_data["name"],
            filters=form.filters(),
            user=request.user,
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetView(ProjectScopedView):
    permission_classes = [IsProjectLead]

    def get_dataset(self) -> CuratedDataset:
        datasets = CuratedDataset.objects.select_related("project")
        dataset = datasets.filter(identifier=self.kwargs["identifier"]).first()
        if dataset is None:
            raise NotFound("No such dataset version.")
        return self.checked(dataset)


class DatasetDetail(DatasetView):
    @extend_schema(responses=DatasetSerializer)
    def get(self, request, identifier: str):
        return Response(DatasetSerializer(self.get_dataset()).data)


class DatasetDownload(DatasetView):
    """The version as a file: ?format=jsonl (default) or parquet."""

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "parquet"])],
        responses={200: OpenApiResponse(description="The dataset file")},
    )
    def get(self, request, identifier: str):
        dataset = self.get_dataset()
        stream, kind, name = dataset_download(dataset, request.query_params.get("format", "jsonl"))
        return FileResponse(stream, as_attachment=True, filename=name, content_type=kind)
