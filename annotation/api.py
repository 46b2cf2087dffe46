"""REST API: projects, pairs, import, the annotation queue, own labels."""

import logging
from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from annotation import curation, queue, selectors, services
from annotation.agreement import DIFFICULTIES
from annotation.formats import FileRejected
from annotation.forms import PairFilterForm
from annotation.models import Assignment, CuratedDataset, Label, Pair, Project
from annotation.pair_filters import PAIR_SORTS, pairs_filtered, table_page
from annotation.permissions import IsProjectLead, IsProjectMember
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
    LabelSubmittedSerializer,
    OwnLabelSerializer,
    PairSerializer,
    ProgressSerializer,
    ProjectSerializer,
)

logger = logging.getLogger(__name__)
NEXT_NOT_READ = "Saved. The next pair could not be loaded yet: ask for it again in a moment."


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
    if isinstance(exc, queue.QueueConflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)


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


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return selectors.projects_visible(user=self.request.user).order_by("name")

    def get_serializer_context(self):
        roles = {p.pk: role for p, role in selectors.projects_with_roles(user=self.request.user)}
        return {**super().get_serializer_context(), "roles": roles}


class ProjectDetail(ProjectScopedView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request, pk: int):
        project = self.get_project()
        role = selectors.project_role(user=request.user, project=project)
        return Response(ProjectSerializer(project, context={"roles": {project.pk: role}}).data)


class PairPages(BasePagination):
    """The pairs table's paging: `count` stops at COUNT_CAP + 1 (`count_capped` says so) and
    is null when counting ran out of time; `next` is there while more pairs are."""

    page_size = 50

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page = table_page(queryset, request.query_params.get("page"), self.page_size)
        return self.page.rows

    def _link(self, number: int) -> str:
        return replace_query_param(self.request.build_absolute_uri(), "page", number)

    def get_paginated_response(self, data):
        page = self.page
        return Response({
            "count": page.count, "count_capped": page.capped,
            "next": self._link(page.number + 1) if page.has_next else None,
            "previous": self._link(page.number - 1) if page.has_previous else None,
            "results": data,
        })  # fmt: skip

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "properties": {
                "count": {"type": "integer", "nullable": True},
                "count_capped": {"type": "boolean"},
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [{"name": "page", "required": False, "in": "query", "schema": {"type": "integer"}}]


class PairList(ProjectScopedView, generics.ListAPIView):
    """A project's pairs, for leads and admins, with the pairs table's search, filters, sort
    and paging (a count that stops at 1,000 matches)."""

    permission_classes = [IsProjectLead]
    serializer_class = PairSerializer
    pagination_class = PairPages

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Words in the prompt or the responses"),
            OpenApiParameter("source", str),
            OpenApiParameter("external_id", str),
            OpenApiParameter("labelled", bool, description="Only pairs with (or without) labels"),
            OpenApiParameter("difficulty", str, many=True, enum=DIFFICULTIES),
            OpenApiParameter("contested", bool),
            OpenApiParameter("decided", bool, description="A lead decided the pair"),
            OpenApiParameter("gold", bool),
            OpenApiParameter("sort", str, enum=list(PAIR_SORTS)),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        form = PairFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors)
        label_count = (
            Label.objects.filter(pair=OuterRef("pk"))
            .order_by()
            .values("pair")
            .annotate(n=Count("id"))
            .values("n")
        )
        return pairs_filtered(project=self.get_project(), filters=form.filters()).annotate(
            n_labels=Coalesce(Subquery(label_count, output_field=IntegerField()), 0)
        )


class PairImport(ProjectScopedView):
    permission_classes = [IsProjectLead]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportSerializer, responses={201: ImportReportSerializer})
    def post(self, request, pk: int):
        project = self.get_project()
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


class NextAssignment(ProjectScopedView):
    @extend_schema(
        request=None,
        responses={
            200: AssignmentSerializer,
            204: OpenApiResponse(description="Nothing left to label"),
        },
    )
    def post(self, request, pk: int):
        project = self.get_project()
        assignment = queue.assignment_next(project=project, annotator=request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSerializer(assignment).data)


class QueueProgress(ProjectScopedView):
    @extend_schema(responses=ProgressSerializer)
    def get(self, request, pk: int):
        project = self.get_project()
        return Response(selectors.queue_progress(project=project, annotator=request.user))


@contextmanager
def _own_assignment():
    """Someone else's assignment id is answered as one that does not exist."""
    try:
        yield
    except Assignment.DoesNotExist as exc:
        raise NotFound("No such assignment of yours.") from exc


DATABASE_GONE = (OperationalError, InterfaceError)


def _once_more_if_dropped(work):
    """work(), and once more on a new connection if the database ended this request's (a
    restart or failover): a label sent twice is stored once, and the next pair read after a
    label has committed must not turn that stored label into an error."""
    try:
        return work()
    except DATABASE_GONE:
        if connection.in_atomic_block:
            raise
        connection.close()
        return work()


class LabelSubmit(APIView):
    @extend_schema(request=LabelSubmitSerializer, responses={201: LabelSubmittedSerializer})
    def post(self, request, pk: int):
        form = LabelSubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with _own_assignment():
            answer = _once_more_if_dropped(
                lambda: queue.label_submit(
                    assignment_id=pk,
                    annotator=request.user,
                    screen_choice=form.validated_data["choice"],
                    strength=form.validated_data.get("strength"),
                    rationale=form.validated_data.get("rationale", ""),
                    duration_ms=form.validated_data.get("duration_ms"),
                )
            )
        body = dict(form.data)
        if form.validated_data["next"]:
            # The labelling page's path: one round trip per label instead of two.
            project = answer.assignment.pair.project

            def following():
                shown = queue.assignment_next(project=project, annotator=request.user)
                return AssignmentSerializer(shown).data if shown else None

            try:
                body["next"] = _once_more_if_dropped(following)
            except DATABASE_GONE as exc:
                logger.warning("label %s stored; next pair not read: %s", pk, exc)
                body["detail"] = NEXT_NOT_READ
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=LabelSubmitSerializer, responses={200: LabelSubmitSerializer})
    def put(self, request, pk: int):
        """Change the answer to a pair already labelled (going back a pair): until the
        assignment's time runs out, and only while no version has been curated since."""
        form = LabelSubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with _own_assignment():
            queue.label_change(
                assignment_id=pk,
                annotator=request.user,
                screen_choice=form.validated_data["choice"],
                strength=form.validated_data.get("strength"),
                rationale=form.validated_data.get("rationale", ""),
            )
        return Response(form.data)


class AssignmentSkip(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, pk: int):
        with _own_assignment():
            queue.assignment_skip(assignment_id=pk, annotator=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OwnLabels(generics.ListAPIView):
    """The requester's own labels, newest first; ?project=ID narrows to one project."""

    serializer_class = OwnLabelSerializer

    def get_queryset(self):
        labels = selectors.labels_of_annotator(annotator=self.request.user)
        project = self.request.query_params.get("project")
        if project:
            if not (project.isascii() and project.isdigit()):
                raise NotFound("No such project.")
            labels = labels.filter(pair__project_id=int(project))
        return labels


# ---------------------------------------------------------------------------------------
# Agreement, adjudication, gold, curation (leads and admins)


class ProjectAgreement(ProjectScopedView):
    """The dashboard's figures as JSON; a figure that cannot be computed is null."""

    permission_classes = [IsProjectLead]

    @extend_schema(responses={200: OpenApiResponse(description="Agreement figures")})
    def get(self, request, pk: int):
        return Response(selectors.agreement_summary(project=self.get_project()))


class CurationPreview(ProjectScopedView):
    """How many pairs the filters would keep (query parameters as in POST .../datasets/)."""

    permission_classes = [IsProjectLead]

    @extend_schema(parameters=[CurationFiltersSerializer], responses=CurationPreviewSerializer)
    def get(self, request, pk: int):
        project = self.get_project()
        form = CurationFiltersSerializer.from_query(request.query_params)
        form.is_valid(raise_exception=True)
        selection = curation.curation_select(project=project, filters=form.filters())
        return Response(
            {
                "count": selection.count,
                "by_difficulty": selection.by_difficulty,
                "dropped": selection.dropped,
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
        dataset = curation.dataset_curate(
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
        stream, kind, name = curation.dataset_download(
            dataset, request.query_params.get("format", "jsonl")
        )
        return FileResponse(stream, as_attachment=True, filename=name, content_type=kind)


class PairView(ProjectScopedView):
    permission_classes = [IsProjectLead]

    def get_pair(self) -> Pair:
        pair = Pair.objects.select_related("project").filter(pk=self.kwargs["pk"]).first()
        if pair is None:
            raise NotFound("No such pair.")
        return self.checked(pair)


class PairAdjudication(PairView):
    """A lead's final decision on a pair; it overrides the majority in consensus and exports."""

    @extend_schema(request=AdjudicationSerializer, responses={204: None})
    def post(self, request, pk: int):
        pair = self.get_pair()
        form = AdjudicationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.pair_adjudicate(pair=pair, lead=request.user, **form.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.pair_adjudication_clear(pair=self.get_pair())
        return Response(status=status.HTTP_204_NO_CONTENT)


class PairGold(PairView):
    """Mark a pair as gold with its known answer (empty gold_choice unmarks it)."""

    @extend_schema(request=GoldSerializer, responses={204: None})
    def post(self, request, pk: int):
        pair = self.get_pair()
        form = GoldSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.pair_set_gold(pair=pair, choice=form.validated_data["gold_choice"])
        return Response(status=status.HTTP_204_NO_CONTENT)
