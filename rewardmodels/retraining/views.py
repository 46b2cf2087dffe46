"""A project's models page: every model on every round's held-out pairs, evaluations queued
from it, and retraining launched from it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.access import ADMIN, project_role
from rewardmodels.evaluation.drift import project_drift
from rewardmodels.models import RewardModel
from rewardmodels.pages import project_led_for
from rewardmodels.retraining.services import (
    drift_evaluate,
    labels_since_last_version,
    retraining_start,
)

BASE_MODEL = ""  # the retrain form's "start from" choice for the base model


@login_required
def project_models(request, pk: int):
    project = project_led_for(request, pk)
    drift = project_drift(project=project)
    context = {
        "project": project,
        "drift": drift,
        "retrainings": project.retrainings.select_related(
            "run__dataset", "run__start_from", "previous", "created_by"
        )[:10],
        "dataset_names": sorted(set(project.datasets.values_list("name", flat=True))),
        "models": [row.reward_model for row in reversed(drift.rows)],
        "may_retrain": project_role(user=request.user, project=project) == ADMIN,
        "new_labels": labels_since_last_version(project) if project.retrain_dataset else None,
    }
    return render(request, "rewardmodels/project_models.html", context)


@login_required
@require_POST
def project_models_evaluate(request, pk: int):
    project = project_led_for(request, pk)
    queued = drift_evaluate(project=project, user=request.user, again="again" in request.POST)
    if queued:
        messages.success(request, f"{queued} evaluations queued on the scoring queue.")
    else:
        messages.info(request, "Nothing to evaluate: no round has labelled held-out pairs, or "
                      "every cell is evaluated or under way.")  # fmt: skip
    return redirect("project-models", pk=project.pk)


@login_required
@require_POST
def project_retrain(request, pk: int):
    project = project_led_for(request, pk, admin=True)
    chosen = request.POST.get("start_from", BASE_MODEL)
    start_from = None
    if chosen != BASE_MODEL:
        start_from = RewardModel.objects.filter(project=project, identifier=chosen).first()
        if start_from is None:
            messages.error(request, f"No reward model {chosen!r} in this project.")
            return redirect("project-models", pk=project.pk)
    try:
        retraining = retraining_start(
            project=project, dataset_name=request.POST.get("dataset", ""),
            start_from=start_from, user=request.user,
        )  # fmt: skip
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("project-models", pk=project.pk)
    messages.success(
        request,
        f"Retraining {retraining.pk}: {retraining.run.dataset.identifier} curated, training run "
        f"{retraining.run.pk} queued; the models are evaluated and the decision made when it ends.",
    )
    return redirect("project-models", pk=project.pk)
