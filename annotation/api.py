"""REST API: projects, pairs, import, the annotation queue, own labels."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from annotation import curation, selectors, services
from annotation.formats import FileRejected
from annotation.models import Assignment, CuratedDataset, Label, Pair, Project
from annotation.serializers import (
    AdjudicationSerializer,
    AssignmentSerializer,
    CurationFiltersSerializer,
    CurationPreviewSerializer,
    CurationRequestSerializer,
    DatasetSerializer,
    GoldSerializer,
    ImportReportSerializer,
    ImportSerializer,
    LabelSubmitSerializer,
    OwnLabelSerializer,
    PairSerializer,
    ProgressSerializer,
    ProjectSerializer,
)

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    """DRF's handler, plus clear 4xx answers for the domain's own errors."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, services.ImportRejected):
        return Response(
            {"detail": "Nothing was imported.", "errors": [str(e) for e in exc.errors]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, FileRejected):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, services.QueueConflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)


def get_project(request, pk: int, *, manage: bool = False) -> Project:
    """The project if the requester belongs to it (404 otherwise, so ids do not leak)."""
    project = get_object_or_404(Project, pk=pk)
    role = selectors.project_role(user=request.user, project=project)
    if role is None:
        raise NotFound("No such project.")
    if manage and role not in (selectors.ADMIN, "lead"):
        raise PermissionDenied("Only the project's leads and admins can do this.")
    return project


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return selectors.projects_visible(user=self.request.user).order_by("name")

    def get_serializer_context(self):
        roles = {p.pk: role for p, role in selectors.projects_with_roles(user=self.request.user)}
        return {**super().get_serializer_context(), "roles": roles}


class ProjectDetail(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request, pk: int):
        project = get_project(request, pk)
        role = selectors.project_role(user=request.user, project=project)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: role}}).data)


class PairList(generics.ListAPIView):
    """A project's pairs, for leads and admins. Filters: source, external_id, labelled."""

    serializer_class = PairSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("source", str),
            OpenApiParameter("external_id", str),
            OpenApiParameter("labelled", bool, description="Only pairs with (or without) labels"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        project = get_project(self.request, self.kwargs["pk"], manage=True)
        label_count = (
            Label.objects.filter(pair=OuterRef("pk"))
            .order_by()
            .values("pair")
            .annotate(n=Count("id"))
            .values("n")
        )
        pairs = selectors.pairs_for_project(project=project).annotate(
            n_labels=Coalesce(Subquery(label_count, output_field=IntegerField()), 0)
        )
        params = self.request.query_params
        if params.get("source"):
            pairs = pairs.filter(source=params["source"])
        if params.get("external_id"):
            pairs = pairs.filter(external_id=params["external_id"])
        labelled = params.get("labelled", "").lower()
        if labelled in ("true", "1", "false", "0"):
            has_label = Exists(Label.objects.filter(pair=OuterRef("pk")))
            pairs = pairs.filter(has_label if labelled in ("true", "1") else ~has_label)
        return pairs


class PairImport(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportSerializer, responses={201: ImportReportSerializer})
    def post(self, request, pk: int):
        project = get_project(request, pk, manage=True)
        form = ImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        report = services.pairs_import(
            project=project,
            stream=upload,
            filename=upload.name,
            fmt=form.validated_data["format"],
            label_source=form.validated_data["source"],
            skip_invalid=form.validated_data["skip_invalid"],
        )
        body = {
            "imported": report.imported,
            "skipped": report.skipped,
            "errors": [str(e) for e in report.errors],
            "summary": report.summary,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class NextAssignment(APIView):
    @extend_schema(
        request=None,
        responses={
            200: AssignmentSerializer,
            204: OpenApiResponse(description="Nothing left to label"),
        },
    )
    def post(self, request, pk: int):
        project = get_project(request, pk)
        assignment = services.assignment_next(project=project, annotator=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSerializer(assignment).data)


class QueueProgress(APIView):
    @extend_schema(responses=ProgressSerializer)
    def get(self, request, pk: int):
        project = get_project(request, pk)
        return Response(selectors.queue_progress(project=project, annotator=request.user))


def _own_assignment(request, pk: int) -> int:
    if not Assignment.objects.filter(pk=pk, annotator=request.user).exists():
        raise NotFound("No such assignment of yours.")
    return pk


class LabelSubmit(APIView):
    @extend_schema(request=LabelSubmitSerializer, responses={201: LabelSubmitSerializer})
    def post(self, request, pk: int):
        form = LabelSubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.label_submit(
            assignment_id=_own_assignment(request, pk),
            annotator=request.user,
            screen_choice=form.validated_data["choice"],
            strength=form.validated_data.get("strength"),
            rationale=form.validated_data.get("rationale", ""),
            duration_ms=form.validated_data.get("duration_ms"),
        )
        return Response(form.data, status=status.HTTP_201_CREATED)


class AssignmentSkip(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, pk: int):
        services.assignment_skip(assignment_id=_own_assignment(request, pk), annotator=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OwnLabels(generics.ListAPIView):
    """The requester's own labels, newest first; ?project=ID narrows to one project."""

    serializer_class = OwnLabelSerializer

    def get_queryset(self):
        labels = selectors.labels_of_annotator(annotator=self.request.user)
        project = self.request.query_params.get("project")
        if project:
            if not project.isdigit():
                raise NotFound("No such project.")
            labels = labels.filter(pair__project_id=int(project))
        return labels


# ---------------------------------------------------------------------------------------
# Agreement, adjudication, gold, curation (leads and admins)


class ProjectAgreement(APIView):
    """The dashboard's figures as JSON; a figure that cannot be computed is null."""

    @extend_schema(responses={200: OpenApiResponse(description="Agreement figures")})
    def get(self, request, pk: int):
        project = get_project(request, pk, manage=True)
        return Response(selectors.agreement_summary(project=project))


def _filters(data) -> curation.CurationFilters:
    form = CurationFiltersSerializer(data=data)
    form.is_valid(raise_exception=True)
    return curation.CurationFilters(**form.validated_data)


class CurationPreview(APIView):
    """How many pairs the filters would keep (query parameters as in POST .../datasets/)."""

    @extend_schema(parameters=[CurationFiltersSerializer], responses=CurationPreviewSerializer)
    def get(self, request, pk: int):
        project = get_project(request, pk, manage=True)
        data = {key: request.query_params.get(key) for key in request.query_params}
        for many in ("difficulty", "exclude_sources"):
            if many in request.query_params:
                data[many] = [v for v in request.query_params.getlist(many) if v]
        selection = curation.curation_select(project=project, filters=_filters(data))
        return Response(
            {
                "count": selection.count,
                "by_difficulty": selection.by_difficulty,
                "dropped": selection.dropped,
            }
        )


class ProjectDatasets(APIView):
    @extend_schema(responses=DatasetSerializer(many=True))
    def get(self, request, pk: int):
        project = get_project(request, pk, manage=True)
        return Response(DatasetSerializer(project.datasets.all(), many=True).data)

    @extend_schema(request=CurationRequestSerializer, responses={201: DatasetSerializer})
    def post(self, request, pk: int):
        project = get_project(request, pk, manage=True)
        form = CurationRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        values = dict(form.validated_data)
        name = values.pop("name")
        dataset = curation.dataset_curate(
            project=project,
            name=name,
            filters=curation.CurationFilters(**values),
            user=request.user,
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


def get_dataset(request, identifier: str) -> CuratedDataset:
    dataset = CuratedDataset.objects.select_related("project").filter(identifier=identifier).first()
    if dataset is None:
        raise NotFound("No such dataset version.")
    get_project(request, dataset.project_id, manage=True)
    return dataset


class DatasetDetail(APIView):
    @extend_schema(responses=DatasetSerializer)
    def get(self, request, identifier: str):
        return Response(DatasetSerializer(get_dataset(request, identifier)).data)


class DatasetDownload(APIView):
    """The version as a file: ?format=jsonl (default) or parquet."""

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "parquet"])],
        responses={200: OpenApiResponse(description="The dataset file")},
    )
    def get(self, request, identifier: str):
        dataset = get_dataset(request, identifier)
        content, kind, name = curation.dataset_download(
            dataset, request.query_params.get("format", "jsonl")
        )
        response = HttpResponse(content, content_type=kind)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def get_pair(request, pk: int) -> Pair:
    pair = Pair.objects.filter(pk=pk).first()
    if pair is None:
        raise NotFound("No such pair.")
    get_project(request, pair.project_id, manage=True)
    return pair


class PairAdjudication(APIView):
    """A lead's final decision on a pair; it overrides the majority in consensus and exports."""

    @extend_schema(request=AdjudicationSerializer, responses={204: None})
    def post(self, request, pk: int):
        pair = get_pair(request, pk)
        form = AdjudicationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.pair_adjudicate(pair=pair, lead=request.user, **form.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.pair_adjudication_clear(pair=get_pair(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PairGold(APIView):
    """Mark a pair as gold with its known answer (empty gold_choice unmarks it)."""

    @extend_schema(request=GoldSerializer, responses={204: None})
    def post(self, request, pk: int):
        pair = get_pair(request, pk)
        form = GoldSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.pair_set_gold(pair=pair, choice=form.validated_data["gold_choice"])
        return Response(status=status.HTTP_204_NO_CONTENT)
