from django.urls import path

from annotation import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:pk>/", views.project_detail, name="project"),
    path("projects/<int:pk>/annotate/", views.annotate, name="annotate"),
    path("labels/", views.my_labels, name="my-labels"),
]
