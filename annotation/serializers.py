from rest_framework import serializers

from annotation.formats import FORMATS
from annotation.models import Assignment, Label, Pair, Project
from annotation.rendering import render_markdown, render_prompt


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id", "name", "guidelines", "criteria", "allow_ties", "ask_strength",
            "annotators_per_pair", "assignment_timeout", "role",
        ]  # fmt: skip

    def get_role(self, project: Project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class PairSerializer(serializers.ModelSerializer):
    n_labels = serializers.IntegerField(read_only=True)

    class Meta:
        model = Pair
        fields = [
            "id", "external_id", "prompt", "response_a", "response_b", "source", "metadata",
            "n_labels", "created_at",
        ]  # fmt: skip


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS, default="auto")
    source = serializers.CharField(default="imported", max_length=100)
    skip_invalid = serializers.BooleanField(default=False)


class ImportReportSerializer(serializers.Serializer):
    imported = serializers.IntegerField()
    skipped = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField()


class ScreenResponseSerializer(serializers.Serializer):
    html = serializers.CharField()


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


class CurationFiltersSerializer(serializers.Serializer):
    min_votes = serializers.IntegerField(min_value=1, default=1)
    min_agreement = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    exclude_contested = serializers.BooleanField(default=False)
    exclude_ties = serializers.BooleanField(default=False)
    difficulty = serializers.ListField(
        child=serializers.ChoiceField(choices=["easy", "medium", "hard"]),
        default=["easy", "medium", "hard"],
        allow_empty=False,
    )
    exclude_sources = serializers.ListField(
        child=serializers.CharField(max_length=100), default=list
    )
    min_annotator_kappa = serializers.FloatField(
        min_value=-1.0, max_value=1.0, required=False, allow_null=True, default=None
    )
    test_fraction = serializers.FloatField(min_value=0.0, max_value=0.99, default=0.1)
    seed = serializers.IntegerField(default=0)


class CurationRequestSerializer(CurationFiltersSerializer):
    name = serializers.SlugField(max_length=100)


class CurationPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    by_difficulty = serializers.DictField(child=serializers.IntegerField())
    dropped = serializers.DictField(child=serializers.IntegerField())


class DatasetSerializer(serializers.Serializer):
    identifier = serializers.CharField()
    project = serializers.CharField(source="project.name")
    n_rows = serializers.IntegerField()
    n_train = serializers.IntegerField()
    n_test = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    manifest = serializers.JSONField()


class AdjudicationSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=["a", "b", "tie"])
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class GoldSerializer(serializers.Serializer):
    gold_choice = serializers.ChoiceField(choices=["", "a", "b", "tie"], allow_blank=True)
