"""What every job task shares: it takes the job's id, changes the job's state only through
the services (annotation.jobs, rewardmodels.services), and fails the job with the reason if
anything escapes its body, so that no job stays running after its task ended."""

import functools

from celery.exceptions import Ignore, Reject, Retry
from django.apps import apps


def fails_its_job(model_label: str):
    """Decorate a task whose first argument is the id of a `model_label` row (app.Model):
    an exception that escapes its body fails the job with the exception's type and message.
    Celery's own control flow (a retry, a rejection) passes through."""

    def decorate(body):
        @functools.wraps(body)
        def task(job_id: int, *args, **kwargs):
            try:
                return body(job_id, *args, **kwargs)
            except (Retry, Ignore, Reject):
                raise
            except Exception as exc:  # noqa: BLE001 - recorded on the job for the UI
                from annotation.jobs import job_fail

                job_fail(apps.get_model(model_label), job_id, exc)
                return None

        return task

    return decorate
