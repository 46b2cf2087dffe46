"""Projects, pairs of responses, who sees which pair (assignments), and labels."""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from annotation.agreement import DifficultyRule


class Project(models.Model):
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


class Side(models.TextChoices):
    A = "a", "Response A"
    B = "b", "Response B"


class Pair(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pairs")
    external_id = models.CharField(
        max_length=255, help_text="The row's id, or a hash of its content when it had none."
    )
    prompt = models.JSONField(help_text="Text, or a list of {role, content} chat messages.")
    response_a = models.TextField(blank=True)
    response_b = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Characters in each response, kept for the length-bias figures.
    length_a = models.PositiveIntegerField(default=0, editable=False)
    length_b = models.PositiveIntegerField(default=0, editable=False)
    gold_choice = models.CharField(
        max_length=3,
        blank=True,
        choices=[("a", "a"), ("b", "b"), ("tie", "tie")],
        help_text="The known answer, for gold pairs; empty for ordinary pairs.",
    )
    # Annotator places taken: human labels plus live assignments. Kept under a row lock so
    # that no pair gets more than the project's annotators_per_pair.
    slots_taken = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="pair_external_id"),
        ]
        indexes = [
            models.Index(fields=["project", "-slots_taken", "id"], name="pair_queue_order"),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.external_id}"

    def save(self, *args, **kwargs):
        # Responses never change after import; keep the derived lengths in step anyway.
        self.length_a, self.length_b = len(self.response_a), len(self.response_b)
        super().save(*args, **kwargs)

    def response(self, side: str) -> str:
        return self.response_a if side == Side.A else self.response_b


class Assignment(models.Model):
    class Kind(models.TextChoices):
        REGULAR = "regular", "Regular"
        GOLD = "gold", "Gold pair"
        REPEAT = "repeat", "Repeat, sides swapped"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    left = models.CharField(
        max_length=1, choices=Side.choices, help_text="Which stored response was shown left."
    )
    issued_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.REGULAR)

    class Meta:
        constraints = [
            # An annotator holds at most one live or finished assignment per pair (plus one
            # repeat); expired ones may recur, since an expired pair can come back.
            models.UniqueConstraint(
                fields=["pair", "annotator"],
                condition=~Q(state="expired") & ~Q(kind="repeat"),
                name="assignment_once_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["pair", "annotator"],
                condition=~Q(state="expired") & Q(kind="repeat"),
                name="assignment_one_repeat",
            ),
            models.CheckConstraint(condition=Q(left__in=["a", "b"]), name="assignment_left_valid"),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(state="active"), name="assignment_live"
            ),
            models.Index(fields=["annotator", "state"], name="assignment_by_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on {self.pair_id} ({self.state})"

    @property
    def right(self) -> str:
        return Side.B if self.left == Side.A else Side.A


class Label(models.Model):
    class Choice(models.TextChoices):
        A = "a", "Response A better"
        B = "b", "Response B better"
        TIE = "tie", "Tie"

    class Strength(models.IntegerChoices):
        NEGLIGIBLE = 0, "Negligibly better"
        SLIGHT = 1, "Slightly better"
        CLEAR = 2, "Clearly better"
        STRONG = 3, "Strongly better"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="labels")
    # Exactly one of annotator (a person) and source (a named label source such as
    # "imported", a vendor or an LLM judge) is set.
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="labels",
    )
    source = models.CharField(max_length=100, blank=True)
    # Always about the stored response_a / response_b, never about the screen side.
    choice = models.CharField(max_length=3, choices=Choice.choices)
    strength = models.PositiveSmallIntegerField(
        choices=Strength.choices, null=True, blank=True, help_text="Empty means not asked."
    )
    rationale = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    shown_left = models.CharField(
        max_length=1, choices=Side.choices, blank=True, help_text="Stored response shown left."
    )
    assignment = models.OneToOneField(
        Assignment, on_delete=models.SET_NULL, null=True, blank=True, related_name="label"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(choice__in=["a", "b", "tie"]), name="label_choice_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=0, strength__lte=3),
                name="label_strength_range",
            ),
            models.CheckConstraint(
                condition=(Q(annotator__isnull=False) & Q(source=""))
                | (Q(annotator__isnull=True) & ~Q(source="")),
                name="label_has_one_author",
            ),
            models.UniqueConstraint(
                fields=["pair", "annotator"],
                condition=Q(annotator__isnull=False),
                name="label_once_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["pair", "source"],
                condition=Q(annotator__isnull=True),
                name="label_once_per_source",
            ),
        ]
        indexes = [
            models.Index(fields=["annotator", "created_at"], name="label_by_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.author_name} chose {self.choice} on {self.pair_id}"

    @property
    def author_name(self) -> str:
        return self.annotator.get_username() if self.annotator_id else self.source


class ConsistencyCheck(models.Model):
    """An annotator's second answer on a pair they labelled, shown with the sides swapped."""

    label = models.OneToOneField(Label, on_delete=models.CASCADE, related_name="repeat")
    assignment = models.OneToOneField(
        Assignment, on_delete=models.SET_NULL, null=True, blank=True, related_name="repeat"
    )
    choice = models.CharField(max_length=3, choices=Label.Choice.choices)
    shown_left = models.CharField(max_length=1, choices=Side.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"repeat of {self.label}: {self.choice}"

    @property
    def flipped(self) -> bool:
        return self.choice != self.label.choice


class Adjudication(models.Model):
    """A lead's final decision on a pair; it overrides the majority in consensus and exports."""

    pair = models.OneToOneField(Pair, on_delete=models.CASCADE, related_name="adjudication")
    choice = models.CharField(max_length=3, choices=Label.Choice.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    note = models.TextField(blank=True)
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(choice__in=["a", "b", "tie"]), name="adjudication_choice_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pair}: {self.choice} (decided)"


class PairConsensus(models.Model):
    """Votes and what they add up to, kept current as labels and decisions arrive."""

    class Difficulty(models.TextChoices):
        EASY = "easy", "Easy"
        MEDIUM = "medium", "Medium"
        HARD = "hard", "Hard"

    pair = models.OneToOneField(
        Pair, on_delete=models.CASCADE, primary_key=True, related_name="consensus"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    votes_a = models.PositiveIntegerField(default=0)
    votes_b = models.PositiveIntegerField(default=0)
    votes_tie = models.PositiveIntegerField(default=0)
    winner = models.CharField(max_length=3, blank=True, help_text="a, b, tie, or empty")
    contested = models.BooleanField(default=False)
    adjudicated = models.BooleanField(default=False)
    agreement = models.FloatField(null=True)
    mean_strength = models.FloatField(null=True)
    margin = models.FloatField(null=True)
    difficulty = models.CharField(max_length=6, choices=Difficulty.choices, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "difficulty"], name="consensus_by_difficulty"),
            models.Index(
                fields=["project", "pair"], condition=Q(contested=True), name="consensus_contested"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id}: {self.winner or 'no winner'} ({self.difficulty})"

    @property
    def n_votes(self) -> int:
        return self.votes_a + self.votes_b + self.votes_tie


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
