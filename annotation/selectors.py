"""Read paths: who may see what, queues' progress, labels."""

import hashlib
from datetime import date, datetime, time

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Exists, Max, OuterRef, QuerySet
from django.db.models.functions import Length
from django.utils import timezone

from annotation.models import (
    Adjudication,
    Assignment,
    ConsistencyCheck,
    Label,
    Membership,
    Pair,
    PairConsensus,
    Project,
)

CHOICE_CODES = {"a": 0, "b": 1, "tie": 2}
EPOCH = date(1970, 1, 1)

ADMIN = "admin"


def user_is_admin(user: AbstractBaseUser) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.is_staff))


def project_role(*, user: AbstractBaseUser, project: Project) -> str | None:
    """'admin', 'lead', 'annotator', or None for someone with no business in the project."""
    if not user.is_authenticated:
        return None
    if user_is_admin(user):
        return ADMIN
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def can_manage_project(*, user: AbstractBaseUser, project: Project) -> bool:
    """Leads and admins see a project's data and import into it."""
    return project_role(user=user, project=project) in (ADMIN, Membership.Role.LEAD)


def can_annotate_project(*, user: AbstractBaseUser, project: Project) -> bool:
    return project_role(user=user, project=project) is not None


def projects_visible(*, user: AbstractBaseUser) -> QuerySet[Project]:
    if user_is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def projects_with_roles(*, user: AbstractBaseUser) -> list[tuple[Project, str]]:
    if user_is_admin(user):
        return [(project, ADMIN) for project in Project.objects.all()]
    return [
        (m.project, m.role) for m in Membership.objects.filter(user=user).select_related("project")
    ]


def pairs_for_project(*, project: Project) -> QuerySet[Pair]:
    return project.pairs.order_by("id")


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


# ---------------------------------------------------------------------------------------
# Agreement


def label_table(*, project: Project, exclude_sources: tuple[str, ...] = ()):
    """The project's labels as arrays for `annotation.agreement`, with per-pair facts.

    Also returns the pair ids in item order.
    """
    import numpy as np

    from annotation.agreement import LabelTable

    labels = Label.objects.filter(pair__project=project)
    if exclude_sources:
        labels = labels.exclude(annotator__isnull=True, source__in=exclude_sources)
    rows = list(
        labels.order_by().values_list(
            "pair_id",
            "annotator__username",
            "source",
            "choice",
            "strength",
            "shown_left",
            "duration_ms",
            "created_at",
        )
    )
    pair_ids = sorted({row[0] for row in rows})
    position = {pair_id: i for i, pair_id in enumerate(pair_ids)}
    names: dict[tuple[str, str], int] = {}
    raters = []
    for row in rows:
        key = ("annotator", row[1]) if row[1] else ("source", row[2])
        raters.append(names.setdefault(key, len(names)))
    labelled_pairs = Pair.objects.filter(project=project).filter(
        Exists(Label.objects.filter(pair=OuterRef("pk")))
    )
    facts = {
        pid: (la, lb, gold)
        for pid, la, lb, gold in labelled_pairs.annotate(
            la=Length("response_a"), lb=Length("response_b")
        )
        .values_list("id", "la", "lb", "gold_choice")
        .iterator(chunk_size=10000)
    }
    decided = dict(
        Adjudication.objects.filter(pair__project=project).values_list("pair_id", "choice")
    )
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    in_order = [facts[pid] for pid in pair_ids]
    return (
        LabelTable(
            item=np.array([position[p] for p in columns[0]], dtype=np.int64),
            rater=np.array(raters, dtype=np.int64),
            choice=np.array([CHOICE_CODES[c] for c in columns[3]], dtype=np.int64),
            strength=np.array([np.nan if v is None else v for v in columns[4]], dtype=float),
            shown_left=np.array([CHOICE_CODES.get(v, -1) for v in columns[5]], dtype=np.int64),
            duration_ms=np.array([np.nan if v is None else v for v in columns[6]], dtype=float),
            day=np.array([(v.date() - EPOCH).days for v in columns[7]], dtype=np.int64),
            length_a=np.array([f[0] for f in in_order], dtype=np.int64),
            length_b=np.array([f[1] for f in in_order], dtype=np.int64),
            gold=np.array([CHOICE_CODES.get(f[2], -1) for f in in_order], dtype=np.int64),
            decided=np.array(
                [CHOICE_CODES.get(decided.get(p), -1) for p in pair_ids], dtype=np.int64
            ),
            rater_names=[name for _, name in names],
            rater_kinds=[kind for kind, _ in names],
        ),
        pair_ids,
    )


def flip_rates(*, project: Project) -> dict[str, dict]:
    """Per annotator: how many pairs were re-shown with sides swapped, and the share flipped."""
    result: dict[str, dict] = {}
    checks = ConsistencyCheck.objects.filter(label__pair__project=project).values_list(
        "label__annotator__username", "label__choice", "choice"
    )
    for name, first, second in checks:
        entry = result.setdefault(name, {"checks": 0, "flips": 0})
        entry["checks"] += 1
        entry["flips"] += first != second
    return {
        name: {"checks": e["checks"], "flip_rate": e["flips"] / e["checks"]}
        for name, e in result.items()
    }


def _agreement_version(project: Project) -> str:
    """Changes whenever a label, decision, gold answer or re-check of the project changes."""
    labels = Label.objects.filter(pair__project=project).aggregate(
        n=Count("id"), latest=Max("updated_at")
    )
    decisions = Adjudication.objects.filter(pair__project=project).aggregate(
        n=Count("pair_id"), latest=Max("decided_at")
    )
    gold = Pair.objects.filter(project=project).exclude(gold_choice="").count()
    checks = ConsistencyCheck.objects.filter(label__pair__project=project).count()
    settings_stamp = (
        project.easy_min_strength,
        project.hard_below_agreement,
        project.hard_below_strength,
    )
    return f"{labels}|{decisions}|{gold}|{checks}|{settings_stamp}"


def agreement_summary(*, project: Project) -> dict:
    """The dashboard's figures (see annotation.agreement.agreement_report), cached until the
    project's labels change."""
    from annotation.agreement import agreement_report

    version = hashlib.sha256(_agreement_version(project).encode()).hexdigest()[:16]
    key = f"agreement:{project.pk}:{version}"
    summary = cache.get(key)
    if summary is None:
        table, _ = label_table(project=project)
        summary = agreement_report(table, project.difficulty_rule)
        flips = flip_rates(project=project)
        for entry in summary["annotators"]:
            found = flips.get(entry["name"]) if entry["kind"] == "annotator" else None
            entry["flip_rate"] = found["flip_rate"] if found else None
            entry["repeat_checks"] = found["checks"] if found else 0
        summary["healthy_agreement"] = project.healthy_agreement
        cache.set(key, summary, timeout=3600)
    return summary


def contested_pairs(*, project: Project) -> QuerySet[PairConsensus]:
    return (
        PairConsensus.objects.filter(project=project, contested=True)
        .select_related("pair")
        .order_by("adjudicated", "-votes_a", "pair_id")
    )
