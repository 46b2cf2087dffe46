from django.urls import path, re_path

from rewardmodels import api

# Actions answer with and without a trailing slash, as every other endpoint ends in one.
MODEL = r"^reward-models/(?P<key>[^/]+)"
PROJECT = r"^projects/(?P<pk>[0-9]+)"

urlpatterns = [
    path("reward-models/", api.RewardModelList.as_view(), name="api-reward-models"),
    path("reward-models/<str:key>/", api.RewardModelDetail.as_view(), name="api-reward-model"),
    re_path(rf"{MODEL}/score/?$", api.Score.as_view(), name="api-score"),
    re_path(rf"{MODEL}/best-of-n/?$", api.BestOfN.as_view(), name="api-best-of-n"),
    re_path(rf"{MODEL}/promotion/?$", api.ModelPromotion.as_view(), name="api-promotion"),
    re_path(rf"{MODEL}/audit/?$", api.ModelAudit.as_view(), name="api-audit"),
    re_path(rf"{PROJECT}/score/?$", api.ProjectScore.as_view(), name="api-project-score"),
    re_path(rf"{PROJECT}/drift/?$", api.ProjectDrift.as_view(), name="api-project-drift"),
    re_path(rf"{PROJECT}/best-of-n/?$", api.ProjectBestOfN.as_view(), name="api-project-best-of-n"),
]
