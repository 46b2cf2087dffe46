"""REST API of the registry: models, a project's promoted model, promotion."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from annotation.access import user_is_admin
from rewardmodels.access import RewardModelView, models_visible
from rewardmodels.registry.serializers import PromotionSerializer, RewardModelSerializer
from rewardmodels.registry.services import model_demote, model_promote


class RewardModelList(generics.ListAPIView):
    serializer_class = RewardModelSerializer

    def get_queryset(self):
        models = models_visible(user=self.request.user)
        return models.prefetch_related("evaluations__dataset", "evaluations__round")


class RewardModelDetail(RewardModelView):
    @extend_schema(responses=RewardModelSerializer)
    def get(self, request, key: str):
        return Response(RewardModelSerializer(self.get_reward_model()).data)


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
            decision = model_promote(
                reward_model=reward_model, user=request.user, reason=data["reason"],
                override=data["override"],
            )  # fmt: skip
        else:
            decision = model_demote(
                reward_model=reward_model, user=request.user, reason=data["reason"]
            )
        return Response(PromotionSerializer(decision).data, status=status.HTTP_201_CREATED)
