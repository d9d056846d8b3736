"""The bank's hand-written SQL for PostgreSQL, in one place (docs/ARCHITECTURE.md §4).

Each function here does what the ORM does on other databases, where on PostgreSQL
the ORM's form cost a federated import most of its time (building a model per row)
or depended on the table's statistics (the plan of a lookup). ``insert_rows``
chooses by ``connection.vendor`` itself; callers of the others do. Everything
else goes through the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import Model


def insert_rows(
    model: type[Model], attnames: Sequence[str], rows: Iterable[tuple[object, ...]]
) -> None:
    """Insert ``rows`` (values in ``attnames`` order) as new rows of ``model``.

    On PostgreSQL with COPY; elsewhere as models through ``bulk_create``. For rows
    that can't conflict with any row already stored (the log's, the holds of hashes
    inserted in this transaction): COPY has no ``ON CONFLICT``.
    """
    if connection.vendor == "postgresql":
        copy_rows(model, attnames, rows)
    else:
        model._default_manager.bulk_create(
            model(**dict(zip(attnames, row, strict=True))) for row in rows
        )


def copy_rows(
    model: type[Model], attnames: Sequence[str], rows: Iterable[tuple[object, ...]]
) -> None:
    """Write new rows of ``model`` with COPY: the rows ``bulk_create`` would insert.

    The values are plain ints, strings, bytes, booleans and datetimes. Binary COPY,
    with each column's type taken from its model field: the server neither parses
    text (a leaf as hex) nor casts, and no model is built or prepared per row.
    """
    statement, types = _copy_statement(model, tuple(attnames))
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


@functools.lru_cache(maxsize=32)
def _copy_statement(model: type[Model], attnames: tuple[str, ...]) -> tuple[str, list[str]]:
    """The COPY statement for these columns of ``model``, and their types (read once)."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    quote = connection.ops.quote_name
    fields = [by_attname[name] for name in attnames]
    columns = ", ".join(quote(str(f.column)) for f in fields)
    # "varchar(8)" names the type varchar to psycopg.
    types = [str(f.db_type(connection)).partition("(")[0] for f in fields]
    return f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)", types


def hash_ids_matching(*, hash_list_id: int, keys: Sequence[tuple[str, str]]) -> list[int]:
    """Ids of the list's hashes whose (algorithm, value) is one of ``keys``.

    A join against the keys as an array, not ``value IN (...)``: for each key
    PostgreSQL probes the unique index (hash_list, algorithm, value), whether or not
    the table has statistics. Without them (a list just bulk-loaded, not yet
    analysed) it planned ``IN`` over 1,000 values as a scan of every hash of the
    list: 1 s per 1,000 hashes at 1M.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT h.id FROM hashbank_hash h"
            " JOIN unnest(%s::text[], %s::text[]) AS k(algorithm, value)"
            " ON h.algorithm = k.algorithm AND h.value = k.value"
            " WHERE h.hash_list_id = %s",
            [[a for a, _ in keys], [v for _, v in keys], hash_list_id],
        )
        return [pk for (pk,) in cursor.fetchall()]
