"""REST API: a project's pairs (search, filters, sort, pages), imports, and a lead's adjudication
and gold answers."""

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from annotation.access import IsProjectLead, ProjectScopedView
from annotation.agreement.maths import DIFFICULTIES
from annotation.models import Label, Pair
from annotation.pairs.forms import PairFilterForm
from annotation.pairs.imports import pairs_import
from annotation.pairs.selectors import PAIR_SORTS, pairs_filtered, table_page
from annotation.pairs.serializers import (
    AdjudicationSerializer,
    GoldSerializer,
    ImportReportSerializer,
    ImportSerializer,
    PairSerializer,
)
from annotation.pairs.services import pair_adjudicate, pair_adjudication_clear, pair_set_gold


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
        report = pairs_import(
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
        pair_adjudicate(pair=pair, lead=request.user, **form.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        pair_adjudication_clear(pair=self.get_pair())
        return Response(status=status.HTTP_204_NO_CONTENT)


class PairGold(PairView):
    """Mark a pair as gold with its known answer (empty gold_choice unmarks it)."""

    @extend_schema(request=GoldSerializer, responses={204: None})
    def post(self, request, pk: int):
        pair = self.get_pair()
        form = GoldSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        pair_set_gold(pair=pair, choice=form.validated_data["gold_choice"])
        return Response(status=status.HTTP_204_NO_CONTENT)
