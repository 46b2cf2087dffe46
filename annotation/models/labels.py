"""Pairs of responses, who sees which pair (assignments), labels, and each pair's consensus."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.agreement.maths import CHOICE_CODES
from annotation.models.projects import Project


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
        choices=[(name, name) for name in CHOICE_CODES],
        help_text="The known answer, for gold pairs; empty for ordinary pairs.",
    )
    # Annotator places taken: human labels plus live assignments. Kept under a row lock so
    # that no pair gets more than the project's annotators_per_pair.
    slots_taken = models.PositiveSmallIntegerField(default=0)
    # Pairs made from a round's candidates: how they were chosen, and from where.
    round = models.ForeignKey(
        "Round", on_delete=models.SET_NULL, null=True, blank=True, related_name="pairs"
    )
    held_out = models.BooleanField(
        default=False,
        db_default=False,
        help_text="In its round's fresh held-out set: labelled, never in a training split.",
    )
    selection = models.CharField(
        max_length=20, blank=True, db_default="", help_text="How it was chosen: uncertain, ..."
    )
    predicted_gap = models.FloatField(
        null=True, blank=True, help_text="The reward gap the choosing model predicted."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="pair_external_id"),
        ]
        indexes = [
            models.Index(fields=["project", "-slots_taken", "id"], name="pair_queue_order"),
            models.Index(fields=["project", "source", "id"], name="pair_by_source"),
            # The queue serves one place of the project's precedence at a time: a round, a
            # source outside rounds, or all sources nobody placed.
            models.Index(
                fields=["round", "-slots_taken", "id"],
                condition=Q(round__isnull=False),
                name="pair_queue_round",
            ),
            models.Index(
                fields=["project", "source", "-slots_taken", "id"],
                condition=Q(round__isnull=True),
                name="pair_queue_source",
            ),
            models.Index(
                fields=["project", "-slots_taken", "id"],
                condition=Q(round__isnull=True),
                name="pair_queue_unplaced",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.external_id}"

    def save(self, *args, **kwargs):
        # Responses never change after import; keep the derived lengths in step anyway.
        self.measure()
        super().save(*args, **kwargs)

    @staticmethod
    def lengths(response_a: str, response_b: str) -> tuple[int, int]:
        """Characters in each response: what the length-bias figures and the length balance
        of curation compare. Every write of pairs takes them from here."""
        return len(response_a), len(response_b)

    def measure(self) -> None:
        self.length_a, self.length_b = self.lengths(self.response_a, self.response_b)

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
            models.CheckConstraint(condition=Q(left__in=Side.values), name="assignment_left_valid"),
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
    position_consistent = models.BooleanField(
        null=True, blank=True, help_text="Judges: whether both orders picked the same response."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(choice__in=list(CHOICE_CODES)), name="label_choice_valid"
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
    def as_seen(self) -> str:
        """The answer as its annotator gave it, in screen terms: left or right, or a tie."""
        if self.choice == self.Choice.TIE or not self.shown_left:
            return self.get_choice_display()
        return "Left better" if self.choice == self.shown_left else "Right better"

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
                condition=Q(choice__in=list(CHOICE_CODES)), name="adjudication_choice_valid"
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
    confidence = models.FloatField(
        null=True,
        help_text="The probability that the winner is the true answer: under a weighted "
        "consensus rule its posterior, under the head count its share of the votes.",
    )
    difficulty = models.CharField(max_length=6, choices=Difficulty.choices, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "difficulty"], name="consensus_by_difficulty"),
            models.Index(
                fields=["project", "pair"], condition=Q(contested=True), name="consensus_contested"
            ),
            # The pairs table's sorts by margin and agreement.
            models.Index(fields=["project", "margin", "pair"], name="consensus_by_margin"),
            models.Index(fields=["project", "agreement", "pair"], name="consensus_by_agreement"),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id}: {self.winner or 'no winner'} ({self.difficulty})"

    @property
    def n_votes(self) -> int:
        return self.votes_a + self.votes_b + self.votes_tie


class ConsensusFit(models.Model):
    """What a reliability-weighted consensus rule (Dawid-Skene, MACE) last estimated from a
    project's labels: per rater, the chance of each answer on the screen given the true one,
    and the prior over a, b and tie. New labels are weighed with it until the next fit."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, primary_key=True, related_name="consensus_fit"
    )
    rule = models.CharField(max_length=11)
    n_labels = models.PositiveIntegerField(default=0, help_text="Labels the fit was made on.")
    enough = models.BooleanField(
        default=False,
        help_text="Whether the labels sufficed for an estimate; if not, the head count stands.",
    )
    prior = models.JSONField(default=list, help_text="P(a), P(b), P(tie).")
    answers = models.JSONField(
        default=dict,
        help_text="Per rater ('annotator:<id>' or 'source:<name>'): P(screen answer | the true "
        "answer on the screen), a 3x3 list, rows and columns left, right, tie.",
    )
    fitted_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.project}: {self.rule} on {self.n_labels} labels"
