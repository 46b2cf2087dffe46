from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Installed for its management commands (evaluate, score, filter); it has no models."""

    name = "workers"
