"""REST API: scores and best-of-N by a model or by a project's promoted model, answered
while the request waits a bounded time (503 with Retry-After beyond it)."""

from statistics import median

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from rewardmodels.access import PromotedModelView, RewardModelView
from rewardmodels.models import RewardModel
from rewardmodels.scoring.serializers import (
    BestOfNRequestSerializer,
    BestOfNResponseSerializer,
    ScoreRequestSerializer,
    ScoreResponseSerializer,
)
from rewardmodels.scoring.services import (
    OLDER_WORKER,
    WorkerUnavailable,
    failure_detail,
    score,
)


def _scored(model: RewardModel, prompts: list, responses: list[str], rank: str | None = None):
    """The worker's answer, or an error response a client can act on."""
    try:
        answer = score(reward_model=model, prompts=prompts, responses=responses, rank=rank)
        return answer, None
    except WorkerUnavailable as exc:
        answer = Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        answer["Retry-After"] = str(exc.retry_after)
        return None, answer
    except Exception as exc:  # noqa: BLE001 - the worker's failure, reported, not a 500
        detail = failure_detail(exc)
        return None, Response({"detail": detail}, status=status.HTTP_502_BAD_GATEWAY)


class Score(RewardModelView):
    @extend_schema(request=ScoreRequestSerializer, responses=ScoreResponseSerializer)
    def post(self, request, **kwargs):
        """Rewards for {prompt, response} items, in the order given."""
        model = self.get_reward_model()
        payload = ScoreRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        items = payload.validated_data["items"]
        result, error = _scored(model, [i["prompt"] for i in items], [i["response"] for i in items])
        if error:
            return error
        return Response({"model": model.identifier, "rewards": result["rewards"]})


class BestOfN(RewardModelView):
    @extend_schema(request=BestOfNRequestSerializer, responses=BestOfNResponseSerializer)
    def post(self, request, **kwargs):
        """The candidates for one prompt, best first, with their rewards.

        normalize=length ranks by length-adjusted reward: reward − reward_per_token ×
        response tokens, where reward_per_token is the model's fitted slope of reward on
        response length over its held-out responses at the end of training. It removes the
        model's length trend, against verbosity hacking, and keeps the order of rewards of
        either sign. A model whose training did not record the slope answers
        reward_per_token null and is ranked by raw reward (a slope of 0)."""
        model = self.get_reward_model()
        payload = BestOfNRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        candidates = data["candidates"]
        result, error = _scored(
            model, [data["prompt"]] * len(candidates), candidates, rank=data["normalize"]
        )
        if error:
            return error
        if "ranked" not in result:
            return Response({"detail": OLDER_WORKER}, status=status.HTTP_502_BAD_GATEWAY)
        reward_per_token, ranked = result["reward_per_token"], result["ranked"]
        for entry in ranked:
            entry["response"] = candidates[entry["index"]]
        return Response(
            {"model": model.identifier, "normalize": data["normalize"],
             "reward_per_token": reward_per_token, "ranked": ranked,
             # Beside each other, these show whether the pick wins on length.
             "chosen_tokens": ranked[0]["tokens"],
             "median_tokens": float(median(entry["tokens"] for entry in ranked))}
        )  # fmt: skip


class ProjectScore(PromotedModelView, Score):
    """Score with the project's promoted model."""


class ProjectBestOfN(PromotedModelView, BestOfN):
    """Best-of-N with the project's promoted model."""
