"""Assignments, answers and own labels as the API takes and shows them."""

from rest_framework import serializers

from annotation.models import Assignment, Label
from annotation.rendering import render_markdown, render_prompt


class AssignmentSerializer(serializers.ModelSerializer):
    """What an annotator sees: the pair in screen order, never which stored side is which."""

    project = serializers.IntegerField(source="pair.project_id")
    prompt = serializers.SerializerMethodField()
    left_html = serializers.SerializerMethodField()
    right_html = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "project", "prompt", "left_html", "right_html", "issued_at", "expires_at"]

    def get_prompt(self, assignment: Assignment) -> list[dict[str, str]]:
        return render_prompt(assignment.pair.prompt)

    def get_left_html(self, assignment: Assignment) -> str:
        return render_markdown(assignment.pair.response(assignment.left))

    def get_right_html(self, assignment: Assignment) -> str:
        return render_markdown(assignment.pair.response(assignment.right))


class LabelSubmitSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(
        choices=["left", "right", "tie"], help_text="Which side of the screen was better."
    )
    strength = serializers.IntegerField(min_value=0, max_value=3, required=False, allow_null=True)
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    duration_ms = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    next = serializers.BooleanField(
        default=False,
        write_only=True,
        help_text="Also hand out the next pair, in the same round trip (as POST .../next/ does).",
    )


class LabelSubmittedSerializer(LabelSubmitSerializer):
    next = AssignmentSerializer(
        allow_null=True,
        required=False,
        help_text="Only when asked for: the next pair, or null when nothing is left. Absent "
        "when the database went away after the label was stored (`detail` says so): the "
        "label is kept; ask POST .../next/ again.",
    )
    detail = serializers.CharField(required=False, help_text="Only when `next` is absent.")


class OwnLabelSerializer(serializers.ModelSerializer):
    pair = serializers.CharField(source="pair.external_id")
    project = serializers.CharField(source="pair.project.name")

    class Meta:
        model = Label
        fields = [
            "id", "project", "pair", "choice", "strength", "rationale", "duration_ms",
            "shown_left", "created_at",
        ]  # fmt: skip


class ProgressSerializer(serializers.Serializer):
    labelled_today = serializers.IntegerField()
    labelled_total = serializers.IntegerField()
    remaining = serializers.IntegerField()
