"""Curation filters and versions as the API takes and shows them."""

from dataclasses import fields as dataclass_fields

from django.http import QueryDict
from rest_framework import serializers

from annotation.agreement.maths import DIFFICULTIES
from annotation.curation.selection import NAME_MAX_CHARS, NAME_PATTERN, CurationFilters

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
    min_annotator_reliability = serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        allow_null=True,
        default=None,
        help_text="Leave out annotators and label sources whose Dawid-Skene reliability, "
        "estimated on all the labels left after exclude_sources, is below this. With too few "
        "labels for an estimate nobody is left out, and the notes say so.",
    )
    min_confidence = serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        default=0.0,
        help_text="Leave out pairs whose consensus confidence is below this: the winner's "
        "probability under a weighted consensus rule, its share of the votes under the head "
        "count.",
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
    dropped_annotators = serializers.ListField(child=serializers.CharField())
    consensus = serializers.JSONField(
        help_text='The rule that gave the consensus: {"rule": "dawid_skene", "iterations": '
        '100, ...}, {"rule": "count"}, or {"rule": "count", "asked": ..., "why": ...}.'
    )
    notes = serializers.ListField(child=serializers.CharField())


class DatasetSerializer(serializers.Serializer):
    identifier = serializers.CharField()
    project = serializers.CharField(source="project.name")
    n_rows = serializers.IntegerField()
    n_train = serializers.IntegerField()
    n_test = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    manifest = serializers.JSONField()
