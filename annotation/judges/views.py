"""The judges' pages: judges (admins configure, leads look), a project's judging page (its
rubric and request template, previewed on a real pair and sent to a judge once; its jobs),
and a job's page, followed live."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.access import ADMIN, project_for, user_is_admin
from annotation.errors import add_service_errors
from annotation.judges import services as judges
from annotation.judges.forms import JudgeChoiceForm, JudgeForm, JudgeSettingsForm, JudgingJobForm
from annotation.judges.prompts import DEFAULT_TEMPLATE
from annotation.models import Judge, JudgingJob, Membership, Pair


def _may_see_judges(user) -> bool:
    lead = Membership.objects.filter(user=user, role=Membership.Role.LEAD)
    return user_is_admin(user) or lead.exists()


@login_required
def judge_list(request):
    if not _may_see_judges(request.user):
        raise Http404("No such page.")
    admin = user_is_admin(request.user)
    form = JudgeForm(request.POST or None) if admin else None
    if request.method == "POST":
        if not admin:
            raise PermissionDenied("Only admins configure judges.")
        if form.is_valid():
            try:
                data = {**form.cleaned_data}
                judge = judges.judge_save(user=request.user, api_key=data.pop("api_key"), **data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Judge {judge.name} saved.")
                return redirect("judges")
    context = {"judges": Judge.objects.all(), "form": form}
    return render(
        request, "annotation/judges.html", context, status=400 if form and form.errors else 200
    )


@login_required
def judge_edit(request, pk: int):
    if not user_is_admin(request.user):
        raise Http404("No such page.")
    judge = get_object_or_404(Judge, pk=pk)
    form = JudgeForm(request.POST or None, instance=judge)
    had_key = bool(judge.api_key_encrypted)
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data}
        try:
            judges.judge_save(judge=judge, user=None, api_key=data.pop("api_key"), **data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Judge {judge.name} saved.")
            if had_key and judge.key_source == "none":
                messages.warning(request, judges.KEY_DROPPED)
            return redirect("judges")
    status = 400 if form.errors else 200
    return render(request, "annotation/judge.html", {"judge": judge, "form": form}, status=status)


def _preview_pair(project, wanted: str | None) -> tuple[Pair | None, str]:
    """The pair to preview on: the one whose id (as the page shows it) or number is
    `wanted`, else the project's first; and, when `wanted` named none, what it was."""
    pairs = Pair.objects.filter(project=project).order_by("id")
    wanted = (wanted or "").strip()
    if not wanted:
        return pairs.first(), ""
    found = pairs.filter(external_id=wanted).first()
    if found is None and wanted.isascii() and wanted.isdigit():
        found = pairs.filter(pk=int(wanted)).first()
    return (found, "") if found else (pairs.first(), wanted)


@login_required
def project_judging(request, pk: int):
    """The project's rubric and template (admins change them), previewed on a pair; the
    form that queues a judge over the pairs; the project's jobs."""
    project, role = project_for(request, pk, manage=True)
    admin = role == ADMIN
    settings_form = JudgeSettingsForm(instance=project)
    only = Judge.objects.all()[:2]
    job_form = JudgingJobForm(initial={"judge": only[0]} if len(only) == 1 else None)
    answer, refused, unavailable = None, False, None
    pair, not_found = _preview_pair(project, request.GET.get("pair") or request.POST.get("pair"))
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "settings" and admin:
            settings_form = JudgeSettingsForm(request.POST, instance=project)
            if settings_form.is_valid():
                settings_form.save()
                messages.success(request, "Judging settings saved.")
                return redirect(
                    f"{request.path}?{urlencode({'pair': pair.external_id if pair else ''})}"
                )
        elif action == "ask" and admin and pair is not None:
            chosen = JudgeChoiceForm(request.POST)
            if not chosen.is_valid():
                refused = True
                answer = {"text": "", "error": "Choose one of the judges to ask."}
            else:
                judge = chosen.cleaned_data["judge"]
                first, _ = judges.judge_requests(project, _texts(pair))
                try:
                    answer = judges.judge_ask(judge=judge, text=first)
                except judges.JudgeUnavailable as exc:
                    answer, unavailable = {"text": "", "error": str(exc)}, exc
                answer["judge"] = judge.name
        elif action == "run":
            job_form = JudgingJobForm(request.POST)
            if job_form.is_valid():
                try:
                    job = judges.judging_job_create(
                        project=project, user=request.user, **job_form.cleaned_data
                    )
                except ValidationError as exc:
                    add_service_errors(job_form, exc)
                else:
                    return redirect("judging-job", job.pk)
        else:
            raise PermissionDenied("Only admins change the judging settings.")
    first = judges.judge_requests(project, _texts(pair))[0] if pair else ""
    context = {
        "project": project, "admin": admin, "settings_form": settings_form,
        "job_form": job_form, "pair": pair, "not_found": not_found, "request_text": first,
        "answer": answer,
        "judges": Judge.objects.all(), "jobs": project.judging_jobs.select_related("judge"),
        "default_template": DEFAULT_TEMPLATE,
    }  # fmt: skip
    errors = settings_form.errors or job_form.errors or refused
    if unavailable is not None:  # the page, with why, as a 503 a client can retry
        page = render(request, "annotation/judging.html", context, status=503)
        if unavailable.retry_after is not None:
            page["Retry-After"] = str(unavailable.retry_after)
        return page
    return render(request, "annotation/judging.html", context, status=400 if errors else 200)


def _texts(pair: Pair) -> dict:
    return {"prompt": pair.prompt, "response_a": pair.response_a, "response_b": pair.response_b}


def _job_for(request, pk: int) -> JudgingJob:
    job = get_object_or_404(JudgingJob.objects.select_related("judge", "project"), pk=pk)
    project_for(request, job.project_id, manage=True)
    return job


def job_count_text(job: JudgingJob) -> str:
    text = f"{job.done} of {job.total} pairs labelled, {job.failed} failed"
    if job.inconsistent:
        text += f", {job.inconsistent} changed with the order"
    return text


@login_required
def judging_job(request, pk: int):
    job = _job_for(request, pk)
    context = {
        "job": job, "project": job.project, "count": job_count_text(job),
        "progress_percent": round(100 * job.progress, 1),
    }  # fmt: skip
    return render(request, "annotation/judging_job.html", context)


@login_required
def judging_job_progress(request, pk: int):
    job = _job_for(request, pk)
    return JsonResponse(
        {
            "id": job.pk,
            "status": job.status,
            "status_label": job.get_status_display(),
            "finished": job.finished,
            "done": job.done + job.failed,
            "total": job.total,
            "progress": job.progress,
            "count": job_count_text(job),
            "error": job.error,
        }  # fmt: skip
    )


@login_required
@require_POST
def judging_job_cancel(request, pk: int):
    job = _job_for(request, pk)
    judges.judging_job_cancel(job=job)
    messages.info(request, "The job stops after the requests in flight.")
    return redirect("judging-job", job.pk)
