"""Rounds of policy outputs: the candidate responses a policy gave to a set of prompts,
from which new pairs are made, with a share of the prompts kept back as the round's fresh
held-out set (labelled like any pairs, never trained on: how drift is seen)."""

from django.core.validators import RegexValidator
from django.db import models

from annotation.models.projects import Project


class Round(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    name = models.CharField(
        max_length=100,
        validators=[RegexValidator(r"^[\w.@+-]+$", "Letters, digits and . @ + - _ only.")],
    )
    policy = models.CharField(max_length=200, blank=True, help_text="The policy that wrote them.")
    held_out_share = models.FloatField(help_text="Share of its prompts kept back for drift.")
    n_prompts = models.PositiveIntegerField(default=0)
    n_candidates = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="round_name_once"),
        ]

    def __str__(self) -> str:
        return f"{self.project}: round {self.name}"


class Candidate(models.Model):
    """One response of a round's policy to one prompt."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="candidates")
    prompt = models.JSONField(help_text="Text, or a list of {role, content} chat messages.")
    prompt_key = models.CharField(max_length=64, help_text="A hash of the prompt: its group.")
    response = models.TextField()
    response_key = models.CharField(max_length=64)
    held_out = models.BooleanField(
        default=False, help_text="Its prompt is in the round's fresh held-out set."
    )
    scores = models.JSONField(
        default=dict, blank=True, help_text="Rewards by model identifier, once scored."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["round", "prompt_key", "response_key"], name="candidate_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.round}: {self.response[:40]}"
