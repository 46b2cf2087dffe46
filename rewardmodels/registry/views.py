"""The models' pages: the list, a model's page and what is launched from it (promotion,
evaluation, filter, audit), and the comparison of models side by side."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.access import ADMIN
from annotation.models import CuratedDataset, Round
from rewardmodels import charts
from rewardmodels.access import model_role, models_visible, projects_led, promoted_model
from rewardmodels.evaluation.audits import PROBES, audit_create, promotion_check
from rewardmodels.evaluation.forms import AuditForm, EvaluationForm
from rewardmodels.evaluation.selectors import (
    datasets_with_test_split,
    evaluation_latest,
    model_metrics,
    people_calibration_latest,
)
from rewardmodels.evaluation.services import evaluation_create
from rewardmodels.models import Audit, RewardModel, TrainingRun
from rewardmodels.pages import SERVICE_ERRORS, model_for, people_calibration_context, safe_next
from rewardmodels.registry.selectors import promotions
from rewardmodels.registry.services import model_demote, model_promote
from rewardmodels.scoring.forms import FilterForm
from rewardmodels.scoring.services import filter_create
from rewardmodels.training.forms import TrainingRunForm
from rewardmodels.training.held_out import final_check

OWN_TEST_SPLIT = "own"
MAX_PICKED_FROM = 200  # models offered as checkboxes on the compare page, newest first


def _test_datasets(request, reward_model: RewardModel):
    """The versions a model may be evaluated on: those of its project with a test split."""
    return datasets_with_test_split(user=request.user).filter(project_id=reward_model.project_id)


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
    siblings = models_visible(user=request.user).filter(project_id=reward_model.project_id)
    return {
        "reward_model": reward_model,
        "run": reward_model.run,
        "check": final_check(run=reward_model.run) if reward_model.run_id else None,
        "dataset": reward_model.dataset,
        "page": page,
        "filters": reward_model.filters.order_by("-created_at", "-pk")[:10],
        "evaluate_form": evaluate_form
        or EvaluationForm(datasets=_test_datasets(request, reward_model)),
        "filter_form": filter_form or FilterForm(),
        "siblings": siblings.exclude(pk=reward_model.pk),
        "test_datasets": _test_datasets(request, reward_model),
        "promoted": promoted_model(project_id=reward_model.project_id),
        "promotions": promotions(project_id=reward_model.project_id)[:10],
        "may_promote": model_role(user=request.user, reward_model=reward_model) == ADMIN,
        "people": people_calibration_context(*people_calibration_latest(reward_model=reward_model)),
        # What a policy could exploit: the gate on promotion, the audits, a new one.
        "gate": promotion_check(reward_model=reward_model),
        "audits": reward_model.audits.select_related("dataset", "round").order_by("-pk")[:10],
        "audit_form": audit_form or audit_form_for(request, reward_model),
    }


def audit_form_for(request, reward_model: RewardModel, data=None, files=None) -> AuditForm:
    """The audit form: the model's project's versions with a test split, and its rounds."""
    rounds = Round.objects.filter(project_id=reward_model.project_id).order_by("-created_at")
    return AuditForm(data, files, datasets=_test_datasets(request, reward_model), rounds=rounds)


@login_required
def model_list(request):
    page = Paginator(models_visible(user=request.user), 25).get_page(request.GET.get("page"))
    for reward_model in page:
        reward_model.check = final_check(run=reward_model.run) if reward_model.run_id else None
    context = {"page": page, "projects": projects_led(user=request.user)}
    return render(request, "rewardmodels/models.html", context)


@login_required
def model_detail(request, identifier: str):
    reward_model = model_for(request, identifier)
    return render(request, "rewardmodels/model.html", _model_context(request, reward_model))


@login_required
@require_POST
def model_promotion(request, identifier: str):
    """Promote the model, or demote it (`demote`), with a reason; admins only."""
    reward_model = model_for(request, identifier)
    if model_role(user=request.user, reward_model=reward_model) != ADMIN:
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


@login_required
@require_POST
def model_evaluate(request, identifier: str):
    reward_model = model_for(request, identifier)
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
            back = safe_next(request)
            return redirect(back) if back else redirect("evaluation", pk=evaluation.pk)
    context = _model_context(request, reward_model, evaluate_form=form)
    return render(request, "rewardmodels/model.html", context, status=400)


@login_required
@require_POST
def model_filter(request, identifier: str):
    reward_model = model_for(request, identifier)
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


def _wanted_models(request) -> list[str]:
    """Identifiers from ?models=a,b and from repeated ?m=, in order, once each."""
    wanted = [part for value in request.GET.getlist("models") for part in value.split(",")]
    wanted += request.GET.getlist("m")
    return list(dict.fromkeys(name.strip() for name in wanted if name.strip()))


def _compare_column(reward_model: RewardModel, dataset: CuratedDataset | None, colour: str):
    """One model's figures on the chosen data; without them, the evaluation under way there
    or whether one may be queued (only on a version of the model's own project)."""
    metrics, evaluation = model_metrics(reward_model=reward_model, dataset=dataset)
    target = dataset or reward_model.dataset  # None: a registered model has no split of its own
    pending = None
    if not metrics and target is not None:
        pending = evaluation_latest(reward_model=reward_model, dataset=target, succeeded=False)
    same_pairs = target is not None and target.pk == reward_model.dataset_id  # its run's start
    return {
        "model": reward_model,
        "colour": colour,
        "metrics": metrics,
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
    visible = models_visible(user=request.user)
    wanted = _wanted_models(request)
    found = visible.in_bulk(wanted, field_name="identifier")
    if len(found) < len(wanted):
        raise Http404("No such reward model.")
    chosen = [found[identifier] for identifier in wanted]
    datasets = datasets_with_test_split(user=request.user)
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
    series = [(c["model"].identifier, c["colour"], c["metrics"]) for c in columns if c["metrics"]]
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


@login_required
@require_POST
def model_audit(request, identifier: str):
    reward_model = model_for(request, identifier)
    if model_role(user=request.user, reward_model=reward_model) is None:
        raise PermissionDenied("Only the project's leads and admins audit its models.")
    form = audit_form_for(request, reward_model, request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            audit = audit_create(
                reward_model=reward_model, user=request.user, dataset=data["dataset"],
                round_=data["round"], upload=data["pairs"], fmt=data["format"],
                probes=data["probes"],
            )  # fmt: skip
        except SERVICE_ERRORS as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Audit {audit.pk} queued on {audit.data_name}.")
            return redirect("audit", pk=audit.pk)
    context = _model_context(request, reward_model, audit_form=form)
    return render(request, "rewardmodels/model.html", context, status=400)
