"""Database helpers for the few hot statements written by hand."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models

M = TypeVar("M", bound=models.Model)


@functools.cache
def is_postgres() -> bool:
    # The database backend is fixed for the life of the process.
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


@contextlib.contextmanager
def server_cursor() -> Iterator[Any]:
    """A Django cursor; on PostgreSQL one that binds on the server, so psycopg can prepare.

    Django's own psycopg cursors bind parameters on the client and send each
    query as new text, so PostgreSQL parses and plans it every time. Statements
    run through this cursor keep a fixed text and are prepared after
    ``DATABASE_PREPARE_THRESHOLD`` uses. Wrapping the server-binding cursor in
    Django's wrapper keeps query logging, error translation and query counting
    in tests.
    """
    # One lookup of the connection: each use of Django's ``connection`` proxy
    # goes through a context-local lookup, which here cost as much as the query.
    db = connections[DEFAULT_DB_ALIAS]
    if not is_postgres():
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    raw = psycopg.Cursor(db.connection)
    wrapped = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    try:
        yield wrapped
    finally:
        raw.close()


@functools.cache
def _insert_statement(model: type[models.Model]) -> tuple[str, tuple[models.Field, ...]]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    pk = quote(model._meta.pk.column)
    table = quote(model._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING {pk}"  # noqa: S608
    return sql, fields


def insert_statement(obj: models.Model) -> tuple[str, list[Any]]:
    """``INSERT INTO <table> (...) VALUES (...) RETURNING <pk>`` for a new ``obj``, and its
    values, as ``obj.save(force_insert=True)`` would write them (defaults, ``pre_save``)."""
    sql, fields = _insert_statement(type(obj))
    db = connections[DEFAULT_DB_ALIAS]
    return sql, [f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields]


def inserted(obj: models.Model, pk: Any) -> None:
    """Mark ``obj`` as the saved row ``pk``, as ``save`` would."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = DEFAULT_DB_ALIAS


def insert(obj: models.Model) -> None:
    """Insert a new row as ``obj.save(force_insert=True)`` would, minus the signals.

    On PostgreSQL through a prepared statement: the ORM compiles and the
    server plans an INSERT afresh every time, which costs more than the row.
    Use it for hot inserts of models nothing listens to.
    """
    if not is_postgres():
        obj.save(force_insert=True)
        return
    sql, values = insert_statement(obj)
    with server_cursor() as cursor:
        cursor.execute(sql, values)
        inserted(obj, cursor.fetchone()[0])


@functools.cache
def _select_statement(model: type[models.Model], field: str) -> tuple[str, list[str]]:
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    where = quote(model._meta.get_field(field).column)
    table = quote(model._meta.db_table)
    sql = f"SELECT {columns} FROM {table} WHERE {where} = %s LIMIT 1"  # noqa: S608
    return sql, [f.attname for f in fields]


def select_one(model: type[M], field: str, value: Any) -> M | None:
    """The row whose ``field`` (unique) equals ``value``, or None.

    On PostgreSQL through a prepared statement, for hot lookups.
    """
    if not is_postgres():
        return model._default_manager.filter(**{field: value}).first()
    sql, attnames = _select_statement(model, field)
    with server_cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    return None if row is None else model.from_db(DEFAULT_DB_ALIAS, attnames, row)
