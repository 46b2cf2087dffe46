from django.urls import path

from rewardmodels.evaluation.views import (
    audit_detail,
    audit_download,
    audit_progress,
    evaluation_detail,
    evaluation_progress,
)
from rewardmodels.registry.views import (
    model_audit,
    model_compare,
    model_detail,
    model_evaluate,
    model_filter,
    model_list,
    model_promotion,
)
from rewardmodels.retraining.views import project_models, project_models_evaluate, project_retrain
from rewardmodels.scoring.views import (
    filter_detail,
    filter_download,
    filter_progress,
    model_try,
    project_model_try,
)
from rewardmodels.training import views

urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/progress.json", views.run_progress, name="run-progress"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("datasets/<str:identifier>/train/", views.run_create, name="run-create"),
    path("models/", model_list, name="models"),
    path("projects/<int:pk>/models/", project_models, name="project-models"),
    path(
        "projects/<int:pk>/models/evaluate/",
        project_models_evaluate,
        name="project-models-evaluate",
    ),
    path("projects/<int:pk>/models/retrain/", project_retrain, name="project-retrain"),
    path("projects/<int:pk>/models/try/", project_model_try, name="project-model-try"),
    path("models/compare/", model_compare, name="model-compare"),
    path("models/<str:identifier>/", model_detail, name="model"),
    path("models/<str:identifier>/evaluate/", model_evaluate, name="model-evaluate"),
    path("models/<str:identifier>/filter/", model_filter, name="model-filter"),
    path("models/<str:identifier>/try/", model_try, name="model-try"),
    path("models/<str:identifier>/promotion/", model_promotion, name="model-promotion"),
    path("models/<str:identifier>/audit/", model_audit, name="model-audit"),
    path("audits/<int:pk>/", audit_detail, name="audit"),
    path("audits/<int:pk>/progress.json", audit_progress, name="audit-progress"),
    path("audits/<int:pk>/edited.jsonl", audit_download, name="audit-download"),
    path("evaluations/<int:pk>/", evaluation_detail, name="evaluation"),
    path(
        "evaluations/<int:pk>/progress.json",
        evaluation_progress,
        name="evaluation-progress",
    ),
    path("filters/<int:pk>/", filter_detail, name="filter"),
    path("filters/<int:pk>/progress.json", filter_progress, name="filter-progress"),
    path("filters/<int:pk>/kept.jsonl", filter_download, name="filter-download"),
]
