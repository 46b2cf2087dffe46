"""Projects, pairs of responses, who sees which pair (assignments), and labels."""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


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
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

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

    def response(self, side: str) -> str:
        return self.response_a if side == Side.A else self.response_b


class Assignment(models.Model):
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

    class Meta:
        constraints = [
            # An annotator holds at most one live or finished assignment per pair; expired
            # ones may repeat, since an expired pair can come back to the same person.
            models.UniqueConstraint(
                fields=["pair", "annotator"],
                condition=~Q(state="expired"),
                name="assignment_once_per_annotator",
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
