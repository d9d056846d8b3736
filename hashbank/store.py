"""The bank's bulk reads and writes on the publish path, as few statements as possible.

Holding a case's hashes is the hot path of case creation, so on PostgreSQL it
runs as hand-written SQL: every batch travels as one JSON (or integer array)
parameter, statements keep a fixed text so psycopg prepares them after a few
uses, and an append writes its entries, tree nodes and the list head in one
statement. The ORM is what costs most here: building and compiling a few
hundred model objects per case took longer than the rest of the request
besides the PIN hash. A new case whose hashes are all new or already
published is one statement in all (``hashes_hold_new_owner``: the function of
migration 0008 does the steps below in the database, with the leaves computed
here). Other databases (SQLite, for a first try) take the same steps through
the ORM. Both run the same callers and the same tests.

Everything here runs inside the caller's transaction, under the list's row
lock (``hashbank.services.hash_list_lock``): no two transactions insert into
one list at a time, so "insert what is missing, then read what exists" has no
race.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, models, transaction
from django.db.models import Q

from hashbank import db
from hashbank.db import is_postgres, server_cursor
from hashbank.models import Hash, HashList, Hold, LogEntry, TreeNode

#: Above this many entries an append uses COPY (imports): several times faster than INSERT.
COPY_THRESHOLD = 200


@dataclass(slots=True, eq=False)
class HashRow:
    """A hash as the publish path reads and changes it: the columns the rule needs.

    Building model instances (initialisers, signals, descriptors) for a case's
    hashes took more Python than sending and reading the statement that writes
    them; the timestamps are not read (parsing them cost more than the rest).
    """

    pk: int
    hash_list_id: int
    algorithm: str
    value: str
    quality: int | None
    published: bool
    disabled: bool
    under_review: bool
    origin: str
    changed_at: datetime | None = None

    @property
    def id(self) -> int:
        return self.pk


_HASH_FIELDS = [
    "id", "hash_list_id", "algorithm", "value", "quality", "published", "disabled",
    "under_review", "origin",
]  # fmt: skip
_HASH_COLUMNS = ", ".join(f'"{Hash._meta.get_field(f).column}"' for f in _HASH_FIELDS)


def _row(hash_: Hash) -> HashRow:
    return HashRow(*(getattr(hash_, f) for f in _HASH_FIELDS))


# Inserts the missing hashes and makes the holder's hold on every one active,
# in one statement. The outer SELECT sees the table as it was before the
# INSERT in the same statement: existing rows come from the lookup, new ones
# from RETURNING. The LIMIT keeps the lookup a probe of the unique index per
# input row: as a plain join, a prepared (generic) plan hashes every row of the
# list instead. (Column names come from the model; nothing here is input.)
_HASH_UPSERT = f"""
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(%(items)s::jsonb) AS t(a text, v text, q int)
    ), inserted AS (
        INSERT INTO hashbank_hash (hash_list_id, algorithm, value, quality, first_seen,
            published, disabled, under_review, changed_at, origin)
        SELECT %(list)s, a, v, q, %(now)s, %(published)s, false, false, %(now)s, %(origin)s
        FROM input
        ON CONFLICT (hash_list_id, algorithm, value) DO NOTHING
        RETURNING {_HASH_COLUMNS}, true AS new
    ), found AS (
        SELECT * FROM inserted
        UNION ALL
        SELECT h.*, false FROM input CROSS JOIN LATERAL (
            SELECT {_HASH_COLUMNS} FROM hashbank_hash
            WHERE hash_list_id = %(list)s AND algorithm = input.a AND value = input.v
            LIMIT 1
        ) h
    ), held AS (
        INSERT INTO hashbank_hold (hash_id, holder, origin, active, created_at)
        SELECT id, %(holder)s, %(origin)s, true, %(now)s FROM found
        ON CONFLICT (hash_id, holder) DO UPDATE
        SET active = true, released_at = NULL, origin = EXCLUDED.origin
    )
    SELECT * FROM found ORDER BY 1
"""  # noqa: S608


def _int_array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal of integers (safe: ``str`` of an int has no quoting)."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def list_lock(list_id: int) -> HashList:
    """Lock the list row for this transaction and return its log head."""
    if not is_postgres():
        return HashList.objects.select_for_update().get(pk=list_id)
    with server_cursor() as cursor:
        cursor.execute(
            "SELECT id, slug, log_size, tree_edge, log_last_timestamp"
            " FROM hashbank_hashlist WHERE id = %s FOR UPDATE",
            [list_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise HashList.DoesNotExist(f"hash list {list_id} does not exist")
    pk, slug, size, edge, last = row
    edge = json.loads(edge) if isinstance(edge, str) else edge
    return HashList(pk=pk, slug=slug, log_size=size, tree_edge=edge, log_last_timestamp=last)


def hashes_hold(
    *,
    list_id: int,
    items: Sequence[Any],
    holder: str,
    origin: str,
    now: datetime,
    published_if_new: bool,
) -> tuple[list[HashRow], set[int]]:
    """Insert the hashes this list lacks and make ``holder``'s hold on each one active.

    Returns every row (by id) and the ids inserted now. ``items`` have
    ``algorithm``, ``value`` and ``quality`` and are unique. New rows are stored
    with ``published_if_new`` (what the caller's rule will decide for them), so
    they need no second write; an existing row is left untouched, its first
    quality kept. A hold is created, or re-activated with this ``origin``.
    """
    if not items:
        return [], set()
    if is_postgres():
        payload = json.dumps([{"a": h.algorithm, "v": h.value, "q": h.quality} for h in items])
        params = {
            "items": payload,
            "list": list_id,
            "now": now,
            "published": published_if_new,
            "origin": origin,
            "holder": holder,
        }
        with server_cursor() as cursor:
            cursor.execute(_HASH_UPSERT, params)
            fetched = cursor.fetchall()
        rows = [HashRow(*values[:-1]) for values in fetched]
        return rows, {values[0] for values in fetched if values[-1]}

    wanted = {(h.algorithm, h.value): h for h in items}
    existing = _hashes_by_value(list_id, list(wanted))
    present = {(r.algorithm, r.value) for r in existing}
    missing = [h for key, h in wanted.items() if key not in present]
    created = Hash.objects.bulk_create(
        [
            Hash(
                hash_list_id=list_id,
                algorithm=h.algorithm,
                value=h.value,
                quality=h.quality,
                origin=origin,
                first_seen=now,
                changed_at=now,
                published=published_if_new,
            )
            for h in missing
        ]
    )
    rows = sorted(existing + created, key=lambda r: r.pk)
    Hold.objects.bulk_create(
        [Hold(hash_id=r.pk, holder=holder, origin=origin, created_at=now) for r in rows],
        update_conflicts=True,
        unique_fields=["hash", "holder"],
        update_fields=["active", "released_at", "origin"],
    )
    return [_row(r) for r in rows], {r.pk for r in created}


#: Raised by ``hashbank_hold_new`` when the general path must decide instead:
#: the log time would go back (HB001), or a hash exists unpublished or disabled (HB002).
_HOLD_NEW_DEFERS = frozenset({"HB001", "HB002"})


def hashes_hold_new_owner(
    *,
    owner: models.Model,
    holder_prefix: str,
    list_id: int,
    items: Sequence[Any],
    leaves: Sequence[tuple[bytes, bytes]],
    now: datetime,
    timestamp: int,
) -> tuple[list[HashRow], int] | None:
    """PostgreSQL only: insert ``owner`` and hold ``items`` as ``<holder_prefix><owner.pk>``,
    publishing and logging the new hashes, in one statement; or None, having changed
    nothing, when the general path must decide (see migration 0008).

    ``leaves`` are each item's ``add`` leaf bytes at ``timestamp`` and their leaf hash;
    ``items`` are unique. Returns each item's row, in input order, and how many were
    added to the log now. Outside a transaction the statement is its own; inside one,
    it runs under a savepoint, so a deferral leaves the transaction usable.
    """
    insert_sql, values = db.insert_statement(owner)
    pk = connection.ops.quote_name(owner._meta.pk.column)
    sql = (
        f"WITH owner AS ({insert_sql}) SELECT owner.{pk}, f.* FROM owner CROSS JOIN LATERAL"  # noqa: S608
        " hashbank_hold_new(%s::bigint, %s::text || owner."
        f"{pk}::text, %s::timestamptz, %s::bigint, %b::text[], %b::text[], %b::int[],"
        " %b::bytea[], %b::bytea[]) AS f"
    )  # The arrays travel in binary: psycopg builds their text form in Python.
    params = [
        *values,
        list_id,
        holder_prefix,
        now,
        timestamp,
        [h.algorithm for h in items],
        [h.value for h in items],
        [h.quality for h in items],
        [leaf for leaf, _digest in leaves],
        [digest for _leaf, digest in leaves],
    ]
    savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with savepoint, server_cursor() as cursor:
            cursor.execute(sql, params)
            owner_pk, ids, added, qualities, published, disabled, review, origins = (
                cursor.fetchone()
            )
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) in _HOLD_NEW_DEFERS:
            return None
        raise
    db.inserted(owner, owner_pk)
    if qualities is None:  # all new: stored as given, published
        rows = [
            HashRow(pk, list_id, h.algorithm, h.value, h.quality, True, False, False, "")
            for pk, h in zip(ids, items, strict=True)
        ]
    else:
        rows = [
            HashRow(pk, list_id, h.algorithm, h.value, *state)
            for pk, h, *state in zip(
                ids, items, qualities, published, disabled, review, origins, strict=True
            )
        ]
    return rows, added


def _hashes_by_value(list_id: int, keys: list[tuple[str, str]]) -> list[Hash]:
    found: list[Hash] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        condition = Q()
        for algorithm, value in chunk:
            condition |= Q(algorithm=algorithm, value=value)
        found.extend(Hash.objects.filter(condition, hash_list_id=list_id))
    return found


def holds_active(hash_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """The active holds of these hashes, as (holder, origin) in the order they were made."""
    holds: dict[int, list[tuple[str, str]]] = {}
    if not hash_ids:
        return holds
    if is_postgres():
        with server_cursor() as cursor:
            cursor.execute(
                "SELECT hash_id, holder, origin FROM hashbank_hold"
                " WHERE hash_id = ANY(%s::bigint[]) AND active ORDER BY id",
                [_int_array(hash_ids)],
            )
            fetched = cursor.fetchall()
    else:
        fetched = (
            Hold.objects.filter(hash_id__in=hash_ids, active=True)
            .order_by("pk")
            .values_list("hash_id", "holder", "origin")
        )
    for hash_id, holder, origin in fetched:
        holds.setdefault(hash_id, []).append((holder, origin))
    return holds


def hashes_of_holder(holder: str) -> list[HashRow]:
    """The hashes ``holder`` holds or held, in the order of its holds."""
    if not is_postgres():
        return [
            HashRow(*values)
            for values in Hash.objects.filter(holds__holder=holder)
            .order_by("holds__pk")
            .values_list(*_HASH_FIELDS)
        ]
    columns = ", ".join(f"h.{column}" for column in _HASH_COLUMNS.split(", "))
    with server_cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM hashbank_hold o JOIN hashbank_hash h ON h.id = o.hash_id"  # noqa: S608
            " WHERE o.holder = %s ORDER BY o.id",
            [holder],
        )
        fetched = cursor.fetchall()
    return [HashRow(*values) for values in fetched]


def hashes_by_id(hash_ids: Sequence[int]) -> list[HashRow]:
    # By primary key alone: the ids come from one list, and a second condition
    # can tempt the planner into scanning the list index.
    found = Hash.objects.filter(pk__in=hash_ids).order_by("pk").values_list(*_HASH_FIELDS)
    return [HashRow(*values) for values in found]


def log_write(
    *,
    hash_list: HashList,
    rows: Sequence[tuple[int, str, int | None, bytes, bytes, int | None]],
    nodes: Sequence[tuple[int, int, bytes]],
    timestamp: int,
    tree_edge: dict[str, Any],
) -> None:
    """Insert entries (index, op, hash id, leaf, leaf hash, removes) and tree nodes, and
    store the list's new head (size, edge, newest timestamp) on the locked row."""
    size = rows[-1][0] + 1
    if not is_postgres():
        _log_write_orm(hash_list.pk, rows, nodes, timestamp)
        HashList.objects.filter(pk=hash_list.pk).update(
            log_size=size, tree_edge=tree_edge, log_last_timestamp=timestamp
        )
        return
    if len(rows) > COPY_THRESHOLD:
        _log_copy(hash_list.pk, rows, nodes, timestamp)
        with server_cursor() as cursor:
            cursor.execute(
                "UPDATE hashbank_hashlist SET log_size = %s, tree_edge = %s::jsonb,"
                " log_last_timestamp = %s WHERE id = %s",
                [size, json.dumps(tree_edge), timestamp, hash_list.pk],
            )
        return
    entries = json.dumps(
        [
            {"i": index, "o": op, "h": hash_id, "l": leaf.hex(), "d": digest.hex(), "r": removes}
            for index, op, hash_id, leaf, digest, removes in rows
        ]
    )
    head = (size, json.dumps(tree_edge), timestamp, hash_list.pk)
    tree = json.dumps([{"l": level, "i": idx, "d": digest.hex()} for level, idx, digest in nodes])
    with server_cursor() as cursor:
        cursor.execute(
            """
            WITH entries AS (
                INSERT INTO hashbank_logentry (hash_list_id, "index", op, hash_id, leaf,
                    leaf_hash, "timestamp", removes, redacted)
                SELECT %s, i, o, h, decode(l, 'hex'), decode(d, 'hex'), %s, r, false
                FROM jsonb_to_recordset(%s::jsonb) AS t(i bigint, o text, h bigint, l text,
                    d text, r bigint)
            ), nodes AS (
                INSERT INTO hashbank_treenode (hash_list_id, level, idx, hash)
                SELECT %s, l, i, decode(d, 'hex')
                FROM jsonb_to_recordset(%s::jsonb) AS t(l int, i bigint, d text)
            )
            UPDATE hashbank_hashlist SET log_size = %s, tree_edge = %s::jsonb,
                log_last_timestamp = %s
            WHERE id = %s
            """,
            [*(hash_list.pk, timestamp, entries), *(hash_list.pk, tree), *head],
        )


def _log_copy(
    list_id: int,
    rows: Sequence[tuple[int, str, int | None, bytes, bytes, int | None]],
    nodes: Sequence[tuple[int, int, bytes]],
    timestamp: int,
) -> None:
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            'COPY hashbank_logentry (hash_list_id, "index", op, hash_id, leaf, leaf_hash,'
            " timestamp, removes, redacted) FROM STDIN"
        ) as copy:
            for index, op, hash_id, leaf, digest, removes in rows:
                row = (list_id, index, op, hash_id, leaf, digest, timestamp, removes, False)
                copy.write_row(row)
        with raw.copy("COPY hashbank_treenode (hash_list_id, level, idx, hash) FROM STDIN") as copy:
            for level, idx, digest in nodes:
                copy.write_row((list_id, level, idx, digest))


def _log_write_orm(
    list_id: int,
    rows: Sequence[tuple[int, str, int | None, bytes, bytes, int | None]],
    nodes: Sequence[tuple[int, int, bytes]],
    timestamp: int,
) -> None:
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                hash_list_id=list_id,
                index=index,
                op=op,
                hash_id=hash_id,
                leaf=leaf,
                leaf_hash=digest,
                timestamp=timestamp,
                removes=removes,
            )
            for index, op, hash_id, leaf, digest, removes in rows
        ]
    )
    TreeNode.objects.bulk_create(
        [TreeNode(hash_list_id=list_id, level=lv, idx=i, hash=h) for lv, i, h in nodes]
    )
