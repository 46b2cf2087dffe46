"""Server-rendered pages for reward models: lineage and held-out figures, promotion,
evaluations and filter runs (launched and followed), and the comparison of models."""

import json
from itertools import islice
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from annotation.access import ADMIN
from annotation.models import CuratedDataset, Round
from annotation.pairs.readers import FileRejected
from annotation.rendering import prompt_preview, render_preview
from rewardmodels import charts, selectors
from rewardmodels.audits import PROBES, promotion_check
from rewardmodels.formats import RowsRejected
from rewardmodels.forms import AuditForm, EvaluationForm, FilterForm, TrainingRunForm
from rewardmodels.models import Audit, EvaluationRun, FilterRun, RewardModel, TrainingRun
from rewardmodels.services import (
    evaluation_create,
    filter_create,
    model_demote,
    model_promote,
)

OWN_TEST_SPLIT = "own"
SERVICE_ERRORS = (ValidationError, RowsRejected, FileRejected)
MAX_PICKED_FROM = 200  # models offered as checkboxes on the compare page, newest first


def _model_for(request, identifier: str) -> RewardModel:
    return selectors.reward_model_for(user=request.user, key=identifier)


def _job_for(request, model: type[EvaluationRun | FilterRun], pk: int):
    job = get_object_or_404(
        model.objects.select_related("reward_model__project", "created_by"), pk=pk
    )
    if selectors.model_role(user=request.user, reward_model=job.reward_model) is None:
        raise Http404("No such job.")
    return job


def _test_datasets(request, reward_model: RewardModel):
    """The versions a model may be evaluated on: those of its project with a test split."""
    return selectors.datasets_with_test_split(user=request.user).filter(
        project_id=reward_model.project_id
    )


def _model_context(
    request,
    reward_model: RewardModel,
    *,
    evaluate_form: EvaluationForm | None = None,
    filter_form: FilterForm | None = None,
    audit_form: AuditForm | None = None,
) -> dict:
    """What the model page shows; the evaluate, filter and audit views re-render it with
    errors."""
    page = Paginator(
        reward_model.evaluations.select_related("dataset").order_by("-created_at", "-pk"), 25
    ).get_page(request.GET.get("page"))
    siblings = selectors.models_visible(user=request.user).filter(
        project_id=reward_model.project_id
    )
    return {
        "reward_model": reward_model,
        "run": reward_model.run,
        "check": selectors.final_check(run=reward_model.run) if reward_model.run_id else None,
        "dataset": reward_model.dataset,
        "page": page,
        "filters": reward_model.filters.order_by("-created_at", "-pk")[:10],
        "evaluate_form": evaluate_form
        or EvaluationForm(datasets=_test_datasets(request, reward_model)),
        "filter_form": filter_form or FilterForm(),
        "siblings": siblings.exclude(pk=reward_model.pk),
        "test_datasets": _test_datasets(request, reward_model),
        "promoted": selectors.promoted_model(project_id=reward_model.project_id),
        "promotions": selectors.promotions(project_id=reward_model.project_id)[:10],
        "may_promote": selectors.model_role(user=request.user, reward_model=reward_model) == ADMIN,
        "people": _people(*selectors.people_calibration_latest(reward_model=reward_model)),
        # What a policy could exploit: the gate on promotion, the audits, a new one.
        "gate": promotion_check(reward_model=reward_model),
        "audits": reward_model.audits.select_related("dataset", "round").order_by("-pk")[:10],
        "audit_form": audit_form or audit_form_for(request, reward_model),
    }


def audit_form_for(request, reward_model: RewardModel, data=None, files=None) -> AuditForm:
    """The audit form: the model's project's versions with a test split, and its rounds."""
    rounds = Round.objects.filter(project_id=reward_model.project_id).order_by("-created_at")
    return AuditForm(data, files, datasets=_test_datasets(request, reward_model), rounds=rounds)


def _people(calibration: dict, evaluation: EvaluationRun | None = None) -> dict | None:
    """What _calibration.html shows of a calibration against people's votes: its figures,
    its reliability chart and the evaluation it came from; None without one."""
    if not calibration.get("n"):
        return None
    chart = charts.people_reliability_chart(calibration)
    return {"figures": calibration, "chart": chart, "evaluation": evaluation}


@login_required
def model_list(request):
    page = Paginator(selectors.models_visible(user=request.user), 25).get_page(
        request.GET.get("page")
    )
    for reward_model in page:
        reward_model.check = (
            selectors.final_check(run=reward_model.run) if reward_model.run_id else None
        )
    context = {"page": page, "projects": selectors.projects_led(user=request.user)}
    return render(request, "rewardmodels/models.html", context)


@login_required
def model_detail(request, identifier: str):
    reward_model = _model_for(request, identifier)
    return render(request, "rewardmodels/model.html", _model_context(request, reward_model))


@login_required
@require_POST
def model_promotion(request, identifier: str):
    """Promote the model, or demote it (`demote`), with a reason; admins only."""
    reward_model = _model_for(request, identifier)
    if selectors.model_role(user=request.user, reward_model=reward_model) != ADMIN:
        raise PermissionDenied("Only admins promote and demote models.")
    reason = request.POST.get("reason", "")
    try:
        if request.POST.get("demote"):
            model_demote(reward_model=reward_model, user=request.user, reason=reason)
        else:
            model_promote(reward_model=reward_model, user=request.user, reason=reason,
                          override=bool(request.POST.get("override")))  # fmt: skip
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        action = "demoted" if request.POST.get("demote") else "promoted"
        messages.success(request, f"{reward_model.identifier} {action}.")
    return redirect("model", reward_model.identifier)


def _safe_next(request) -> str | None:
    """Where a form asks to go back to (the compare page), if it is on this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return None


@login_required
@require_POST
def model_evaluate(request, identifier: str):
    reward_model = _model_for(request, identifier)
    form = EvaluationForm(
        request.POST, request.FILES, datasets=_test_datasets(request, reward_model)
    )
    if form.is_valid():
        try:
            evaluation = evaluation_create(
                reward_model=reward_model,
                user=request.user,
                dataset=form.cleaned_data["dataset"],
                upload=form.cleaned_data["pairs"],
                fmt=form.cleaned_data["format"],
            )
        except SERVICE_ERRORS as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request, f"Evaluation {evaluation.pk} queued on {evaluation.data_name}."
            )
            back = _safe_next(request)
            return redirect(back) if back else redirect("evaluation", pk=evaluation.pk)
    context = _model_context(request, reward_model, evaluate_form=form)
    return render(request, "rewardmodels/model.html", context, status=400)


@login_required
@require_POST
def model_filter(request, identifier: str):
    reward_model = _model_for(request, identifier)
    form = FilterForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            job = filter_create(
                reward_model=reward_model,
                user=request.user,
                upload=data["candidates"],
                keep_top=data["keep_top"],
                threshold=data["threshold"],
                normalize=data["normalize"],
                fmt=data["format"],
            )
        except SERVICE_ERRORS as exc:
            form.add_service_error(exc)
        else:
            messages.success(
                request,
                f"Filter run {job.pk} queued: {job.total} candidates for {job.n_prompts} prompts.",
            )
            return redirect("filter", pk=job.pk)
    context = _model_context(request, reward_model, filter_form=form)
    return render(request, "rewardmodels/model.html", context, status=400)


def job_count_text(job: EvaluationRun | FilterRun) -> str:
    if job.status == job.Status.QUEUED and not job.done:
        return "waiting for a worker on the scoring queue"
    return f"{job.done:,} / {job.total:,} responses scored"


def _job_json(job: EvaluationRun | FilterRun) -> JsonResponse:
    return JsonResponse(
        {
            "id": job.pk,
            "status": job.status,
            "status_label": job.get_status_display(),
            "finished": job.finished,
            "done": job.done,
            "total": job.total,
            "progress": job.progress,
            "count": job_count_text(job),
            "error": job.error,
        }
    )


def _job_context(job: EvaluationRun | FilterRun) -> dict:
    return {
        "job": job,
        "reward_model": job.reward_model,
        "count": job_count_text(job),
        "progress_percent": round(100 * job.progress, 1),
    }


@login_required
def evaluation_detail(request, pk: int):
    evaluation = _job_for(request, EvaluationRun, pk)
    context = _job_context(evaluation)
    if evaluation.metrics:
        # The run measured its untrained model on its version's test split: on those pairs,
        # the evaluation is set against it (the timeline is not loaded for this).
        run = TrainingRun.objects.only("dataset_id", "final_metrics").filter(
            pk=evaluation.reward_model.run_id
        )
        run = run.first()
        same_pairs = run is not None and evaluation.dataset_id == run.dataset_id
        context["check"] = selectors.held_out_check(
            figures=evaluation.metrics,
            untrained=run.final_metrics.get("untrained") if same_pairs else None,
        )
        context["same_pairs"] = same_pairs
        name = evaluation.reward_model.identifier
        context["difficulty_chart"] = charts.difficulty_chart(
            [(name, charts.MODEL_COLOURS[0], evaluation.metrics)]
        )
        context["people"] = _people(evaluation.metrics.get("people_calibration") or {})
    return render(request, "rewardmodels/evaluation.html", {**context, "evaluation": evaluation})


@login_required
def evaluation_progress(request, pk: int):
    return _job_json(_job_for(request, EvaluationRun, pk))


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
    job = _job_for(request, FilterRun, pk)
    context = {**_job_context(job), "filter_run": job, "kept": _kept_head(job)}
    if job.lengths:  # runs from before lengths were recorded have none
        context["lengths_chart"] = charts.kept_lengths_chart(job.lengths)
    return render(request, "rewardmodels/filter.html", context)


@login_required
def filter_progress(request, pk: int):
    return _job_json(_job_for(request, FilterRun, pk))


@login_required
def filter_download(request, pk: int):
    job = _job_for(request, FilterRun, pk)
    path = Path(job.output_file) if job.output_file else None
    if job.status != FilterRun.Status.SUCCEEDED or path is None or not path.is_file():
        raise Http404("The kept rows are not ready.")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"filter-{job.pk}-kept.jsonl",
        content_type="application/x-ndjson",
    )


def _wanted_models(request) -> list[str]:
    """Identifiers from ?models=a,b and from repeated ?m=, in order, once each."""
    wanted = [part for value in request.GET.getlist("models") for part in value.split(",")]
    wanted += request.GET.getlist("m")
    return list(dict.fromkeys(name.strip() for name in wanted if name.strip()))


def _compare_column(reward_model: RewardModel, dataset: CuratedDataset | None, colour: str):
    """One model's figures on the chosen data; without them, the evaluation under way there
    or whether one may be queued (only on a version of the model's own project)."""
    figures, evaluation = selectors.model_figures(reward_model=reward_model, dataset=dataset)
    target = dataset or reward_model.dataset  # None: a registered model has no split of its own
    pending = None
    if not figures and target is not None:
        pending = selectors.evaluation_latest(
            reward_model=reward_model, dataset=target, succeeded=False
        )
    same_pairs = target is not None and target.pk == reward_model.dataset_id  # its run's start
    return {
        "model": reward_model,
        "colour": colour,
        "figures": figures,
        "untrained": reward_model.run.final_metrics.get("untrained") if same_pairs else None,
        "evaluation": evaluation,
        "target": target,
        "pending": pending,
        "can_queue": target is not None and target.project_id == reward_model.project_id,
        # What a policy could exploit, whatever data it was audited on: the newest audit.
        "audit": reward_model.audits.filter(status=Audit.Status.SUCCEEDED).order_by("-pk").first(),
    }


@login_required
def model_compare(request):
    visible = selectors.models_visible(user=request.user)
    wanted = _wanted_models(request)
    found = visible.in_bulk(wanted, field_name="identifier")
    if len(found) < len(wanted):
        raise Http404("No such reward model.")
    chosen = [found[identifier] for identifier in wanted]
    datasets = selectors.datasets_with_test_split(user=request.user)
    if chosen:
        datasets = datasets.filter(project__in={m.project_id for m in chosen})
    data = request.GET.get("data") or OWN_TEST_SPLIT
    dataset = None
    if data != OWN_TEST_SPLIT:
        dataset = datasets.filter(identifier=data).first()
        if dataset is None:
            raise Http404("No such dataset version.")

    columns = [
        _compare_column(reward_model, dataset, charts.MODEL_COLOURS[k % len(charts.MODEL_COLOURS)])
        for k, reward_model in enumerate(chosen)
    ]
    series = [(c["model"].identifier, c["colour"], c["figures"]) for c in columns if c["figures"]]
    differing = _differing_settings(chosen)
    context = {
        "visible": visible[:MAX_PICKED_FROM],
        "chosen": {m.identifier for m in chosen},
        "columns": columns,
        "datasets": datasets,
        "data": data,
        "dataset": dataset,
        "own": OWN_TEST_SPLIT,
        "difficulty_chart": charts.difficulty_chart(series) if series else None,
        "length_chart": charts.length_chart(series) if series else None,
        "differing": differing,
        "probe_names": PROBES,
    }
    return render(request, "rewardmodels/compare.html", context)


def _differing_settings(chosen: list[RewardModel]) -> list[tuple[str, list]]:
    """The training settings (and the version trained on) in which the models' runs differ,
    each with a value per model ('–' for a registered model, which has no run)."""
    if len(chosen) < 2:
        return []
    rows = [("dataset version", [m.dataset.identifier if m.dataset_id else "–" for m in chosen])]
    for name in TrainingRun.SETTINGS:
        rows.append(
            (
                TrainingRunForm.label_of(name),
                [getattr(m.run, name) if m.run_id else "–" for m in chosen],
            )
        )
    return [(label, values) for label, values in rows if len(set(map(str, values))) > 1]
