"""Projects, who works on them, and the dataset versions curated from them."""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.agreement.consensus import DifficultyRule


class Project(models.Model):
    class ConsensusRule(models.TextChoices):
        COUNT = "count", "Head count: every vote weighs the same"
        DAWID_SKENE = "dawid_skene", "Dawid-Skene: each rater's votes weighed by their confusion"
        MACE = "mace", "MACE: each rater's votes weighed by their competence"

    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Shown to annotators; Markdown.")
    criteria = models.TextField(
        blank=True, help_text="Evaluation criteria, one per line; shown beside every pair."
    )
    allow_ties = models.BooleanField(default=True)
    ask_strength = models.BooleanField(
        default=True, help_text="Ask how much better: negligible, slight, clear or strong."
    )
    annotators_per_pair = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="How many annotators label each pair (k). Imported and judge labels "
        "do not take these places.",
    )
    assignment_timeout = models.DurationField(
        default=timedelta(minutes=30),
        help_text="An unanswered assignment goes back to the pool after this long.",
    )
    gold_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of an annotator's queue drawn from gold pairs (unmarked).",
    )
    repeat_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of an annotator's queue that re-shows a pair they labelled, sides "
        "swapped, to measure how often they flip.",
    )
    easy_min_strength = models.FloatField(
        default=2.0, help_text="Easy: unanimous and the winning votes' mean strength at least this."
    )
    hard_below_agreement = models.FloatField(
        default=2 / 3, help_text="Hard: contested, or agreement below this, or ..."
    )
    hard_below_strength = models.FloatField(
        default=1.0, help_text="... or the winning votes' mean strength below this."
    )
    healthy_agreement = models.FloatField(
        default=0.7,
        help_text="Percent agreement below this marks the labels as too noisy to train on.",
    )
    consensus_rule = models.CharField(
        max_length=11,
        choices=ConsensusRule.choices,
        default=ConsensusRule.COUNT,
        help_text="How a pair's winner, margin and difficulty follow from its votes. "
        "Dawid-Skene and MACE estimate from all the labels how far to trust each annotator "
        "and judge (one who always picks the left side included), and keep the head count "
        "while too few pairs have two or more votes.",
    )
    min_reliability = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The dashboard flags an annotator or judge whose estimated reliability (the "
        "chance that their answer is the true one, Dawid-Skene) is below this.",
    )
    fast_label_seconds = models.FloatField(
        default=2.0,
        validators=[MinValueValidator(0.0)],
        help_text="The dashboard flags an annotator whose median time per label is below this "
        "many seconds (0: never).",
    )
    judge_criteria = models.TextField(
        blank=True,
        help_text="Criteria for LLM judges only, one per line, after those humans see.",
    )
    judge_template = models.TextField(
        blank=True,
        help_text="The judge's request, with {guidelines}, {criteria}, {ties}, {prompt}, "
        "{response_a} and {response_b}. Empty: the default template.",
    )
    judge_on_flip = models.CharField(
        max_length=4,
        choices=[("tie", "a tie"), ("weak", "the pick made, at the lowest strength")],
        default="tie",
        help_text="What a judge's verdict becomes when it changes with the order shown. "
        "'weak' keeps a pick made in one order where the other said tie.",
    )
    held_out_share = models.FloatField(
        default=0.2,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.9)],
        help_text="Share of each round's prompts kept back as its fresh held-out set.",
    )
    promotion_tolerance = models.FloatField(
        default=0.01,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A retrained model is promoted unless its accuracy on the newest round's "
        "held-out set is below the promoted model's by more than this (0.01: one point).",
    )
    audit_flip_tolerance = models.FloatField(
        default=0.10,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A model is promoted only when no surface edit of the audit (padding, "
        "formatting, flattery, a claim of being right, the prompt echoed) makes more than "
        "this share of the rejected responses beat the chosen ones (0.10: one pair in ten).",
    )
    drift_warning = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Warn when the promoted model's accuracy on the newest round's held-out set "
        "is below its accuracy on its own test split by more than this.",
    )
    retrain_dataset = models.SlugField(
        max_length=100,
        blank=True,
        help_text="With 'retrain after labels': the dataset retrained on automatically.",
    )
    retrain_after_labels = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Retrain automatically (from the promoted model) once this many labels have "
        "arrived since the dataset's last version. Empty: only by hand.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def difficulty_rule(self) -> DifficultyRule:
        return DifficultyRule(
            easy_min_strength=self.easy_min_strength,
            hard_below_agreement=self.hard_below_agreement,
            hard_below_strength=self.hard_below_strength,
        )

    @property
    def criteria_list(self) -> list[str]:
        return [line.strip() for line in self.criteria.splitlines() if line.strip()]

    @property
    def judge_criteria_list(self) -> list[str]:
        """What judges weigh: the criteria humans see, then the judge-only ones."""
        extra = [line.strip() for line in self.judge_criteria.splitlines() if line.strip()]
        return self.criteria_list + extra


class Membership(models.Model):
    class Role(models.TextChoices):
        ANNOTATOR = "annotator", "Annotator"
        LEAD = "lead", "Lead"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


class CuratedDataset(models.Model):
    """An immutable version of a project's curated pairs: a snapshot file plus a manifest."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="datasets")
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    identifier = models.CharField(max_length=120, unique=True, help_text="name@vN")
    filters = models.JSONField(default=dict)
    manifest = models.JSONField(default=dict)
    sha256 = models.CharField(max_length=64)
    snapshot = models.CharField(max_length=300, help_text="Path of the JSONL file in storage.")
    n_rows = models.PositiveIntegerField()
    n_train = models.PositiveIntegerField()
    n_test = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="dataset_version_once"),
        ]

    def __str__(self) -> str:
        return self.identifier


class QueuePrecedence(models.Model):
    """One place in a project's order of precedence for its unlabelled work: a round's pairs,
    or the pairs of one source outside any round. The queue serves the first unpaused place
    with work for the annotator. Places nobody set fall in by default: rounds, newest first,
    above every set place; other sources after them, together, in the queue's usual order."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="precedence")
    position = models.PositiveIntegerField()
    round = models.ForeignKey("Round", on_delete=models.CASCADE, null=True, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="When it is not a round.")
    paused = models.BooleanField(default=False, help_text="Its pairs are not served.")

    class Meta:
        ordering = ["project", "position"]
        constraints = [
            models.UniqueConstraint(fields=["project", "position"], name="precedence_position"),
        ]

    def __str__(self) -> str:
        what = f"round {self.round_id}" if self.round_id else f"source {self.source!r}"
        return f"{self.project_id} #{self.position}: {what}"
