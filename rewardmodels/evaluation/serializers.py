"""Evaluations and audits as the API shows them, and audit requests."""

from rest_framework import serializers

from annotation.pairs.readers import FORMATS
from rewardmodels.evaluation.audits import audit_check
from rewardmodels.models import Audit, EvaluationRun


class EvaluationSerializer(serializers.ModelSerializer):
    data = serializers.CharField(source="data_name")

    class Meta:
        model = EvaluationRun
        fields = ["id", "data", "status", "done", "total", "metrics", "error", "created_at"]


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
