"""Who may see and use which reward model, for pages and for the API (the permission class
and the base of every view on one model), and a project's promoted model."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from annotation.access import ADMIN, IsProjectLead, project_role, user_is_admin
from annotation.models import Membership, Project
from rewardmodels.models import Promotion, RewardModel


def model_role(*, user: AbstractBaseUser, reward_model: RewardModel) -> str | None:
    """'admin', 'lead', or None (no business here)."""
    role = project_role(user=user, project=reward_model.project)
    return role if role in (ADMIN, Membership.Role.LEAD) else None


def reward_model_get(*, key: str) -> RewardModel:
    """A model by identifier (or number), whoever asks; 404 when there is none."""
    lookup = {"pk": int(key)} if key.isascii() and key.isdigit() else {"identifier": key}
    return get_object_or_404(
        RewardModel.objects.select_related("project", "dataset", "run").defer(
            "run__metrics", "run__log_tail"
        ),
        **lookup,
    )


def reward_model_for(*, user: AbstractBaseUser, key: str) -> RewardModel:
    """A model by identifier (or number), for those who may see it; 404 for anyone else,
    so that outsiders learn nothing about which models exist."""
    reward_model = reward_model_get(key=key)
    if model_role(user=user, reward_model=reward_model) is None:
        raise Http404("No such reward model.")
    return reward_model


def projects_led(*, user: AbstractBaseUser) -> QuerySet[Project]:
    """The projects whose models the user sees: every one for admins, else those they lead."""
    if user_is_admin(user):
        return Project.objects.order_by("name")
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return Project.objects.filter(pk__in=led).order_by("name")


def models_visible(*, user: AbstractBaseUser) -> QuerySet[RewardModel]:
    """Admins see every model; leads those of their projects."""
    models = RewardModel.objects.select_related("project", "dataset", "run").defer(
        "run__metrics", "run__log_tail", "run__error"
    )
    if user_is_admin(user):
        return models
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return models.filter(project_id__in=led)


def promoted_model(*, project_id: int) -> RewardModel | None:
    """The model serving the project: the newest decision's, if it was a promotion."""
    decision = (
        Promotion.objects.filter(project_id=project_id).select_related("reward_model").first()
    )
    return decision.reward_model if decision and decision.promoted else None


class CanSeeRewardModel(IsAuthenticated):
    """Admins and the leads of the model's dataset project. Anyone else, the project's
    annotators included, is told 404 rather than 403, so that outsiders learn nothing about
    which models exist; anonymous requests are refused before any lookup."""

    def has_object_permission(self, request, view, obj) -> bool:
        if model_role(user=request.user, reward_model=obj) is None:
            raise NotFound("No such reward model.")
        return True


class RewardModelView(APIView):
    """A view on one model, named by identifier or number in the URL's `key`."""

    permission_classes = [CanSeeRewardModel]

    def get_reward_model(self) -> RewardModel:
        reward_model = reward_model_get(key=self.kwargs["key"])
        self.check_object_permissions(self.request, reward_model)
        return reward_model


class PromotedModelView(APIView):
    """The project's promoted model, where the URL names a project (`pk`) and no model:
    for its leads and admins; 409 while none is promoted."""

    permission_classes = [IsProjectLead]

    def get_reward_model(self) -> RewardModel:
        project = get_object_or_404(Project, pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, project)
        reward_model = promoted_model(project_id=project.pk)
        if reward_model is None:
            raise NoPromotedModel()
        return reward_model


class NoPromotedModel(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "No model is promoted in this project: promote one, or name a model."
