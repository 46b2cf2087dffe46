"""Full-text search of pairs: the index, filled on a worker soon after an import and by a
schedule."""

import logging

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)


SEARCH_INDEX_TASK = "annotation.index_search"


def search_index_soon() -> None:
    """Ask a worker to index new pairs for search now rather than at the next beat."""
    from config.celery import BrokerUnavailable, enqueue

    try:
        enqueue(SEARCH_INDEX_TASK)
    except BrokerUnavailable:
        logger.warning("new pairs become searchable at the next scheduled indexing")


# A pair's searchable words: the strings of its prompt (every turn) and both responses.
SEARCH_DOCUMENT_SQL = (
    "jsonb_to_tsvector('simple', prompt, '[\"string\"]')"
    " || to_tsvector('simple', response_a || ' ' || response_b)"
)


SEARCH_INDEX_BATCH = 2000
UNSEARCHED_IDS_SQL = (
    "SELECT id FROM annotation_pair WHERE search_document IS NULL ORDER BY id LIMIT %s "
    "FOR UPDATE SKIP LOCKED"
)


def pairs_search_index(*, limit: int = SEARCH_INDEX_BATCH) -> int:
    """Index the words of up to `limit` pairs that search cannot find yet (PostgreSQL; see
    migration 0006); returns how many. Workers running it at once take different pairs."""
    if connection.vendor != "postgresql":
        return 0
    update = f"UPDATE annotation_pair SET search_document = {SEARCH_DOCUMENT_SQL} WHERE id "
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute(f"{update} IN ({UNSEARCHED_IDS_SQL})", [limit])
                return cursor.rowcount
        except DatabaseError:
            # A pair past PostgreSQL's limits for a text search document (1 MB) fails the
            # batch: index this batch a pair at a time, such a pair with no words, so that
            # it does not stop every pair after it from being indexed.
            pass
        count = 0
        with transaction.atomic():
            cursor.execute(UNSEARCHED_IDS_SQL, [limit])
            for (pair_id,) in cursor.fetchall():
                try:
                    with transaction.atomic():
                        cursor.execute(f"{update} = %s", [pair_id])
                except DatabaseError:
                    logger.warning("pair %s has too many words to search", pair_id)
                    cursor.execute(
                        "UPDATE annotation_pair SET search_document = ''::tsvector WHERE id = %s",
                        [pair_id],
                    )
                count += 1
        return count
