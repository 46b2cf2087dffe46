from django.urls import path, re_path

from rewardmodels.evaluation.api import EvaluationWrongPairs, ModelAudit
from rewardmodels.registry.api import ModelPromotion, RewardModelDetail, RewardModelList
from rewardmodels.retraining.api import ProjectDrift
from rewardmodels.scoring.api import BestOfN, ProjectBestOfN, ProjectScore, Score

# Actions answer with and without a trailing slash, as every other endpoint ends in one.
MODEL = r"^reward-models/(?P<key>[^/]+)"
PROJECT = r"^projects/(?P<pk>[0-9]+)"

urlpatterns = [
    path("reward-models/", RewardModelList.as_view(), name="api-reward-models"),
    path("reward-models/<str:key>/", RewardModelDetail.as_view(), name="api-reward-model"),
    re_path(rf"{MODEL}/score/?$", Score.as_view(), name="api-score"),
    re_path(rf"{MODEL}/best-of-n/?$", BestOfN.as_view(), name="api-best-of-n"),
    re_path(rf"{MODEL}/promotion/?$", ModelPromotion.as_view(), name="api-promotion"),
    re_path(rf"{MODEL}/audit/?$", ModelAudit.as_view(), name="api-audit"),
    path(
        "evaluations/<int:pk>/wrong-pairs/",
        EvaluationWrongPairs.as_view(),
        name="api-evaluation-wrong-pairs",
    ),
    re_path(rf"{PROJECT}/score/?$", ProjectScore.as_view(), name="api-project-score"),
    re_path(rf"{PROJECT}/drift/?$", ProjectDrift.as_view(), name="api-project-drift"),
    re_path(rf"{PROJECT}/best-of-n/?$", ProjectBestOfN.as_view(), name="api-project-best-of-n"),
]
