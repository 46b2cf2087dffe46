"""Jobs on a model: evaluations and audits on labelled pairs, and filters of candidates."""

from pathlib import Path

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.models import CuratedDataset, Round
from annotation.models.work import RequestedWork
from rewardmodels.models.registry import RewardModel


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
    started_by = models.CharField(
        max_length=64, blank=True, editable=False,
        help_text="The task message that started it: only that one, handed back after its "
        "worker died, starts it again.",
    )  # fmt: skip

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
    file. `metrics` holds workers.ml.metrics' dictionary; `pair_results_file` what the model
    made of each pair, which the evaluation page lists its mistakes from."""

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
        "Retraining", on_delete=models.CASCADE, null=True, blank=True, related_name="evaluations"
    )
    metrics = models.JSONField(default=dict, blank=True)
    pair_results_file = models.CharField(
        max_length=500, blank=True,
        help_text="Each pair's result as JSONL (workers.ml.scoring.pair_results), the wrong "
        "pairs first, most confident mistake first; empty for evaluations made before.",
    )  # fmt: skip

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.reward_model} on {self.data_name}"

    def pair_results_path(self) -> Path:
        """Where the worker writes each pair's result (pair_results_file once it has)."""
        return Path(settings.MEDIA_ROOT) / "evaluations" / f"evaluation-{self.pk}-pairs.jsonl"


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
        "Retraining", on_delete=models.CASCADE, null=True, blank=True, related_name="audits"
    )
    probes = models.JSONField(default=list, help_text="The probes run, by name.")
    results = models.JSONField(default=dict, blank=True)
    edited_file = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"audit {self.pk} of {self.reward_model} on {self.data_name}"

    def edited_path(self) -> Path:
        """Where the worker writes the edited pairs (edited_file once it has)."""
        return Path(settings.MEDIA_ROOT) / "audits" / f"audit-{self.pk}-edited.jsonl"
