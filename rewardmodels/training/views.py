"""Server-rendered pages for training runs: launched from a dataset version, watched live,
cancelled. The models they register have their pages in model_views.py."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from annotation.access import ADMIN, project_role, user_is_admin
from annotation.curation.sections import PageSection
from annotation.curation.views import dataset_page
from annotation.models import CuratedDataset
from rewardmodels import charts
from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.training.forms import TrainingRunForm
from rewardmodels.training.held_out import final_check, run_check
from rewardmodels.training.selectors import (
    FINISHED,
    run_curves,
    run_latest_eval,
    run_role,
    run_trained_yet,
    run_untrained,
    runs_of_dataset,
    runs_visible,
)
from rewardmodels.training.services import training_run_cancel, training_run_create


def _run_for(request, pk: int, *, manage: bool = False) -> tuple[TrainingRun, str]:
    """The run and the user's role on it; 404 for anyone who may not see (or, with `manage`,
    launch and cancel) it, so outsiders learn nothing about which runs exist."""
    run = get_object_or_404(
        TrainingRun.objects.select_related("dataset__project", "created_by"), pk=pk
    )
    role = run_role(user=request.user, run=run)
    if role is None or (manage and role != ADMIN):
        raise Http404("No such training run.")
    return run, role


@login_required
@require_POST
def run_create(request, identifier: str):
    dataset = get_object_or_404(
        CuratedDataset.objects.select_related("project"), identifier=identifier
    )
    if project_role(user=request.user, project=dataset.project) != ADMIN:
        raise Http404("No such dataset version.")
    form = TrainingRunForm(request.POST)
    if form.is_valid():
        try:
            run = training_run_create(dataset=dataset, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            run.refresh_from_db(fields=["sent_at", "log_tail"])
            # Outside a transaction the send has been tried already; unsent: the broker is
            # down. The run is saved and goes out once it answers: say so.
            if run.sent_at is None and not transaction.get_connection().in_atomic_block:
                return render(request, "rewardmodels/not_sent.html", {"run": run}, status=503)
            messages.success(request, f"Training run {run.pk} queued on the gpu queue.")
            return redirect("run", pk=run.pk)
    return dataset_page(request, dataset, status=400, train_form=form)


def dataset_training_section(request, dataset: CuratedDataset, inputs: dict) -> PageSection:
    """The training panel on a version's page (registered in apps.py): the launch form for
    admins, blank or as `run_create` sent it back with its errors, and the newest runs for
    everyone who sees the page."""
    form = inputs.get("train_form")
    if form is None and user_is_admin(request.user):
        form = TrainingRunForm()
    return PageSection(
        "rewardmodels/_train_form.html",
        {"form": form, "runs": runs_of_dataset(dataset=dataset)},
    )


def duration(seconds: float | None) -> str:
    """12 s, 4 min 05 s, 2 h 07 min; empty when unknown."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def steps_text(run: TrainingRun) -> str:
    if run.status == TrainingRun.Status.QUEUED and not run.total_steps:
        return "waiting for a worker on the gpu queue"
    return f"step {run.step} / {run.total_steps}"


def _live_context(run: TrainingRun) -> dict:
    """What the page shows and the poller refreshes: progress, curves, held-out figures, and
    whether the newest held-out accuracy is clear of the untrained model's."""
    curves = run_curves(run=run)
    untrained = run_untrained(run=run)
    loss_chart = accuracy_chart = None
    if curves["train_loss"]:
        loss_chart = charts.loss_chart(run, curves["train_loss"], curves["eval_loss"])
    if curves["eval_accuracy"]:
        accuracy_chart = charts.accuracy_chart(run, curves["eval_accuracy"], untrained)
    latest = run.metrics[-1] if run.metrics else {}
    return {
        "run": run,
        "loss_chart": loss_chart,
        "accuracy_chart": accuracy_chart,
        "held_out": run_latest_eval(run=run),
        "trained_yet": run_trained_yet(run=run),
        "check": run_check(run=run),
        "final": bool(run.final_metrics),
        "tokens_per_second": latest.get("tokens_per_second"),
        "eta": duration(run.eta_seconds),
        "steps": steps_text(run),
        "progress_percent": round(100 * run.progress, 1),
    }


@login_required
def run_detail(request, pk: int):
    run, role = _run_for(request, pk)
    context = {
        **_live_context(run),
        "dataset": run.dataset,
        "can_manage": role == ADMIN,
        "finished": run.status in FINISHED,
        "reward_model": RewardModel.objects.filter(run=run).first(),
        "settings": [
            (TrainingRunForm.label_of(name), getattr(run, name))
            for name in TrainingRunForm.Meta.fields
        ],
    }
    return render(request, "rewardmodels/run.html", context)


@login_required
def run_progress(request, pk: int):
    run, _ = _run_for(request, pk)
    live = _live_context(run)
    return JsonResponse(
        {
            "id": run.pk,
            "status": run.status,
            "status_label": run.get_status_display(),
            "method": run.method_shown,
            "finished": run.status in FINISHED,
            "cancel_requested": run.cancel_requested,
            "step": run.step,
            "total_steps": run.total_steps,
            "steps": live["steps"],
            "progress": run.progress,
            "eta_seconds": run.eta_seconds,
            "eta": live["eta"],
            "log_tail": run.log_tail,
            "error": run.error,
            "live_html": render_to_string("rewardmodels/_run_live.html", live, request=request),
        }
    )


@login_required
@require_POST
def run_cancel(request, pk: int):
    run, _ = _run_for(request, pk, manage=True)
    if run.status in FINISHED:
        messages.error(request, f"Run {run.pk} is already {run.get_status_display().lower()}.")
    else:
        training_run_cancel(run=run)
        run.refresh_from_db()
        if run.status == TrainingRun.Status.CANCELLED:
            messages.success(request, f"Run {run.pk} cancelled before it started.")
        else:
            messages.success(request, f"Run {run.pk} stops after its current step.")
    return redirect("run", pk=run.pk)


@login_required
def run_list(request):
    page = Paginator(runs_visible(user=request.user), 25).get_page(request.GET.get("page"))
    for run in page:
        run.final_accuracy = run.final_metrics.get("accuracy")
        run.check = final_check(run=run)
        run.percent = round(100 * run.progress, 1)
    return render(request, "rewardmodels/runs.html", {"page": page})
