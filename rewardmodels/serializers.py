"""API shapes for reward models: the registry, scoring and best-of-N."""

from rest_framework import serializers

from annotation.pairs.formats import check_prompt
from annotation.pairs.readers import FORMATS
from rewardmodels.audits import audit_check
from rewardmodels.models import Audit, EvaluationRun, FilterRun, Promotion, RewardModel
from rewardmodels.services import MAX_SCORE_CHARS, MAX_SCORE_ITEMS


class PromptField(serializers.JSONField):
    """Text, or chat messages as a list of {role, content}."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        problem = check_prompt(data) if data is not None else "prompt is required"
        if problem:
            raise serializers.ValidationError(problem)
        if len(str(data)) > MAX_SCORE_CHARS:
            raise serializers.ValidationError(f"at most {MAX_SCORE_CHARS:,} characters")
        return data


def _response_field():
    return serializers.CharField(max_length=MAX_SCORE_CHARS, trim_whitespace=False)


class ScoreItemSerializer(serializers.Serializer):
    prompt = PromptField()
    response = _response_field()


class ScoreRequestSerializer(serializers.Serializer):
    items = ScoreItemSerializer(many=True, allow_empty=False, max_length=MAX_SCORE_ITEMS)


class ScoreResponseSerializer(serializers.Serializer):
    model = serializers.CharField()
    rewards = serializers.ListField(child=serializers.FloatField())


class BestOfNRequestSerializer(serializers.Serializer):
    prompt = PromptField()
    candidates = serializers.ListField(
        child=_response_field(), allow_empty=False, max_length=MAX_SCORE_ITEMS
    )
    normalize = serializers.ChoiceField(
        FilterRun.Normalize.choices,
        default=FilterRun.Normalize.NONE,
        help_text="none: rank by reward. length: by reward with the model's length trend "
        "removed (reward − reward_per_token × response tokens).",
    )


class RankedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request's candidates.")
    response = serializers.CharField()
    reward = serializers.FloatField()
    score = serializers.FloatField(
        help_text="What the ranking used: the reward, or with normalize=length the "
        "length-adjusted reward."
    )
    tokens = serializers.IntegerField(help_text="Response length in tokens.")


class BestOfNResponseSerializer(serializers.Serializer):
    model = serializers.CharField()
    normalize = serializers.CharField()
    reward_per_token = serializers.FloatField(
        allow_null=True,
        help_text="The model's fitted slope of reward on response length (held-out "
        "responses, end of training), which normalize=length subtracts per token; null when "
        "its training did not record one: it then ranks by raw reward.",
    )
    ranked = RankedSerializer(many=True)
    chosen_tokens = serializers.IntegerField(
        help_text="Length in tokens of the first-ranked response, the one best-of-N picks."
    )
    median_tokens = serializers.FloatField(
        help_text="Median length in tokens of all the candidates: a pick much longer than "
        "this suggests the model pays for length (try normalize=length)."
    )


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
