from django.urls import path

from annotation import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:pk>/", views.project_detail, name="project"),
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
]
