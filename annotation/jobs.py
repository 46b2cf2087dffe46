"""The life of a job row (a judging job here; evaluations and filters in rewardmodels, which
use the same functions): sent, started, succeeded or failed, each a compare-and-set on its
status, so a job moves only forward and a late or repeated task changes nothing.

A job belongs to the database, not the broker: one queued while the broker is down stays
queued, unsent, and `jobs_recover` (run by every worker's recovery sweep) sends it once the
broker answers; one sent and not started after JOB_RESEND_SECONDS (the broker lost its
message) is sent again. Of its messages, the first to arrive starts it, and only that one
starts it again (handed back after its worker died): a message that was only slow finds it
started, or finished, and does nothing. Training runs, which also hold leases, have
services of their own in rewardmodels.training.services.

A job model has a Status with QUEUED, RUNNING, SUCCEEDED and FAILED, and the fields `error`,
`finished_at` (RequestedWork), `started_at` and `sent_at`."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.celery import BrokerUnavailable, enqueue

logger = logging.getLogger(__name__)
# A job queued this long ago and never sent (the broker was down) is sent by the sweep; a
# younger one may still be on its way (sent after its transaction commits).
UNSENT_GRACE_SECONDS = 10


def unfinished(model) -> list[str]:
    return [model.Status.QUEUED, model.Status.RUNNING]


def job_send(model, pk: int, task: str) -> bool:
    """Send the job's task and record when. With the broker down nothing is raised: the job
    stays queued and unsent, and the recovery sweep sends it once the broker answers."""
    try:
        enqueue(task, pk)
    except BrokerUnavailable as exc:
        logger.warning("%s %s not sent yet: %s", model.__name__, pk, exc)
        return False
    model.objects.filter(pk=pk).update(sent_at=timezone.now())
    return True


def job_start(model, pk: int, message: str = "") -> bool:
    """Mark the job running, started by the task message `message` (its id); False when it
    has finished (or been cancelled) already, or another message started it: a message
    delivered twice, or sent again while the first was still on its way, does no harm. The
    message that started a job whose worker died is handed back by the broker and starts it
    again (the tasks resume: what is done stays done)."""
    first = model.objects.filter(pk=pk, status=model.Status.QUEUED).update(
        status=model.Status.RUNNING, error="", started_by=message,
        started_at=Coalesce("started_at", Value(timezone.now())),
    )  # fmt: skip
    if first:
        return True
    # started_by empty: started before messages were told apart, by any of them.
    by_it = Q(started_by=message) | Q(started_by="")
    again = model.objects.filter(by_it, pk=pk, status=model.Status.RUNNING)
    return bool(again.update(error="", started_by=message))


def job_succeed(model, pk: int, **results) -> bool:
    """Record the job's results and mark it succeeded, if it is still under way."""
    return bool(
        model.objects.filter(pk=pk, status__in=unfinished(model)).update(
            status=model.Status.SUCCEEDED, finished_at=timezone.now(), **results
        )
    )


def job_fail(model, pk: int, reason: str | BaseException) -> bool:
    """Mark an unfinished job failed with the reason (an exception's type and message)."""
    if isinstance(reason, BaseException):
        logger.error("%s %s failed", model.__name__, pk, exc_info=reason)
        reason = f"{type(reason).__name__}: {reason}"
    return bool(
        model.objects.filter(pk=pk, status__in=unfinished(model)).update(
            status=model.Status.FAILED, error=reason, finished_at=timezone.now()
        )
    )


def jobs_recover(model, task: str) -> list[int]:
    """Send the queued jobs that were never sent (the broker was down when they were
    queued), and again those sent JOB_RESEND_SECONDS ago and still not started (the broker
    lost the message). Each is claimed by a compare-and-set on `sent_at` first, so sweeps
    running at once send it once. Stops at the first send that fails: the broker is down,
    and the next sweep tries again."""
    now = timezone.now()
    unsent = Q(sent_at__isnull=True, created_at__lt=now - timedelta(seconds=UNSENT_GRACE_SECONDS))
    lost = Q(sent_at__lt=now - timedelta(seconds=settings.JOB_RESEND_SECONDS))
    waiting = model.objects.filter(unsent | lost, status=model.Status.QUEUED)
    sent = []
    for pk, sent_at in waiting.values_list("pk", "sent_at"):
        as_read = Q(sent_at__isnull=True) if sent_at is None else Q(sent_at=sent_at)
        claim = model.objects.filter(as_read, pk=pk, status=model.Status.QUEUED)
        if not claim.update(sent_at=now):
            continue  # another sweep took it, or it started
        if not job_send(model, pk, task):
            model.objects.filter(pk=pk).update(sent_at=None)
            break
        sent.append(pk)
        if sent_at is not None:
            logger.warning("%s %s sent again: not started %s after it was sent",
                           model.__name__, pk, now - sent_at)  # fmt: skip
    if sent:
        logger.info("%s sent: %s", model._meta.verbose_name_plural, sent)
    return sent
