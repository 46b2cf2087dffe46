from django.urls import path

from annotation.accounts.token_views import account
from annotation.activity.views import activity, activity_export
from annotation.agreement.views import dashboard
from annotation.curation.views import curate, dataset_detail, dataset_file
from annotation.judges import views as judge_views
from annotation.labelling.views import annotate, my_labels
from annotation.pairs.views import pair_review, project_detail
from annotation.projects import views as setup_views
from annotation.projects.views import home

urlpatterns = [
    path("", home, name="home"),
    path("projects/new/", setup_views.project_new, name="project-new"),
    path("projects/<int:pk>/", project_detail, name="project"),
    path("projects/<int:pk>/settings/", setup_views.project_settings, name="project-settings"),
    path("markdown-preview/", setup_views.markdown_preview, name="markdown-preview"),
    path("projects/<int:pk>/annotate/", annotate, name="annotate"),
    path("labels/", my_labels, name="my-labels"),
    path("account/", account, name="account"),
    path("activity/", activity, name="activity"),
    path("activity/export.jsonl", activity_export, name="activity-export"),
    path("projects/<int:pk>/dashboard/", dashboard, name="dashboard"),
    path("projects/<int:pk>/pairs/<int:pair_pk>/", pair_review, name="pair-review"),
    path("projects/<int:pk>/curate/", curate, name="curate"),
    path("datasets/<str:identifier>/", dataset_detail, name="dataset"),
    path(
        "datasets/<str:identifier>/download/<str:fmt>/",
        dataset_file,
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
