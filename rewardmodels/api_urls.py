from django.urls import path

from rewardmodels import api

urlpatterns = [
    path("reward-models/", api.RewardModelList.as_view(), name="api-reward-models"),
    path("reward-models/<str:key>/", api.RewardModelDetail.as_view(), name="api-reward-model"),
    path("reward-models/<str:key>/score", api.Score.as_view(), name="api-score"),
    path("reward-models/<str:key>/best-of-n", api.BestOfN.as_view(), name="api-best-of-n"),
    path("reward-models/<str:key>/promotion", api.ModelPromotion.as_view(), name="api-promotion"),
    path("projects/<int:pk>/score", api.ProjectScore.as_view(), name="api-project-score"),
    path("projects/<int:pk>/drift", api.ProjectDrift.as_view(), name="api-project-drift"),
    path("projects/<int:pk>/best-of-n", api.ProjectBestOfN.as_view(), name="api-project-best-of-n"),
]
