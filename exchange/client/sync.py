"""``sync``: bring a partner's state directory up to the bank's newest checkpoint.

The state file (:mod:`exchange.client.state`) says what was verified before; the checkpoint
and the entries are verified (:mod:`exchange.client.verify`) into the SQLite store
(:mod:`exchange.client.store`) inside one transaction, which commits with the new state only
if everything verified. A refused or failed sync changes nothing on disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.client import PROG
from exchange.client.errors import ConfigError
from exchange.client.http import (
    DEFAULT_BACKOFF,
    DEFAULT_PAGE_SIZE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_PAGE_SIZE,
    BankClient,
    normalize_base_url,
)
from exchange.client.progress import entries_bar
from exchange.client.state import (
    STATE_FILE,
    SyncState,
    atomic_write,
    check_slug,
    load_state,
    parse_vkeys,
)
from exchange.client.store import (
    LOOKUP_INDEX,
    REBUILD_INDEX_MIN_ENTRIES,
    SCHEMA,
    STORE_FILE,
    LocalStore,
    SqliteEntryStore,
    connect,
    remove_store_files,
)
from exchange.client.verify import EntryCounts, verify_entries, verify_head
from hashbank import tlog


@dataclass(frozen=True)
class SyncConfig:
    """Everything ``sync`` needs. ``base_url``, ``slug`` and ``vkeys`` default to the state's.

    ``vkeys`` are the pinned verifier keys; at the first sync they are required and stored.
    Later, a different set is refused unless ``accept_new_vkey`` (key rotation, checked out of
    band). ``prefetch`` is how many pages the download thread may hold ahead (0: no thread).
    ``pdq_cache``: after storing new entries, also bring the PDQ cache and index of
    :mod:`exchange.client.matching` up to date (numpy), so that ``match`` is instant.
    """

    state_dir: Path | str
    token: str | None = None
    base_url: str | None = None
    slug: str | None = None
    vkeys: tuple[str, ...] = ()
    accept_new_vkey: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    prefetch: int = 2
    pdq_cache: bool = False
    progress: bool = False
    allow_http: bool = False

    def check(self) -> None:
        if type(self.page_size) is not int or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"the page size must be in 1..{MAX_PAGE_SIZE}")
        if not 0 <= self.prefetch <= 4:
            raise ConfigError("prefetch must be in 0..4 pages")
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0:
            raise ConfigError("timeout must be > 0, retries and backoff >= 0")


@dataclass(frozen=True)
class SyncResult:
    """What a sync did. ``added``/``removed`` count hashes that entered/left the store;
    ``redacted`` the adds received without their value (already removed on the server)."""

    slug: str
    origin: str
    previous_size: int
    size: int
    root: bytes
    added: int
    removed: int
    redacted: int
    entries: int
    seconds: float

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 and self.entries else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.slug,
            "size": self.size,
            "added": self.added,
            "removed": self.removed,
            "seconds": round(self.seconds, 3),
            "entries_per_s": round(self.entries_per_s, 1),
        }


def _resolve_vkeys(
    state: SyncState | None, config: SyncConfig
) -> tuple[tuple[str, ...], list[tlog.NoteVerifier]]:
    given = tuple(v.strip() for v in config.vkeys)
    if state is None:
        if not given:
            raise ConfigError(
                "the first sync needs --vkey: the list's verifier key, obtained from the bank "
                f"out of band (`{PROG} keys` shows what the server publishes)"
            )
        return given, parse_vkeys(given)
    if not given or set(given) == set(state.vkeys):
        return state.vkeys, parse_vkeys(state.vkeys)
    verifiers = parse_vkeys(given)
    if not config.accept_new_vkey:
        raise ConfigError(
            "--vkey differs from the key(s) pinned at the first sync ("
            + ", ".join(state.vkeys)
            + "); if the bank rotated its key and you checked the new one out of band, add "
            "--accept-new-vkey"
        )
    return given, verifiers


def sync(config: SyncConfig, *, on_page: Callable[[int, int], None] | None = None) -> SyncResult:
    """Bring the local copy of one list up to the server's newest checkpoint, verifying all.

    Raises a ``SyncRefused`` subclass when anything served does not verify, ``ServerError``
    on network/HTTP errors and ``ConfigError`` on local problems; in every such case the state
    file and the store are left exactly as they were. ``on_page(start, count)`` is called
    before each page of entries is applied.
    """
    t0 = time.perf_counter()
    config.check()
    state_dir = Path(config.state_dir)
    state_path = state_dir / STATE_FILE
    store_path = state_dir / STORE_FILE
    state = load_state(state_dir) if state_dir.exists() else None

    vkeys, verifiers = _resolve_vkeys(state, config)
    origin = verifiers[0].name
    head, sep, tail = origin.rpartition("/lists/")
    slug = config.slug or (state.slug if state else None) or (tail if sep and head else None)
    if slug is None:
        raise ConfigError(f"cannot tell the list from the key name {origin!r}: pass --list")
    check_slug(slug)
    if state is not None and slug != state.slug:
        raise ConfigError(
            f"{state_dir} follows list {state.slug!r}, not {slug!r}: use one state directory "
            "per list"
        )
    if not (sep and head and tail == slug):
        raise ConfigError(f"the verifier key is for {origin!r}, not for a list named {slug!r}")
    if state is not None and origin != state.origin:
        raise ConfigError(
            f"the new key is for origin {origin!r}, but {state_dir} follows {state.origin!r}"
        )
    if config.base_url is not None:
        base_url = normalize_base_url(config.base_url, allow_http=config.allow_http)
    elif state is not None:
        base_url = normalize_base_url(state.base_url, allow_http=True)
    else:
        raise ConfigError("the first sync needs --base-url")
    if not config.token:
        raise ConfigError("no token: use --token-file FILE or the HASHBANK_TOKEN variable")

    old_size = state.size if state else 0
    old_root = state.root if state else tlog.EMPTY_ROOT
    with BankClient(
        base_url,
        config.token,
        timeout=config.timeout,
        retries=config.retries,
        backoff=config.backoff,
    ) as client:
        note, cp = verify_head(
            client, slug, verifiers, origin, old_size=old_size, old_root=old_root
        )
        if (
            state is not None
            and cp.size == old_size
            and (note, vkeys, base_url) == (state.checkpoint, state.vkeys, state.base_url)
        ):
            counts = EntryCounts(added=0, removed=0, redacted=0)
        else:
            new_state = SyncState(
                slug=slug,
                origin=origin,
                base_url=base_url,
                vkeys=vkeys,
                checkpoint=note,
                size=cp.size,
                root=cp.root,
                edge=state.edge.copy() if state else tlog.RightEdge(),  # advanced below
            )
            counts, index_dropped = _store_entries(
                client, config, state, new_state, cp, verifiers, store_path, on_page
            )
            atomic_write(state_path, new_state.to_text())
            _refresh_derived(
                store_path,
                lookup_index=index_dropped,
                pdq_cache=config.pdq_cache and cp.size > old_size,
            )
    return SyncResult(
        slug=slug,
        origin=origin,
        previous_size=old_size,
        size=cp.size,
        root=cp.root,
        added=counts.added,
        removed=counts.removed,
        redacted=counts.redacted,
        entries=cp.size - old_size,
        seconds=time.perf_counter() - t0,
    )


def _store_entries(
    client: BankClient,
    config: SyncConfig,
    state: SyncState | None,
    new_state: SyncState,
    cp: tlog.Checkpoint,
    verifiers: list[tlog.NoteVerifier],
    store_path: Path,
    on_page: Callable[[int, int], None] | None,
) -> tuple[EntryCounts, bool]:
    """Steps 4-5: verify the entries into the store, in one transaction with the new state.

    ``new_state`` is the state of checkpoint ``cp``, except that its ``edge`` is still the
    last verified tree's: it is advanced, in place, to ``cp``'s before the state is saved.
    On any error the transaction rolls back and a store (or directory) this sync created
    is deleted. Returns the counts, and whether the lookup index was dropped (a large sync
    inserts faster into a table without it; :func:`_refresh_derived` builds it again).
    """
    state_dir = store_path.parent
    old_size = state.size if state else 0
    created_dir = not state_dir.exists()
    state_dir.mkdir(parents=True, exist_ok=True)
    store_existed = store_path.exists()
    conn = connect(store_path, wal=store_existed)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise ConfigError(
                f"the store {store_path} is locked ({exc}): is another sync running?"
            ) from None
        for stmt in SCHEMA:
            conn.execute(stmt)
        row = conn.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
        if (row[0] if row else None) != (state.to_text() if state else None):
            raise ConfigError(f"{store_path} changed during this sync (a concurrent sync?)")
        drop_index = new_state.size - old_size >= REBUILD_INDEX_MIN_ENTRIES
        if drop_index:
            conn.execute("DROP INDEX IF EXISTS hashes_algorithm_value")
        with entries_bar(
            new_state.size - old_size, desc=new_state.slug, enabled=config.progress
        ) as advance:

            def page_started(start: int, count: int) -> None:
                if on_page is not None:
                    on_page(start, count)
                advance(count)

            counts = verify_entries(
                client,
                new_state.slug,
                verifiers,
                new_state.origin,
                note=new_state.checkpoint,
                checkpoint=cp,
                edge=new_state.edge,
                store=SqliteEntryStore(conn),
                page_size=config.page_size,
                prefetch=config.prefetch,
                on_page=page_started,
            )
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('state', ?)",
            (new_state.to_text(),),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
        if not store_existed:
            remove_store_files(store_path)
        if created_dir:
            with contextlib.suppress(OSError):
                state_dir.rmdir()
        raise
    if not store_existed:  # written through a rollback journal (``connect``); WAL from now on
        with contextlib.suppress(sqlite3.OperationalError):  # else the next connection does
            conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return counts, drop_index


def _refresh_derived(store_path: Path, *, lookup_index: bool, pdq_cache: bool) -> None:
    """Rebuild what the committed store derives from its entries: the lookup index (if the
    sync dropped it) and, if asked, the PDQ cache and index, side by side.

    SQLite builds the index without holding the GIL, and the PDQ cache is read in table
    order, not through the index, so the two take a core each. The index is not part of the
    sync's transaction: if the process dies first, lookups are slower (never wrong) until
    the next sync that stores entries creates it (``SCHEMA``).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        index_built = pool.submit(_create_lookup_index, store_path) if lookup_index else None
        if pdq_cache:
            from exchange.client import matching  # numpy: only when asked

            with LocalStore(store_path.parent) as store:
                matching.refresh_pdq_cache(store)
        if index_built is not None:
            index_built.result()


def _create_lookup_index(store_path: Path) -> None:
    conn = connect(store_path)
    try:
        conn.execute(LOOKUP_INDEX)
    finally:
        conn.close()
