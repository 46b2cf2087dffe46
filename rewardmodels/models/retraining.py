"""A retraining: a round's labels curated, trained on from the promoted model, evaluated,
audited and decided."""

from django.db import models

from annotation.models import Project
from annotation.models.work import RequestedWork
from rewardmodels.models.registry import RewardModel
from rewardmodels.models.training import TrainingRun


class Retraining(RequestedWork):
    """A new version of a dataset trained on (from a model's weights, or the base model),
    then the new model and the promoted one evaluated on every round's fresh held-out set;
    the new model is promoted unless it is worse on the newest round by more than the
    project's tolerance. `decision` records the figures the decision was made on."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        EVALUATING = "evaluating", "Evaluating"
        DECIDED = "decided", "Decided"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="retrainings")
    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="retraining")
    previous = models.ForeignKey(
        RewardModel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The promoted model when it started: the one to beat.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    automatic = models.BooleanField(default=False, help_text="Queued by the label count.")
    promoted = models.BooleanField(null=True, blank=True)
    decision = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"retraining {self.pk} of {self.project} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DECIDED, self.Status.FAILED)
