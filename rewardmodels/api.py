"""REST API for reward models: the registry, batch scoring and best-of-N ranking.

Scoring never loads a model here: the request goes to a worker on the scoring queue (not
the gpu queue, where a training run can hold the worker for hours), which keeps recently
used models loaded, and the answer comes back through the result backend.
"""

from statistics import median

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import IsProjectLead, user_is_admin
from annotation.models import CuratedDataset, Project, Round
from rewardmodels import audits, selectors, services
from rewardmodels.drift import project_drift
from rewardmodels.formats import RowsRejected
from rewardmodels.models import RewardModel
from rewardmodels.permissions import CanSeeRewardModel
from rewardmodels.serializers import (
    AuditRequestSerializer,
    AuditSerializer,
    BestOfNRequestSerializer,
    BestOfNResponseSerializer,
    PromotionSerializer,
    RewardModelSerializer,
    ScoreRequestSerializer,
    ScoreResponseSerializer,
)

RETRY_AFTER_SECONDS = 30  # a worker restarting or a broker coming back


def _scored(model: RewardModel, prompts: list, responses: list[str], rank: str | None = None):
    """The worker's answer, or an error response a client can act on."""
    try:
        answer = services.score(reward_model=model, prompts=prompts, responses=responses, rank=rank)
        return answer, None
    except services.WorkerUnavailable as exc:
        answer = Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        answer["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return None, answer
    except Exception as exc:  # noqa: BLE001 - the worker's failure, reported, not a 500
        detail = f"Scoring failed on the worker: {type(exc).__name__}: {exc}"
        return None, Response({"detail": detail}, status=status.HTTP_502_BAD_GATEWAY)


class RewardModelList(generics.ListAPIView):
    serializer_class = RewardModelSerializer

    def get_queryset(self):
        models = selectors.models_visible(user=self.request.user)
        return models.prefetch_related("evaluations__dataset", "evaluations__round")


class RewardModelView(APIView):
    """A view on one model, named by identifier or number in the URL's `key`."""

    permission_classes = [CanSeeRewardModel]

    def get_reward_model(self) -> RewardModel:
        reward_model = selectors.reward_model_get(key=self.kwargs["key"])
        self.check_object_permissions(self.request, reward_model)
        return reward_model


class RewardModelDetail(RewardModelView):
    @extend_schema(responses=RewardModelSerializer)
    def get(self, request, key: str):
        return Response(RewardModelSerializer(self.get_reward_model()).data)


class PromotedModelView(APIView):
    """The project's promoted model, where the URL names a project (`pk`) and no model:
    for its leads and admins; 409 while none is promoted."""

    permission_classes = [IsProjectLead]

    def get_reward_model(self) -> RewardModel:
        project = get_object_or_404(Project, pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, project)
        reward_model = selectors.promoted_model(project_id=project.pk)
        if reward_model is None:
            raise NoPromotedModel()
        return reward_model


class NoPromotedModel(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "No model is promoted in this project: promote one, or name a model."


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
        if "ranked" not in result:  # a worker from before ranking moved to the worker
            detail = "The scoring worker runs an older version; restart it to rank candidates."
            return Response({"detail": detail}, status=status.HTTP_502_BAD_GATEWAY)
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


class ModelPromotion(RewardModelView):
    @extend_schema(request=PromotionSerializer, responses=PromotionSerializer)
    def post(self, request, key: str):
        """Promote the model (it then serves its project's scoring) or, with promoted=false,
        demote it; admins only. The decision is recorded with who and why."""
        reward_model = self.get_reward_model()
        if not user_is_admin(request.user):
            raise PermissionDenied("Only admins promote and demote models.")
        payload = PromotionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if data["promoted"]:
            decision = services.model_promote(
                reward_model=reward_model, user=request.user, reason=data["reason"],
                override=data["override"],
            )  # fmt: skip
        else:
            decision = services.model_demote(
                reward_model=reward_model, user=request.user, reason=data["reason"]
            )
        return Response(PromotionSerializer(decision).data, status=status.HTTP_201_CREATED)


class ModelAudit(RewardModelView):
    """What a policy could exploit in the model: its audits, and a new one."""

    @extend_schema(responses=AuditSerializer(many=True))
    def get(self, request, key: str):
        """The model's audits, newest first, each with its figures and what it holds back."""
        reward_model = self.get_reward_model()
        audits = reward_model.audits.select_related("dataset", "round", "reward_model__project")
        return Response(AuditSerializer(audits.order_by("-pk"), many=True).data)

    @extend_schema(request=AuditRequestSerializer, responses={201: AuditSerializer})
    def post(self, request, key: str):
        """Queue an audit on the scoring queue: {dataset: NAME@vN} (its test split), {round:
        NAME} (its held-out pairs) or a multipart `pairs` file; `probes` to run fewer."""
        reward_model = self.get_reward_model()
        payload = AuditRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        project = reward_model.project_id
        dataset = round_ = None
        if data.get("dataset"):
            dataset = CuratedDataset.objects.filter(
                identifier=data["dataset"], project_id=project
            ).first()
            if dataset is None:
                raise NotFound(f"No dataset version {data['dataset']!r} in the model's project.")
        if data.get("round"):
            round_ = Round.objects.filter(name=data["round"], project_id=project).first()
            if round_ is None:
                raise NotFound(f"No round {data['round']!r} in the model's project.")
        probes = [name for item in data["probes"] for name in item.split(",")]
        try:
            audit = audits.audit_create(
                reward_model=reward_model, user=request.user, dataset=dataset, round_=round_,
                upload=data.get("pairs"), fmt=data["format"], probes=probes,
            )  # fmt: skip
        except RowsRejected as exc:
            return Response({"detail": f"Nothing was queued: {exc}"}, status=400)
        return Response(AuditSerializer(audit).data, status=status.HTTP_201_CREATED)


class ProjectDrift(APIView):
    """Each model of the project on each round's fresh held-out set (accuracy, its 95%
    interval, pairs), the promoted model marked, and the drift warning (null when none);
    for the project's leads and admins."""

    permission_classes = [IsProjectLead]

    @extend_schema(responses=dict)
    def get(self, request, pk: int):
        project = get_object_or_404(Project, pk=pk)
        self.check_object_permissions(request, project)
        return Response(project_drift(project=project).as_json())
