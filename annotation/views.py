"""Server-rendered pages: home, the annotator's queue, a project's pairs and import, own labels."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotation import charts, curation, selectors, services
from annotation.agreement import DIFFICULTIES
from annotation.curation import dataset_curate
from annotation.formats import FORMATS, FileRejected
from annotation.forms import PairFilterForm
from annotation.models import (
    Adjudication,
    CuratedDataset,
    Label,
    Pair,
    Project,
)
from annotation.pair_filters import (
    PairFilters,
    pair_neighbours,
    pair_sources,
    pairs_filtered,
    table_page,
    unsearchable_pairs,
)
from annotation.rendering import prompt_preview, render_preview, render_prompt
from annotation.selectors import EPOCH
from annotation.serializers import CurationFiltersSerializer


def project_for(request, pk: int, *, manage: bool = False) -> tuple[Project, str]:
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
        {
            "projects": selectors.projects_with_roles(user=request.user),
            "is_admin": selectors.user_is_admin(request.user),
            "may_create": selectors.may_create_projects(request.user),
        },
    )


@login_required
def annotate(request, pk: int):
    project, _ = project_for(request, pk)
    return render(request, "annotation/annotate.html", {"project": project})


@login_required
@require_http_methods(["GET", "POST"])
def project_detail(request, pk: int):
    project, role = project_for(request, pk, manage=True)
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

    filter_form = PairFilterForm(request.GET)
    filters = filter_form.filters() if filter_form.is_valid() else PairFilters()
    pairs = pairs_filtered(project=project, filters=filters)
    page = table_page(pairs, request.GET.get("page"))
    for pair in page.rows:
        pair.prompt_turns, pair.earlier_turns = prompt_preview(pair.prompt)
        pair.preview_a, pair.preview_b = (
            render_preview(pair.response_a),
            render_preview(pair.response_b),
        )
    context = {
        "project": project,
        "role": role,
        "page": page,
        "filter_form": filter_form,
        "query": filter_form.query(),
        "unsearchable": unsearchable_pairs(project=project) if filters.search else 0,
        "yes_no": [
            ("labelled", "Labelled", filters.labelled),
            ("contested", "Contested", filters.contested),
            ("decided", "Decided", filters.decided),
            ("gold", "Gold", filters.gold),
        ],
        "chosen_difficulties": filters.difficulty,
        "sources": pair_sources(project=project),
        "difficulties": DIFFICULTIES,
        "formats": FORMATS,
        "import_errors": request.session.pop("import_errors", []),
    }
    return render(request, "annotation/project.html", context)


@login_required
def my_labels(request):
    page = Paginator(selectors.labels_of_annotator(annotator=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "annotation/my_labels.html", {"page": page})


# ---------------------------------------------------------------------------------------
# Leads: dashboard, pair review, curation, datasets

DIFFICULTY_COLOURS = {
    "easy": "#207a45",
    "medium": "#d4a017",
    "hard": "#b42318",
    "contested": "#6b21a8",
}


@login_required
def dashboard(request, pk: int):
    project, role = project_for(request, pk, manage=True)
    summary = selectors.agreement_summary(project=project)
    names = [entry["name"] for entry in summary["annotators"]]
    index = {name: i for i, name in enumerate(names)}
    kappa = {}
    for entry in summary["cohen_kappa"]:
        i, j = index[entry["a"]], index[entry["b"]]
        kappa[(i, j)] = kappa[(j, i)] = entry["kappa"]
    difficulty = summary["difficulty"]
    timeline = [
        (str(EPOCH + timedelta(days=point["day"])), point["agreement"])
        for point in summary["timeline"]
    ]
    agreement = summary["percent_agreement"]
    contested = Paginator(selectors.contested_pairs(project=project), 20).get_page(
        request.GET.get("page")
    )
    context = {
        "project": project,
        "summary": summary,
        "judges": [entry for entry in summary["annotators"] if entry["kind"] == "judge"],
        "healthy": agreement is not None and agreement >= project.healthy_agreement,
        "heatmap": charts.heatmap(names, kappa) if len(names) > 1 else None,
        "difficulty_chart": charts.bars(
            [(name, difficulty[name]) for name in (*DIFFICULTIES, "contested")],
            DIFFICULTY_COLOURS,
        ),
        "timeline_chart": charts.line(timeline, project.healthy_agreement) if timeline else None,
        "page": contested,
        "too_fast": _too_fast(summary["annotators"], project.fast_label_seconds),
        "first_undecided": pairs_filtered(
            project=project, filters=PairFilters(contested=True, decided=False)
        )
        .values_list("id", flat=True)
        .first(),
    }
    return render(request, "annotation/dashboard.html", context)


def _too_fast(annotators: list[dict], threshold: float) -> list[str]:
    """People whose median time per label is below the project's threshold: too fast to
    have read both responses (clicking through, or a script)."""
    return [
        entry["name"]
        for entry in annotators
        if entry["kind"] == "annotator"
        and entry["median_seconds"] is not None
        and entry["median_seconds"] < threshold
    ]


@login_required
@require_http_methods(["GET", "POST"])
def pair_review(request, pk: int, pair_pk: int):
    """Every vote on a pair with its rationale and shown order; the lead's decision; gold.
    The pairs table's filters ride in the query string: previous and next follow them, and
    recording a decision goes on to the next pair."""
    project, _ = project_for(request, pk, manage=True)
    pair = get_object_or_404(Pair.objects.select_related("consensus"), pk=pair_pk, project=project)
    filter_form = PairFilterForm(request.GET)
    filters = filter_form.filters() if filter_form.is_valid() else PairFilters()
    query = filter_form.query()
    query = f"?{query}" if query else ""
    previous_id, next_id = pair_neighbours(project=project, filters=filters, pair=pair)
    if request.method == "POST":
        action = request.POST.get("action")
        target = pair.pk
        try:
            if action == "decide":
                choice = request.POST.get("choice", "")
                services.pair_adjudicate(
                    pair=pair, lead=request.user, choice=choice, note=request.POST.get("note", "")
                )
                messages.success(request, f"Decided #{pair.pk}: {choice}.")
                target = next_id or pair.pk
            elif action == "undecide":
                services.pair_adjudication_clear(pair=pair)
                messages.success(request, "Decision removed; the majority stands again.")
            elif action == "gold":
                services.pair_set_gold(pair=pair, choice=request.POST.get("gold_choice", ""))
                messages.success(request, "Gold answer saved.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect(reverse("pair-review", args=[project.pk, target]) + query)
    labels = pair.labels.select_related("annotator").order_by("created_at")
    context = {
        "project": project,
        "pair": pair,
        "prompt_turns": render_prompt(pair.prompt),
        "labels": labels,
        "consensus": getattr(pair, "consensus", None),
        "adjudication": Adjudication.objects.filter(pair=pair).select_related("decided_by").first(),
        "query": query,
        "previous_id": previous_id,
        "next_id": next_id,
    }
    return render(request, "annotation/pair_review.html", context)


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
    "test_fraction": "0.1", "seed": "0",
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
    context = selectors.dataset_context(dataset=dataset)
    return render(request, "annotation/dataset.html", context)


@login_required
def dataset_file(request, identifier: str, fmt: str):
    dataset = get_object_or_404(CuratedDataset, identifier=identifier)
    project_for(request, dataset.project_id, manage=True)
    try:
        stream, kind, name = curation.dataset_download(dataset, fmt)
    except ValidationError as exc:
        raise Http404("No such format.") from exc
    return FileResponse(stream, as_attachment=True, filename=name, content_type=kind)
