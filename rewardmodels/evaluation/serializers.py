"""Evaluations, the pairs an evaluation got wrong and audits as the API shows them, and
audit requests."""

from django.urls import reverse
from rest_framework import serializers

from annotation.pairs.readers import FORMATS
from rewardmodels.evaluation.audits import audit_check
from rewardmodels.models import Audit, EvaluationRun


class EvaluationSerializer(serializers.ModelSerializer):
    data = serializers.CharField(source="data_name")

    class Meta:
        model = EvaluationRun
        fields = ["id", "data", "status", "done", "total", "metrics", "error", "created_at"]


class WrongPairSerializer(serializers.Serializer):
    """A pair the evaluation got wrong, as its page lists it."""

    # Each is a kept result of selectors.evaluation_wrong_pairs; the context's
    # `pairs_project` is the project whose review pages the pairs link to.

    pair_id = serializers.JSONField(
        help_text="For a dataset version's or a round's pairs, the pair's number in its "
        "project (null when it is gone from it); for an uploaded file, the row's id, else "
        "its index."
    )
    index = serializers.IntegerField(help_text="Its place among the evaluated pairs, from 0.")
    chosen_reward = serializers.FloatField()
    rejected_reward = serializers.FloatField()
    gap = serializers.FloatField(
        help_text="chosen_reward − rejected_reward: below 0, and the lower, the more confident "
        "the mistake."
    )
    difficulty = serializers.CharField(allow_null=True, help_text="Null where not known.")
    chosen_tokens = serializers.IntegerField(help_text="Lengths in tokens as the model read them.")
    rejected_tokens = serializers.IntegerField()
    chosen_longer = serializers.BooleanField()
    prompt_start = serializers.CharField()
    chosen_start = serializers.CharField()
    rejected_start = serializers.CharField()
    url = serializers.SerializerMethodField(
        help_text="The pair's review page; null for an uploaded file's rows and for a pair "
        "gone from its project."
    )

    def get_url(self, pair: dict) -> str | None:
        project = self.context["pairs_project"]
        if project is None or pair["pair_id"] is None:
            return None
        path = reverse("pair-review", args=[project, pair["pair_id"]])
        return self.context["request"].build_absolute_uri(path)


class AuditSerializer(serializers.ModelSerializer):
    data = serializers.CharField(source="data_name")
    held_back = serializers.SerializerMethodField(
        help_text="Why this audit would hold a promotion back (empty: nothing); null until "
        "it has succeeded."
    )

    class Meta:
        model = Audit
        fields = ["id", "data", "probes", "status", "done", "total", "results", "held_back",
                  "error", "created_at", "finished_at"]  # fmt: skip

    def get_held_back(self, audit: Audit) -> list[str] | None:
        return audit_check(audit) if audit.status == Audit.Status.SUCCEEDED else None


class AuditRequestSerializer(serializers.Serializer):
    dataset = serializers.CharField(
        required=False, help_text="A dataset version of the model's project (name@vN): its "
        "test split."
    )  # fmt: skip
    round = serializers.CharField(
        required=False, help_text="A round of the model's project: its fresh held-out pairs."
    )
    pairs = serializers.FileField(required=False, help_text="Or a file of labelled pairs.")
    format = serializers.ChoiceField(choices=FORMATS, default="auto")
    probes = serializers.ListField(
        child=serializers.CharField(), required=False, default=list,
        help_text="The probes to run; all of them when empty.",
    )  # fmt: skip
