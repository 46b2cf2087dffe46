"""Reads of labelling: the project's order of precedence for its unlabelled work, an
annotator's progress and own labels, and every label for export."""

from dataclasses import dataclass
from datetime import datetime, time

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.models import (
    Assignment,
    Label,
    Pair,
    Project,
    QueuePrecedence,
    Round,
)

ROUND, SOURCE = "round", "source"


@dataclass
class Place:
    """A place in a project's precedence: a round's pairs, or one source's pairs outside any
    round. `placed` is False for a place that falls in by default."""

    kind: str
    name: str
    paused: bool = False
    round_id: int | None = None
    unlabelled: int = 0
    placed: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name


def _placed(project: Project) -> list[tuple[int | None, str, bool]]:
    """(round id, source, paused) of the places a lead set, in order."""
    return list(
        QueuePrecedence.objects.filter(project=project)
        .order_by("position")
        .values_list("round_id", "source", "paused")
    )


def _rounds_not_placed(project: Project, placed) -> QuerySet[Round]:
    placed_rounds = [r for r, _, _ in placed if r is not None]
    return (
        Round.objects.filter(project=project)
        .exclude(id__in=placed_rounds)
        .order_by("-created_at", "-id")
    )


def _place_filter(round_id: int | None, source: str) -> Q:
    return Q(round_id=round_id) if round_id else Q(round__isnull=True, source=source)


def queue_levels(*, project: Project) -> list[Q]:
    """The queue's levels, highest first, as filters on the project's pairs: one a round or
    placed source, paused ones left out, then every source nobody placed. Two small reads;
    each level is then served through an index of its own (see Pair's indexes)."""
    placed = _placed(project)
    new_rounds = _rounds_not_placed(project, placed).values_list("id", flat=True)
    levels = [Q(round_id=round_id) for round_id in new_rounds]
    for round_id, source, paused in placed:
        if not paused:
            levels.append(_place_filter(round_id, source))
    placed_sources = [source for round_id, source, _ in placed if round_id is None]
    rest = Q(round__isnull=True)
    if placed_sources:
        rest &= ~Q(source__in=placed_sources)
    return [*levels, rest]


def paused_work(*, project: Project) -> Q:
    """A filter matching the project's pairs whose place is paused (none: matches nothing)."""
    paused = Q(pk__in=[])
    for round_id, source, is_paused in _placed(project):
        if is_paused:
            paused |= _place_filter(round_id, source)
    return paused


def precedence_of(*, project: Project, counts: bool = False) -> list[Place]:
    """The project's whole order of precedence, places that fall in by default included; with
    `counts`, each place's unlabelled pairs (pairs still short of annotators), counted in one
    aggregate, and the sources that only the pairs name."""
    placed = _placed(project)
    names = dict(Round.objects.filter(project=project).values_list("id", "name"))
    order = [
        Place(ROUND, r.name, round_id=r.pk, placed=False)
        for r in _rounds_not_placed(project, placed)
    ]
    for round_id, source, paused in placed:
        kind, name = (ROUND, names[round_id]) if round_id else (SOURCE, source)
        order.append(Place(kind, name, paused=paused, round_id=round_id))
    if not counts:
        return order
    by_key = {place.key: place for place in order}
    open_pairs = (
        Pair.objects.filter(project=project)
        .values("round_id", "source")
        .annotate(
            n=Count("id", filter=Q(slots_taken__lt=project.annotators_per_pair, gold_choice="")),
            first=Min("id"),
        )
        .order_by("first")
    )
    for row in open_pairs:
        key = (ROUND, names[row["round_id"]]) if row["round_id"] else (SOURCE, row["source"])
        if key not in by_key:
            by_key[key] = Place(*key, placed=False)
            order.append(by_key[key])
        by_key[key].unlabelled += row["n"]
    return order


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
        .exclude(paused_work(project=project))
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
