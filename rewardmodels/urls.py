from django.urls import path

from rewardmodels import audit_views, drift_views, model_views, views

urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/progress.json", views.run_progress, name="run-progress"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("datasets/<str:identifier>/train/", views.run_create, name="run-create"),
    path("models/", model_views.model_list, name="models"),
    path("projects/<int:pk>/models/", drift_views.project_models, name="project-models"),
    path(
        "projects/<int:pk>/models/evaluate/",
        drift_views.project_models_evaluate,
        name="project-models-evaluate",
    ),
    path("projects/<int:pk>/models/retrain/", drift_views.project_retrain, name="project-retrain"),
    path("models/compare/", model_views.model_compare, name="model-compare"),
    path("models/<str:identifier>/", model_views.model_detail, name="model"),
    path("models/<str:identifier>/evaluate/", model_views.model_evaluate, name="model-evaluate"),
    path("models/<str:identifier>/filter/", model_views.model_filter, name="model-filter"),
    path("models/<str:identifier>/promotion/", model_views.model_promotion, name="model-promotion"),
    path("models/<str:identifier>/audit/", audit_views.model_audit, name="model-audit"),
    path("audits/<int:pk>/", audit_views.audit_detail, name="audit"),
    path("audits/<int:pk>/progress.json", audit_views.audit_progress, name="audit-progress"),
    path("audits/<int:pk>/edited.jsonl", audit_views.audit_download, name="audit-download"),
    path("evaluations/<int:pk>/", model_views.evaluation_detail, name="evaluation"),
    path(
        "evaluations/<int:pk>/progress.json",
        model_views.evaluation_progress,
        name="evaluation-progress",
    ),
    path("filters/<int:pk>/", model_views.filter_detail, name="filter"),
    path("filters/<int:pk>/progress.json", model_views.filter_progress, name="filter-progress"),
    path("filters/<int:pk>/kept.jsonl", model_views.filter_download, name="filter-download"),
]
