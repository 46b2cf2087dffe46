"""The activity log: who did what, when, from which address, to which object."""

from django.conf import settings
from django.db import models


class ActivityEntry(models.Model):
    """One thing a person (or a command run on their behalf) did that a lead or admin may ask
    about later. Written only through `annotation.activity.record`; never updated."""

    class Kind(models.TextChoices):
        SIGNED_IN = "signin", "Signed in"
        SIGN_IN_FAILED = "signin.failed", "Sign-in failed"
        SIGNED_OUT = "signout", "Signed out"
        TOKEN_CREATED = "token.created", "API token created"
        TOKEN_REVOKED = "token.revoked", "API token revoked"
        LABEL_CREATED = "label.created", "Label given"
        LABEL_CHANGED = "label.changed", "Label changed"
        LABELS_IMPORTED = "labels.imported", "Labels imported"
        ADJUDICATED = "adjudicated", "Pair adjudicated"
        GOLD_SET = "gold.set", "Gold answer set"
        PAIRS_IMPORTED = "pairs.imported", "Pairs imported"
        MEMBER_ADDED = "member.added", "Member added"
        MEMBER_CHANGED = "member.changed", "Member's role changed"
        MEMBER_REMOVED = "member.removed", "Member removed"
        PROJECT_CREATED = "project.created", "Project created"
        PROJECT_CHANGED = "project.changed", "Project settings changed"
        QUEUE_ORDER_CHANGED = "queue.changed", "Queue order changed"
        JUDGE_CREATED = "judge.created", "Judge created"
        JUDGE_CHANGED = "judge.changed", "Judge changed"
        JUDGING_STARTED = "judging.started", "Judging job started"
        DATASET_CURATED = "dataset.curated", "Dataset version curated"
        DATASET_DOWNLOADED = "dataset.downloaded", "Dataset version downloaded"
        TRAINING_LAUNCHED = "training.launched", "Training run launched"
        TRAINING_CANCELLED = "training.cancelled", "Training run cancelled"
        MODEL_PROMOTED = "model.promoted", "Model promoted"
        MODEL_DEMOTED = "model.demoted", "Model demoted"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept apart from the account: a failed sign-in has no account, and a deleted one keeps
    # its name here.
    actor_name = models.CharField(max_length=150, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=16, blank=True, help_text="web, api or command")
    project = models.ForeignKey(
        "annotation.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    project_name = models.CharField(max_length=200, blank=True)
    target_type = models.CharField(max_length=64, blank=True, help_text="app_label.model")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="field: [before, after]")

    class Meta:
        verbose_name_plural = "activity entries"
        indexes = [
            models.Index(fields=["project", "-id"], name="activity_project_recent"),
            models.Index(fields=["actor_name", "-id"], name="activity_actor_recent"),
            models.Index(fields=["kind", "-id"], name="activity_kind_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or '-'} {self.kind}"
