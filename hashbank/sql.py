"""The bank's hand-written SQL for PostgreSQL, in one place (docs/ARCHITECTURE.md §4).

Each function here does what the ORM does on other databases, where on PostgreSQL
the ORM's form cost a federated import most of its time (building a model per row)
or depended on the table's statistics (the plan of a lookup). The two inserts
choose by ``connection.vendor`` themselves; callers of ``copy_rows`` and
``hash_ids_matching`` do. Everything else goes through the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TypeVar

from django.db import connection
from django.db.models import Model

_M = TypeVar("_M", bound=Model)


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
        _bulk_create(model, attnames, rows)


def insert_rows_returning(
    model: type[_M], attnames: Sequence[str], rows: Sequence[tuple[object, ...]]
) -> list[_M]:
    """Insert ``rows`` as new rows of ``model`` and return them as models, ids set.

    ``attnames`` names every column but the primary key. On PostgreSQL one
    ``INSERT … SELECT FROM unnest(…) RETURNING id`` from the values as they are (the
    form Django's ``bulk_create`` sends, without preparing a model per row first),
    the models built as loaded rows (``from_db``); elsewhere ``bulk_create``.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        return _bulk_create(model, attnames, rows)
    statement, order = _insert_statement(model, tuple(attnames))
    with connection.cursor() as cursor:
        cursor.execute(statement, [list(column) for column in zip(*rows, strict=True)])
        ids = [pk for (pk,) in cursor.fetchall()]
    return [
        model.from_db(connection.alias, None, [values[i] for i in order])  # type: ignore[arg-type]
        for values in ((pk, *row) for pk, row in zip(ids, rows, strict=True))
    ]


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


def _bulk_create(
    model: type[_M], attnames: Sequence[str], rows: Iterable[tuple[object, ...]]
) -> list[_M]:
    """The ORM's form of the inserts above, for databases other than PostgreSQL."""
    return model._default_manager.bulk_create(
        model(**dict(zip(attnames, row, strict=True))) for row in rows
    )


def _columns(model: type[Model], attnames: tuple[str, ...]) -> tuple[str, str, list[str]]:
    """The quoted table, the quoted column list and the column types of these attributes of
    ``model``, from its own metadata ("varchar(8)" names the type varchar to psycopg)."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    fields = [by_attname[name] for name in attnames]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    types = [str(f.db_type(connection)).partition("(")[0] for f in fields]
    return quote(model._meta.db_table), columns, types


@functools.lru_cache(maxsize=32)
def _copy_statement(model: type[Model], attnames: tuple[str, ...]) -> tuple[str, list[str]]:
    """The COPY statement for these columns of ``model``, and their types (read once)."""
    table, columns, types = _columns(model, attnames)
    return f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)", types


@functools.lru_cache(maxsize=32)
def _insert_statement(model: type[Model], attnames: tuple[str, ...]) -> tuple[str, list[int]]:
    """The INSERT … RETURNING for these columns of ``model``, and where each of the model's
    fields is in (pk, *attnames): the order ``from_db`` takes them in."""
    pk = model._meta.pk
    assert pk is not None
    if set(attnames) != {f.attname for f in model._meta.concrete_fields if f is not pk}:
        raise ValueError(f"every column of {model.__name__} but its primary key is needed")
    table, columns, types = _columns(model, attnames)
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    # Names and types from the model's own metadata, quoted; the values are parameters.
    statement = (
        f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
        f" RETURNING {connection.ops.quote_name(str(pk.column))}"
    )
    position = {name: i + 1 for i, name in enumerate(attnames)}
    order = [0 if f is pk else position[f.attname] for f in model._meta.concrete_fields]
    return statement, order


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
