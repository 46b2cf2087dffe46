"""The Celery app, and the one way the web side hands work to workers: by task name.

Workers run `celery -A workers worker` (workers/celery.py names this app); the task bodies
live in workers/tasks.py, which the web process never imports, so it never loads torch.
"""

import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prefhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name="tasks")


def enqueue(task: str, *args):
    """Send a task by name (CELERY_TASK_ROUTES picks the queue: training to gpu, scoring
    and evaluation to scoring, the rest to celery), or run it here under
    CELERY_TASK_ALWAYS_EAGER (the embedded defaults' inline mode). Returns its result handle."""
    if app.conf.task_always_eager:
        app.loader.import_default_modules()  # the autodiscovered task modules
        return app.tasks[task].apply(args=args)
    return app.send_task(task, args=list(args))


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
