"""Reads of a project's pairs as leads browse them: search, filters, sort, and the pairs
before and after one in that order (the review page's previous and next).

On PostgreSQL, search reads the indexed words of migration 0006's `search_document`
column (the prompt's turns and both responses): words in any order, "quoted phrases" and
-excluded words as in a web search. A worker fills the column moments after pairs are
written (annotation.services.pairs_search_index); until then search does not find them,
and `unsearchable_pairs` counts them. Elsewhere search matches each word as a substring.
"""

import re
from dataclasses import dataclass

from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from annotation.models import Label, Pair, PairConsensus, Project

# Sort name -> (label, the ordering fields); every ordering ends in the pair's id, so it is
# total and previous/next are well defined. A sort never narrows the pairs: those without
# the consensus figure sorted on (no labels yet, no winner) come last, either way round.
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
        document = f"{Pair._meta.db_table}.search_document"
        found = RawSQL(f"{document} @@ websearch_to_tsquery('simple', %s)", [text], BooleanField())
        return pairs.alias(found=found).filter(found=True)
    # As a web search reads it: words and "quoted phrases" must be there, -words must not.
    for term in re.findall(r'-?"[^"]*"|\S+', text):
        excluded = term.startswith("-") and len(term) > 1
        phrase = term.lstrip("-").strip('"') if excluded else term.strip('"')
        if not phrase:
            continue
        found = Q(prompt__icontains=phrase) | Q(response_a__icontains=phrase)
        found |= Q(response_b__icontains=phrase)
        pairs = pairs.exclude(found) if excluded else pairs.filter(found)
    return pairs


def unsearchable_pairs(*, project: Project) -> int:
    """Pairs of the project that search cannot find yet (up to COUNT_CAP + 1)."""
    if connection.vendor != "postgresql":
        return 0
    waiting = RawSQL(f"{Pair._meta.db_table}.search_document IS NULL", [], BooleanField())
    pairs = Pair.objects.filter(project=project).alias(waiting=waiting).filter(waiting=True)
    return count_upto(pairs, COUNT_CAP) or 0


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
    return _ordered(pairs.select_related("consensus"), ordering, nulls_last=True)


Ordering = tuple[tuple[str, bool], ...]  # (field, descending), as in PAIR_SORTS
BY_ID: Ordering = (("id", False),)


def _ordered(pairs: QuerySet[Pair], ordering: Ordering, nulls_last: bool = False) -> QuerySet:
    return pairs.order_by(
        *(
            F(field).desc(nulls_last=nulls_last or None)
            if descending
            else F(field).asc(nulls_last=nulls_last or None)
            for field, descending in ordering
        )
    )


def _in_parts(pairs: QuerySet[Pair]) -> list[tuple[QuerySet[Pair], Ordering]]:
    """The pairs of `pairs_filtered`, in its order, as consecutive parts that an index reads
    in order. One ordering across the consensus rows' left join sorts every pair (a second at
    a million), so a sort on a consensus figure reads the pairs that have it (by the consensus
    row's own project, so that its sort index serves them), then the others by id."""
    ordering = tuple((o.expression.name, o.descending) for o in pairs.query.order_by)
    figure = ordering[0][0]
    if not figure.startswith("consensus__"):
        return [(pairs, ordering)]
    have = pairs.filter(**{f"{figure}__isnull": False}, consensus__project=F("project"))
    # NOT EXISTS: the planner misjudges IS NULL across the left join and reads every pair.
    with_figure = PairConsensus.objects.filter(
        pair=OuterRef("pk"), **{f"{figure.split('__')[1]}__isnull": False}
    )
    lack = pairs.filter(~Exists(with_figure))
    return [(_ordered(have, ordering), ordering), (_ordered(lack, BY_ID), BY_ID)]


def _read(pairs: QuerySet[Pair], start: int, count: int) -> list[Pair]:
    """Rows start to start + count of the pairs in their order, read part by part."""
    rows: list[Pair] = []
    for part, _ in _in_parts(pairs):
        if len(rows) == count:
            break
        found = list(part[start : start + count - len(rows)])
        if start and not found:
            start = max(0, start - part.count())  # the rows wanted lie past this part
            continue
        rows += found
        start = 0
    return rows


def _neighbour(pairs: QuerySet[Pair], ordering: Ordering, values: dict, before: bool) -> int | None:
    """The id of the pair just after the one with `values` in the ordering (just before it,
    with before=True). Tried from the last ordering field to the first: the same values up to
    a field and beyond it on that field, each try one range an index serves."""
    for level in range(len(ordering) - 1, -1, -1):
        field, descending = ordering[level]
        lookup = "lt" if descending != before else "gt"
        same = {name: values[name] for name, _ in ordering[:level]}
        found = pairs.filter(**same, **{f"{field}__{lookup}": values[field]})
        found = (found.reverse() if before else found).values_list("id", flat=True).first()
        if found is not None:
            return found
    return None


def _end(parts: list[tuple[QuerySet[Pair], Ordering]], last: bool) -> int | None:
    """The id of the first pair of the first part that has one (of the last, with last=True)."""
    for part, _ in reversed(parts) if last else parts:
        found = (part.reverse() if last else part).values_list("id", flat=True).first()
        if found is not None:
            return found
    return None


def pair_neighbours(
    *, project: Project, filters: PairFilters, pair: Pair
) -> tuple[int | None, int | None]:
    """The ids of the pairs just before and just after `pair` among the filtered ones, in
    their order. `pair` need not pass the filters itself (a decision can take it out of
    'not decided yet'); its place in the order is enough."""
    parts = _in_parts(pairs_filtered(project=project, filters=filters))
    consensus = getattr(pair, "consensus", None)
    values = {
        field: pair.pk if field == "id" else getattr(consensus, field.split("__")[1], None)
        for _, ordering in parts
        for field, _ in ordering
    }
    # Its part: the first whose ordering it has every value of (without the figure, the last).
    home = next(
        n
        for n, (_, ordering) in enumerate(parts)
        if all(values[f] is not None for f, _ in ordering)
    )
    previous = _neighbour(*parts[home], values, before=True)
    following = _neighbour(*parts[home], values, before=False)
    if previous is None:
        previous = _end(parts[:home], last=True)
    if following is None:
        following = _end(parts[home + 1 :], last=False)
    return previous, following


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


# The pairs table counts its matches up to COUNT_CAP, and for at most COUNT_TIME_LIMIT_MS:
# an exact count of a million pairs, or of the few that match a phrase of common words,
# costs more than the page itself. Pages go on past the count while there are more rows.
COUNT_CAP = 1000
COUNT_TIME_LIMIT_MS = 40


def count_upto(pairs: QuerySet[Pair], cap: int) -> int | None:
    """How many rows, counting no further than cap + 1; None when the count ran out of time."""
    if connection.vendor != "postgresql":
        return pairs[: cap + 1].count()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {COUNT_TIME_LIMIT_MS}")
            count = pairs.order_by()[: cap + 1].count()
            # The limit would outlive this savepoint inside a caller's transaction.
            cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
            return count
    except OperationalError:  # cancelled at the time limit; the rollback undoes the limit
        return None


PAGE_ROWS = 25
MAX_PAGE = 100_000  # 2.5M rows in: past that, search and filters are the way


@dataclass
class TablePage:
    rows: list[Pair]
    number: int
    has_next: bool
    count: int | None  # the matches, up to cap + 1; None: not counted in time
    cap: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def capped(self) -> bool:
        return self.count is not None and self.count > self.cap

    @property
    def last_number(self) -> int | None:
        """The last page's number, where the count says it."""
        if self.count is None or self.capped:
            return None
        return max(1, -(-self.count // PAGE_ROWS))


def table_page(pairs: QuerySet[Pair], number: str | None, size: int = PAGE_ROWS) -> TablePage:
    """One page of the pairs table (or the API's pair list): its rows (one more is read to
    know whether a next page exists) and the count of all matches as far as it is cheap."""
    number = int(number) if number and number.isascii() and number.isdigit() else 1
    number = min(max(1, number), MAX_PAGE)
    start = (number - 1) * size
    rows = _read(pairs, start, size + 1)
    has_next = len(rows) > size
    # On a first page that holds every match, those are the count.
    cap = COUNT_CAP
    count = len(rows) if number == 1 and not has_next else count_upto(pairs, cap)
    return TablePage(rows[:size], number, has_next, count, cap)
