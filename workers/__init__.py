"""Celery workers (`celery -A workers worker` finds the app in workers.celery) and the ML
code they run. The only package that imports torch; its modules import nothing from Django
except the task module, so the trainer also runs on its own (see benchmarks/)."""
