"""Pairs, imports, adjudication and gold as the API takes and shows them."""

from rest_framework import serializers

from annotation.agreement.maths import CHOICE_CODES
from annotation.models import Pair
from annotation.pairs.readers import FORMATS


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


class AdjudicationSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=list(CHOICE_CODES))
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class GoldSerializer(serializers.Serializer):
    gold_choice = serializers.ChoiceField(choices=["", *CHOICE_CODES], allow_blank=True)
