"""Pages of evaluations (with the pairs the model got wrong) and audits, followed live, and
an audit's edited pairs for download."""

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, render

from rewardmodels import charts
from rewardmodels.access import model_role
from rewardmodels.evaluation.audits import audit_check, debiased_accuracy
from rewardmodels.evaluation.forms import WrongPairsForm
from rewardmodels.evaluation.selectors import (
    evaluation_pairs_project,
    evaluation_wrong_pairs,
    wrong_pairs_filtered,
)
from rewardmodels.models import Audit, EvaluationRun, TrainingRun
from rewardmodels.pages import (
    job_context,
    job_for,
    job_json,
    people_calibration_context,
)
from rewardmodels.training.held_out import held_out_check

WRONG_PAIRS_PER_PAGE = 25


@login_required
def evaluation_detail(request, pk: int):
    evaluation = job_for(request, EvaluationRun, pk)
    context = job_context(evaluation)
    if evaluation.metrics:
        # The run measured its untrained model on its version's test split: on those pairs,
        # the evaluation is set against it (the timeline is not loaded for this).
        run = TrainingRun.objects.only("dataset_id", "final_metrics").filter(
            pk=evaluation.reward_model.run_id
        )
        run = run.first()
        same_pairs = run is not None and evaluation.dataset_id == run.dataset_id
        context["check"] = held_out_check(
            figures=evaluation.metrics,
            untrained=run.final_metrics.get("untrained") if same_pairs else None,
        )
        context["same_pairs"] = same_pairs
        name = evaluation.reward_model.identifier
        context["difficulty_chart"] = charts.difficulty_chart(
            [(name, charts.MODEL_COLOURS[0], evaluation.metrics)]
        )
        context["people"] = people_calibration_context(
            evaluation.metrics.get("people_calibration") or {}
        )
        context.update(_wrong_pairs_context(request, evaluation))
    return render(request, "rewardmodels/evaluation.html", {**context, "evaluation": evaluation})


def _wrong_pairs_context(request, evaluation: EvaluationRun) -> dict:
    """A page of the pairs the model got wrong, most confident mistake first, as the query
    string filters them; the project whose review pages the product's pairs link to."""
    form = WrongPairsForm(request.GET)
    wrong = evaluation_wrong_pairs(evaluation=evaluation)
    if wrong is None:
        return {"wrong_form": form, "wrong_page": None}
    filters = form.filters()
    shown = wrong_pairs_filtered(wrong, **filters)
    return {
        "wrong_form": form,
        "wrong_page": Paginator(shown, WRONG_PAIRS_PER_PAGE).get_page(request.GET.get("page")),
        "wrong_total": len(wrong),
        "wrong_filtered": bool(filters),
        "wrong_query": form.query(),
        "pairs_project": evaluation_pairs_project(evaluation=evaluation),
    }


@login_required
def evaluation_progress(request, pk: int):
    return job_json(job_for(request, EvaluationRun, pk))


def _audit_for(request, pk: int) -> Audit:
    audit = get_object_or_404(
        Audit.objects.select_related("reward_model__project", "reward_model__run", "created_by",
                                     "dataset", "round"), pk=pk,
    )  # fmt: skip
    if model_role(user=request.user, reward_model=audit.reward_model) is None:
        raise Http404("No such audit.")
    return audit


@login_required
def audit_detail(request, pk: int):
    audit = _audit_for(request, pk)
    context = {**job_context(audit), "audit": audit}
    if audit.status == Audit.Status.SUCCEEDED:
        context["held_back"] = audit_check(audit)
        context["tolerance"] = audit.reward_model.project.audit_flip_tolerance
        context["debiased"] = debiased_accuracy(audit.results)
    return render(request, "rewardmodels/audit.html", context)


@login_required
def audit_progress(request, pk: int) -> JsonResponse:
    return job_json(_audit_for(request, pk))


@login_required
def audit_download(request, pk: int):
    audit = _audit_for(request, pk)
    path = Path(audit.edited_file) if audit.edited_file else None
    if path is None or not path.is_file():
        raise Http404("This audit's edited pairs are not there.")
    return FileResponse(path.open("rb"), as_attachment=True,
                        filename=f"audit-{audit.pk}-edited.jsonl")  # fmt: skip
