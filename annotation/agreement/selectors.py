"""Reads for agreement: a project's labels as one LabelTable, judges' order flips and consistency,
the dashboard's figures, each judge's calibration against the people among them (cached by the
labels' version), and the contested pairs."""

import hashlib
from datetime import date

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, QuerySet

from annotation.agreement.maths import CHOICE_CODES
from annotation.models import (
    Adjudication,
    ConsensusFit,
    ConsistencyCheck,
    Judge,
    Label,
    PairConsensus,
    Project,
)

EPOCH = date(1970, 1, 1)
DAY_NUMBER_SQL = {  # days since EPOCH of a label's creation, in UTC
    "postgresql": ("({table}.created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01'"),
    "sqlite": "CAST(julianday({table}.created_at) - 2440587.5 AS INTEGER)",
}


LABEL_COLUMNS = (
    "pair", "annotator", "source", "choice", "strength", "shown_left", "duration_ms", "day",
    "length_a", "length_b", "gold",
)  # fmt: skip


# Every column is a number: a label source is given by its position among the project's
# label source names, which SOURCE_NAMES_SQL lists first ({source_position} is a CASE), and
# a choice or side by its code in CHOICE_CODES (CHOICE_CODE_SQL).
LABELS_SQL = """
    SELECT l.pair_id,
           COALESCE(l.annotator_id, -1),
           {source_position},
           {choice},
           COALESCE(l.strength, -1),
           {shown_left},
           COALESCE(l.duration_ms, -1),
           {day},
           p.length_a, p.length_b,
           {gold}
    FROM annotation_label l JOIN annotation_pair p ON p.id = l.pair_id
    WHERE p.project_id = %(project)s {exclude}
"""


CHOICE_CODE_SQL = (  # a stored choice or side as its code; -1 when empty
    "CASE {column} "
    + " ".join(f"WHEN '{name}' THEN {code}" for name, code in CHOICE_CODES.items())
    + " ELSE -1 END"
)


SOURCE_NAMES_SQL = """
    SELECT DISTINCT l.source FROM annotation_label l JOIN annotation_pair p ON p.id = l.pair_id
    WHERE p.project_id = %(project)s AND l.annotator_id IS NULL {exclude} ORDER BY l.source
"""


def _integer_columns(sql: str, params: dict, names: tuple[str, ...]) -> dict:
    """An all-integer query's columns as numpy int64 arrays.

    On PostgreSQL the rows come as binary COPY and are read with numpy in one pass: 100,000
    labels arrive in a fraction of the time that building Python rows takes. Kept by hand on
    purpose: psycopg's typed COPY reading (copy.rows() with set_types) builds a Python tuple a
    row, which is what this avoids; the dashboard's figures in docs/benchmarks.md depend on it.
    """
    import numpy as np

    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return {
            name: np.array(column, dtype=np.int64)
            for name, column in zip(
                names, list(zip(*rows, strict=True)) if rows else [()] * len(names), strict=True
            )
        }
    import psycopg

    casts = ", ".join(f"q.{name}::int8" for name in names)
    query = (
        f"COPY (SELECT {casts} FROM ({sql}) AS q ({', '.join(names)})) TO STDOUT (FORMAT binary)"
    )
    connection.ensure_connection()
    with (
        psycopg.ClientCursor(connection.connection) as cursor,
        cursor.copy(cursor.mogrify(query, params)) as copy,
    ):
        data = b"".join(bytes(block) for block in copy)
    # Binary COPY: an 11-byte signature, flags and header extension (8 bytes), then per row a
    # 16-bit field count and, per field, a 32-bit length and the 8-byte value; -1 ends it.
    body = data[19 + int.from_bytes(data[15:19], "big") : -2]
    row = np.dtype([("fields", ">i2")] + [(n, [("size", ">i4"), ("value", ">i8")]) for n in names])
    records = np.frombuffer(body, dtype=row)
    return {name: records[name]["value"].astype(np.int64) for name in names}


def rater_key(annotator_id: int | None, source: str) -> str:
    """A rater as fits of reliability name them (ConsensusFit.answers)."""
    return f"annotator:{annotator_id}" if annotator_id is not None else f"source:{source}"


def label_table(*, project: Project, exclude_sources: tuple[str, ...] = ()):
    """The project's labels as arrays for the agreement maths, with per-pair facts.

    Also returns the pair ids in item order.
    """
    import numpy as np

    from annotation.agreement.consensus import LabelTable

    params: dict = {"project": project.pk}
    exclude = ""
    if exclude_sources:
        names = {f"exclude{i}": name for i, name in enumerate(exclude_sources)}
        marks = ", ".join(f"%({key})s" for key in names)
        exclude = f"AND NOT (l.annotator_id IS NULL AND l.source IN ({marks}))"
        params.update(names)
    with connection.cursor() as cursor:
        cursor.execute(SOURCE_NAMES_SQL.format(exclude=exclude), params)
        source_names = [row[0] for row in cursor.fetchall()]
    branches = "".join(f" WHEN %(source{i})s THEN {i}" for i in range(len(source_names)))
    params.update({f"source{i}": name for i, name in enumerate(source_names)})
    sql = LABELS_SQL.format(
        source_position=f"CASE l.source{branches} ELSE -1 END" if branches else "-1",
        choice=CHOICE_CODE_SQL.format(column="l.choice"),
        shown_left=CHOICE_CODE_SQL.format(column="l.shown_left"),
        gold=CHOICE_CODE_SQL.format(column="p.gold_choice"),
        day=DAY_NUMBER_SQL[connection.vendor].format(table="l"),
        exclude=exclude,
    )
    columns = _integer_columns(sql, params, LABEL_COLUMNS)

    pair_ids, item = np.unique(columns["pair"], return_inverse=True)
    facts = np.zeros((len(pair_ids), 3), dtype=np.int64)
    facts[item] = np.stack([columns["length_a"], columns["length_b"], columns["gold"]], axis=1)
    # Raters: people first, by user id, then label sources in name order.
    is_source = columns["annotator"] < 0
    user_ids, user_index = np.unique(columns["annotator"][~is_source], return_inverse=True)
    source_index = columns["source"][is_source]
    rater = np.empty(item.size, dtype=np.int64)
    rater[~is_source] = user_index.reshape(-1)
    rater[is_source] = len(user_ids) + source_index.reshape(-1)
    usernames = dict(
        get_user_model().objects.filter(pk__in=user_ids.tolist()).values_list("pk", "username")
    )
    decided = dict(
        Adjudication.objects.filter(pair__project=project).values_list("pair_id", "choice")
    )
    strength = columns["strength"].astype(float)
    strength[strength < 0] = np.nan
    duration = columns["duration_ms"].astype(float)
    duration[duration < 0] = np.nan
    return (
        LabelTable(
            item=item.reshape(-1),
            rater=rater,
            choice=columns["choice"],
            strength=strength,
            shown_left=columns["shown_left"],
            duration_ms=duration,
            day=columns["day"],
            length_a=facts[:, 0],
            length_b=facts[:, 1],
            gold=facts[:, 2],
            decided=np.array(
                [CHOICE_CODES.get(decided.get(p), -1) for p in pair_ids.tolist()], dtype=np.int64
            ),
            rater_names=[usernames[u] for u in user_ids.tolist()] + source_names,
            rater_kinds=["annotator"] * len(user_ids) + ["source"] * len(source_names),
            rater_keys=[rater_key(u, "") for u in user_ids.tolist()]
            + [rater_key(None, name) for name in source_names],
        ),
        pair_ids.tolist(),
    )


def flip_rates(*, project: Project) -> dict[str, dict]:
    """Per annotator: how many pairs were re-shown with sides swapped, and the share flipped."""
    result: dict[str, dict] = {}
    checks = ConsistencyCheck.objects.filter(label__pair__project=project).values_list(
        "label__annotator__username", "label__choice", "choice"
    )
    for name, first, second in checks:
        entry = result.setdefault(name, {"checks": 0, "flips": 0})
        entry["checks"] += 1
        entry["flips"] += first != second
    return {
        name: {"checks": e["checks"], "flip_rate": e["flips"] / e["checks"]}
        for name, e in result.items()
    }


JUDGE_LABELS_SQL = """
    SELECT l.pair_id, CASE l.source{branches} ELSE -1 END,
           CASE WHEN l.position_consistent IS NULL THEN -1
                WHEN l.position_consistent THEN 1 ELSE 0 END
    FROM annotation_label l JOIN annotation_pair p ON p.id = l.pair_id
    WHERE p.project_id = %(project)s AND l.annotator_id IS NULL AND l.source IN ({names})
"""


def judge_labels(*, project: Project, table, pair_ids: list[int]):
    """The LLM judges among the table's raters (label sources named as a Judge), in rater
    order, and per label of `table` (label_table's, with its pair ids) whether a judge's pick
    held in both orders: 1 where it did, 0 where it changed, -1 where unknown or the label is
    no judge's."""
    import numpy as np

    consistent = np.full(table.item.size, -1, dtype=np.int64)
    sources = {
        table.rater_names[r]: r for r, kind in enumerate(table.rater_kinds) if kind == "source"
    }
    named = set(Judge.objects.filter(name__in=list(sources)).values_list("name", flat=True))
    raters = {name: r for name, r in sources.items() if name in named}
    if not raters:
        return [], consistent
    params: dict = {"project": project.pk}
    params.update({f"judge{i}": name for i, name in enumerate(raters)})
    branches = "".join(f" WHEN %(judge{i})s THEN {r}" for i, r in enumerate(raters.values()))
    names = ", ".join(f"%(judge{i})s" for i in range(len(raters)))
    columns = _integer_columns(
        JUDGE_LABELS_SQL.format(branches=branches, names=names),
        params,
        ("pair", "rater", "consistent"),
    )
    # A label source labels a pair at most once, so (item, rater) finds its label; one that
    # came in after the table was read finds none and is left out.
    pairs = np.asarray(pair_ids, dtype=np.int64)
    item = np.minimum(np.searchsorted(pairs, columns["pair"]), pairs.size - 1)
    keys = table.item * table.n_raters + table.rater
    order = np.argsort(keys, kind="stable")
    wanted = item * table.n_raters + columns["rater"]
    at = np.minimum(np.searchsorted(keys[order], wanted), keys.size - 1)
    found = (pairs[item] == columns["pair"]) & (keys[order][at] == wanted)
    consistent[order[at[found]]] = columns["consistent"][found]
    return sorted(raters.values()), consistent


def _agreement_version(project: Project) -> str:
    """Changes whenever a label, decision, gold answer or re-check of the project changes (each
    of them refreshes its pair's consensus row), or the project's thresholds do."""
    stamp = PairConsensus.objects.filter(project=project).aggregate(
        n=Count("pair_id"), latest=Max("updated_at")
    )
    thresholds = (
        project.easy_min_strength,
        project.hard_below_agreement,
        project.hard_below_strength,
        project.consensus_rule,
        project.min_reliability,
    )
    return f"{stamp}|{thresholds}"


def agreement_summary(*, project: Project) -> dict:
    """The dashboard's figures (see annotation.agreement_report), with each judge's calibration
    against the people (annotation.agreement.judge_calibration), cached until the project's
    labels change."""
    from annotation.agreement.report import agreement_report

    version = hashlib.sha256(_agreement_version(project).encode()).hexdigest()[:16]
    key = f"agreement:{project.pk}:{version}"
    summary = cache.get(key)
    if summary is None:
        table, pair_ids = label_table(project=project)
        summary = agreement_report(
            table,
            project.difficulty_rule,
            min_reliability=project.min_reliability,
            consensus_rule=project.consensus_rule,
        )
        for entry in summary["weighted"]["disagreements"]:
            entry["pair_id"] = pair_ids[entry.pop("item")]
        flips = flip_rates(project=project)
        for entry in summary["annotators"]:
            found = flips.get(entry["name"]) if entry["kind"] == "annotator" else None
            entry["flip_rate"] = found["flip_rate"] if found else None
            entry["repeat_checks"] = found["checks"] if found else 0
        _judges_marked(summary["annotators"], project, table, pair_ids)
        summary["annotators"].sort(key=lambda entry: entry["kind"] == "judge")  # people first
        summary["healthy_agreement"] = project.healthy_agreement
        cache.set(key, summary, timeout=3600)
    return summary


def _judges_marked(annotators: list[dict], project: Project, table, pair_ids: list[int]) -> None:
    """Marks the label sources that are LLM judges (annotators in rater order, as
    agreement_report lists them), each with the share of its labels whose pick did not change
    with the order shown (None before any was recorded) and its calibration against the
    people."""
    from annotation.agreement.judge_calibration import judge_calibrations, position_consistency

    judges, consistent = judge_labels(project=project, table=table, pair_ids=pair_ids)
    calibration = judge_calibrations(table, judges, consistent, project.difficulty_rule)
    for r in judges:
        annotators[r]["kind"] = "judge"
        annotators[r]["position_consistency"] = position_consistency(consistent[table.rater == r])
        annotators[r]["calibration"] = calibration[r]


# A weighted consensus rule is fitted again once the labels have grown by this share.
REFIT_GROWTH = 0.1


def consensus_refits_due() -> list[int]:
    """The projects under a weighted consensus rule with no fit of it yet, or one made on
    REFIT_GROWTH fewer labels than they have now."""
    weighted = Project.objects.exclude(consensus_rule=Project.ConsensusRule.COUNT)
    labels = dict(
        Label.objects.filter(pair__project__in=weighted)
        .values_list("pair__project")
        .annotate(n=Count("id"))
    )
    fits = {fit.project_id: fit for fit in ConsensusFit.objects.filter(project__in=weighted)}
    due = []
    for project in weighted.only("pk", "consensus_rule"):
        fit, count = fits.get(project.pk), labels.get(project.pk, 0)
        if (
            fit is None
            or fit.rule != project.consensus_rule
            or count > fit.n_labels * (1 + REFIT_GROWTH)
        ):
            due.append(project.pk)
    return due


def contested_pairs(*, project: Project) -> QuerySet[PairConsensus]:
    return (
        PairConsensus.objects.filter(project=project, contested=True)
        .select_related("pair")
        .order_by("adjudicated", "pair_id")  # undecided first, then in the review's order
    )
