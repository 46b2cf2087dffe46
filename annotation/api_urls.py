from django.urls import path

from annotation import api, judges_api

urlpatterns = [
    path("projects/", api.ProjectList.as_view(), name="api-projects"),
    path("projects/<int:pk>/", api.ProjectDetail.as_view(), name="api-project"),
    path("projects/<int:pk>/pairs/", api.PairList.as_view(), name="api-pairs"),
    path("projects/<int:pk>/import/", api.PairImport.as_view(), name="api-import"),
    path("projects/<int:pk>/next/", api.NextAssignment.as_view(), name="api-next"),
    path("projects/<int:pk>/progress/", api.QueueProgress.as_view(), name="api-progress"),
    path("assignments/<int:pk>/label/", api.LabelSubmit.as_view(), name="api-label"),
    path("assignments/<int:pk>/skip/", api.AssignmentSkip.as_view(), name="api-skip"),
    path("labels/mine/", api.OwnLabels.as_view(), name="api-own-labels"),
    path("projects/<int:pk>/agreement/", api.ProjectAgreement.as_view(), name="api-agreement"),
    path(
        "projects/<int:pk>/curation-preview/",
        api.CurationPreview.as_view(),
        name="api-curation-preview",
    ),
    path("projects/<int:pk>/datasets/", api.ProjectDatasets.as_view(), name="api-datasets"),
    path("datasets/<str:identifier>/", api.DatasetDetail.as_view(), name="api-dataset"),
    path(
        "datasets/<str:identifier>/download/",
        api.DatasetDownload.as_view(),
        name="api-dataset-download",
    ),
    path("pairs/<int:pk>/adjudication/", api.PairAdjudication.as_view(), name="api-adjudication"),
    path("pairs/<int:pk>/gold/", api.PairGold.as_view(), name="api-gold"),
    path("judges/", judges_api.JudgeList.as_view(), name="api-judges"),
    path("judges/<int:pk>/", judges_api.JudgeDetail.as_view(), name="api-judge"),
    path(
        "projects/<int:pk>/judging-jobs/",
        judges_api.ProjectJudgingJobs.as_view(),
        name="api-judging-jobs",
    ),
    path("judging-jobs/<int:pk>/", judges_api.JudgingJobDetail.as_view(), name="api-judging-job"),
    path(
        "judging-jobs/<int:pk>/cancel/",
        judges_api.JudgingJobCancel.as_view(),
        name="api-judging-job-cancel",
    ),
]
