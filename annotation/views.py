"""Server-rendered pages: home, the annotator's queue, a project's pairs and import, own labels."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotation import selectors, services
from annotation.formats import FORMATS, FileRejected
from annotation.models import Label, Project
from annotation.rendering import render_prompt


def _project_for(request, pk: int, *, manage: bool = False) -> tuple[Project, str]:
    project = get_object_or_404(Project, pk=pk)
    role = selectors.project_role(user=request.user, project=project)
    if role is None or (manage and role not in (selectors.ADMIN, "lead")):
        raise Http404("No such project.")
    return project, role


@login_required
def home(request):
    return render(
        request,
        "annotation/home.html",
        {"projects": selectors.projects_with_roles(user=request.user)},
    )


@login_required
def annotate(request, pk: int):
    project, _ = _project_for(request, pk)
    return render(request, "annotation/annotate.html", {"project": project})


@login_required
@require_http_methods(["GET", "POST"])
def project_detail(request, pk: int):
    project, role = _project_for(request, pk, manage=True)
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a file to import.")
        else:
            try:
                report = services.pairs_import(
                    project=project,
                    stream=upload,
                    filename=upload.name,
                    fmt=request.POST.get("format", "auto"),
                    label_source=request.POST.get("source") or "imported",
                    skip_invalid=bool(request.POST.get("skip_invalid")),
                )
            except services.ImportRejected as exc:
                request.session["import_errors"] = [str(e) for e in exc.errors[:200]]
                messages.error(request, f"{len(exc.errors)} bad row(s); nothing was imported.")
            except (FileRejected, ValidationError) as exc:
                messages.error(request, f"Nothing was imported: {exc}")
            else:
                request.session["import_errors"] = [str(e) for e in report.errors[:200]]
                messages.success(request, f"Import done: {report.summary}.")
        return redirect("project", pk=project.pk)

    page = Paginator(selectors.pairs_for_project(project=project), 25).get_page(
        request.GET.get("page")
    )
    for pair in page:
        pair.prompt_turns = render_prompt(pair.prompt)
    context = {
        "project": project,
        "role": role,
        "page": page,
        "formats": FORMATS,
        "n_labels": Label.objects.filter(pair__project=project).count(),
        "import_errors": request.session.pop("import_errors", []),
    }
    return render(request, "annotation/project.html", context)


@login_required
def my_labels(request):
    page = Paginator(selectors.labels_of_annotator(annotator=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "annotation/my_labels.html", {"page": page})
