"""Federation: this bank imports a list of another hashbank (a peer), verified as a partner would.

A ``Peer`` subscribes one local list to one list of another bank. ``peer_sync`` runs the
partner client's own verification (``exchange.client.verify.verify_head`` and
``verify_entries``: pinned keys, no rollback, no fork, every leaf, the root), spooling what
it verified to a temporary file; only once everything verified does it import, batch by
batch (``HASHBANK_PEER_IMPORT_BATCH`` entries), each batch in its own short transaction that
also records how far the import got (``Peer.applied_size``), and the new verified state last.
So no transaction (nor the local list's lock, which case submissions need) is held while the
peer is downloaded, and a case on the same list waits for one batch at most. One sync takes at
most ``HASHBANK_PEER_SYNC_MAX_ENTRIES`` entries and stops starting new work after
``HASHBANK_PEER_SYNC_MAX_S``; what it verified is then proved a prefix of the signed tree
(``verify_entries``), and the next sync continues from there.

* An ``add`` is held for the peer (``Peer.holder``) with its provenance: the
  origin it names, or the peer's list origin when it names none. Holds make the
  published-state rule of ``hashbank.services`` apply unchanged: a peer's ``remove`` releases
  the peer's hold, and a hash a local case also holds stays published.
* **No echo.** An ``add`` that names one of this bank's own list origins came from here: it
  is verified but not imported (nor is its later ``remove`` applied). With the provenance
  rule of ``hashbank.services`` (an add names an import's origin only while no local holder
  keeps it), two banks that import each other never hand a hash back and forth.
* A sync the client would refuse (``SyncRefused``: bad signature, unknown key, fork,
  rollback, root mismatch, tampered entry) stops the peer with an ``alert`` for operators;
  what was imported before stays (batches of verified entries an import applied before a
  bad remove included). A stopped peer is not synced until an operator resumes it, so
  removals made at its origin meanwhile don't arrive: the alert counts those the refused
  download carried, and ``peer_imports_unpublish`` lets an operator unpublish what the peer
  imported. Network and HTTP errors are only recorded and retried.
* One sync per peer at a time: a lease taken with a conditional UPDATE, and the peer's row
  locked by the import transaction.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from exchange import secret_box
from exchange.client import addresses
from exchange.client.errors import BadRemove, ConfigError, SyncError, SyncRefused
from exchange.client.http import BankClient, normalize_base_url
from exchange.client.verify import AddRow, verify_entries, verify_head
from exchange.models import Peer, PeerEntry
from hashbank import tlog
from hashbank.log import list_origin
from hashbank.models import HashList
from hashbank.services import HashInput, hashes_hold, hashes_release, holds_release
from webapi.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)

#: Pages the download thread may fetch ahead while a page is imported.
PREFETCH_PAGES = 1
#: Retries of a failed request within one sync (then the next beat tries again).
CLIENT_RETRIES = 2
CLIENT_BACKOFF = 0.5
_SLUG_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class PeerSyncResult:
    """What one sync of one peer did.

    ``status``: ``ok`` (new entries verified and applied), ``partial`` (as ``ok``, but a cap
    on entries or time stopped it before the peer's checkpoint; the next sync continues),
    ``up_to_date``, ``busy`` (another worker holds the peer), ``stopped`` (waiting for an
    operator), ``inactive``, ``refused`` (this sync stopped the peer) or ``error``
    (network/HTTP/local; retried).
    """

    peer: str
    status: str
    previous_size: int = 0
    size: int = 0
    imported: int = 0
    skipped: int = 0
    removed: int = 0
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def failed(self) -> bool:
        return self.status in ("refused", "error")


# --------------------------------------------------------------------------------------------
# Subscribing
# --------------------------------------------------------------------------------------------


def own_origins() -> frozenset[str]:
    """The log origins of this bank's lists: adds naming one of them came from here."""
    return frozenset(list_origin(slug) for slug in HashList.objects.values_list("slug", flat=True))


def peer_base_url_check(url: str) -> str:
    """An absolute https URL (http only where HASHBANK_PEER_ALLOW_HTTP), normalised.

    Its host must not be, or resolve to, an address the bank may not connect to
    (``exchange.client.addresses``); every sync checks again, connection by connection.
    """
    parts = urlsplit(url.strip())
    if parts.scheme == "http" and not settings.HASHBANK_PEER_ALLOW_HTTP:
        raise InvalidInput(
            "The peer's URL must use https: the token would travel unencrypted.", field="base_url"
        )
    try:
        normalized = normalize_base_url(url, allow_http=True)
    except ConfigError as exc:
        raise InvalidInput(str(exc).replace("--base-url", "The URL"), field="base_url") from None
    try:
        addresses.url_check(normalized, allow_private=settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE)
    except ValueError as exc:
        raise InvalidInput(f"The peer's URL is refused: {exc}.", field="base_url") from None
    return normalized


def peer_vkeys_check(vkeys: Sequence[str], *, remote_list: str) -> list[str]:
    """Parse the pinned verifier keys: one key name, ``<peer origin>/lists/<remote_list>``.

    Returns them in canonical form. Refuses keys of this bank's own lists.
    """
    verifiers: list[tlog.NoteVerifier] = []
    for vkey in vkeys:
        if not vkey.strip():
            continue
        try:
            verifiers.append(tlog.parse_vkey(vkey.strip()))
        except tlog.KeyFormatError as exc:
            raise InvalidInput(
                f"Invalid verifier key {vkey.strip()!r}: {exc}", field="vkeys"
            ) from None
    if not verifiers:
        raise InvalidInput("At least one verifier key is needed.", field="vkeys")
    names = sorted({v.name for v in verifiers})
    if len(names) != 1:
        raise InvalidInput(
            f"The verifier keys must all be for one list, got {', '.join(names)}.", field="vkeys"
        )
    head, sep, tail = names[0].rpartition("/lists/")
    if not (head and sep and tail == remote_list):
        raise InvalidInput(
            f"The verifier key is for {names[0]!r}, not for a list named {remote_list!r} "
            "(its name must be <peer origin>/lists/<list>).",
            field="vkeys",
        )
    if names[0] in own_origins():
        raise InvalidInput(
            f"{names[0]} is one of this bank's own lists: a bank cannot import itself.",
            field="vkeys",
        )
    return list(dict.fromkeys(v.vkey for v in verifiers))


def peer_vkeys(peer: Peer) -> list[str]:
    return [line.strip() for line in peer.vkeys.splitlines() if line.strip()]


def peer_origin(peer: Peer) -> str:
    """The peer list's log origin: the name of its pinned keys."""
    return tlog.parse_vkey(peer_vkeys(peer)[0]).name


def peer_token_set(*, peer: Peer, token: str) -> None:
    """Store the bearer token the peer issued to this bank, sealed (never readable in the DB)."""
    token = token.strip()
    if not token:
        raise InvalidInput("The token is empty.", field="token")
    peer.token_sealed = secret_box.seal(token, purpose=f"peer:{peer.pk}")
    Peer.objects.filter(pk=peer.pk).update(token_sealed=peer.token_sealed)


def peer_add(
    *,
    name: str,
    base_url: str,
    remote_list: str,
    token: str,
    vkeys: Sequence[str],
    local_list: str,
) -> Peer:
    """Subscribe ``local_list`` to list ``remote_list`` of the bank at ``base_url``.

    ``vkeys`` are the peer list's verifier keys, obtained out of band and pinned; ``token`` is
    the bearer token the peer issued to this bank (stored sealed). The first sync imports
    the whole list.
    """
    name = name.strip()
    if not name:
        raise InvalidInput("A peer needs a name.", field="name")
    if not _SLUG_RE.fullmatch(remote_list or ""):
        raise InvalidInput(f"Invalid list name {remote_list!r}.", field="remote_list")
    url = peer_base_url_check(base_url)
    keys = peer_vkeys_check(vkeys, remote_list=remote_list)
    if not token.strip():
        raise InvalidInput("The peer's token is empty.", field="token")
    target = HashList.objects.filter(slug=local_list).first()
    if target is None:
        raise InvalidInput(f"There is no local list {local_list!r}.", field="local_list")
    origin = tlog.parse_vkey(keys[0]).name
    with transaction.atomic():
        if Peer.objects.filter(name=name).exists():
            raise Conflict(f"A peer named {name!r} exists already.", field="name")
        for other in Peer.objects.all():
            if peer_origin(other) == origin:
                raise Conflict(f"{origin} is imported already, by peer {other.name!r}.")
        peer = Peer.objects.create(
            name=name,
            base_url=url,
            remote_list=remote_list,
            vkeys="\n".join(keys),
            local_list=target,
        )
        peer_token_set(peer=peer, token=token)
    return peer


def peer_resume(*, peer_id: int) -> bool:
    """Operators: sync a stopped peer again (after checking with its operators why it stopped).

    The verified state is kept: a peer that really forked is stopped again at once.
    """
    resumed = Peer.objects.filter(pk=peer_id, stopped=True).update(stopped=False, alert="")
    if resumed:
        logger.warning("peer %s resumed by an operator", peer_id)
    return bool(resumed)


def peer_unsubscribe(*, peer_id: int) -> int:
    """Operators: stop importing from a peer and unpublish what only it kept published.

    Releases the peer's holds (a hash a local case or another peer holds stays published),
    forgets its entries and verified state, and deactivates it: reactivated, it imports the
    whole list again. Returns how many hashes it released.
    """
    released = _imports_release(peer_id, active=False, stopped=False, alert="")
    logger.warning("peer %s unsubscribed: %d hashes released", peer_id, released)
    return released


def peer_imports_unpublish(*, peer_id: int) -> int:
    """Operators: unpublish what a stopped peer imported, keeping it stopped.

    For a peer stopped (fork, bad signature...) while it may have withdrawn hashes: its
    removals can't arrive while it is stopped. Like ``peer_unsubscribe`` it releases the
    peer's holds (a hash a local case or another peer holds stays published) and forgets
    its entries and verified state; the peer stays subscribed and stopped, and once resumed
    it imports the whole list again, verified from the start. Returns how many hashes it
    released.
    """
    when = timezone.now()
    alert = (
        f"{when:%Y-%m-%d %H:%M:%S} UTC: what this peer imported was unpublished by an "
        "operator while it was stopped. Resuming imports its whole list again, verified from "
        "the start."
    )
    released = _imports_release(peer_id, stopped=True, alert=alert)
    logger.warning("peer %s: imports unpublished: %d hashes released", peer_id, released)
    return released


def _imports_release(peer_id: int, **state: Any) -> int:
    with transaction.atomic():
        peer = Peer.objects.select_for_update().get(pk=peer_id)
        released = holds_release(holder=peer.holder, reason="withdrawn")
        PeerEntry.objects.filter(peer=peer).delete()
        Peer.objects.filter(pk=peer.pk).update(
            size=0, applied_size=0, root="", edge={}, checkpoint="", **state
        )
    return len(released)


# --------------------------------------------------------------------------------------------
# Syncing
# --------------------------------------------------------------------------------------------


def peers_due() -> list[int]:
    """Peers to sync now: active, not stopped, not being synced."""
    now = timezone.now()
    return list(
        Peer.objects.filter(active=True, stopped=False)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def peers_sync_all() -> list[PeerSyncResult]:
    """Sync every active peer now, one after the other (stopped ones report ``stopped``)."""
    ids = Peer.objects.filter(active=True).order_by("name").values_list("pk", flat=True)
    return [peer_sync(peer_id=peer_id) for peer_id in ids]


def peer_sync(*, peer_id: int, resume: bool = False) -> PeerSyncResult:
    """Bring the import of one peer up to its newest checkpoint, verifying everything.

    Never raises for what the peer serves or for network errors: the outcome is in the
    result and on the peer's row (``last_error``, or ``stopped`` and ``alert``).
    """
    if resume:
        peer_resume(peer_id=peer_id)
    peer = Peer.objects.get(pk=peer_id)
    if not peer.active:
        return PeerSyncResult(peer.name, "inactive", peer.size, peer.size)
    if peer.stopped:
        return PeerSyncResult(peer.name, "stopped", peer.size, peer.size, message=peer.alert)
    lease = _claim(peer_id)
    if lease is None:
        return PeerSyncResult(peer.name, "busy", peer.size, peer.size)
    try:
        return _sync_leased(peer_id, lease)
    finally:
        Peer.objects.filter(pk=peer_id, lease_until=lease).update(lease_until=None)


def _claim(peer_id: int) -> datetime | None:
    """Take the peer's lease; None if another worker holds it (or the peer is stopped)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.HASHBANK_PEER_LEASE_S)
    with transaction.atomic():
        # skip_locked: an import in progress keeps the row locked; don't queue behind it.
        free = (
            Peer.objects.select_for_update(skip_locked=True)
            .filter(pk=peer_id, active=True, stopped=False)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .exists()
        )
        if not free:
            return None
        Peer.objects.filter(pk=peer_id).update(lease_until=lease)
    return lease


class _Busy(Exception):
    """The lease was lost to another worker: leave the import to it."""


def _sync_leased(peer_id: int, lease: datetime) -> PeerSyncResult:
    peer = Peer.objects.select_related("local_list").get(pk=peer_id)
    started = timezone.now()
    deadline = time.monotonic() + settings.HASHBANK_PEER_SYNC_MAX_S
    spool: _Spool | None = None
    old_size = peer.size
    result = PeerSyncResult(peer.name, "error", old_size, old_size)
    try:
        token = secret_box.unseal(peer.token_sealed, purpose=f"peer:{peer.pk}")
        verifiers = [tlog.parse_vkey(v) for v in peer_vkeys(peer)]
        if not verifiers:
            raise ValueError("no pinned verifier key")
    except (ValueError, tlog.KeyFormatError) as exc:
        return _failed(peer, result, f"local configuration: {exc}", started)
    origin = verifiers[0].name
    try:
        edge = tlog.RightEdge.from_json(peer.edge) if peer.edge else tlog.RightEdge()
        old_root = base64.b64decode(peer.root) if peer.root else tlog.EMPTY_ROOT
        if (edge.size, edge.root()) != (old_size, old_root):
            raise ValueError("size, root and right edge disagree")
    except ValueError as exc:
        return _refused(
            peer, result, f"the stored verified state is corrupt ({exc})", "CorruptState", started
        )
    try:
        with (
            BankClient(
                peer.base_url,
                token,
                timeout=settings.HASHBANK_PEER_TIMEOUT_S,
                retries=CLIENT_RETRIES,
                backoff=CLIENT_BACKOFF,
                allow_private=settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE,
            ) as client,
            tempfile.TemporaryFile("w+", encoding="utf-8") as spool_file,
        ):
            note, cp = verify_head(
                client, peer.remote_list, verifiers, origin, old_size=old_size, old_root=old_root
            )
            if cp.size == old_size and note == peer.checkpoint:
                Peer.objects.filter(pk=peer.pk).update(
                    last_sync_at=started, last_success_at=started, last_error=""
                )
                return PeerSyncResult(peer.name, "up_to_date", old_size, old_size)
            spool = _Spool(spool_file)
            verify_entries(
                client,
                peer.remote_list,
                verifiers,
                origin,
                note=note,
                checkpoint=cp,
                edge=edge,
                store=spool,
                prefetch=PREFETCH_PAGES,
                end=old_size + settings.HASHBANK_PEER_SYNC_MAX_ENTRIES,
                # Downloading and verifying get two thirds of the time, importing the rest
                # (and at least one batch, so that every sync makes progress).
                deadline=time.monotonic() + settings.HASHBANK_PEER_SYNC_MAX_S * 2 / 3,
            )
            spool.flush()
            spool_file.seek(0)
            importer = _PeerImport(peer=peer, default_origin=cp.origin, own=own_origins())
            # Our lease, and the state we started from: or another worker took over.
            mine = Peer.objects.filter(
                pk=peer.pk, active=True, lease_until=lease, size=old_size, root=peer.root
            )
            complete = True
            for n, line in enumerate(spool_file):
                if n and time.monotonic() >= deadline:
                    complete = False  # out of time: the next sync skips what is applied
                    break
                with transaction.atomic():
                    applied = _applied_size(mine)
                    reached = importer.apply(*json.loads(line), applied=applied)
                    if reached > applied:
                        mine.update(applied_size=reached)
            with transaction.atomic():
                applied = _applied_size(mine)
                if complete:
                    mine.update(
                        size=edge.size,
                        applied_size=max(applied, edge.size),
                        root=base64.b64encode(edge.root()).decode("ascii"),
                        edge=edge.to_json(),
                        # Kept only for a tree the signed note covers exactly.
                        checkpoint=note if edge.size == cp.size else "",
                        last_sync_at=started,
                        last_success_at=started,
                        last_error="",
                    )
                else:
                    mine.update(last_sync_at=started, last_success_at=started, last_error="")
    except _Busy:
        return PeerSyncResult(peer.name, "busy", old_size, old_size)
    except SyncRefused as exc:
        pending = spool.pending_removes(peer.pk) if spool is not None else 0
        return _refused(peer, result, str(exc), type(exc).__name__, started, pending=pending)
    except SyncError as exc:  # network, HTTP (401, 404, 5xx...), local configuration
        return _failed(peer, result, str(exc), started)
    return PeerSyncResult(
        peer.name,
        "ok" if complete and edge.size == cp.size else "partial",
        old_size,
        edge.size if complete else old_size,
        imported=importer.imported,
        skipped=importer.skipped,
        removed=importer.removed,
    )


def _applied_size(mine: QuerySet[Peer]) -> int:
    """Lock the peer's row, if it is still ours; how far its log is applied."""
    applied = mine.select_for_update().values_list("applied_size", flat=True).first()
    if applied is None:
        raise _Busy
    return applied


def _failed(peer: Peer, result: PeerSyncResult, message: str, when: datetime) -> PeerSyncResult:
    logger.warning("peer %s: sync failed, retried later: %s", peer.name, message)
    Peer.objects.filter(pk=peer.pk).update(last_sync_at=when, last_error=message[:2000])
    return PeerSyncResult(**{**result.to_json(), "status": "error", "message": message})


def _refused(
    peer: Peer,
    result: PeerSyncResult,
    message: str,
    kind: str,
    when: datetime,
    *,
    pending: int = 0,
) -> PeerSyncResult:
    """Stop the peer: nothing after the refusal is imported; what it imported before is kept.

    ``pending``: removals of entries imported before that the refused download carried.
    """
    applied = Peer.objects.filter(pk=peer.pk).values_list("applied_size", flat=True).first()
    if applied is not None and applied > peer.size:
        done = (
            f"This sync imported entries {peer.size}..{applied - 1} (verified against the "
            "signed checkpoint) before the refusal, nothing after"
        )
    else:
        done = "Nothing from this sync was imported"
    alert = (
        f"{when:%Y-%m-%d %H:%M:%S} UTC: import STOPPED ({kind}): {message}. {done}; the "
        f"{peer.size} entries verified before are kept. This may be an attack or a bug at "
        "the peer: check with its operators out of band, then resume."
    )
    if pending:
        alert += (
            f" REMOVALS PENDING: the refused download named {pending} removal(s) of hashes "
            "imported from this peer, which stay published while it is stopped. If the peer "
            "withdrew them, use “Unpublish what it imported”."
        )
    logger.error("peer %s: %s", peer.name, alert)
    Peer.objects.filter(pk=peer.pk).update(
        stopped=True, alert=alert, last_sync_at=when, last_error=f"{kind}: {message}"[:2000]
    )
    return PeerSyncResult(**{**result.to_json(), "status": "refused", "message": alert})


class _Spool:
    """The ``EntryStore`` (``exchange.client.verify``) of a peer's sync, spooled to a file.

    Written in batches of ``HASHBANK_PEER_IMPORT_BATCH`` entries, one JSON line ``[adds,
    redacted indexes, removes]`` each, covering consecutive indexes, for ``_PeerImport`` to
    apply, one transaction per line, once everything verified. Whether a remove names a live
    add is checked then (``BadRemove``).
    """

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.batch = settings.HASHBANK_PEER_IMPORT_BATCH
        self._adds: list[AddRow] = []
        self._redacted: list[int] = []
        self._removes: list[tuple[int, int, str]] = []
        # Every remove, (index, removed index): those of imported adds that were not applied
        # are what a stopped peer's alert calls pending.
        self.removes_seen: list[tuple[int, int]] = []

    def add_many(self, rows: list[AddRow]) -> None:
        self._adds.extend(rows)
        self._cut()

    def add_redacted(self, index: int) -> None:
        # Not a point to cut a batch at: the verifier may still hold earlier adds (it hands
        # them over a page at a time), which must not land in a later batch than this index.
        self._redacted.append(index)

    def remove(self, index: int, removes: int, reason: str) -> bool:
        self._removes.append((index, removes, reason))
        self.removes_seen.append((index, removes))
        self._cut()
        return True

    def pending_removes(self, peer_id: int) -> int:
        """Removes of imported hashes not applied (the sync stopped before them)."""
        applied = Peer.objects.filter(pk=peer_id).values_list("applied_size", flat=True).first()
        live = set(
            PeerEntry.objects.filter(peer_id=peer_id, hash__isnull=False).values_list(
                "remote_index", flat=True
            )
        )
        return sum(1 for i, j in self.removes_seen if i >= (applied or 0) and j in live)

    def _cut(self) -> None:
        """Write full batches. Called when every entry up to the newest one has been handed
        over (the verifier passes its adds before a remove, and a page's at its end)."""
        while len(self._adds) + len(self._redacted) + len(self._removes) >= self.batch:
            indexes = sorted(
                [row[0] for row in self._adds] + self._redacted + [r[0] for r in self._removes]
            )
            self._write(below=indexes[self.batch - 1] + 1)

    def flush(self) -> None:
        if self._adds or self._redacted or self._removes:
            self._write(below=None)

    def _write(self, *, below: int | None) -> None:
        def cut(items: list[Any], index: Any) -> list[Any]:
            taken = [x for x in items if below is None or index(x) < below]
            items[:] = [x for x in items if below is not None and index(x) >= below]
            return taken

        line = [
            cut(self._adds, lambda row: row[0]),
            cut(self._redacted, lambda i: i),
            cut(self._removes, lambda row: row[0]),
        ]
        self.file.write(json.dumps(line) + "\n")


class _PeerImport:
    """Applies a peer's verified entries to its local list, one batch per transaction.

    Only the set of live adds matters, so an add removed within the same batch is never
    imported. Adds are held for the peer with their provenance; removes release the peer's
    hold (while no other live add of the peer names the same hash).
    """

    def __init__(self, *, peer: Peer, default_origin: str, own: frozenset[str]) -> None:
        self.peer = peer
        self.holder = peer.holder
        self.default_origin = default_origin
        self.own = own
        self.imported = 0
        self.skipped = 0
        self.removed = 0

    def apply(
        self,
        adds: list[AddRow],
        redacted: list[int],
        removes: list[tuple[int, int, str]],
        *,
        applied: int,
    ) -> int:
        """Apply one spooled batch, but for entries before ``applied`` (applied already).

        Returns the peer's log size this batch brings the import to.
        """
        reached = 1 + max(
            [row[0] for row in adds] + redacted + [row[0] for row in removes], default=-1
        )
        adds = [row for row in adds if row[0] >= applied]
        redacted = [i for i in redacted if i >= applied]
        removes = [row for row in removes if row[0] >= applied]
        pending = {row[0] for row in adds}.union(redacted)
        earlier: list[tuple[int, int, str]] = []  # removes of adds from earlier batches
        for index, j, reason in removes:
            if j in pending:
                pending.discard(j)
            else:
                earlier.append((index, j, reason))
        self._import([row for row in adds if row[0] in pending], pending.intersection(redacted))
        if earlier:
            self._release(earlier)
        return reached

    def _import(self, adds: list[AddRow], redacted: set[int]) -> None:
        peer = self.peer
        entries = [PeerEntry(peer=peer, remote_index=i) for i in sorted(redacted)]
        by_origin: dict[str, list[tuple[int, HashInput]]] = {}
        for index, algorithm, value, quality, _timestamp, origin in adds:
            if origin in self.own:  # one of ours, coming back: never import it
                entries.append(PeerEntry(peer=peer, remote_index=index))
                self.skipped += 1
                continue
            by_origin.setdefault(origin or self.default_origin, []).append(
                (index, HashInput(algorithm, value, quality))
            )
        for origin, items in by_origin.items():
            held = hashes_hold(
                hash_list=peer.local_list,
                hashes=[item for _, item in items],
                holder=self.holder,
                origin=origin,
            )
            entries += [
                PeerEntry(peer=peer, remote_index=index, hash_id=h.pk)
                for (index, _), h in zip(items, held, strict=True)
            ]
            self.imported += len(items)
        PeerEntry.objects.bulk_create(entries, batch_size=1000)

    def _release(self, removes: list[tuple[int, int, str]]) -> None:
        peer = self.peer
        wanted = [j for _, j, _ in removes]
        live = dict(
            PeerEntry.objects.filter(peer=peer, remote_index__in=wanted).values_list(
                "remote_index", "hash_id"
            )
        )
        seen: set[int] = set()
        for index, j, _ in removes:
            if j not in live or j in seen:
                raise BadRemove.not_a_live_add(index, j)
            seen.add(j)
        PeerEntry.objects.filter(peer=peer, remote_index__in=wanted).delete()
        hash_ids = {live[j] for j in wanted if live[j] is not None}
        # The peer may list a hash under two live adds: keep it while one is left.
        kept = set(
            PeerEntry.objects.filter(peer=peer, hash_id__in=hash_ids).values_list(
                "hash_id", flat=True
            )
        )
        by_reason: dict[str, set[int]] = {}
        for _, j, reason in removes:
            hash_id = live[j]
            if hash_id is not None and hash_id not in kept:
                by_reason.setdefault(reason, set()).add(hash_id)
        for reason, ids in sorted(by_reason.items()):
            self.removed += len(hashes_release(holder=self.holder, hash_ids=ids, reason=reason))
