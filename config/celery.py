"""The Celery app, and the one way the web side hands work to workers: by task name.

Workers run `celery -A workers worker` (workers/celery.py names this app); the task bodies
live in workers/tasks/, which the web process never imports, so it never loads torch.
"""

import contextlib
import math
import os

from celery import Celery, current_task
from django.conf import settings
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prefhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name="tasks")


class BrokerUnavailable(Exception):
    """The broker could not be reached: nothing was sent."""


# What a 503 tells a client to wait before trying again: a worker restarting, a broker coming
# back.
RETRY_AFTER_SECONDS = 30


class NoAnswer(Exception):
    """No worker answered a waited-on task in time. `served`: whether a worker consumes its
    queue (all busy, or loading a model) or none does; `retry_after`: seconds worth waiting
    before asking again."""

    def __init__(self, *, queue: str, seconds: float, served: bool):
        self.queue, self.seconds, self.served = queue, seconds, served
        # Busy workers may answer the next try (the model it loaded stays loaded); a queue no
        # worker serves needs someone to start one.
        self.retry_after = max(1, math.ceil(seconds)) if served else RETRY_AFTER_SECONDS
        super().__init__(f"no worker answered within {seconds:g} s")


# What a send or a wait raises when the broker or the result backend (Redis) is away.
BROKER_ERRORS = (OperationalError, OSError, RedisError)
# Two quick tries, not Celery's default patience: a web request waiting on a broker that
# is down should say so in seconds.
SEND_RETRY = {"max_retries": 1, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 1}


def enqueue(task: str, *args, expires: float | None = None):
    """Send a task by name (CELERY_TASK_ROUTES picks the queue: training to gpu, evaluations
    and filters to scoring, what a person waits for to the interactive queues, the rest to
    celery), or run it here under CELERY_TASK_ALWAYS_EAGER (the embedded defaults' inline
    mode). Returns its result handle.
    `expires`: seconds after which a worker drops the task unrun (an answer nobody waits
    for any more). BrokerUnavailable when the broker cannot be reached."""
    if app.conf.task_always_eager:
        app.loader.import_default_modules()  # the autodiscovered task modules
        return app.tasks[task].apply(args=args)
    try:
        return app.send_task(task, args=list(args), expires=expires, retry_policy=SEND_RETRY)
    # RuntimeError: what Celery's Redis result consumer raises when it cannot reconnect
    # ("Retry limit exceeded while trying to reconnect to the Celery result store backend").
    except (*BROKER_ERRORS, RuntimeError) as exc:
        raise BrokerUnavailable(f"the task broker cannot be reached ({exc})") from exc


def answer_of(task: str, *args):
    """Send a task a person waits for (a score, a judge's preview) and return its answer,
    waiting at most INTERACTIVE_WAIT_SECONDS: a web worker is never held longer. The task
    expires at the same moment, so a worker that takes it later drops it unrun, and its
    answer or failure is removed from the result backend once read (workers/tasks/answers.py
    removes those that come too late). Raises BrokerUnavailable, NoAnswer, or what the task
    raised."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    seconds = settings.INTERACTIVE_WAIT_SECONDS
    result = enqueue(task, *args, expires=seconds)
    try:
        # Not propagated by get(): an OSError the task raised is the worker's failure, not a
        # broker away.
        answer = result.get(timeout=seconds, propagate=False)
        failed = result.failed()  # its state came with the answer
    except BROKER_ERRORS as exc:  # the result backend went away while it waited
        raise BrokerUnavailable(f"the task broker cannot be reached ({exc})") from exc
    except CeleryTimeout as exc:
        with contextlib.suppress(*BROKER_ERRORS):
            result.revoke()  # a worker that has it queued drops it now
        queue = queue_for(task)
        try:
            served = queue_is_served(queue, timeout=1.0)
        except BROKER_ERRORS:
            served = False
        raise NoAnswer(queue=queue, seconds=seconds, served=served) from exc
    finally:
        with contextlib.suppress(*BROKER_ERRORS):
            result.forget()  # stop listening for it, and drop an answer already stored
    if failed:
        raise answer
    return answer


def current_message() -> str:
    """The id of the task message being run here; empty outside a task."""
    return (current_task.request.id or "") if current_task else ""


def queue_for(task: str) -> str:
    """The queue CELERY_TASK_ROUTES sends a task to."""
    route = settings.CELERY_TASK_ROUTES.get(task) or {}
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


def queue_is_served(queue: str, timeout: float = 3.0) -> bool:
    """Whether a running worker consumes `queue` (always, when tasks run inline)."""
    if app.conf.task_always_eager:
        return True
    queues = app.control.inspect(timeout=timeout).active_queues() or {}
    return any(q["name"] == queue for worker in queues.values() for q in worker)
