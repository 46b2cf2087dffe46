"""The labelling page and a person's own labels."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from annotation.access import project_for
from annotation.labelling.selectors import labels_of_annotator


@login_required
def annotate(request, pk: int):
    project, _ = project_for(request, pk)
    return render(request, "annotation/annotate.html", {"project": project})


@login_required
def my_labels(request):
    page = Paginator(labels_of_annotator(annotator=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "annotation/my_labels.html", {"page": page})
