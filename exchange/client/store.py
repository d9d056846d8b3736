"""A partner's local copy of a list: the SQLite file ``store.sqlite3`` of a state directory.

Tables: ``hashes`` (the adds currently published), ``redacted`` (adds received without
their value, whose ``remove`` is still to come) and ``meta`` (a copy of the verified state,
written in the same transaction as the entries, see :func:`exchange.client.state.load_state`).
The store is written only by :func:`exchange.client.sync.sync`, through
:class:`SqliteEntryStore`; :class:`LocalStore` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Final

from exchange.client import PROG
from exchange.client.errors import BadRemove, ConfigError
from exchange.client.verify import AddRow
from exchange.client.wire import unb64
from hashbank import tlog

STORE_FILE: Final = "store.sqlite3"
#: A sync of at least this many entries drops the lookup index and builds it again after
#: committing (``sync._refresh_derived``).
REBUILD_INDEX_MIN_ENTRIES: Final = 50_000
LOOKUP_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS hashes_algorithm_value ON hashes (algorithm, value)"
)
SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS hashes (
        add_index INTEGER PRIMARY KEY,
        algorithm TEXT NOT NULL,
        value TEXT NOT NULL,
        quality INTEGER,
        timestamp INTEGER NOT NULL,
        origin TEXT
    )""",
    LOOKUP_INDEX,
    "CREATE TABLE IF NOT EXISTS redacted (add_index INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def connect(path: Path, *, wal: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal.

    WAL lets ``check``/``match`` read the last committed snapshot while a sync is writing.
    ``wal=False`` keeps a rollback journal instead, for the sync that creates the store: the
    pages of a new file need no journal, so they are written once rather than to the WAL and
    then again into the file. That sync switches the store to WAL when it commits.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute(f"PRAGMA journal_mode = {'WAL' if wal else 'DELETE'}")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def read_saved_state(store_path: Path) -> str | None:
    """The state text committed with the entries (``meta``), or None if there is none."""
    if not store_path.exists():
        return None
    conn = sqlite3.connect(store_path, isolation_level=None, timeout=30)
    try:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
        return None if row is None else row[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"cannot read the store {store_path}: {exc}") from None
    finally:
        conn.close()


def remove_store_files(store_path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{store_path}{suffix}")


def validate_hash(algorithm: str, value: str) -> tuple[str, str]:
    """Normalise (lower case, stripped) and validate a hash as the log format defines it."""
    algorithm = algorithm.strip().lower()
    value = value.strip().lower()
    try:  # the leaf format holds the rules (alphabet, 64 digits for pdq, 32 for md5, ...)
        tlog.check_value(algorithm, value)
    except tlog.LeafError as exc:
        raise ConfigError(f"invalid {algorithm or 'hash'} value {value!r}: {exc}") from None
    return algorithm, value


class SqliteEntryStore:
    """The partner's store as an ``EntryStore``, inside the caller's transaction on ``conn``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add_many(self, rows: list[AddRow]) -> None:
        self.conn.executemany(
            "INSERT INTO hashes (add_index, algorithm, value, quality, timestamp, origin) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def add_redacted(self, index: int) -> None:
        self.conn.execute("INSERT INTO redacted (add_index) VALUES (?)", (index,))

    def remove(self, index: int, removes: int, reason: str) -> bool:
        if self.conn.execute("DELETE FROM hashes WHERE add_index = ?", (removes,)).rowcount:
            return True
        if self.conn.execute("DELETE FROM redacted WHERE add_index = ?", (removes,)).rowcount:
            return False
        raise BadRemove.not_a_live_add(index, removes)


class LocalStore:
    """Read access to a synced list: exact lookups (PDQ near-matches: ``matching``).

    ``LocalStore(state_dir)`` opens ``state_dir/store.sqlite3`` (which must exist).
    """

    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / STORE_FILE
        if not self.path.exists():
            raise ConfigError(f"no store in {self.dir}: run `{PROG} sync` first")
        self.conn = connect(self.path)
        tables = {name for (name,) in self.conn.execute("SELECT name FROM sqlite_master")}
        if not {"hashes", "meta"} <= tables:
            self.conn.close()
            raise ConfigError(f"{self.path} is not a {PROG} store: run `{PROG} sync` first")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def verified_tree(self) -> tuple[str | None, int, bytes]:
        """``(list, size, root)`` of the verified log the store reflects (read in the
        caller's transaction, if any)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
        if row is None:
            return None, 0, tlog.EMPTY_ROOT
        data = json.loads(row[0])
        return data["list"], data["size"], unb64(data["root"]) or b""

    @property
    def slug(self) -> str | None:
        """The list this store holds (None before the first sync)."""
        return self.verified_tree()[0]

    @property
    def size(self) -> int:
        """The size of the verified log the store reflects."""
        return self.verified_tree()[1]

    def count(self, algorithm: str | None = None) -> int:
        if algorithm is None:
            (count,) = self.conn.execute("SELECT count(*) FROM hashes").fetchone()
        else:
            (count,) = self.conn.execute(
                "SELECT count(*) FROM hashes WHERE algorithm = ?", (algorithm,)
            ).fetchone()
        return int(count)

    def contains(self, algorithm: str, value: str) -> bool:
        """Is this exact hash currently published in the list? (case-insensitive hex)"""
        return bool(self.rows(algorithm, value))

    def rows(self, algorithm: str, value: str) -> list[dict[str, Any]]:
        """The published entries of this exact hash (usually one)."""
        algorithm, value = validate_hash(algorithm, value)
        cur = self.conn.execute(
            "SELECT add_index, quality, timestamp, origin FROM hashes "
            "WHERE algorithm = ? AND value = ? ORDER BY add_index",
            (algorithm, value),
        )
        return [{"index": i, "quality": q, "timestamp": t, "origin": o} for i, q, t, o in cur]
