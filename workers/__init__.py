"""Celery workers: `celery -A workers worker`. The only package that imports torch."""

from workers.celery import app

__all__ = ["app"]
