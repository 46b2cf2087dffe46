"""Score and best-of-N requests and answers."""

from rest_framework import serializers

from annotation.pairs.formats import check_prompt
from rewardmodels.models import FilterRun
from rewardmodels.scoring.services import MAX_SCORE_CHARS, MAX_SCORE_ITEMS


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
