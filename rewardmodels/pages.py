"""What the model and job pages share: a model or job by id with its permission check, a
job's state as JSON and as page context, calibration against people as a page shows it, a
project's models page's access, a service's errors on a form, and the choice of file
formats."""

from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.http import url_has_allowed_host_and_scheme

from annotation.access import ADMIN, project_role
from annotation.models import Membership, Project
from annotation.pairs.readers import FORMATS, FileRejected
from rewardmodels import charts
from rewardmodels.access import model_role, reward_model_for
from rewardmodels.formats import RowsRejected
from rewardmodels.models import EvaluationRun, FilterRun, RewardModel

SERVICE_ERRORS = (ValidationError, RowsRejected, FileRejected)


def model_for(request, identifier: str) -> RewardModel:
    return reward_model_for(user=request.user, key=identifier)


def job_for(request, model: type[EvaluationRun | FilterRun], pk: int):
    job = get_object_or_404(
        model.objects.select_related("reward_model__project", "created_by"), pk=pk
    )
    if model_role(user=request.user, reward_model=job.reward_model) is None:
        raise Http404("No such job.")
    return job


def safe_next(request) -> str | None:
    """Where a form asks to go back to (the compare page), if it is on this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return None


def job_count_text(job: EvaluationRun | FilterRun) -> str:
    if job.status == job.Status.QUEUED and not job.done:
        return "waiting for a worker on the scoring queue"
    return f"{job.done:,} / {job.total:,} responses scored"


def job_json(job: EvaluationRun | FilterRun) -> JsonResponse:
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


def job_context(job: EvaluationRun | FilterRun) -> dict:
    return {
        "job": job,
        "reward_model": job.reward_model,
        "count": job_count_text(job),
        "progress_percent": round(100 * job.progress, 1),
    }


class ServiceErrors:
    """Show a service's refusal on the form that asked for it."""

    file_field = ""  # where a bad file's message goes

    def add_service_error(self, exc: ValidationError | RowsRejected | FileRejected) -> None:
        """Put each message next to its field, or at the top when it names none of ours."""
        if isinstance(exc, RowsRejected):
            self.add_error(self.file_field or None, str(exc))
        elif isinstance(exc, FileRejected):
            self.add_error(self.file_field or None, f"Nothing was accepted: {exc}")
        elif hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, exc.messages)


def people_calibration_context(
    calibration: dict, evaluation: EvaluationRun | None = None
) -> dict | None:
    """What _calibration.html shows of a calibration against people's votes: its figures,
    its reliability chart and the evaluation it came from; None without one."""
    if not calibration.get("n"):
        return None
    chart = charts.people_reliability_chart(calibration)
    return {"figures": calibration, "chart": chart, "evaluation": evaluation}


def project_led_for(request, pk: int, *, admin: bool = False) -> Project:
    """Leads see the page and queue evaluations; admins also retrain. 404 for anyone else."""
    project = get_object_or_404(Project, pk=pk)
    role = project_role(user=request.user, project=project)
    if role not in (ADMIN, Membership.Role.LEAD) or (admin and role != ADMIN):
        raise Http404("No such project.")
    return project


FORMAT_CHOICES = [
    (name, "detect from the extension" if name == "auto" else name) for name in FORMATS
]
