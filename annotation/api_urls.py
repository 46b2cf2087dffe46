from django.urls import path

from annotation.accounts.token_api import ApiTokenDetail, ApiTokenList
from annotation.agreement.api import ProjectAgreement
from annotation.curation.api import CurationPreview, DatasetDetail, DatasetDownload, ProjectDatasets
from annotation.judges import api as judges_api
from annotation.labelling.api import (
    AssignmentSkip,
    LabelSubmit,
    NextAssignment,
    OwnLabels,
    QueueProgress,
)
from annotation.pairs.api import PairAdjudication, PairGold, PairImport, PairList
from annotation.projects.api import ProjectDetail, ProjectList, ProjectPrecedence

urlpatterns = [
    path("projects/", ProjectList.as_view(), name="api-projects"),
    path("projects/<int:pk>/", ProjectDetail.as_view(), name="api-project"),
    path("projects/<int:pk>/precedence/", ProjectPrecedence.as_view(), name="api-precedence"),
    path("projects/<int:pk>/pairs/", PairList.as_view(), name="api-pairs"),
    path("projects/<int:pk>/import/", PairImport.as_view(), name="api-import"),
    path("projects/<int:pk>/next/", NextAssignment.as_view(), name="api-next"),
    path("projects/<int:pk>/progress/", QueueProgress.as_view(), name="api-progress"),
    path("assignments/<int:pk>/label/", LabelSubmit.as_view(), name="api-label"),
    path("assignments/<int:pk>/skip/", AssignmentSkip.as_view(), name="api-skip"),
    path("labels/mine/", OwnLabels.as_view(), name="api-own-labels"),
    path("tokens/", ApiTokenList.as_view(), name="api-tokens"),
    path("tokens/<int:pk>/", ApiTokenDetail.as_view(), name="api-token"),
    path("projects/<int:pk>/agreement/", ProjectAgreement.as_view(), name="api-agreement"),
    path(
        "projects/<int:pk>/curation-preview/",
        CurationPreview.as_view(),
        name="api-curation-preview",
    ),
    path("projects/<int:pk>/datasets/", ProjectDatasets.as_view(), name="api-datasets"),
    path("datasets/<str:identifier>/", DatasetDetail.as_view(), name="api-dataset"),
    path(
        "datasets/<str:identifier>/download/",
        DatasetDownload.as_view(),
        name="api-dataset-download",
    ),
    path("pairs/<int:pk>/adjudication/", PairAdjudication.as_view(), name="api-adjudication"),
    path("pairs/<int:pk>/gold/", PairGold.as_view(), name="api-gold"),
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
