"""The activity log's page and its JSONL export, for admins (everything) and leads (their
projects' entries and their own)."""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from annotation.activity.selectors import (
    ActivityFilters,
    entries_page,
    entries_visible,
    entries_where,
    entry_json,
    may_read_activity,
    projects_watched,
)
from annotation.models import ActivityEntry

EXPORT_CHUNK = 2000


def _filtered(request):
    """(entries, filters, projects) for the asker and the query; ValidationError if a filter
    is wrong; 404 for someone who reads no activity."""
    if not may_read_activity(request.user):
        raise Http404("No such page.")
    projects = projects_watched(request.user)
    filters = ActivityFilters.from_query(request.GET, projects=projects)
    return entries_where(entries_visible(request.user), filters), filters, projects


@login_required
def activity(request):
    try:
        entries, filters, projects = _filtered(request)
        error = ""
    except ValidationError as exc:
        entries, filters, error = ActivityEntry.objects.none(), ActivityFilters(), exc.messages[0]
        projects = projects_watched(request.user)
    before = request.GET.get("before", "")
    page, next_before = entries_page(entries, before=int(before) if before.isdigit() else None)
    older = request.GET.copy()
    older["before"] = next_before
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "entries": page,
        "filters": filters,
        "projects": projects,
        "kinds": ActivityEntry.Kind.choices,
        "error": error,
        "older_query": older.urlencode() if next_before else "",
        "query": query.urlencode(),
        "paged": bool(before),
    }
    return render(request, "annotation/activity.html", context, status=400 if error else 200)


@login_required
def activity_export(request):
    """Every entry the filters keep, newest first, one JSON object a line, streamed."""
    try:
        entries, _, _ = _filtered(request)
    except ValidationError as exc:
        return HttpResponseBadRequest(exc.messages[0], content_type="text/plain")
    lines = (
        json.dumps(entry_json(entry), ensure_ascii=False) + "\n"
        for entry in entries.iterator(chunk_size=EXPORT_CHUNK)
    )
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    name = f"activity-{timezone.localdate():%Y-%m-%d}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
