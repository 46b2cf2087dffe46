"""Reads of labelling: an annotator's progress and own labels, and every label for export."""

from datetime import datetime, time

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotation.models import (
    Assignment,
    Label,
    Pair,
    Project,
)


def start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def queue_progress(*, project: Project, annotator: AbstractBaseUser) -> dict[str, int]:
    """What the annotator has labelled today and how many pairs are still open to them."""
    labelled_today = Label.objects.filter(
        annotator=annotator, pair__project=project, created_at__gte=start_of_today()
    ).count()
    labelled_total = Label.objects.filter(annotator=annotator, pair__project=project).count()
    already_had = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator).exclude(
        state=Assignment.State.EXPIRED
    )
    remaining = (
        Pair.objects.filter(project=project, slots_taken__lt=project.annotators_per_pair)
        .exclude(Exists(already_had))
        .count()
    )
    return {
        "labelled_today": labelled_today,
        "labelled_total": labelled_total,
        "remaining": remaining,
    }


def labels_of_annotator(*, annotator: AbstractBaseUser) -> QuerySet[Label]:
    return (
        Label.objects.filter(annotator=annotator)
        .select_related("pair__project")
        .order_by("-created_at", "-id")
    )


def labels_for_export(*, project: Project) -> QuerySet[Label]:
    return (
        Label.objects.filter(pair__project=project)
        .select_related("annotator")
        .order_by("pair_id", "id")
        .values(
            "pair__external_id",
            "annotator__username",
            "source",
            "choice",
            "strength",
            "rationale",
            "shown_left",
            "duration_ms",
            "created_at",
        )
    )
