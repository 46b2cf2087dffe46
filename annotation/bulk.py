"""Fast bulk writes. At 100,000 rows the ORM's per-value preparation costs more than the
database itself, so these take values that are ready for the database: JSON as text,
datetimes aware. PostgreSQL gets COPY and array parameters; other databases executemany."""

from django.db import connection, transaction


def _names(model, columns: list[str]) -> tuple[str, str]:
    table = connection.ops.quote_name(model._meta.db_table)
    return table, ", ".join(connection.ops.quote_name(c) for c in columns)


def _prepared(rows: list[tuple]) -> list[tuple]:
    adapt = connection.ops.adapt_datetimefield_value
    return [tuple(adapt(v) if hasattr(v, "tzinfo") else v for v in row) for row in rows]


def insert_rows(model, columns: list[str], rows: list[tuple]) -> None:
    """Insert rows (tuples in `columns` order)."""
    if not rows:
        return
    table, names = _names(model, columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            cursor.executemany(sql, _prepared(rows))


# Up to this many rows (one label's consensus, say) a plain INSERT ... ON CONFLICT is
# cheaper than creating, filling and dropping a scratch table.
SMALL_UPSERT = 100


def upsert_rows(model, columns: list[str], rows: list[tuple], *, key: str) -> None:
    """Insert rows, or update every other column where a row with the same `key` exists."""
    if not rows:
        return
    table, names = _names(model, columns)
    quote = connection.ops.quote_name
    updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c != key)
    conflict = f"ON CONFLICT ({quote(key)}) DO UPDATE SET {updates}"
    if connection.vendor == "postgresql" and len(rows) > SMALL_UPSERT:
        # COPY into a scratch table, then one INSERT ... ON CONFLICT from it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE upsert_rows (LIKE {table}) ON COMMIT DROP")
            with cursor.cursor.copy(f"COPY upsert_rows ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM upsert_rows {conflict}"
            )
            cursor.execute("DROP TABLE upsert_rows")
    else:
        marks = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}", _prepared(rows)
            )


def _postgres_cursor():
    """A psycopg cursor that binds parameters on the server: arrays of 100,000 values go as
    one parameter instead of being quoted value by value in Python."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def rows_for_ids(sql: str, params: list, ids: list) -> list[tuple]:
    """Run `sql` over many ids: its `{ids}` placeholder is the id test, its parameters come
    first and the ids last."""
    if connection.vendor == "postgresql":
        with _postgres_cursor() as cursor:
            cursor.execute(sql.format(ids="= ANY(%s)"), [*params, list(ids)])
            return cursor.fetchall()
    found = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 900):
            chunk = list(ids[start : start + 900])
            cursor.execute(
                sql.format(ids=f"IN ({', '.join(['%s'] * len(chunk))})"), [*params, *chunk]
            )
            found.extend(cursor.fetchall())
    return found
