from dataclasses import fields as dataclass_fields

from django.http import QueryDict
from rest_framework import serializers

from annotation.agreement import CHOICE_CODES, DIFFICULTIES
from annotation.curation import NAME_MAX_CHARS, NAME_PATTERN, CurationFilters
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


DIFFICULTY_LIST = ", ".join(DIFFICULTIES)


class CurationFiltersSerializer(serializers.Serializer):
    """The curation filters, read the same way from the API's JSON body, the preview's query
    string and the curate page's form (the last two through `from_query`)."""

    LISTS = ("difficulty", "exclude_sources")

    min_votes = serializers.IntegerField(min_value=1, default=1)
    min_agreement = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    exclude_contested = serializers.BooleanField(default=False)
    exclude_ties = serializers.BooleanField(default=False)
    difficulty = serializers.ListField(
        child=serializers.ChoiceField(
            choices=list(DIFFICULTIES),
            error_messages={"invalid_choice": '"{input}" is not one of ' + f"{DIFFICULTY_LIST}."},
        ),
        default=list(DIFFICULTIES),
        allow_empty=False,
        error_messages={"empty": f"Choose at least one of {DIFFICULTY_LIST}."},
    )
    exclude_sources = serializers.ListField(
        child=serializers.CharField(max_length=100), default=list
    )
    min_annotator_kappa = serializers.FloatField(
        min_value=-1.0, max_value=1.0, required=False, allow_null=True, default=None
    )
    test_fraction = serializers.FloatField(min_value=0.0, max_value=0.99, default=0.1)
    seed = serializers.IntegerField(default=0)
    balance_length = serializers.BooleanField(
        default=False,
        help_text="As many train pairs whose chosen response is the longer as pairs whose "
        "chosen response is the shorter (length in characters of the response text), the "
        "excess dropped at random by the seed; pairs of equal length stay. The test split is "
        "left as drawn, where length bias shows.",
    )

    @classmethod
    def from_query(cls, query: QueryDict, *, form: bool = False) -> "CurationFiltersSerializer":
        """The filters as a query string sends them: a repeated key is a list, and a key left
        out keeps its default. A submitted form (form=True) always shows the lists' boxes, so
        a list with no box ticked is empty, while a blank input keeps its default."""
        data = {key: value for key, value in query.items() if not (form and value == "")}
        for many in cls.LISTS:
            if form or many in query:
                data[many] = [value for value in query.getlist(many) if value]
        return cls(data=data)

    def filters(self) -> CurationFilters:
        """The validated filters (after is_valid) as curation takes them."""
        return CurationFilters(
            **{
                field.name: self.validated_data[field.name]
                for field in dataclass_fields(CurationFilters)
            }
        )


class CurationRequestSerializer(CurationFiltersSerializer):
    name = serializers.RegexField(
        NAME_PATTERN,
        max_length=NAME_MAX_CHARS,
        error_messages={"invalid": "Use lower-case letters, digits and hyphens, e.g. harmless-v1."},
    )


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
    choice = serializers.ChoiceField(choices=list(CHOICE_CODES))
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class GoldSerializer(serializers.Serializer):
    gold_choice = serializers.ChoiceField(choices=["", *CHOICE_CODES], allow_blank=True)
