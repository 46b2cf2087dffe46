"""What every piece of background work records, whoever runs it (judging jobs here; training
runs, retrainings, evaluations and filters in rewardmodels)."""

from django.conf import settings
from django.db import models


class RequestedWork(models.Model):
    """Who asked for the work and when, when it finished, and why it failed."""

    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]
