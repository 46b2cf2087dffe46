from django.urls import path

from annotation import judge_views, setup_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/new/", setup_views.project_new, name="project-new"),
    path("projects/<int:pk>/", views.project_detail, name="project"),
    path("projects/<int:pk>/settings/", setup_views.project_settings, name="project-settings"),
    path("markdown-preview/", setup_views.markdown_preview, name="markdown-preview"),
    path("projects/<int:pk>/annotate/", views.annotate, name="annotate"),
    path("labels/", views.my_labels, name="my-labels"),
    path("projects/<int:pk>/dashboard/", views.dashboard, name="dashboard"),
    path("projects/<int:pk>/pairs/<int:pair_pk>/", views.pair_review, name="pair-review"),
    path("projects/<int:pk>/curate/", views.curate, name="curate"),
    path("datasets/<str:identifier>/", views.dataset_detail, name="dataset"),
    path(
        "datasets/<str:identifier>/download/<str:fmt>/",
        views.dataset_file,
        name="dataset-download",
    ),
    path("judges/", judge_views.judge_list, name="judges"),
    path("judges/<int:pk>/", judge_views.judge_edit, name="judge"),
    path("projects/<int:pk>/judging/", judge_views.project_judging, name="judging"),
    path("judging-jobs/<int:pk>/", judge_views.judging_job, name="judging-job"),
    path(
        "judging-jobs/<int:pk>/progress.json",
        judge_views.judging_job_progress,
        name="judging-job-progress",
    ),
    path(
        "judging-jobs/<int:pk>/cancel/", judge_views.judging_job_cancel, name="judging-job-cancel"
    ),
]
