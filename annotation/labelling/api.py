"""REST API of the annotation queue: the next pair, progress, answering (and changing an answer),
skipping, own labels."""

import logging
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError, connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import ProjectScopedView
from annotation.labelling import services as queue
from annotation.labelling.selectors import labels_of_annotator, queue_progress
from annotation.labelling.serializers import (
    AssignmentSerializer,
    LabelSubmitSerializer,
    LabelSubmittedSerializer,
    OwnLabelSerializer,
    ProgressSerializer,
)
from annotation.models import Assignment

logger = logging.getLogger(__name__)


NEXT_NOT_READ = "Saved. The next pair could not be loaded yet: ask for it again in a moment."


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
        return Response(queue_progress(project=project, annotator=request.user))


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
        labels = labels_of_annotator(annotator=self.request.user)
        project = self.request.query_params.get("project")
        if project:
            if not (project.isascii() and project.isdigit()):
                raise NotFound("No such project.")
            labels = labels.filter(pair__project_id=int(project))
        return labels
