"""The curate page and a version's page and files."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotation.access import project_for
from annotation.agreement.maths import DIFFICULTIES
from annotation.curation.sections import dataset_sections
from annotation.curation.selectors import dataset_context, dataset_download
from annotation.curation.serializers import CurationFiltersSerializer
from annotation.curation.services import dataset_curate
from annotation.models import (
    CuratedDataset,
    Label,
    Project,
)


def _problems(errors) -> list[str]:
    """A serializer's error messages, flattened (a list's errors come keyed by position)."""
    if isinstance(errors, dict):
        return [text for nested in errors.values() for text in _problems(nested)]
    if isinstance(errors, list):
        return [text for nested in errors for text in _problems(nested)]
    return [str(errors)]


def _curate_from_form(request, project: Project) -> CuratedDataset:
    """A new version from the curate page's form, whose filters the API's serializer reads;
    a ValidationError names each field that is wrong."""
    form = CurationFiltersSerializer.from_query(request.POST, form=True)
    if not form.is_valid():
        raise ValidationError(
            [
                f"{form.fields[name].label}: {' '.join(_problems(errors))}"
                for name, errors in form.errors.items()
            ]
        )
    return dataset_curate(
        project=project,
        name=request.POST.get("name", "").strip(),
        filters=form.filters(),
        user=request.user,
    )


CURATE_DEFAULTS = {
    "name": "", "min_votes": "1", "min_agreement": "0", "min_annotator_kappa": "",
    "min_annotator_reliability": "", "min_confidence": "0", "test_fraction": "0.1", "seed": "0",
}  # fmt: skip


def _curate_values(posted) -> dict:
    """What the curate form shows: the defaults, or after an error every value as sent."""
    if posted is None:
        return {**CURATE_DEFAULTS, "difficulty": list(DIFFICULTIES), "exclude_sources": []}
    return {
        **{name: posted.get(name, default) for name, default in CURATE_DEFAULTS.items()},
        "exclude_contested": bool(posted.get("exclude_contested")),
        "exclude_ties": bool(posted.get("exclude_ties")),
        "balance_length": bool(posted.get("balance_length")),
        "difficulty": posted.getlist("difficulty"),
        "exclude_sources": posted.getlist("exclude_sources"),
    }


@login_required
@require_http_methods(["GET", "POST"])
def curate(request, pk: int):
    project, _ = project_for(request, pk, manage=True)
    if request.method == "POST":
        try:
            dataset = _curate_from_form(request, project)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Created {dataset.identifier}.")
            return redirect("dataset", identifier=dataset.identifier)
    sources = (
        Label.objects.filter(pair__project=project, annotator__isnull=True)
        .values_list("source", flat=True)
        .distinct()
        .order_by("source")
    )
    context = {
        "project": project,
        "sources": list(sources),
        "datasets": project.datasets.all()[:50],
        "form": _curate_values(request.POST if request.method == "POST" else None),
        "difficulties": DIFFICULTIES,
    }
    return render(request, "annotation/curate.html", context)


@login_required
def dataset_detail(request, identifier: str):
    dataset = get_object_or_404(
        CuratedDataset.objects.select_related("project"), identifier=identifier
    )
    project_for(request, dataset.project_id, manage=True)
    return dataset_page(request, dataset)


def dataset_page(request, dataset: CuratedDataset, *, status: int = 200, **inputs) -> HttpResponse:
    """A version's page, with the sections other apps add (sections.py); `inputs` go to
    those sections, such as a form that comes back with its errors."""
    context = {
        **dataset_context(dataset=dataset),
        "sections": dataset_sections(request=request, dataset=dataset, inputs=inputs),
    }
    return render(request, "annotation/dataset.html", context, status=status)


@login_required
def dataset_file(request, identifier: str, fmt: str):
    dataset = get_object_or_404(CuratedDataset, identifier=identifier)
    project_for(request, dataset.project_id, manage=True)
    try:
        stream, kind, name = dataset_download(dataset, fmt)
    except ValidationError as exc:
        raise Http404("No such format.") from exc
    return FileResponse(stream, as_attachment=True, filename=name, content_type=kind)
