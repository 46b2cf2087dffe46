"""Reads of a project's pairs as leads browse them: search, filters, sort, and the pairs
before and after one in that order (the review page's previous and next).

On PostgreSQL, search uses the full-text index of migration 0006 (words, in any order;
"quoted phrases" and -excluded words as in a web search); elsewhere it matches each word
as a substring.
"""

from dataclasses import dataclass
from functools import cached_property

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import BooleanField, Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from annotation.models import Label, Pair, Project

# The searched text of a pair: the prompt's strings (every turn) and both responses. The
# index of migration 0006 is built on exactly this expression, so the query can use it.
SEARCH_DOCUMENT_SQL = (
    "(jsonb_to_tsvector('simple', {table}.prompt, '[\"string\"]')"
    " || to_tsvector('simple', {table}.response_a || ' ' || {table}.response_b))"
)

# Sort name -> (label, the ordering fields); every ordering ends in the pair's id, so it is
# total and previous/next are well defined. A sort on a consensus figure shows the pairs
# that have one.
PAIR_SORTS = {
    "id": ("oldest first", (("id", False),)),
    "-id": ("newest first", (("id", True),)),
    "margin": ("margin, lowest first", (("consensus__margin", False), ("id", False))),
    "-margin": ("margin, highest first", (("consensus__margin", True), ("id", False))),
    "agreement": ("agreement, lowest first", (("consensus__agreement", False), ("id", False))),
}


@dataclass(frozen=True)
class PairFilters:
    """What a lead narrowed the pairs to; None means either way."""

    search: str = ""
    source: str | None = None
    external_id: str = ""
    labelled: bool | None = None
    difficulty: tuple[str, ...] = ()
    contested: bool | None = None
    gold: bool | None = None
    decided: bool | None = None
    sort: str = "id"


def _search(pairs: QuerySet[Pair], text: str) -> QuerySet[Pair]:
    if connection.vendor == "postgresql":
        document = SEARCH_DOCUMENT_SQL.format(table=Pair._meta.db_table)
        found = RawSQL(f"{document} @@ websearch_to_tsquery('simple', %s)", [text], BooleanField())
        return pairs.alias(found=found).filter(found=True)
    for word in text.split():
        pairs = pairs.filter(
            Q(prompt__icontains=word)
            | Q(response_a__icontains=word)
            | Q(response_b__icontains=word)
        )
    return pairs


def _consensus_flag(pairs: QuerySet[Pair], field: str, wanted: bool | None) -> QuerySet[Pair]:
    if wanted is None:
        return pairs
    if wanted:
        return pairs.filter(**{f"consensus__{field}": True})
    # Pairs without a consensus row (no labels) are neither contested nor decided.
    return pairs.exclude(**{f"consensus__{field}": True})


def pairs_filtered(*, project: Project, filters: PairFilters) -> QuerySet[Pair]:
    pairs = Pair.objects.filter(project=project)
    if filters.search.strip():
        pairs = _search(pairs, filters.search.strip())
    if filters.source is not None:
        pairs = pairs.filter(source=filters.source)
    if filters.external_id:
        pairs = pairs.filter(external_id=filters.external_id)
    if filters.labelled is not None:
        has_label = Exists(Label.objects.filter(pair=OuterRef("pk")))
        pairs = pairs.filter(has_label if filters.labelled else ~has_label)
    if filters.difficulty:
        pairs = pairs.filter(consensus__difficulty__in=filters.difficulty)
    if filters.gold is not None:
        pairs = pairs.exclude(gold_choice="") if filters.gold else pairs.filter(gold_choice="")
    pairs = _consensus_flag(pairs, "contested", filters.contested)
    pairs = _consensus_flag(pairs, "adjudicated", filters.decided)
    ordering = PAIR_SORTS[filters.sort][1]
    for field, _ in ordering:
        if field.startswith("consensus__"):
            # The consensus row's own project, so that its sort index serves the query.
            pairs = pairs.filter(**{f"{field}__isnull": False}, consensus__project=project)
    return pairs.select_related("consensus").order_by(
        *(F(field).desc() if descending else F(field).asc() for field, descending in ordering)
    )


def _beyond(pair: Pair, ordering, *, before: bool) -> Q:
    """Pairs strictly after `pair` in the ordering (before it, with before=True)."""
    condition = Q(pk__in=[])
    equal = Q()
    for field, descending in ordering:
        value = pair.pk if field == "id" else getattr(pair.consensus, field.split("__")[1])
        lookup = "lt" if descending != before else "gt"
        condition |= equal & Q(**{f"{field}__{lookup}": value})
        equal &= Q(**{field: value})
    return condition


def pair_neighbours(
    *, project: Project, filters: PairFilters, pair: Pair
) -> tuple[int | None, int | None]:
    """The ids of the pairs just before and just after `pair` among the filtered ones, in
    their order. `pair` need not pass the filters itself (a decision can take it out of
    'not decided yet'); its place in the order is enough."""
    ordering = PAIR_SORTS[filters.sort][1]
    sorted_by = [field.split("__")[1] for field, _ in ordering if field.startswith("consensus__")]
    consensus = getattr(pair, "consensus", None)
    if sorted_by and (consensus is None or any(getattr(consensus, f) is None for f in sorted_by)):
        return None, None  # it has no place among the pairs sorted by a figure it lacks
    pairs = pairs_filtered(project=project, filters=filters)
    after = pairs.filter(_beyond(pair, ordering, before=False)).values_list("id", flat=True)
    before = (
        pairs.filter(_beyond(pair, ordering, before=True)).reverse().values_list("id", flat=True)
    )
    return before.first(), after.first()


SOURCES_SQL = """
    WITH RECURSIVE sources(source) AS (
        (SELECT source FROM annotation_pair WHERE project_id = %(project)s
         ORDER BY source LIMIT 1)
        UNION ALL
        SELECT (SELECT p.source FROM annotation_pair p
                WHERE p.project_id = %(project)s AND p.source > s.source
                ORDER BY p.source LIMIT 1)
        FROM sources s WHERE s.source IS NOT NULL
    )
    SELECT source FROM sources WHERE source IS NOT NULL LIMIT %(limit)s
"""


def pair_sources(*, project: Project, limit: int = 200) -> list[str]:
    """The distinct sources of a project's pairs, in order. On PostgreSQL one index probe
    per source rather than a scan of every pair."""
    if connection.vendor != "postgresql":
        pairs = Pair.objects.filter(project=project).order_by("source")
        return list(pairs.values_list("source", flat=True).distinct()[:limit])
    with connection.cursor() as cursor:
        cursor.execute(SOURCES_SQL, {"project": project.pk, "limit": limit})
        return [row[0] for row in cursor.fetchall()]


# The pairs table counts at most this many matches: an exact count of a million pairs costs
# more than the page itself. Beyond it the page says "10,000+" and search narrows.
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > COUNT_CAP
