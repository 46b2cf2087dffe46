"""Reading the log: who may see which entries, the filters a page, an export and the command
share, a page at a time by id (never a count of the whole log), and an entry as JSON."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.access import user_is_admin
from annotation.models import ActivityEntry, Membership, Project

PAGE_SIZE = 50


@dataclass
class ActivityFilters:
    person: str = ""
    project: Project | None = None
    kind: str = ""
    since: date | None = None
    until: date | None = None  # inclusive

    @classmethod
    def from_query(cls, query, *, projects: QuerySet[Project]) -> "ActivityFilters":
        """From a page's or the export's query string; a ValidationError naming the first
        value that is wrong. `projects` are those the asker may filter by."""
        project = None
        if query.get("project"):
            project = projects.filter(pk=_number(query["project"], "project")).first()
            if project is None:
                raise ValidationError("No such project among yours.")
        kind = query.get("kind", "")
        if kind and kind not in ActivityEntry.Kind.values:
            raise ValidationError(f"Unknown kind {kind!r}.")
        return cls(
            person=query.get("person", "").strip(),
            project=project,
            kind=kind,
            since=_day(query.get("since", ""), "since"),
            until=_day(query.get("until", ""), "until"),
        )


def _number(text: str, name: str) -> int:
    if not str(text).isdigit():
        raise ValidationError(f"{name} is a number.")
    return int(text)


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{name}: write the day as YYYY-MM-DD.") from None


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def projects_watched(user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects whose activity `user` may read: every one for an admin, those they lead
    for a lead."""
    if user_is_admin(user):
        return Project.objects.order_by("name")
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return Project.objects.filter(pk__in=led).order_by("name")


def may_read_activity(user: AbstractBaseUser) -> bool:
    return user_is_admin(user) or projects_watched(user).exists()


def entries_visible(user: AbstractBaseUser) -> QuerySet[ActivityEntry]:
    """Admins read the whole log; a lead reads their projects' entries and their own."""
    entries = ActivityEntry.objects.all()
    if user_is_admin(user):
        return entries
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return entries.filter(Q(project_id__in=led) | Q(actor=user))


def entries_where(entries: QuerySet[ActivityEntry], filters: ActivityFilters) -> QuerySet:
    if filters.person:
        entries = entries.filter(actor_name=filters.person)
    if filters.project is not None:
        entries = entries.filter(project=filters.project)
    if filters.kind:
        entries = entries.filter(kind=filters.kind)
    if filters.since:
        entries = entries.filter(created_at__gte=_start_of(filters.since))
    if filters.until:
        entries = entries.filter(created_at__lt=_start_of(filters.until + timedelta(days=1)))
    return entries.order_by("-id")


def entries_page(
    entries: QuerySet[ActivityEntry], *, before: int | None, size: int = PAGE_SIZE
) -> tuple[list[ActivityEntry], int | None]:
    """The newest `size` entries older than id `before`, and the id to ask for the next page
    with (None on the last). One indexed range read, however long the log."""
    if before is not None:
        entries = entries.filter(id__lt=before)
    page = list(entries[: size + 1])
    more = len(page) > size
    page = page[:size]
    return page, (page[-1].id if more else None)


def entry_json(entry: ActivityEntry) -> dict:
    return {
        "id": entry.id,
        "at": entry.created_at.isoformat(),
        "kind": entry.kind,
        "what": entry.get_kind_display(),
        "person": entry.actor_name or None,
        "person_id": entry.actor_id,
        "address": entry.address,
        "via": entry.via,
        "project": entry.project_name or None,
        "project_id": entry.project_id,
        "object": {"type": entry.target_type, "id": entry.target_id, "name": entry.target_repr}
        if entry.target_type
        else None,
        "summary": entry.summary,
        "changes": entry.changes,
    }
