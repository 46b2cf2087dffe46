"""Writing the log: `record` is the one way an entry is made."""

import contextvars
import ipaddress
import re
import sys
from pathlib import Path

from django.conf import settings
from django.db import models

from annotation.models import ActivityEntry
from annotation.rendering import url_passwords_masked

Kind = ActivityEntry.Kind

# The request being answered, set by ActivityContext for the length of one request.
current_request: contextvars.ContextVar = contextvars.ContextVar("activity_request", default=None)

# A change to a field whose name says it holds a secret is logged as changed, never its value.
SECRET_FIELD = re.compile(r"pass(word)?|secret|token|api_?key(?!_env)|credential", re.I)
CHANGED = "changed"
MAX_TEXT = 300
# What an entry made outside a request came through: a manage.py command, or a worker (a
# task, or a test).
PROCESS_VIA = "command" if Path(sys.argv[0]).name == "manage.py" else "worker"


def record(
    kind: str,
    *,
    actor=None,
    project=None,
    target: models.Model | None = None,
    summary: str = "",
    changes: dict | None = None,
    actor_name: str = "",
    via: str = "",
) -> ActivityEntry | None:
    """Log one thing done. `actor` defaults to the person the current request is from;
    outside a request there is none unless passed, and `via` says command or worker.
    `changes` maps a field to (before, after). Returns the entry, or None while the log is
    switched off (ACTIVITY_LOG=0)."""
    if not settings.ACTIVITY_LOG:
        return None
    request = current_request.get()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    if project is None and target is not None:
        project = getattr(target, "project", None) if hasattr(target, "project_id") else None
    return ActivityEntry.objects.create(
        kind=kind,
        actor=actor,
        actor_name=(actor_name or (actor.get_username() if actor is not None else ""))[:150],
        address=client_address(request) if request is not None else None,
        via=via or (request_via(request) if request is not None else PROCESS_VIA),
        project=project,
        project_name=project.name[:200] if project is not None else "",
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=url_passwords_masked(str(target))[:200] if target is not None else "",
        summary=url_passwords_masked(summary)[:MAX_TEXT],
        changes=scrubbed(changes or {}),
    )


def changed(before: dict, instance: models.Model) -> dict:
    """The fields of `before` (name: value then) whose value on `instance` is now another,
    as `record` takes them."""
    return {
        name: (old, getattr(instance, name))
        for name, old in before.items()
        if getattr(instance, name) != old
    }


def scrubbed(changes: dict) -> dict:
    """Each change as [before, after], a secret's as "changed", long texts cut, URLs'
    passwords masked; a change that reads the same once cut or masked as "changed" too."""
    out = {}
    for field, (before, after) in changes.items():
        before, after = _loggable(before), _loggable(after)
        out[field] = CHANGED if SECRET_FIELD.search(field) or before == after else [before, after]
    return out


def _loggable(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    text = url_passwords_masked(str(value))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def client_address(request) -> str | None:
    """The address the request came from: REMOTE_ADDR, or the first of X-Forwarded-For when
    the site sits behind a proxy it trusts (ACTIVITY_TRUST_FORWARDED_FOR)."""
    candidates = [request.META.get("REMOTE_ADDR", "")]
    if settings.ACTIVITY_TRUST_FORWARDED_FOR:
        candidates.insert(0, request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip())
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def request_via(request) -> str:
    return "api" if request.path.startswith("/api/") else "web"


class ActivityContext:
    """Middleware: makes the request in hand known to `record` (the person is read when an
    entry is written, so an API token authenticated by the view counts)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


TRIM_BATCH = 10_000


def activity_trim(*, days: int | None = None) -> int:
    """Remove entries older than `days` (ACTIVITY_RETENTION_DAYS by default; 0 keeps them
    all), TRIM_BATCH at a time so that a large trim holds no long lock. Returns how many."""
    from datetime import timedelta

    from django.utils import timezone

    days = settings.ACTIVITY_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    removed = 0
    while True:
        ids = list(
            ActivityEntry.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[
                :TRIM_BATCH
            ]
        )
        if not ids:
            return removed
        removed += ActivityEntry.objects.filter(id__in=ids).delete()[0]
