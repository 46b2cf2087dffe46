"""Who may use the reward-model API, as DRF permission classes."""

from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated

from rewardmodels.selectors import model_role


class CanSeeRewardModel(IsAuthenticated):
    """Admins and the leads of the model's dataset project. Anyone else, the project's
    annotators included, is told 404 rather than 403, so that outsiders learn nothing about
    which models exist; anonymous requests are refused before any lookup."""

    def has_object_permission(self, request, view, obj) -> bool:
        if model_role(user=request.user, reward_model=obj) is None:
            raise NotFound("No such reward model.")
        return True
