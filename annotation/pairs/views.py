"""A project's page (its pairs table and import) and one pair's review page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotation.access import project_for
from annotation.agreement.maths import DIFFICULTIES
from annotation.models import (
    Adjudication,
    Pair,
)
from annotation.pairs.forms import PairFilterForm
from annotation.pairs.imports import ImportRejected, pairs_import
from annotation.pairs.readers import FORMATS, FileRejected
from annotation.pairs.selectors import (
    PairFilters,
    pair_neighbours,
    pair_sources,
    pairs_filtered,
    table_page,
    unsearchable_pairs,
)
from annotation.pairs.services import pair_adjudicate, pair_adjudication_clear, pair_set_gold
from annotation.rendering import prompt_preview, render_preview, render_prompt, split_at_question


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
                report = pairs_import(
                    project=project,
                    stream=upload,
                    filename=upload.name,
                    fmt=request.POST.get("format", "auto"),
                    label_source=request.POST.get("source") or "imported",
                    skip_invalid=bool(request.POST.get("skip_invalid")),
                )
            except ImportRejected as exc:
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
                pair_adjudicate(
                    pair=pair, lead=request.user, choice=choice, note=request.POST.get("note", "")
                )
                messages.success(request, f"Decided #{pair.pk}: {choice}.")
                target = next_id or pair.pk
            elif action == "undecide":
                pair_adjudication_clear(pair=pair)
                messages.success(request, "Decision removed; the majority stands again.")
            elif action == "gold":
                pair_set_gold(pair=pair, choice=request.POST.get("gold_choice", ""))
                messages.success(request, "Gold answer saved.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect(reverse("pair-review", args=[project.pk, target]) + query)
    labels = pair.labels.select_related("annotator").order_by("created_at")
    earlier_turns, prompt_turns = split_at_question(render_prompt(pair.prompt))
    context = {
        "project": project,
        "pair": pair,
        "earlier_turns": earlier_turns,
        "prompt_turns": prompt_turns,
        "labels": labels,
        "consensus": getattr(pair, "consensus", None),
        "adjudication": Adjudication.objects.filter(pair=pair).select_related("decided_by").first(),
        "query": query,
        "previous_id": previous_id,
        "next_id": next_id,
    }
    return render(request, "annotation/pair_review.html", context)
