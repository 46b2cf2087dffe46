"""LLM judges: annotators whose labels carry the judge's name as their source, and the jobs
that run them over a project's pairs on a worker."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from annotation.models.projects import Project
from annotation.models.work import RequestedWork
from annotation.rendering import url_passwords_masked

MAX_FAILURES_KEPT = 100


class Judge(models.Model):
    """An LLM endpoint and how to call it. Its key is either named (an environment variable
    of the workers) or stored encrypted (annotation.secrets); neither is ever shown again."""

    class Provider(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, TGI, ...)"
        ANTHROPIC = "anthropic", "Anthropic Messages API"

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(r"^[\w.@+-]+$", "Letters, digits and . @ + - _ only.")],
        help_text="The label source its labels carry, e.g. gpt-4o-judge.",
    )
    provider = models.CharField(max_length=10, choices=Provider.choices, default=Provider.OPENAI)
    base_url = models.URLField(
        max_length=300, blank=True, help_text="Empty: the provider's own API. E.g. "
        "http://gpu-box:8000/v1 for vLLM, http://localhost:11434/v1 for Ollama.",
    )  # fmt: skip
    model = models.CharField(max_length=200, help_text="The model name the endpoint expects.")
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name.")],
        help_text="The workers' environment variable holding the API key, e.g. OPENAI_API_KEY.",
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    temperature = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(2.0)],
        help_text="Empty: the provider's default. 0 gives the most repeatable verdicts.",
    )
    max_tokens = models.PositiveIntegerField(
        default=512,
        validators=[MinValueValidator(16), MaxValueValidator(32_000)],
        help_text="Longest answer, in tokens (reasoning plus the JSON verdict).",
    )
    concurrency = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(256)],
        help_text="Requests in flight at once.",
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: no limit beyond the concurrency."
    )
    timeout_seconds = models.FloatField(
        default=60.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(600.0)],
        help_text="A request that takes longer is a failure.",
    )
    input_price = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True,
        help_text="Price per million input tokens, for the cost shown on job pages.",
    )  # fmt: skip
    output_price = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True,
        help_text="Price per million output tokens.",
    )  # fmt: skip
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # URLField takes ftp:// too; the clients speak HTTP only.
        if self.base_url and not self.base_url.lower().startswith(("http://", "https://")):
            raise ValidationError({"base_url": "Give an http:// or https:// URL."})

    @property
    def base_url_shown(self) -> str:
        """The base URL as pages and readers see it: a password in it as ***."""
        return url_passwords_masked(self.base_url)

    @property
    def key_source(self) -> str:
        """Where the key comes from, as the pages say it (never the key)."""
        if self.api_key_encrypted:
            return "stored encrypted"
        if self.api_key_env:
            return f"${self.api_key_env} on the workers"
        return "none"

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """The price of these tokens, where the judge has prices."""
        if self.input_price is None and self.output_price is None:
            return None
        return (
            float(self.input_price or 0) * input_tokens
            + float(self.output_price or 0) * output_tokens
        ) / 1_000_000


class JudgingJob(RequestedWork):
    """A judge over a choice of a project's pairs, each judged in both orders. Pairs the
    judge has labelled already are skipped, so a job can be run again or resumed."""

    class Pairs(models.TextChoices):
        UNLABELLED = "unlabelled", "Pairs nobody has labelled yet"
        ALL = "all", "All pairs"
        CONTESTED = "contested", "Contested pairs"
        GOLD = "gold", "Gold pairs"
        SAMPLE = "sample", "A random sample of the pairs"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="jobs")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judging_jobs")
    pairs = models.CharField(max_length=10, choices=Pairs.choices, default=Pairs.UNLABELLED)
    limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many pairs (the sample's size)."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0, help_text="Pairs labelled by this job.")
    failed = models.PositiveIntegerField(default=0, help_text="Pairs left without a label.")
    inconsistent = models.PositiveIntegerField(
        default=0, help_text="Pairs whose verdict changed with the order shown."
    )
    requests = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0, help_text="Time spent judging.")
    failures = models.JSONField(
        default=list, blank=True, help_text=f"The last {MAX_FAILURES_KEPT}: pair, error, raw."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When its task reached the broker; empty: not yet."
    )
    started_by = models.CharField(
        max_length=64, blank=True, editable=False,
        help_text="The task message that started it: only that one, handed back after its "
        "worker died, starts it again.",
    )  # fmt: skip

    def __str__(self) -> str:
        return f"{self.judge} on {self.project} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def progress(self) -> float:
        return min(1.0, (self.done + self.failed) / self.total) if self.total else 0.0

    @property
    def pairs_per_second(self) -> float | None:
        return (self.done + self.failed) / self.seconds if self.seconds else None

    @property
    def cost(self) -> float | None:
        return self.judge.cost(self.input_tokens, self.output_tokens)
