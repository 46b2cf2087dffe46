"""Pages for audits: launched from a model's page (admins and leads), followed live, their
figures with a pair shown before and after each edit, and the edited pairs to download."""

from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from rewardmodels import selectors
from rewardmodels.audits import audit_check, audit_create, debiased_accuracy
from rewardmodels.model_views import (
    SERVICE_ERRORS,
    _job_context,
    _job_json,
    _model_context,
    _model_for,
    audit_form_for,
)
from rewardmodels.models import Audit


def _audit_for(request, pk: int) -> Audit:
    audit = get_object_or_404(
        Audit.objects.select_related("reward_model__project", "reward_model__run", "created_by",
                                     "dataset", "round"), pk=pk,
    )  # fmt: skip
    if selectors.model_role(user=request.user, reward_model=audit.reward_model) is None:
        raise Http404("No such audit.")
    return audit


@login_required
@require_POST
def model_audit(request, identifier: str):
    reward_model = _model_for(request, identifier)
    if selectors.model_role(user=request.user, reward_model=reward_model) is None:
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


@login_required
def audit_detail(request, pk: int):
    audit = _audit_for(request, pk)
    context = {**_job_context(audit), "audit": audit}
    if audit.status == Audit.Status.SUCCEEDED:
        context["held_back"] = audit_check(audit)
        context["tolerance"] = audit.reward_model.project.audit_flip_tolerance
        context["debiased"] = debiased_accuracy(audit.results)
    return render(request, "rewardmodels/audit.html", context)


@login_required
def audit_progress(request, pk: int) -> JsonResponse:
    return _job_json(_audit_for(request, pk))


@login_required
def audit_download(request, pk: int):
    audit = _audit_for(request, pk)
    path = Path(audit.edited_file) if audit.edited_file else None
    if path is None or not path.is_file():
        raise Http404("This audit's edited pairs are not there.")
    return FileResponse(path.open("rb"), as_attachment=True,
                        filename=f"audit-{audit.pk}-edited.jsonl")  # fmt: skip
