"""Models and promotions as the API shows them."""

from rest_framework import serializers

from rewardmodels.evaluation.serializers import EvaluationSerializer
from rewardmodels.models import Promotion, RewardModel


class RewardModelSerializer(serializers.ModelSerializer):
    """A model; dataset, run and held_out are null for a registered model."""

    project = serializers.IntegerField(source="project_id")
    dataset = serializers.CharField(source="dataset.identifier", allow_null=True)
    run = serializers.IntegerField(source="run_id", allow_null=True)
    held_out = serializers.JSONField(source="run.final_metrics", allow_null=True)
    evaluations = EvaluationSerializer(many=True, read_only=True)

    class Meta:
        model = RewardModel
        fields = ["id", "identifier", "project", "dataset", "run", "base_model", "artifact",
                  "held_out", "created_at", "evaluations"]  # fmt: skip


class PromotionSerializer(serializers.ModelSerializer):
    reward_model = serializers.SlugRelatedField(slug_field="identifier", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    promoted = serializers.BooleanField(default=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    override = serializers.BooleanField(
        default=False, write_only=True,
        help_text="Promote although the model's audit holds it back (admins; give a reason).",
    )  # fmt: skip

    class Meta:
        model = Promotion
        fields = ["id", "reward_model", "project", "promoted", "reason", "override", "overridden",
                  "audit", "audit_figures", "decided_by", "created_at"]  # fmt: skip
        read_only_fields = ["project", "created_at", "overridden", "audit", "audit_figures"]
