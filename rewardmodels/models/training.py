"""A training run: the version it trains on, where it starts, every setting, and its state."""

import math
import typing

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.models import CuratedDataset
from annotation.models.work import RequestedWork
from workers.ml.config import AUTO, METHOD_NAMES, METHODS, SETTINGS, TrainConfig


def finite(value: float | None) -> None:
    """Min/MaxValueValidator let NaN through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise ValidationError("Enter a finite number.")


def _bound(validator, bound) -> list:
    if bound is None:
        return []
    return [validator(*bound) if isinstance(bound, tuple) else validator(bound)]


def setting_column(setting) -> models.Field:
    """A run's column for one of the trainer's settings (workers.ml.config.setting), with its
    type, default, limits, choices and help text; a list is stored comma-separated."""
    meta = setting.metadata
    kind = typing.get_type_hints(TrainConfig)[setting.name]
    optional = type(None) in typing.get_args(kind)
    if optional:
        kind = next(t for t in typing.get_args(kind) if t is not type(None))
    kind = typing.get_origin(kind) or kind  # list[str]: list
    options = {"help_text": meta["help"], "verbose_name": meta["label"] or None}
    if optional:
        options.update(null=True, blank=True)
    elif kind is not list:
        options["default"] = setting.default
    limits = _bound(MinValueValidator, meta["low"]) + _bound(MaxValueValidator, meta["high"])
    if kind is bool:
        return models.BooleanField(**options)
    if kind is float:
        return models.FloatField(validators=[finite, *limits], **options)
    if kind is int:
        low = meta["low"][0] if isinstance(meta["low"], tuple) else meta["low"]
        counts = low is not None and low >= 0
        column = models.PositiveIntegerField if counts else models.IntegerField
        return column(validators=limits, **options)
    choices = meta.get("choices")
    if choices:
        return models.CharField(
            max_length=max(map(len, choices)), choices=list(choices.items()), **options
        )
    return models.CharField(max_length=meta["max_length"], blank=kind is list, **options)


class TrainingSettings(models.Model):
    """A run's training settings: a column for each setting of the trainer's TrainConfig."""

    class Meta:
        abstract = True


for _setting in SETTINGS:
    TrainingSettings.add_to_class(_setting.name, setting_column(_setting))


class TrainingRun(RequestedWork, TrainingSettings):
    """A training run: the version it trains on, the model it starts from, its settings
    (TrainingSettings, in the order the form shows them: SETTINGS), then its state."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    SETTINGS = tuple(setting.name for setting in SETTINGS)

    dataset = models.ForeignKey(CuratedDataset, on_delete=models.PROTECT, related_name="runs")
    start_from = models.ForeignKey(
        "RewardModel",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs_started",
        help_text="Train on from this reward model's weights (score head included) instead of "
        "the base model with a new score head.",
    )
    method_asked = models.CharField(
        max_length=4, choices=list(METHODS.items()), blank=True,
        help_text="The method the run was queued with; for auto, `method` becomes the one "
        "the worker chose once the run starts.",
    )  # fmt: skip
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    # The run is owned by the database, not the broker: a worker trains it only while it
    # holds the lease (taken by compare-and-set, renewed by a heartbeat); a run whose lease
    # ran out, or that was never sent, is sent again by any worker's recovery sweep.
    lease_owner = models.CharField(max_length=200, blank=True, help_text="The worker training it.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task last reached the broker; empty: not yet."
    )
    deliveries = models.PositiveIntegerField(
        default=0,
        help_text="Times a worker has started on the run; past TRAINING_MAX_DELIVERIES without "
        "finishing (its worker killed each time) it is marked failed.",
    )
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=list, blank=True, help_text="Timeline of logged metrics.")
    final_metrics = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    artifact = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"run {self.pk} on {self.dataset} ({self.status})"

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def method_shown(self) -> str:
        """The method as lists and the run's page show it: "auto → LoRA" once the worker has
        chosen for a run queued with auto, "auto" until then, else the method given."""
        chosen = METHOD_NAMES.get(self.method, self.method)
        if self.method_asked == AUTO and self.method != AUTO:
            return f"auto → {chosen}"
        return chosen

    def train_settings(self) -> dict:
        """The training settings as the worker's trainer takes them (TrainConfig's fields)."""
        values = {name: getattr(self, name) for name in self.SETTINGS}
        values["lora_target_modules"] = [
            name.strip() for name in self.lora_target_modules.split(",") if name.strip()
        ]
        values["init_from"] = self.start_from.artifact if self.start_from_id else ""
        return values
