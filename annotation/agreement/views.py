"""The agreement dashboard."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from annotation.access import project_for
from annotation.agreement import charts
from annotation.agreement.maths import DIFFICULTIES
from annotation.agreement.selectors import EPOCH, agreement_summary, contested_pairs
from annotation.models import Pair

DIFFICULTY_COLOURS = {
    "easy": "#207a45",
    "medium": "#d4a017",
    "hard": "#b42318",
    "contested": "#6b21a8",
}


@login_required
def dashboard(request, pk: int):
    project, role = project_for(request, pk, manage=True)
    summary = agreement_summary(project=project)
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
    judges = [entry for entry in summary["annotators"] if entry["kind"] == "judge"]
    contested = Paginator(contested_pairs(project=project), 20).get_page(request.GET.get("page"))
    context = {
        "project": project,
        "summary": summary,
        "judges": judges,
        "calibrated": any(entry.get("calibration") for entry in judges),
        "healthy": agreement is not None and agreement >= project.healthy_agreement,
        "heatmap": charts.heatmap(names, kappa) if len(names) > 1 else None,
        "difficulty_chart": charts.bars(
            [(name, difficulty[name]) for name in (*DIFFICULTIES, "contested")],
            DIFFICULTY_COLOURS,
        ),
        "timeline_chart": charts.line(timeline, project.healthy_agreement) if timeline else None,
        "page": contested,
        "too_fast": _too_fast(summary["annotators"], project.fast_label_seconds),
        "unreliable": [
            (entry["name"], entry["reliability"]["flag"])
            for entry in summary["annotators"]
            if entry["reliability"] and entry["reliability"]["flag"]
        ],
        "disagreements": _with_pairs(summary["weighted"]["disagreements"]),
        "first_undecided": contested_pairs(project=project)
        .filter(adjudicated=False)
        .values_list("pair_id", flat=True)
        .first(),
    }
    return render(request, "annotation/dashboard.html", context)


def _with_pairs(disagreements: list[dict]) -> list[dict]:
    """The listed pairs where weighing votes changes the winner, each with its external id."""
    names = dict(
        Pair.objects.filter(pk__in=[d["pair_id"] for d in disagreements]).values_list(
            "pk", "external_id"
        )
    )
    return [{**d, "external_id": names.get(d["pair_id"], "")} for d in disagreements]


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
