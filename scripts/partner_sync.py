#!/usr/bin/env python3
"""hashbank-sync: keep a verified local copy of a hashbank list, for partner platforms.

A partner pulls one list (``adult``, ``minor``, ...) from a hashbank server into a local
SQLite store and checks its own media hashes against it, without trusting the server: every
sync verifies the signed checkpoint against *pinned* verifier keys, checks that the new tree
extends the one verified before (no rollback, no fork), recomputes the Merkle root from the
entries (keeping only the O(log n) right edge of the tree between syncs) and refuses the
whole sync if anything does not verify. See ``docs/LOG_FORMAT.md`` section 6; all the log
primitives come from :mod:`hashbank.tlog`. This module does not use Django. A peer bank
importing a list (``exchange.federation``) runs the same verification (:func:`verify_head`,
:func:`verify_entries`) with its own :class:`EntryStore`.

Usage::

    export HASHBANK_TOKEN=...            # or --token-file FILE
    hashbank-sync sync --state-dir /var/lib/hashbank/adult \\
        --base-url https://bank.example.org --list adult \\
        --vkey 'bank.example.org/lists/adult+1476c9f3+AQOh...'    # pinned at the first sync
    hashbank-sync sync --state-dir /var/lib/hashbank/adult          # later runs
    hashbank-sync check --state-dir D --algorithm pdq --value HEX   # exit 0 if listed, 1 if not
    hashbank-sync match --state-dir D --pdq HEX [--distance 31]     # near PDQ matches
    hashbank-sync keys --base-url URL [--list adult]                # keys the server publishes

(``hashbank-sync --state-dir D ...`` without a command means ``sync``.)

Files in the state directory:

* ``state.json``: list slug, origin, pinned verifier keys, the last verified signed
  checkpoint, its size and root, and the right edge of the tree (``RightEdge.to_json()``).
  A few kilobytes at most, whatever the size of the list. Replaced atomically.
* ``store.sqlite3``: the hashes currently published (table ``hashes``), adds received
  redacted whose ``remove`` is still to come (table ``redacted``), and a copy of the state
  written in the same transaction (table ``meta``), so that a crash between the store commit
  and the state file replacement is recovered at the next sync.
* ``pdq-<size>-<root>.npy``: cache of the PDQ values as an (n, 4) uint64 array for ``match``.

A sync is refused (``SyncRefused``, exit 3) for: a checkpoint not signed by a pinned key
(``UnknownKey``) or badly signed (``BadSignature``), for another origin (``OriginMismatch``),
smaller than the last verified one (``Rollback``), or not extending it (``Fork``: same size
and another root, a consistency proof that fails, or two signed roots for one size); entries
missing, duplicated or out of order (``MissingOrReorderedEntries``); leaf bytes that are not
canonical or disagree with the JSON fields sent with them (``TamperedEntry``); a ``remove``
that names no earlier, still published ``add`` (``BadRemove``); a recomputed root that is not
the checkpoint's (``RootMismatch``, e.g. a wrong redacted ``leaf_hash``); answers not in the
wire format (``MalformedResponse``). A refused sync changes nothing on disk.

Exit codes: 0 ok (``check``: listed; ``match``: at least one match), 1 ``check``: not listed /
``match``: no match, 2 usage or local configuration error, 3 the sync was REFUSED because
something served did not verify (nothing local was changed), 4 network or HTTP error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import os
import queue
import re
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TextIO
from urllib.parse import quote, urlsplit

import numpy as np
import requests
from tqdm import tqdm

try:
    from hashbank import tlog
except ImportError:  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from hashbank import tlog

__all__ = [
    "AddRow",
    "AuthError",
    "BadRemove",
    "BadSignature",
    "BankClient",
    "ConfigError",
    "EntryCounts",
    "EntryStore",
    "Fork",
    "LocalStore",
    "MalformedResponse",
    "MissingOrReorderedEntries",
    "NotFound",
    "OriginMismatch",
    "Rollback",
    "RootMismatch",
    "ServerError",
    "SyncConfig",
    "SyncError",
    "SyncRefused",
    "SyncResult",
    "SyncState",
    "TamperedEntry",
    "UnknownKey",
    "load_state",
    "main",
    "normalize_base_url",
    "sync",
    "validate_hash",
    "verify_checkpoint",
    "verify_entries",
    "verify_head",
]

PROG: Final = "hashbank-sync"
VERSION: Final = "0.1.0"
STATE_FILE: Final = "state.json"
STORE_FILE: Final = "store.sqlite3"
STATE_VERSION: Final = 1
API_PREFIX: Final = "/exchange/v1"
MAX_PAGE_SIZE: Final = 10_000
DEFAULT_PAGE_SIZE: Final = 10_000
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_RETRIES: Final = 3
DEFAULT_BACKOFF: Final = 0.5
DEFAULT_PDQ_DISTANCE: Final = 31
PDQ_BITS: Final = 256
#: Syncs with fewer new entries than this get no progress bar.
PROGRESS_MIN_ENTRIES: Final = 10_000
#: Largest response body read (a page of 10,000 entries is a few MB at most).
MAX_PAGE_BYTES: Final = 64 << 20
MAX_SMALL_BYTES: Final = 2 << 20
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER: Final = 30.0

EXIT_OK: Final = 0
EXIT_NO: Final = 1
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_SERVER: Final = 4

_SLUG_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PDQ_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class SyncError(Exception):
    """Base class of every error this module raises on purpose."""

    exit_code: int = EXIT_USAGE


class ConfigError(SyncError):
    """Bad arguments, missing or inconsistent local state (exit 2)."""

    exit_code = EXIT_USAGE


class ServerError(SyncError):
    """The server could not be reached or answered with an HTTP error (exit 4)."""

    exit_code = EXIT_SERVER

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class AuthError(ServerError):
    """HTTP 401/403: the token is wrong or lacks the permission."""


class NotFound(ServerError):
    """HTTP 404: the list is unknown or not granted to this token."""


class SyncRefused(SyncError):
    """Something the server served does not verify; the local state was left unchanged.

    ``index`` is the log index of the offending entry when there is one.
    """

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, *, index: int | None = None):
        super().__init__(message)
        self.index = index


class TamperedEntry(SyncRefused):
    """An entry whose leaf bytes are not canonical or disagree with its JSON fields."""


class BadRemove(TamperedEntry):
    """A ``remove`` that names no earlier, still published ``add``."""


class MissingOrReorderedEntries(SyncRefused):
    """Entries out of index order: missing, duplicated or reordered."""


class UnknownKey(SyncRefused):
    """A checkpoint with no signature by any pinned verifier key."""


class BadSignature(SyncRefused):
    """A checkpoint whose signature by a pinned key fails, or a malformed signed note."""


class OriginMismatch(SyncRefused):
    """A checkpoint for another log than the one this state directory follows."""


class Rollback(SyncRefused):
    """A checkpoint smaller than the one verified before."""


class Fork(SyncRefused):
    """A checkpoint that is not an extension of the one verified before."""


class RootMismatch(SyncRefused):
    """The root recomputed from the entries differs from the checkpoint's root."""


class MalformedResponse(SyncRefused):
    """A response that is not in the wire format (bad JSON, bad base64, bad ``next``...)."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes | None:
    """Standard padded base64 (no whitespace) → bytes; None if it is not."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str, *, allow_http: bool = False) -> str:
    """The server's base URL without a trailing slash (``https://bank.example.org``).

    Plain ``http://`` is refused unless the host is this computer or ``allow_http`` is set:
    the data is signed, but the bearer token would travel in clear.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"--base-url needs an http(s) URL such as https://bank.example.org, not {url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"--base-url must not have a query or fragment: {url!r}")
    if parts.scheme != "https" and not allow_http and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{url} is not https: the token would travel unencrypted. Use https, or "
            "--allow-http if you really mean it."
        )
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _check_slug(slug: str) -> str:
    if not isinstance(slug, str) or _SLUG_RE.fullmatch(slug) is None:
        raise ConfigError(f"invalid list name {slug!r} (letters, digits, '-' and '_')")
    return slug


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same dir, fsync, os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def validate_hash(algorithm: str, value: str) -> tuple[str, str]:
    """Normalise (lower case, stripped) and validate a hash as the log format defines it."""
    algorithm = algorithm.strip().lower()
    value = value.strip().lower()
    try:  # the leaf encoder holds the rules (alphabet, 64 digits for pdq, 32 for md5, ...)
        tlog.encode_add(algorithm=algorithm, value=value, quality=None, timestamp=0)
    except tlog.LeafError as exc:
        raise ConfigError(f"invalid {algorithm or 'hash'} value {value!r}: {exc}") from None
    return algorithm, value


# --------------------------------------------------------------------------------------------
# Verified state (state.json)
# --------------------------------------------------------------------------------------------


def _parse_vkeys(vkeys: Sequence[str]) -> list[tlog.NoteVerifier]:
    verifiers = []
    for vkey in vkeys:
        try:
            verifiers.append(tlog.parse_vkey(vkey.strip()))
        except tlog.KeyFormatError as exc:
            raise ConfigError(f"invalid verifier key {vkey!r}: {exc}") from None
    if not verifiers:
        raise ConfigError("no verifier key: pass --vkey (the list's key, from the bank)")
    names = {v.name for v in verifiers}
    if len(names) != 1:
        raise ConfigError(
            "the verifier keys must all belong to one list (one key name), got "
            + ", ".join(sorted(names))
        )
    return verifiers


@dataclass(frozen=True, slots=True)
class SyncState:
    """What a partner keeps between syncs: O(log n), never the leaves."""

    slug: str
    origin: str
    base_url: str
    vkeys: tuple[str, ...]
    checkpoint: str  # the signed note, verbatim
    size: int
    root: bytes
    edge: tlog.RightEdge

    def to_text(self) -> str:
        data = {
            "version": STATE_VERSION,
            "list": self.slug,
            "origin": self.origin,
            "base_url": self.base_url,
            "vkeys": list(self.vkeys),
            "checkpoint": self.checkpoint,
            "size": self.size,
            "root": _b64(self.root),
            "edge": self.edge.to_json(),
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_text(cls, text: str, *, where: str) -> SyncState:
        """Parse and re-verify a saved state (signature, size, root and right edge agree)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"not a version {STATE_VERSION} state")
            vkeys = tuple(data["vkeys"])
            if not all(isinstance(v, str) for v in vkeys):
                raise ValueError("vkeys must be strings")
            verifiers = _parse_vkeys(vkeys)
            note = data["checkpoint"]
            cp = tlog.parse_checkpoint(tlog.open_note(note, verifiers).text)
            root = _unb64(data["root"])
            edge = tlog.RightEdge.from_json(data["edge"])
            state = cls(
                slug=_check_slug(data["list"]),
                origin=data["origin"],
                base_url=data["base_url"],
                vkeys=vkeys,
                checkpoint=note,
                size=data["size"],
                root=root if root is not None else b"",
                edge=edge,
            )
        except (ValueError, KeyError, TypeError, SyncError) as exc:
            raise ConfigError(
                f"{where} is corrupt ({exc}); delete the state directory to sync again from scratch"
            ) from None
        ok = (
            cp.origin == state.origin == verifiers[0].name
            and cp.size == state.size == edge.size
            and cp.root == state.root == edge.root()
            and isinstance(state.base_url, str)
        )
        if not ok:
            raise ConfigError(
                f"{where} is inconsistent (checkpoint, size, root and right edge "
                "disagree); delete the state directory to sync again"
            )
        return state


def _read_store_state(store_path: Path) -> str | None:
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


def load_state(state_dir: Path) -> SyncState | None:
    """The last verified state of ``state_dir``, or None before the first sync.

    The store is committed before the state file is replaced; if a sync was interrupted in
    between, the store's copy of the state is newer and the state file is rolled forward.
    """
    state_path = state_dir / STATE_FILE
    store_path = state_dir / STORE_FILE
    file_text = state_path.read_text(encoding="utf-8") if state_path.exists() else None
    store_text = _read_store_state(store_path)
    file_state = (
        None if file_text is None else SyncState.from_text(file_text, where=str(state_path))
    )
    if store_text is None:
        if file_state is not None:
            raise ConfigError(
                f"{state_path} says the list was verified up to size {file_state.size}, but "
                f"the store {store_path} is missing or empty; delete the state directory to "
                "sync again from scratch"
            )
        return None
    if store_text == file_text:
        return file_state
    store_state = SyncState.from_text(store_text, where=f"the state copy in {store_path}")
    if file_state is not None:
        if (store_state.slug, store_state.origin) != (file_state.slug, file_state.origin):
            raise ConfigError(f"{state_path} and {store_path} are for different lists")
        if store_state.size < file_state.size or (
            store_state.size == file_state.size and store_state.root != file_state.root
        ):
            raise ConfigError(
                f"the store {store_path} (size {store_state.size}) does not match {state_path} "
                f"(size {file_state.size}): was one of them restored from a backup? Delete the "
                "state directory to sync again"
            )
    print(
        f"{PROG}: note: the last sync was interrupted after the store was committed; "
        f"{state_path} is brought up to date (size {store_state.size})",
        file=sys.stderr,
    )
    _atomic_write(state_path, store_text)
    return store_state


# --------------------------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------------------------


class BankClient:
    """The partner pull API over HTTP (GETs only, all idempotent, retried on failures)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self._headers = {"User-Agent": f"{PROG}/{VERSION}"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> BankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _list_url(self, slug: str, tail: str) -> str:
        return f"{self.base_url}{API_PREFIX}/lists/{quote(slug, safe='')}/{tail}"

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
        time.sleep(delay)

    def get(
        self,
        url: str,
        params: dict[str, int] | None = None,
        *,
        max_bytes: int = MAX_SMALL_BYTES,
        not_found: str = "not found",
        auth: bool = True,
    ) -> bytes:
        """GET ``url`` and return the body of a 200 answer; retry transient failures."""
        headers = self._headers if auth else {"User-Agent": self._headers["User-Agent"]}
        shown = url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        last_error = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self.session.get(
                    url, params=params, headers=headers, timeout=self.timeout, stream=True
                )
                with resp:
                    status = resp.status_code
                    if status in RETRY_STATUSES and attempt < self.retries:
                        last_error = f"HTTP {status}"
                        self._sleep(attempt, resp.headers.get("Retry-After"))
                        continue
                    if status == 200:
                        return self._read(resp, max_bytes, shown)
                    body = self._read(resp, 4096, shown, truncate=True)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:
                    self._sleep(attempt)
                    continue
                raise ServerError(
                    f"GET {shown} failed after {attempt + 1} attempt(s): {last_error}", url=shown
                ) from None
            except requests.RequestException as exc:
                raise ServerError(f"GET {shown} failed: {exc}", url=shown) from None
            excerpt = body.decode("utf-8", "replace").strip()[:300]
            if status == 401:
                raise AuthError(
                    f"the server refused the token (HTTP 401 from {shown}): check --token-file "
                    "or HASHBANK_TOKEN",
                    status=status,
                    url=shown,
                )
            if status == 403:
                raise AuthError(
                    f"the token is not allowed to read this (HTTP 403 from {shown}): {excerpt}",
                    status=status,
                    url=shown,
                )
            if status == 404:
                raise NotFound(f"{not_found} (HTTP 404 from {shown})", status=status, url=shown)
            raise ServerError(
                f"GET {shown}: HTTP {status}" + (f": {excerpt}" if excerpt else ""),
                status=status,
                url=shown,
            )
        raise ServerError(f"GET {shown} failed: {last_error}", url=shown)  # pragma: no cover

    @staticmethod
    def _read(resp: requests.Response, limit: int, url: str, *, truncate: bool = False) -> bytes:
        buf = bytearray()
        for chunk in resp.iter_content(1 << 20):
            buf += chunk
            if len(buf) > limit:
                if truncate:
                    return bytes(buf[:limit])
                raise MalformedResponse(f"the answer to GET {url} is larger than {limit} bytes")
        return bytes(buf)

    def _json(self, body: bytes, url: str) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise MalformedResponse(f"GET {url}: the answer is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise MalformedResponse(f"GET {url}: the answer is not a JSON object")
        return data

    def checkpoint(self, slug: str) -> bytes:
        """The newest signed note of the list (raw bytes; verify with ``tlog.open_note``)."""
        return self.get(
            self._list_url(slug, "checkpoint"),
            not_found=f"list {slug!r} is unknown or not granted to this token",
        )

    def entries(self, slug: str, start: int, limit: int) -> dict[str, Any]:
        url = self._list_url(slug, "entries")
        body = self.get(
            url,
            {"start": start, "limit": limit},
            max_bytes=MAX_PAGE_BYTES,
            not_found=f"list {slug!r} is unknown or not granted to this token",
        )
        return self._json(body, f"{url}?start={start}&limit={limit}")

    def consistency(self, slug: str, old: int, new: int) -> list[bytes]:
        url = self._list_url(slug, "proof/consistency")
        shown = f"{url}?old={old}&new={new}"
        data = self._json(
            self.get(url, {"old": old, "new": new}, not_found=f"no consistency proof for {slug!r}"),
            shown,
        )
        return self._proof(data, shown, {"old": old, "new": new})

    def inclusion(self, slug: str, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """``(leaf_hash, proof)`` for entry ``index`` in the tree of ``size`` (unverified)."""
        url = self._list_url(slug, "proof/inclusion")
        shown = f"{url}?index={index}&size={size}"
        data = self._json(
            self.get(url, {"index": index, "size": size}, not_found=f"no proof for {slug!r}"),
            shown,
        )
        proof = self._proof(data, shown, {"index": index, "size": size})
        lh = _unb64(data.get("leaf_hash"))
        if lh is None or len(lh) != tlog.HASH_SIZE:
            raise MalformedResponse(f"GET {shown}: leaf_hash is not base64 of 32 bytes")
        return lh, proof

    @staticmethod
    def _proof(data: dict[str, Any], url: str, echo: dict[str, int]) -> list[bytes]:
        for key, want in echo.items():
            if data.get(key) != want:
                raise MalformedResponse(f"GET {url}: {key} is {_short(data.get(key))}, not {want}")
        raw = data.get("proof")
        if not isinstance(raw, list):
            raise MalformedResponse(f"GET {url}: proof is not a list")
        proof = [_unb64(p) for p in raw]
        if any(p is None or len(p) != tlog.HASH_SIZE for p in proof):
            raise MalformedResponse(f"GET {url}: proof hashes must be base64 of 32 bytes")
        return proof  # type: ignore[return-value]

    def keys(self) -> list[dict[str, Any]]:
        """The published verifier keys (public endpoint; not a trust anchor by itself)."""
        url = f"{self.base_url}{API_PREFIX}/keys"
        data = self._json(
            self.get(url, not_found="no keys endpoint: check --base-url", auth=False), url
        )
        keys = data.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise MalformedResponse(f"GET {url}: keys is not a list of objects")
        return keys


# --------------------------------------------------------------------------------------------
# Checkpoint verification
# --------------------------------------------------------------------------------------------


def verify_checkpoint(
    note: bytes | str, verifiers: Sequence[tlog.NoteVerifier], origin: str, *, where: str
) -> tuple[str, tlog.Checkpoint]:
    """Open a signed checkpoint against the pinned keys; return ``(note text, checkpoint)``."""
    try:
        opened = tlog.open_note(note, verifiers)
    except tlog.UnknownKeyError:
        raise UnknownKey(
            f"the {where} is not signed by any pinned key ({', '.join(v.vkey for v in verifiers)})"
            f"; if the bank rotated its key, check the new one out of band (`{PROG} keys`) and "
            "re-run with --vkey NEW --accept-new-vkey"
        ) from None
    except tlog.NoteError as exc:
        raise BadSignature(f"the {where} does not verify: {exc}") from None
    try:
        cp = tlog.parse_checkpoint(opened.text)
    except tlog.CheckpointError as exc:
        raise MalformedResponse(f"the {where} is not a valid checkpoint: {exc}") from None
    if cp.origin != origin:
        raise OriginMismatch(
            f"the {where} is for origin {cp.origin!r}, but this list's origin is {origin!r}"
        )
    text = note.decode("utf-8") if isinstance(note, bytes) else note
    return text, cp


# --------------------------------------------------------------------------------------------
# Local store
# --------------------------------------------------------------------------------------------

REBUILD_INDEX_MIN_ENTRIES: Final = 50_000
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS hashes (
        add_index INTEGER PRIMARY KEY,
        algorithm TEXT NOT NULL,
        value TEXT NOT NULL,
        quality INTEGER,
        timestamp INTEGER NOT NULL,
        origin TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS hashes_algorithm_value ON hashes (algorithm, value)",
    "CREATE TABLE IF NOT EXISTS redacted (add_index INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def _connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal.

    WAL lets ``check``/``match`` read the last committed snapshot while a sync is writing.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


if hasattr(np, "bitwise_count"):  # numpy >= 2.0

    def _row_popcount(x: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x).sum(axis=1, dtype=np.int32)

else:  # pragma: no cover - numpy 1.x
    _POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _row_popcount(x: np.ndarray) -> np.ndarray:
        b = np.ascontiguousarray(x).view(np.uint8).reshape(len(x), -1)
        return _POP8[b].sum(axis=1, dtype=np.int32)


def _pdq_words(value: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(value), dtype=">u8").astype(np.uint64)


class LocalStore:
    """Read access to a synced list: exact lookups and PDQ near-matches.

    ``LocalStore(state_dir)`` opens ``state_dir/store.sqlite3`` (which must exist).
    """

    MATCH_CHUNK: Final = 1 << 18
    CACHE_CHUNK: Final = 1 << 16  # values per chunk: ~4 MiB of hex text

    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / STORE_FILE
        if not self.path.exists():
            raise ConfigError(f"no store in {self.dir}: run `{PROG} sync` first")
        self._conn = _connect(self.path)
        tables = {name for (name,) in self._conn.execute("SELECT name FROM sqlite_master")}
        if not {"hashes", "meta"} <= tables:
            self._conn.close()
            raise ConfigError(f"{self.path} is not a {PROG} store: run `{PROG} sync` first")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _state(self) -> tuple[str | None, int, bytes]:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
        if row is None:
            return None, 0, tlog.EMPTY_ROOT
        data = json.loads(row[0])
        return data["list"], data["size"], _unb64(data["root"]) or b""

    @property
    def slug(self) -> str | None:
        """The list this store holds (None before the first sync)."""
        return self._state()[0]

    @property
    def size(self) -> int:
        """The size of the verified log the store reflects."""
        return self._state()[1]

    def count(self, algorithm: str | None = None) -> int:
        if algorithm is None:
            return self._conn.execute("SELECT count(*) FROM hashes").fetchone()[0]
        return self._conn.execute(
            "SELECT count(*) FROM hashes WHERE algorithm = ?", (algorithm,)
        ).fetchone()[0]

    def contains(self, algorithm: str, value: str) -> bool:
        """Is this exact hash currently published in the list? (case-insensitive hex)"""
        algorithm, value = validate_hash(algorithm, value)
        row = self._conn.execute(
            "SELECT 1 FROM hashes WHERE algorithm = ? AND value = ? LIMIT 1", (algorithm, value)
        ).fetchone()
        return row is not None

    def rows(self, algorithm: str, value: str) -> list[dict[str, Any]]:
        """The published entries of this exact hash (usually one)."""
        algorithm, value = validate_hash(algorithm, value)
        cur = self._conn.execute(
            "SELECT add_index, quality, timestamp, origin FROM hashes "
            "WHERE algorithm = ? AND value = ? ORDER BY add_index",
            (algorithm, value),
        )
        return [{"index": i, "quality": q, "timestamp": t, "origin": o} for i, q, t, o in cur]

    # -- PDQ matching ------------------------------------------------------------------------

    def _cache_path(self, size: int, root: bytes) -> Path:
        return self.dir / f"pdq-{size}-{root.hex()[:16]}.npy"

    def pdq_array(self) -> np.ndarray:
        """The distinct PDQ values as an (n, 4) uint64 array (word k = hex digits 16k..16k+15).

        Cached in ``pdq-<size>-<root>.npy`` next to the store, rebuilt when the store moves to
        another log size; the meta row and the values are read in one snapshot.
        """
        self._conn.execute("BEGIN")
        try:
            _, size, root = self._state()
            path = self._cache_path(size, root)
            if path.exists():
                try:
                    arr = np.load(path, mmap_mode="r", allow_pickle=False)
                    if arr.dtype == np.uint64 and arr.ndim == 2 and arr.shape[1] == 4:
                        return arr
                except (OSError, ValueError):
                    pass
            # Written to the file chunk by chunk, so building the cache takes memory
            # for one chunk, whatever the size of the list.
            (count,) = self._conn.execute(
                "SELECT count(DISTINCT value) FROM hashes WHERE algorithm = 'pdq'"
            ).fetchone()
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".pdq-", suffix=".npy.tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.lib.format.write_array_header_1_0(
                        f, {"descr": "<u8", "fortran_order": False, "shape": (count, 4)}
                    )
                    last, written = "", 0
                    while True:  # SQLite concatenates (fast), in chunks
                        text, last, n = self._conn.execute(
                            "SELECT group_concat(value, ''), max(value), count(*) FROM (SELECT "
                            "DISTINCT value FROM hashes WHERE algorithm = 'pdq' AND value > ? "
                            "ORDER BY value LIMIT ?)",
                            (last, self.CACHE_CHUNK),
                        ).fetchone()
                        if n:
                            chunk = np.frombuffer(bytes.fromhex(text), dtype=">u8")
                            f.write(chunk.astype("<u8").tobytes())
                            written += n
                        if n < self.CACHE_CHUNK:
                            break
                    if written != count:  # pragma: no cover - one snapshot, so never
                        raise ConfigError("the store changed while the PDQ cache was built")
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        finally:
            self._conn.execute("COMMIT")
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        for old in self.dir.glob("pdq-*.npy"):
            if old != path:
                with contextlib.suppress(OSError):
                    old.unlink()
        return arr

    def refresh_pdq_cache(self) -> None:
        """Build the PDQ cache for the current log size now (``match`` is then instant)."""
        self.pdq_array()

    def pdq_matches(
        self, value: str, max_distance: int = DEFAULT_PDQ_DISTANCE
    ) -> list[tuple[str, int]]:
        """Every distinct published PDQ value within Hamming distance ``max_distance``.

        Returns ``(value, distance)`` pairs sorted by distance, then value.
        """
        value = value.strip().lower()
        if _PDQ_HEX_RE.fullmatch(value) is None:
            raise ConfigError(f"a PDQ hash is 64 hex digits, not {value!r}")
        if type(max_distance) is not int or not 0 <= max_distance <= PDQ_BITS:
            raise ConfigError(f"the distance must be an integer in 0..{PDQ_BITS}")
        arr = self.pdq_array()
        q = _pdq_words(value)
        hits: list[np.ndarray] = []
        dists: list[np.ndarray] = []
        for lo in range(0, len(arr), self.MATCH_CHUNK):
            d = _row_popcount(np.bitwise_xor(arr[lo : lo + self.MATCH_CHUNK], q))
            (idx,) = np.nonzero(d <= max_distance)
            hits.append(idx + lo)
            dists.append(d[idx])
        if not hits:
            return []
        idx = np.concatenate(hits)
        dist = np.concatenate(dists)
        out = [
            ("".join(f"{int(w):016x}" for w in arr[i]), int(d))
            for i, d in zip(idx.tolist(), dist.tolist(), strict=True)
        ]
        out.sort(key=lambda t: (t[1], t[0]))
        return out


# --------------------------------------------------------------------------------------------
# Sync
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncConfig:
    """Everything ``sync`` needs. ``base_url``, ``slug`` and ``vkeys`` default to the state's.

    ``vkeys`` are the pinned verifier keys; at the first sync they are required and stored.
    Later, a different set is refused unless ``accept_new_vkey`` (key rotation, checked out of
    band). ``prefetch`` is how many pages the download thread may hold ahead (0: no thread).
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


_ADD_FIELDS: Final = ("algorithm", "value", "quality", "timestamp", "origin")
_REMOVE_FIELDS: Final = ("removes", "reason", "timestamp")
_MISSING: Final = object()


#: A verified ``add``: (index, algorithm, value, quality, timestamp, origin).
AddRow = tuple[int, str, str, int | None, int, str | None]


class EntryStore(Protocol):
    """Where a sync puts the entries it verified, in index order, inside one transaction.

    The verification (:func:`verify_head`, :func:`verify_entries`) does not depend on the
    store: this client keeps a SQLite file, a peer bank (``exchange.federation``) imports into
    its database. Each entry is verified before it is passed on, but the root is checked only
    after the last one: the caller opens the transaction before the first call and commits
    it, with the new verified state, only if :func:`verify_entries` returned; on any exception
    it rolls back.
    """

    def add_many(self, rows: list[AddRow]) -> None:
        """Store verified adds (in index order; the store may keep the list)."""

    def add_redacted(self, index: int) -> None:
        """An add served redacted (its value was removed): its ``remove`` is still to come."""

    def remove(self, index: int, removes: int, reason: str) -> bool:
        """Apply entry ``index``, which removes the earlier add ``removes``.

        Returns True if a hash left the store, False if the add was a redacted one. Raises
        ``BadRemove`` if ``removes`` is not an add the store holds (never added, or removed
        already); a store that applies in batches may raise it later, before the caller
        commits. Adds passed to ``add_many`` before this call are visible to it.
        """


class _SqliteEntryStore:
    """The partner's SQLite store (tables ``hashes`` and ``redacted``) as an EntryStore."""

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
        raise BadRemove(
            f"entry {index} removes entry {removes}, which is not a published add (it is a "
            "remove, or an add that was already removed)",
            index=index,
        )


class _Applier:
    """Verifies entries in index order and hands them to the store (inside its transaction)."""

    def __init__(self, store: EntryStore, edge: tlog.RightEdge, target: int) -> None:
        self.store = store
        self.edge = edge
        self.target = target
        self.added = 0
        self.removed = 0
        self.redacted = 0
        self._adds: list[AddRow] = []

    @property
    def next_index(self) -> int:
        return self.edge.size

    def _flush(self) -> None:
        if self._adds:
            self.store.add_many(self._adds)
            self.added += len(self._adds)
            self._adds = []  # a new list: the store may keep the one it was given

    def apply(self, start: int, entries: list[Any]) -> None:
        """Verify and apply one page; entries at or past the target size are ignored."""
        edge = self.edge
        append = edge.push
        target = self.target
        sha256 = hashlib.sha256
        decode = tlog.decode_leaf
        for pos, e in enumerate(entries):
            i = edge.size
            if i >= target:
                break
            if type(e) is not dict:
                raise MalformedResponse(
                    f"entry at position {pos} of the page from {start} is not a JSON object",
                    index=i,
                )
            idx = e.get("index")
            if type(idx) is not int or idx != i:
                raise MissingOrReorderedEntries(_order_message(i, idx, start, pos), index=i)
            redacted = e.get("redacted", False)
            if redacted is False:
                raw = _unb64(e.get("leaf"))
                if raw is None:
                    raise MalformedResponse(f'entry {i}: "leaf" is missing or not base64', index=i)
                try:
                    leaf = decode(raw)
                except tlog.LeafError as exc:
                    raise TamperedEntry(
                        f"entry {i}: the leaf bytes are not a canonical leaf ({exc}): "
                        f"{_short(raw)}",
                        index=i,
                    ) from None
                _check_fields(i, e, leaf)
                append(sha256(b"\x00" + raw).digest())
                if leaf.op == "add":
                    self._adds.append(
                        (i, leaf.algorithm, leaf.value, leaf.quality, leaf.timestamp, leaf.origin)
                    )
                else:
                    self._remove(i, leaf.removes, leaf.reason)  # type: ignore[arg-type]
            elif redacted is True:
                if e.get("op") != "add":
                    raise TamperedEntry(
                        f"entry {i}: only add entries are redacted, this one has op "
                        f"{_short(e.get('op'))}",
                        index=i,
                    )
                if "leaf" in e:
                    raise TamperedEntry(
                        f"entry {i}: marked redacted but carries leaf bytes", index=i
                    )
                lh = _unb64(e.get("leaf_hash"))
                if lh is None or len(lh) != tlog.HASH_SIZE:
                    raise MalformedResponse(
                        f'entry {i}: a redacted entry needs "leaf_hash", base64 of 32 bytes',
                        index=i,
                    )
                append(lh)
                self.store.add_redacted(i)
                self.redacted += 1
            else:
                raise MalformedResponse(
                    f'entry {i}: "redacted" must be true or false, not {_short(redacted)}',
                    index=i,
                )
        self._flush()

    def _remove(self, i: int, j: int, reason: str) -> None:
        if j >= i:
            raise BadRemove(f"entry {i} removes entry {j}, which is not an earlier entry", index=i)
        self._flush()
        if self.store.remove(i, j, reason):
            self.removed += 1


def _order_message(expected: int, got: object, start: int, pos: int) -> str:
    where = f"position {pos} of the page from index {start}"
    if type(got) is not int:
        return f"{where} has index {_short(got)}, expected entry {expected}"
    if got > expected:
        missing = (
            f"entry {expected} is"
            if got == expected + 1
            else (f"entries {expected}..{got - 1} are")
        )
        return (
            f"{where} is entry {got}, expected entry {expected}: {missing} missing (or the "
            "page is reordered)"
        )
    return (
        f"{where} is entry {got} again, expected entry {expected}: a duplicated or reordered entry"
    )


def _check_fields(i: int, e: dict[str, Any], leaf: tlog.Leaf) -> None:
    """The JSON fields the server sends alongside the leaf must equal the decoded leaf."""
    # Fast path: one tuple comparison per entry. Equal tuples of str/None need no type
    # check; ints must be exactly int (True == 1, so bool would slip through otherwise).
    get = e.get
    if leaf.op == "add":
        got = (get("op"), get("algorithm"), get("value"), get("quality", _MISSING),
               get("timestamp"), get("origin", _MISSING))  # fmt: skip
        if (
            got == ("add", leaf.algorithm, leaf.value, leaf.quality, leaf.timestamp, leaf.origin)
            and type(got[3]) is type(leaf.quality)
            and type(got[4]) is int
        ):
            return
    elif (
        (get("op"), get("removes"), get("reason"), get("timestamp"))
        == (
            "remove",
            leaf.removes,
            leaf.reason,
            leaf.timestamp,
        )
        and type(get("removes")) is int
        and type(get("timestamp")) is int
    ):
        return
    _check_fields_slowly(i, e, leaf)


def _check_fields_slowly(i: int, e: dict[str, Any], leaf: tlog.Leaf) -> None:
    """Field by field, to say exactly what disagrees."""
    if e.get("op") != leaf.op:
        raise TamperedEntry(
            f"entry {i}: JSON op is {_short(e.get('op'))} but the leaf bytes are "
            f"{leaf.op!r} ({_short(leaf.encode())})",
            index=i,
        )
    for name in _ADD_FIELDS if leaf.op == "add" else _REMOVE_FIELDS:
        got = e.get(name, _MISSING)
        want = getattr(leaf, name)
        if got is _MISSING:
            raise TamperedEntry(f"entry {i}: JSON field {name!r} is missing", index=i)
        if got != want or type(got) is not type(want):
            raise TamperedEntry(
                f"entry {i}: JSON field {name!r} is {_short(got)} but the leaf bytes say "
                f"{_short(want)}",
                index=i,
            )


_DONE: Final = object()


def _iter_pages(
    fetch: Callable[[int, int], dict[str, Any]],
    start: int,
    end: int,
    page_size: int,
    prefetch: int,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(start, page)`` for [start, end).

    With ``prefetch > 0`` a background thread downloads (and JSON-decodes) the next pages
    while the caller processes the current one, holding at most ``prefetch`` pages.
    """

    def next_start(pos: int, page: dict[str, Any]) -> int | None:
        entries = page.get("entries")
        if not isinstance(entries, list) or not entries:
            return None  # the consumer reports it
        return pos + len(entries)

    if prefetch <= 0:
        pos: int | None = start
        while pos is not None and pos < end:
            page = fetch(pos, min(page_size, end - pos))
            yield pos, page
            pos = next_start(pos, page)
        return

    q: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        pos: int | None = start
        try:
            while pos is not None and pos < end and not stop.is_set():
                page = fetch(pos, min(page_size, end - pos))
                if not put((pos, page)):
                    return
                pos = next_start(pos, page)
        except BaseException as exc:  # handed to the consumer
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name=f"{PROG}-download", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()
        thread.join(timeout=5)


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
        return given, _parse_vkeys(given)
    if not given or set(given) == set(state.vkeys):
        return state.vkeys, _parse_vkeys(state.vkeys)
    verifiers = _parse_vkeys(given)
    if not config.accept_new_vkey:
        raise ConfigError(
            "--vkey differs from the key(s) pinned at the first sync ("
            + ", ".join(state.vkeys)
            + "); if the bank rotated its key and you checked the new one out of band, add "
            "--accept-new-vkey"
        )
    return given, verifiers


def _remove_store_files(store_path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{store_path}{suffix}")


def verify_head(
    client: BankClient,
    slug: str,
    verifiers: Sequence[tlog.NoteVerifier],
    origin: str,
    *,
    old_size: int,
    old_root: bytes,
) -> tuple[str, tlog.Checkpoint]:
    """Fetch the newest checkpoint and verify it against the last verified tree.

    Steps 1-3 of ``docs/LOG_FORMAT.md`` section 6: signed by a pinned key, for ``origin``, not
    smaller than ``old_size`` (no rollback), the same root at the same size and a consistency
    proof to a larger one (no fork). Returns ``(signed note, checkpoint)``; raises a
    ``SyncRefused`` subclass or ``ServerError``.
    """
    # 2. The newest checkpoint, against the pinned keys; no rollback, no fork.
    note, cp = verify_checkpoint(client.checkpoint(slug), verifiers, origin, where="checkpoint")
    if cp.size < old_size:
        raise Rollback(
            f"the server's checkpoint has size {cp.size}, smaller than the size {old_size} "
            "verified before (a rollback)"
        )
    if cp.size == old_size and cp.root != old_root:
        raise Fork(
            f"the server's checkpoint at size {cp.size} has root {_b64(cp.root)}, but the "
            f"root verified before at that size is {_b64(old_root)} (a fork)"
        )
    # 3. Explicit fork detection before downloading anything.
    if 0 < old_size < cp.size:
        proof = client.consistency(slug, old_size, cp.size)
        try:
            tlog.verify_consistency(
                old_size=old_size,
                new_size=cp.size,
                old_root=old_root,
                new_root=cp.root,
                proof=proof,
            )
        except tlog.ProofError as exc:
            raise Fork(
                f"the checkpoint at size {cp.size} is not an extension of the tree "
                f"verified before at size {old_size} ({exc}): the server rewrote history "
                "(a fork)"
            ) from None
    return note, cp


@dataclass(frozen=True, slots=True)
class EntryCounts:
    """What :func:`verify_entries` passed to the store: adds, effective removes, redacted."""

    added: int
    removed: int
    redacted: int


def verify_entries(
    client: BankClient,
    slug: str,
    verifiers: Sequence[tlog.NoteVerifier],
    origin: str,
    *,
    note: str,
    checkpoint: tlog.Checkpoint,
    edge: tlog.RightEdge,
    store: EntryStore,
    page_size: int = DEFAULT_PAGE_SIZE,
    prefetch: int = 2,
    progress: bool = False,
    on_page: Callable[[int, int], None] | None = None,
) -> EntryCounts:
    """Fetch, verify and store the entries from ``edge.size`` up to the checkpoint's size.

    Steps 4-5 of ``docs/LOG_FORMAT.md`` section 6, after :func:`verify_head` returned
    ``(note, checkpoint)``: every page's checkpoint is checked, every entry's leaf is decoded
    strictly and appended to ``edge`` (the right edge of the last verified tree, advanced in
    place), and the recomputed root must be the checkpoint's. Entries go to ``store`` as they
    are verified, so the caller commits the store's transaction only if this returns.
    """
    cp = checkpoint
    old_size = edge.size
    applier = _Applier(store, edge, cp.size)
    bar = tqdm(
        total=cp.size - old_size,
        unit=" entries",
        unit_scale=True,
        file=sys.stderr,
        disable=not progress or cp.size - old_size < PROGRESS_MIN_ENTRIES,
        desc=slug,
        leave=False,
    )
    verified = {note: cp}
    pages = _iter_pages(
        lambda s, n: client.entries(slug, s, n), old_size, cp.size, page_size, prefetch
    )
    try:
        for start, page in pages:
            entries = _check_page(page, start, cp, verifiers, origin, verified)
            if start != edge.size:  # pragma: no cover - guarded by _iter_pages
                raise MissingOrReorderedEntries(f"page from {start}, expected {edge.size}")
            if on_page is not None:
                on_page(start, len(entries))
            before = edge.size
            applier.apply(start, entries)
            bar.update(edge.size - before)
    finally:
        pages.close()  # stops the download thread at once, even on errors
        bar.close()
    if edge.size != cp.size:  # pragma: no cover - _iter_pages stops only at the end
        raise MissingOrReorderedEntries(
            f"the entries stop at index {edge.size}, the checkpoint has size {cp.size}"
        )
    if edge.root() != cp.root:
        raise RootMismatch(
            f"the entries {old_size}..{cp.size - 1} give the root "
            f"{_b64(edge.root())}, but the checkpoint says {_b64(cp.root)}: an entry "
            "or a redacted leaf_hash in that range was altered"
        )
    return EntryCounts(added=applier.added, removed=applier.removed, redacted=applier.redacted)


def sync(
    config: SyncConfig,
    *,
    session: requests.Session | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> SyncResult:
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
    _check_slug(slug)
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
        session=session,
    ) as client:
        note, cp = verify_head(
            client, slug, verifiers, origin, old_size=old_size, old_root=old_root
        )
        new_state = SyncState(
            slug=slug,
            origin=origin,
            base_url=base_url,
            vkeys=vkeys,
            checkpoint=note,
            size=cp.size,
            root=cp.root,
            edge=tlog.RightEdge(),  # replaced below
        )
        if (
            state is not None
            and cp.size == old_size
            and ((note, vkeys, base_url) == (state.checkpoint, state.vkeys, state.base_url))
        ):
            return SyncResult(
                slug=slug,
                origin=origin,
                previous_size=old_size,
                size=cp.size,
                root=cp.root,
                added=0,
                removed=0,
                redacted=0,
                entries=0,
                seconds=time.perf_counter() - t0,
            )

        # 4-5. Entries, in one transaction.
        created_dir = not state_dir.exists()
        state_dir.mkdir(parents=True, exist_ok=True)
        store_existed = store_path.exists()
        conn = _connect(store_path)
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise ConfigError(
                    f"the store {store_path} is locked ({exc}): is another sync running?"
                ) from None
            for stmt in _SCHEMA:
                conn.execute(stmt)
            row = conn.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
            if (row[0] if row else None) != (state.to_text() if state else None):
                raise ConfigError(f"{store_path} changed during this sync (a concurrent sync?)")
            edge = state.edge.copy() if state else tlog.RightEdge()
            # A large sync inserts faster into a table without its lookup index and
            # builds the index once at the end (still inside this transaction).
            rebuild_index = cp.size - old_size >= REBUILD_INDEX_MIN_ENTRIES
            if rebuild_index:
                conn.execute("DROP INDEX IF EXISTS hashes_algorithm_value")
            counts = verify_entries(
                client,
                slug,
                verifiers,
                origin,
                note=note,
                checkpoint=cp,
                edge=edge,
                store=_SqliteEntryStore(conn),
                page_size=config.page_size,
                prefetch=config.prefetch,
                progress=config.progress,
                on_page=on_page,
            )
            if rebuild_index:
                conn.execute(_SCHEMA[1])
            new_state = dataclasses.replace(new_state, edge=edge)
            text = new_state.to_text()
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('state', ?)", (text,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            if not store_existed:
                _remove_store_files(store_path)
            if created_dir:
                with contextlib.suppress(OSError):
                    state_dir.rmdir()
            raise
        conn.close()
        _atomic_write(state_path, text)
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


def _check_page(
    page: dict[str, Any],
    start: int,
    target: tlog.Checkpoint,
    verifiers: Sequence[tlog.NoteVerifier],
    origin: str,
    verified: dict[str, tlog.Checkpoint],
) -> list[Any]:
    """Check a page's envelope: its signed checkpoint covers the entries, ``next`` is right.

    ``verified`` caches the notes already verified (pages usually repeat the same one).
    """
    entries = page.get("entries")
    note = page.get("checkpoint")
    nxt = page.get("next")
    where = f"page of entries from {start}"
    if not isinstance(entries, list) or not isinstance(note, str):
        raise MalformedResponse(f'the {where} needs "entries" (a list) and "checkpoint"')
    if not entries:
        raise MissingOrReorderedEntries(
            f"the server returned no entries from index {start}, but the checkpoint has size "
            f"{target.size}",
            index=start,
        )
    pcp = verified.get(note)
    if pcp is None:
        _, pcp = verify_checkpoint(note, verifiers, origin, where=f"checkpoint of the {where}")
        if pcp.size == target.size and pcp.root != target.root:
            raise Fork(
                f"the checkpoint of the {where} and the newest checkpoint both have size "
                f"{pcp.size} but different roots (the server shows two histories)"
            )
        verified[note] = pcp
    end = start + len(entries)
    if pcp.size < end:
        raise MalformedResponse(
            f"the checkpoint of the {where} has size {pcp.size}: it does not cover the "
            f"{len(entries)} entries returned"
        )
    if not (nxt is None and end == pcp.size) and not (type(nxt) is int and nxt == end):
        raise MalformedResponse(
            f'the {where} has {len(entries)} entries and "next": {_short(nxt)}; expected '
            f"{end}" + (" or null" if end == pcp.size else "")
        )
    return entries


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

_COMMANDS: Final = ("sync", "check", "match", "keys")


def _read_token(args: argparse.Namespace, err: TextIO) -> str | None:
    if args.token_file is not None and args.token is not None:
        raise ConfigError("give --token-file or --token, not both")
    if args.token_file is not None:
        path = Path(args.token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(f"cannot read the token file: {exc}") from None
        if not token:
            raise ConfigError(f"the token file {path} is empty")
        if os.name == "posix" and mode & 0o077:
            print(
                f"{PROG}: warning: {path} is readable by other users; chmod 600 it",
                file=err,
            )
        return token
    if args.token is not None:
        print(
            f"{PROG}: warning: --token is visible to other users (ps, shell history); prefer "
            "--token-file or the HASHBANK_TOKEN variable",
            file=err,
        )
        return args.token.strip() or None
    return os.environ.get("HASHBANK_TOKEN", "").strip() or None


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Keep a verified local copy of a hashbank list and query it.",
        epilog="Exit codes: 0 ok / listed, 1 not listed / no match, 2 usage or local error, "
        "3 sync refused (something served did not verify; nothing local changed), "
        "4 network or HTTP error. Without a command, the arguments are those of 'sync'.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    cmds = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def state_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--state-dir",
            required=True,
            type=Path,
            metavar="DIR",
            help="directory of the state file and the local store (one per list)",
        )

    def net(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"network timeout per request (default {DEFAULT_TIMEOUT:g})",
        )
        sub.add_argument(
            "--retries",
            type=int,
            default=DEFAULT_RETRIES,
            metavar="N",
            help=f"retries of a failed request (default {DEFAULT_RETRIES})",
        )
        sub.add_argument(
            "--allow-http",
            action="store_true",
            help="allow a plain http:// URL that is not this computer (the token travels "
            "unencrypted)",
        )

    s = cmds.add_parser("sync", help="fetch and verify the newest entries of a list")
    state_dir(s)
    s.add_argument(
        "--base-url",
        metavar="URL",
        help="the bank, e.g. https://bank.example.org (needed at the first sync, remembered after)",
    )
    s.add_argument("--list", dest="slug", metavar="SLUG", help="the list, e.g. adult")
    s.add_argument(
        "--vkey",
        action="append",
        default=[],
        metavar="VKEY",
        help="pinned verifier key <origin>+<id>+<key> (repeatable during a key rotation; "
        "needed at the first sync, remembered after)",
    )
    s.add_argument(
        "--accept-new-vkey",
        action="store_true",
        help="replace the pinned key(s) by the --vkey given (after checking them out of band)",
    )
    s.add_argument("--token-file", metavar="FILE", help="file holding the bearer token")
    s.add_argument(
        "--token", help="the bearer token (visible in ps: prefer --token-file or HASHBANK_TOKEN)"
    )
    s.add_argument(
        "--page-size",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"entries per request, 1..{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
    )
    net(s)
    s.add_argument("--json", action="store_true", help="print a JSON summary")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    c = cmds.add_parser("check", help="is this exact hash in the list? (exit 0 yes, 1 no)")
    state_dir(c)
    c.add_argument("--algorithm", required=True, help="pdq, md5, ...")
    c.add_argument("--value", required=True, metavar="HEX")

    m = cmds.add_parser("match", help="published PDQ hashes near this one")
    state_dir(m)
    m.add_argument("--pdq", required=True, metavar="HEX", help="64 hex digits")
    m.add_argument(
        "--distance",
        type=int,
        default=DEFAULT_PDQ_DISTANCE,
        metavar="N",
        help=f"largest Hamming distance, 0..{PDQ_BITS} (default {DEFAULT_PDQ_DISTANCE})",
    )

    k = cmds.add_parser("keys", help="show the verifier keys the server publishes")
    k.add_argument("--base-url", required=True, metavar="URL")
    k.add_argument("--list", dest="slug", metavar="SLUG")
    net(k)
    k.add_argument("--json", action="store_true")
    return p


def _cmd_sync(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    token = _read_token(args, err)
    config = SyncConfig(
        state_dir=args.state_dir,
        token=token,
        base_url=args.base_url,
        slug=args.slug,
        vkeys=tuple(args.vkey),
        accept_new_vkey=args.accept_new_vkey,
        page_size=args.page_size,
        timeout=args.timeout,
        retries=args.retries,
        progress=not args.no_progress and err.isatty(),
        allow_http=args.allow_http,
    )
    result = sync(config)
    if result.entries:  # keep `match` instant (about 0.4 s per million PDQ hashes)
        with LocalStore(args.state_dir) as store:
            store.refresh_pdq_cache()
    if args.json:
        out.write(json.dumps(result.to_json()) + "\n")
    elif result.entries == 0:
        out.write(f"{result.slug}: up to date at size {result.size}\n")
    else:
        out.write(
            f"{result.slug}: verified checkpoint {result.size} (root {_b64(result.root)}): "
            f"{result.entries} entries from {result.previous_size}, {result.added} hashes "
            f"added, {result.removed} removed, {result.redacted} redacted, in "
            f"{result.seconds:.2f} s ({result.entries_per_s:,.0f} entries/s)\n"
        )
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    algorithm, value = validate_hash(args.algorithm, args.value)
    with LocalStore(args.state_dir) as store:
        rows = store.rows(algorithm, value)
        answer = {
            "list": store.slug,
            "size": store.size,
            "algorithm": algorithm,
            "value": value,
            "present": bool(rows),
            "entries": rows,
        }
    out.write(json.dumps(answer) + "\n")
    return EXIT_OK if rows else EXIT_NO


def _cmd_match(args: argparse.Namespace, out: TextIO) -> int:
    with LocalStore(args.state_dir) as store:
        matches = store.pdq_matches(args.pdq, args.distance)
        answer = {
            "list": store.slug,
            "size": store.size,
            "pdq": args.pdq.strip().lower(),
            "max_distance": args.distance,
            "matches": [{"value": v, "distance": d} for v, d in matches],
        }
    out.write(json.dumps(answer) + "\n")
    return EXIT_OK if matches else EXIT_NO


def _cmd_keys(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    base_url = normalize_base_url(args.base_url, allow_http=args.allow_http)
    with BankClient(base_url, None, timeout=args.timeout, retries=args.retries) as client:
        keys = client.keys()
    if args.slug:
        keys = [k for k in keys if k.get("list") == args.slug]
    if args.json:
        out.write(json.dumps({"keys": keys}) + "\n")
    else:
        for k in keys:
            out.write(f"{k.get('list')}\t{k.get('status')}\t{k.get('vkey')}\n")
    print(
        f"{PROG}: these keys come from the server itself: confirm them with the bank out of "
        "band before pinning one with --vkey",
        file=err,
    )
    return EXIT_OK if keys else EXIT_NO


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``hashbank-sync``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "sync")
    out, err = sys.stdout, sys.stderr
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    try:
        if args.command == "sync":
            return _cmd_sync(args, out, err)
        if args.command == "check":
            return _cmd_check(args, out)
        if args.command == "match":
            return _cmd_match(args, out)
        return _cmd_keys(args, out, err)
    except SyncRefused as exc:
        print(
            f"{PROG}: REFUSED ({type(exc).__name__}): {exc}\n"
            f"{PROG}: nothing was changed locally; the last verified state is kept. Tell the "
            "bank's operators: this may be an attack or a server bug.",
            file=err,
        )
        if as_json:
            out.write(json.dumps({"error": str(exc), "refused": type(exc).__name__}) + "\n")
        return EXIT_REFUSED
    except SyncError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        if as_json:
            out.write(json.dumps({"error": str(exc)}) + "\n")
        return exc.exit_code
    except (sqlite3.Error, OSError) as exc:  # the local disk or store, not the server
        print(f"{PROG}: error: local state in {getattr(args, 'state_dir', '?')}: {exc}", file=err)
        if as_json:
            out.write(json.dumps({"error": str(exc)}) + "\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was changed locally", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
