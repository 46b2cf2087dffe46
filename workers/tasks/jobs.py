"""A job's failure written to its row, with its reason."""

import logging

from django.utils import timezone

logger = logging.getLogger(__name__)


def job_fail(model, pk: int, exc: Exception) -> None:
    logger.exception("%s %s failed", model.__name__, pk)
    model.objects.filter(pk=pk).update(
        status=model.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
    )
