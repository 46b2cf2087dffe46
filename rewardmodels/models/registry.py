"""Reward models (trained here or registered from elsewhere) and the promotions that let
one serve a project."""

from django.conf import settings
from django.db import models

from annotation.models import CuratedDataset, Project
from rewardmodels.models.training import TrainingRun


class RewardModel(models.Model):
    """A reward model of a project: trained by one of its runs (registered when the run
    succeeds), or an existing one registered from a folder or the Hugging Face cache
    (`manage.py register_model`), which has no run and no dataset."""

    identifier = models.CharField(max_length=150, unique=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="reward_models")
    run = models.OneToOneField(
        TrainingRun, on_delete=models.PROTECT, null=True, blank=True, related_name="reward_model"
    )
    dataset = models.ForeignKey(
        CuratedDataset,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reward_models",
        help_text="The version it was trained on; empty for a registered model.",
    )
    base_model = models.CharField(
        max_length=300, help_text="Trained from this; for a registered model, where it came from."
    )
    artifact = models.CharField(max_length=500, help_text="Folder with the saved model.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.identifier

    @property
    def registered(self) -> bool:
        """Registered as it was, not trained here."""
        return self.run_id is None

    @property
    def test_accuracy(self) -> float | None:
        """Accuracy on its own dataset version's test split, from its run's final evaluation."""
        return self.run.final_metrics.get("accuracy") if self.run_id else None


class Promotion(models.Model):
    """A decision about which model serves a project: promoting one (it replaces the one
    before) or demoting the promoted one. The newest decision is in force; together they are
    the project's record of who decided what, when and why."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="promotions")
    reward_model = models.ForeignKey(
        RewardModel, on_delete=models.PROTECT, related_name="promotions"
    )
    promoted = models.BooleanField(help_text="True: promoted; false: demoted.")
    reason = models.TextField(blank=True)
    audit = models.ForeignKey(
        "Audit", on_delete=models.SET_NULL, null=True, blank=True, related_name="promotions",
        help_text="The audit the promotion was decided on.",
    )  # fmt: skip
    audit_figures = models.JSONField(
        default=dict, blank=True, help_text="That audit's figures, as they were then."
    )
    overridden = models.BooleanField(
        default=False, help_text="Promoted by an admin although the audit held it back."
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        action = "promoted" if self.promoted else "demoted"
        return f"{self.reward_model} {action} in {self.project}"
