"""Where `celery -A workers worker` finds the app; it is defined in config/celery.py."""

from config.celery import app

__all__ = ["app"]
