"""Answers a person waits for leave nothing behind once nobody waits. config.celery.answer_of
sends those tasks with `expires` at the moment the web request stops waiting: a worker that
takes one later drops it unrun, and one that finishes after it has an answer nobody reads.
Both would stay in the result backend for CELERY_RESULT_EXPIRES (the mark of a dropped task,
the late answer); they are removed at once instead."""

from datetime import UTC, datetime

from celery import signals
from celery.utils.time import maybe_iso8601


def _past(expires) -> bool:
    if not expires:
        return False
    if isinstance(expires, str):
        expires = maybe_iso8601(expires)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return datetime.now(UTC) >= expires


@signals.task_revoked.connect
def forget_dropped(sender=None, request=None, expired=False, **_) -> None:
    """A waited-on task dropped unrun (expired, or revoked by the request that gave up)."""
    if sender is None or sender.ignore_result or request is None:
        return
    if expired or getattr(request, "expires", None):
        sender.backend.forget(request.id)


@signals.task_postrun.connect
def forget_late_answer(sender=None, task_id=None, task=None, **_) -> None:
    """A waited-on task that finished after the request stopped waiting for it."""
    if task is None or task.ignore_result or not _past(task.request.expires):
        return
    task.backend.forget(task_id)
