"""A filter's page, followed live, and its kept responses for download."""

import json
from itertools import islice
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import render

from annotation.rendering import prompt_preview, render_preview
from rewardmodels import charts
from rewardmodels.models import FilterRun
from rewardmodels.pages import job_context, job_for, job_json

KEPT_SHOWN = 20  # kept rows the filter page shows; the download has them all


def _kept_head(job: FilterRun) -> list[dict]:
    """The first kept rows (best first within each prompt), rendered for the page; a row's
    prompt is shown where it changes."""
    path = Path(job.output_file) if job.output_file else None
    if job.status != FilterRun.Status.SUCCEEDED or path is None or not path.is_file():
        return []
    with path.open(encoding="utf-8") as stream:
        rows = [json.loads(line) for line in islice(stream, KEPT_SHOWN)]
    previous = object()
    for row in rows:
        row["new_prompt"] = row["prompt"] != previous
        previous = row["prompt"]
        row["prompt_turns"], row["earlier_turns"] = prompt_preview(row["prompt"])
        row["response_html"] = render_preview(row["response"])
    return rows


@login_required
def filter_detail(request, pk: int):
    job = job_for(request, FilterRun, pk)
    context = {**job_context(job), "filter_run": job, "kept": _kept_head(job)}
    if job.lengths:  # runs from before lengths were recorded have none
        context["lengths_chart"] = charts.kept_lengths_chart(job.lengths)
    return render(request, "rewardmodels/filter.html", context)


@login_required
def filter_progress(request, pk: int):
    return job_json(job_for(request, FilterRun, pk))


@login_required
def filter_download(request, pk: int):
    job = job_for(request, FilterRun, pk)
    path = Path(job.output_file) if job.output_file else None
    if job.status != FilterRun.Status.SUCCEEDED or path is None or not path.is_file():
        raise Http404("The kept rows are not ready.")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"filter-{job.pk}-kept.jsonl",
        content_type="application/x-ndjson",
    )
