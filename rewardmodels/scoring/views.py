"""A filter's page, followed live, and its kept responses for download; the page that tries
a model (or a project's promoted model) on a prompt and its responses."""

import json
import shlex
from itertools import islice
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.urls import reverse

from annotation.rendering import prompt_preview, render_preview
from rewardmodels import charts
from rewardmodels.access import promoted_model
from rewardmodels.models import FilterRun, RewardModel
from rewardmodels.pages import job_context, job_for, job_json, model_for, project_led_for
from rewardmodels.scoring.forms import TryForm
from rewardmodels.scoring.rankings import compare
from rewardmodels.scoring.services import (
    MAX_SCORE_CHARS,
    MAX_SCORE_ITEMS,
    OLDER_WORKER,
    WorkerUnavailable,
    failure_detail,
    score,
)

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


def curl_command(url: str, body: dict) -> str:
    """The same request for the API, to paste in a shell: the token comes from the
    environment, the URL and the JSON body are single-quoted."""
    data = json.dumps(body, ensure_ascii=False, indent=2)
    return " \\\n  ".join([
        f"curl {shlex.quote(url)}",
        '-H "Authorization: Token $PREFHUB_TOKEN"',
        "-H 'Content-Type: application/json'",
        f"--data-binary {shlex.quote(data)}",
    ])  # fmt: skip


def _asked_to_edit(request) -> dict | None:
    """Adding or removing a response box without JavaScript: the page comes back with the
    boxes changed, nothing checked and nothing scored."""
    if "add" in request.POST:
        return {"add": True}
    remove = request.POST.get("remove", "")
    return {"remove": int(remove)} if remove.isascii() and remove.isdigit() else None


def _try_page(request, reward_model: RewardModel | None, api_url: str, context: dict):
    """Score the responses as the best-of-N API does with normalize=length, and show both
    rankings; a worker that does not answer in time is a 503 the person can retry."""
    form = TryForm(request.POST if request.method == "POST" else None)
    context = {**context, "reward_model": reward_model, "form": form, "boxes": form.boxes(),
               "max_responses": MAX_SCORE_ITEMS, "max_chars": f"{MAX_SCORE_CHARS:,}"}  # fmt: skip
    if request.method != "POST":
        return render(request, "rewardmodels/try.html", context)
    if (edit := _asked_to_edit(request)) is not None:
        fresh = TryForm(initial={"prompt": request.POST.get("prompt", "")})
        context.update(form=fresh, boxes=form.boxes(**edit))
        return render(request, "rewardmodels/try.html", context)
    if reward_model is None or not form.is_valid():
        return render(request, "rewardmodels/try.html", context,
                      status=409 if reward_model is None else 400)  # fmt: skip
    body = form.api_body()
    context["curl"] = curl_command(api_url, body)
    candidates = body["candidates"]
    status, retry_after = 200, None
    try:
        answer = score(reward_model=reward_model, prompts=[body["prompt"]] * len(candidates),
                       responses=candidates, rank=body["normalize"])  # fmt: skip
    except WorkerUnavailable as exc:
        context["unavailable"], status, retry_after = str(exc), 503, exc.retry_after
    except Exception as exc:  # noqa: BLE001 - the worker's failure, shown, not a 500
        context["failed"], status = failure_detail(exc), 502
    else:
        if "ranked" in answer:
            context["result"] = compare(candidates, answer)
        else:
            context["failed"], status = OLDER_WORKER, 502
    page = render(request, "rewardmodels/try.html", context, status=status)
    if retry_after is not None:
        page["Retry-After"] = str(retry_after)
    return page


@login_required
def model_try(request, identifier: str):
    """A model tried on a prompt and its responses: leads of its project and admins."""
    reward_model = model_for(request, identifier)
    path = reverse("api-best-of-n", kwargs={"key": reward_model.identifier})
    context = {"back": reverse("model", args=[reward_model.identifier]),
               "back_name": reward_model.identifier}  # fmt: skip
    return _try_page(request, reward_model, request.build_absolute_uri(path), context)


@login_required
def project_model_try(request, pk: int):
    """The project's promoted model tried, as the project's API scores when no model is
    named; the page says which model serves, or that none is promoted."""
    project = project_led_for(request, pk)
    path = reverse("api-project-best-of-n", kwargs={"pk": project.pk})
    context = {"project": project, "back": reverse("project-models", args=[project.pk]),
               "back_name": f"models of {project.name}"}  # fmt: skip
    reward_model = promoted_model(project_id=project.pk)
    return _try_page(request, reward_model, request.build_absolute_uri(path), context)
