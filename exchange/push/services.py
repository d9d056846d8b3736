"""Push delivery: what each partner is owed, and sending it.

The outbox is the log itself: a partner with a webhook is owed every entry of
each list it may read from its ``Delivery.acked_position`` on. Nothing about
what is owed lives in the broker, so a lost task, a dead worker or a broker
outage only delays delivery; the beat sweep (``deliveries_due``) finds whoever
is behind and queues them again.

Guarantees: per partner and list, batches go out in log order, one at a time
(a lease taken with a conditional UPDATE), and a batch keeps its
``webhook-id`` and exact body across retries, so a partner that de-duplicates
by ``webhook-id`` (as Standard Webhooks asks) applies every entry exactly once.

These functions do the work and queue nothing: what queues ``deliver`` tasks
(after a publish, from the sweep, for a retry) is in ``exchange/push/tasks.py``.
"""

from __future__ import annotations

import functools
import http.client
import json
import random
import socket
import ssl
import threading
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import certifi
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from exchange import secret_box, webhook_signing
from exchange.client import addresses
from exchange.models import Delivery, Partner
from exchange.selectors import delivery_entitled, entries_json_text, partner_lists
from exchange.ttl_cache import TtlCache
from hashbank.log import checkpoint_at
from hashbank.models import HashList, LogEntry
from webapi.errors import InvalidInput

PREVIOUS_SECRET_GRACE = timedelta(hours=24)


def webhook_secret_issue(*, partner: Partner, revoke_previous: bool = False) -> str:
    """Give the partner a new ``whsec_`` secret, returned once.

    The old one keeps co-signing for a grace period, so the partner can switch
    without losing a message; ``revoke_previous`` (after a compromise) drops it
    at once, along with any older one still in its grace period: from the
    next message on, only the new secret signs.
    """
    secret = webhook_signing.new_secret()
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        if revoke_previous:
            locked.webhook_previous_sealed = ""
            locked.webhook_previous_until = None
        elif locked.webhook_secret_sealed:
            locked.webhook_previous_sealed = _reseal(locked.webhook_secret_sealed, locked.pk)
            locked.webhook_previous_until = timezone.now() + PREVIOUS_SECRET_GRACE
        locked.webhook_secret_sealed = secret_box.seal(secret, purpose=f"webhook:{locked.pk}")
        locked.save(
            update_fields=[
                "webhook_secret_sealed",
                "webhook_previous_sealed",
                "webhook_previous_until",
            ]
        )
    partner.webhook_secret_sealed = locked.webhook_secret_sealed
    return secret


def _reseal(sealed: str, partner_id: int) -> str:
    return secret_box.seal(
        secret_box.unseal(sealed, purpose=f"webhook:{partner_id}"),
        purpose=f"webhook-previous:{partner_id}",
    )


def webhook_url_check(url: str) -> str:
    """A webhook URL must be absolute http(s); plain http only where allowed (development).

    Its host must not be, or resolve to, an address the bank may not send to
    (``exchange.client.addresses``); sending checks again, connection by connection.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("The webhook URL must be an absolute https:// URL.", field="webhook_url")
    if parts.scheme == "http" and not settings.HASHBANK_WEBHOOK_ALLOW_HTTP:
        raise InvalidInput("The webhook URL must use https.", field="webhook_url")
    try:
        addresses.url_check(url, allow_private=settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE)
    except ValueError as exc:
        raise InvalidInput(f"The webhook URL is refused: {exc}.", field="webhook_url") from None
    return url


def partner_webhook_set(
    *, partner: Partner, url: str, start_at_end: bool = False, revoke_previous: bool = False
) -> str:
    """Point the partner's pushes at ``url`` with a fresh secret (returned once).

    Delivery starts from the beginning of each list the partner may read, so
    push alone gives a complete copy; ``start_at_end`` skips the history for a
    partner that already pulled it. ``revoke_previous``: see ``webhook_secret_issue``.
    """
    webhook_url_check(url)
    partner.webhook_url = url
    partner.save(update_fields=["webhook_url"])
    secret = webhook_secret_issue(partner=partner, revoke_previous=revoke_previous)
    deliveries_ensure()
    if start_at_end:
        for fresh in Delivery.objects.filter(partner=partner, acked_position=0).select_related(
            "hash_list"
        ):
            Delivery.objects.filter(pk=fresh.pk).update(acked_position=fresh.hash_list.log_size)
    return secret


def webhook_secrets(partner: Partner) -> list[str]:
    """Secrets to sign with now: the current one, and the previous during its grace period."""
    found = []
    if partner.webhook_secret_sealed:
        found.append(
            secret_box.unseal(partner.webhook_secret_sealed, purpose=f"webhook:{partner.pk}")
        )
    if (
        partner.webhook_previous_sealed
        and partner.webhook_previous_until
        and (partner.webhook_previous_until > timezone.now())
    ):
        found.append(
            secret_box.unseal(
                partner.webhook_previous_sealed, purpose=f"webhook-previous:{partner.pk}"
            )
        )
    return found


def deliveries_ensure(*, hash_list_id: int | None = None) -> list[int]:
    """Make sure every webhook partner has a Delivery for each list it may read.

    Returns the ids of the deliveries (of that list, if given).
    """
    partners = (
        Partner.objects.filter(active=True)
        .exclude(webhook_url="")
        .exclude(webhook_secret_sealed="")
    )
    ids: list[int] = []
    for partner in partners:
        for hash_list in partner_lists(partner=partner):
            if hash_list_id is not None and hash_list.pk != hash_list_id:
                continue
            delivery, _ = Delivery.objects.get_or_create(partner=partner, hash_list=hash_list)
            ids.append(delivery.pk)
    _lists_without_push.clear()
    return ids


def _unleased(now: datetime) -> Q:
    """No worker holds the delivery's lease."""
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def _retry_due(now: datetime) -> Q:
    """The delivery is not waiting out a retry backoff."""
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


# Lists this process found no push partner for, remembered for one sweep
# interval so that publishing to them costs no query. A partner registered
# meanwhile through another process is served by the sweep, which runs that often.
_lists_without_push: TtlCache[int, bool] = TtlCache()


def deliveries_memo_clear() -> None:
    _lists_without_push.clear()


def deliveries_to_kick(*, hash_list_id: int) -> list[int]:
    """The deliveries of this list that a publish to it should queue now."""
    # Deliveries are created when partners, grants or webhooks change (and by
    # the sweep); here, one indexed query keeps publishing cheap. A delivery
    # whose lease is held is skipped: its worker re-reads the log after
    # releasing the lease (see delivery_run), so it cannot miss these entries.
    if _lists_without_push.get(hash_list_id):
        return []
    ids = list(
        Delivery.objects.filter(
            delivery_entitled(),
            _unleased(timezone.now()),
            hash_list_id=hash_list_id,
            next_attempt_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    if not ids and not _has_push(hash_list_id):
        _lists_without_push.put(hash_list_id, True, ttl=settings.HASHBANK_SWEEP_INTERVAL_S)
    return ids


def _has_push(hash_list_id: int) -> bool:
    return Delivery.objects.filter(hash_list_id=hash_list_id, partner__active=True).exists()


def deliveries_due() -> list[int]:
    """For the sweep: every delivery that is behind, due and not being delivered.

    Creates the deliveries that are missing first (``deliveries_ensure``).
    """
    deliveries_ensure()
    now = timezone.now()
    return list(
        Delivery.objects.filter(_owed(), _unleased(now), _retry_due(now))
        .exclude(partner__webhook_url="")
        .values_list("pk", flat=True)
    )


def backoff_seconds(failures: int) -> float:
    """Exponential backoff with jitter, capped: base * 2^(n-1), scaled by 0.5-1.0."""
    base = settings.HASHBANK_WEBHOOK_BACKOFF_BASE_S
    cap = settings.HASHBANK_WEBHOOK_BACKOFF_CAP_S
    ceiling = min(cap, base * 2 ** max(0, failures - 1))
    return ceiling * random.uniform(0.5, 1.0)


def _owed() -> Q:
    """The partner may read the list and has not acknowledged all of it.

    In SQL that names the delivery table rather than a join, like
    ``delivery_entitled``: it fits the claim's single-table UPDATE, and it
    compiles in microseconds for every task.
    """
    log_size = RawSQL(
        "SELECT log_size FROM hashbank_hashlist WHERE id = exchange_delivery.hash_list_id", ()
    )
    return Q(delivery_entitled(), acked_position__lt=log_size)


def _claim(delivery_id: int) -> Delivery | None:
    """Take the lease: exactly one worker may deliver a partner's list at a time.

    Only a delivery that is owed entries can be claimed, so a task queued for one
    that another worker has since brought up to date (by a publish, the sweep or
    the broker redelivering a killed worker's task) writes nothing. One UPDATE
    of one table: PostgreSQL re-checks its whole condition, subqueries included,
    against a row another worker has just changed.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.HASHBANK_WEBHOOK_LEASE_S)
    claimed = Delivery.objects.filter(
        _unleased(now), _retry_due(now), _owed(), pk=delivery_id
    ).update(lease_until=lease)
    if not claimed:
        return None
    return Delivery.objects.select_related("partner", "hash_list").get(pk=delivery_id)


def _batch_body(hash_list: HashList, start: int, end: int) -> bytes:
    entries = entries_json_text(hash_list_id=hash_list.pk, start=start, end=end)
    checkpoint = checkpoint_at(hash_list=hash_list, size=end)
    return (
        f'{{"type":"entries","list":{json.dumps(hash_list.slug)},'
        f'"checkpoint":{json.dumps(checkpoint)},"entries":[{",".join(entries)}]}}'
    ).encode()


def delivery_run(*, delivery_id: int, max_batches: int = 50) -> str:
    """Deliver what this partner is owed on this list, batch by batch, in order.

    Returns what happened: ``busy`` (another worker holds it, or a retry is not
    due), ``done`` (caught up, or the partner may no longer be sent this list:
    deactivated, or its grant revoked), ``more`` (stopped after ``max_batches``; queue
    again) or ``failed`` (a retry is due at ``delivery_retry_at``).
    """
    delivery = _claim(delivery_id)
    if delivery is None:
        owed = Delivery.objects.filter(_owed(), pk=delivery_id).exists()
        return "busy" if owed else "done"
    # Publishers skip a leased delivery, so after releasing the lease claim it
    # once more: entries committed meanwhile are ours to send.
    while delivery is not None:
        outcome = _deliver_leased(delivery, max_batches)
        if outcome != "done":
            return outcome
        delivery = _claim(delivery_id)
    return "done"


def _deliver_leased(delivery: Delivery, max_batches: int) -> str:
    partner, hash_list = delivery.partner, delivery.hash_list
    mine = Delivery.objects.filter(pk=delivery.pk, lease_until=delivery.lease_until)
    for batch in range(max_batches):
        # The claim read the list and checked the grant; later batches read again.
        if batch:
            hash_list.refresh_from_db(fields=["log_size", "tree_edge", "log_last_timestamp"])
        if delivery.acked_position >= hash_list.log_size or (
            batch and not Delivery.objects.filter(delivery_entitled(), pk=delivery.pk).exists()
        ):
            mine.update(lease_until=None)
            return "done"  # caught up, or the partner may no longer read this list
        # Renew the lease before each request, so it outlasts the request (LEASE_S >
        # TIMEOUT_S) however many batches this run sends: were it to lapse, another
        # worker could send the same batch at the same time.
        lease = timezone.now() + timedelta(seconds=settings.HASHBANK_WEBHOOK_LEASE_S)
        if not mine.update(lease_until=lease):
            return "busy"  # it lapsed already and another worker took over
        mine = Delivery.objects.filter(pk=delivery.pk, lease_until=lease)
        if delivery.batch_start != delivery.acked_position or delivery.batch_end is None:
            # A new batch: its range and id stay fixed until it is acknowledged.
            start = delivery.acked_position
            end = min(start + settings.HASHBANK_WEBHOOK_BATCH, hash_list.log_size)
            webhook_id = f"msg_{partner.pk}_{hash_list.slug}_{start}_{end}"
            mine.update(batch_start=start, batch_end=end, webhook_id=webhook_id, attempts=0)
            delivery.batch_start, delivery.batch_end, delivery.webhook_id = start, end, webhook_id
            delivery.attempts = 0
        start, end = delivery.batch_start, delivery.batch_end
        body = _batch_body(hash_list, start, end)
        error = _post(partner, delivery.webhook_id, body)
        now = timezone.now()
        if error is None:
            updated = mine.update(
                acked_position=end,
                batch_start=None,
                batch_end=None,
                webhook_id="",
                attempts=0,
                consecutive_failures=0,
                degraded=False,
                next_attempt_at=None,
                last_success_at=now,
            )
            if not updated:
                return "busy"  # our lease expired and another worker took over
            delivery.acked_position, delivery.batch_end = end, None
            delivery.consecutive_failures = 0
            continue
        failures = delivery.consecutive_failures + 1
        wait = backoff_seconds(failures)
        mine.update(
            attempts=F("attempts") + 1,
            consecutive_failures=failures,
            degraded=failures >= settings.HASHBANK_WEBHOOK_DEGRADED_AFTER,
            last_error=error[:2000],
            last_error_at=now,
            next_attempt_at=now + timedelta(seconds=wait),
            lease_until=None,
        )
        return "failed"
    mine.update(lease_until=None)
    return "more"


# What is read of a partner's reply: enough for an error message, never its whole body.
REPLY_READ_MAX = 4096


def _post(partner: Partner, webhook_id: str, body: bytes) -> str | None:
    """POST one signed batch; None on a 2xx reply, else a short description of the error."""
    url = partner.webhook_url
    if url.startswith("http://") and not settings.HASHBANK_WEBHOOK_ALLOW_HTTP:
        return "webhook URL must use https"
    try:
        secrets_ = webhook_secrets(partner)
    except ValueError as exc:
        return f"webhook secret unusable: {exc}"
    if not secrets_:
        return "partner has no webhook secret"
    headers = webhook_signing.sign_headers(secrets_, webhook_id, int(time.time()), body)
    headers["Content-Type"] = "application/json"
    headers["User-Agent"] = "hashbank-webhooks/1"
    try:
        status, reply = http_post_within(
            url,
            body,
            headers,
            deadline_s=settings.HASHBANK_WEBHOOK_TIMEOUT_S,
            allow_private=settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE,
        )
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= status < 300:
        return None
    return f"HTTP {status}: {reply[:200].decode('utf-8', 'replace')}"


class DeadlineExceeded(OSError):
    pass


class AddressRefusedError(ConnectionRefusedError):
    """The webhook's host is, or resolves to, an address the bank may not connect to."""


def http_post_within(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline_s: float,
    allow_private: bool,
    tls: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """POST ``body``; return the status and, for an error, at most ``REPLY_READ_MAX`` bytes
    of the reply.

    The whole exchange (connect, send, the reply's status line, headers and the
    bytes read) ends within ``deadline_s``, however slowly the server sends: a
    socket timeout bounds only the wait for the next byte, so a watchdog shuts
    the socket down at the deadline. (Name resolution is the system resolver's,
    bounded by its own timeouts.) Redirects are not followed.

    The host is resolved once, every address it has is checked
    (``exchange.client.addresses``, the one rule for where the bank may connect),
    and the connection goes to a checked address while TLS still verifies the
    hostname: a name that resolves elsewhere between check and connect (DNS
    rebinding) gets nowhere. ``tls`` replaces the certifi bundle (a private CA).
    """
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # An explicit port: http.client would read the last group of an IPv6 address as one.
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port or 443, timeout=deadline_s, context=tls or _tls_context()
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port or 80, timeout=deadline_s)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        checked = addresses.resolve_checked(host, port, allow_private=allow_private)
    except ValueError as exc:
        raise AddressRefusedError(str(exc)) from None

    def connect_checked(
        _address: object, timeout: float | None, source: tuple[str, int] | None = None
    ) -> socket.socket:
        return socket.create_connection((str(checked[0]), port), timeout, source)

    # http.client opens its socket here; HTTPS then wraps it for ``host`` (SNI, certificate).
    connection._create_connection = connect_checked  # type: ignore[attr-defined]
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    watchdog = threading.Timer(deadline_s, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.connect()
        if expired.is_set():  # it fired before there was a socket to shut down
            raise DeadlineExceeded(f"no connection within {deadline_s} s")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        # A success needs no body; an error's first bytes go into last_error.
        reply = b"" if 200 <= response.status < 300 else response.read(REPLY_READ_MAX)
        if expired.is_set():
            raise DeadlineExceeded(f"no complete answer within {deadline_s} s")
        return response.status, reply
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise DeadlineExceeded(f"no complete answer within {deadline_s} s") from exc
        raise
    finally:
        watchdog.cancel()
        connection.close()  # never read the rest of a reply


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # The CA bundle requests used before (certifi), so the same partners verify.
    return ssl.create_default_context(cafile=certifi.where())


def delivery_retry_at(*, delivery_id: int) -> datetime | None:
    """When a failed delivery may be tried again (None: it need not wait)."""
    return Delivery.objects.filter(pk=delivery_id).values_list("next_attempt_at", flat=True).first()


def delivery_lag(delivery: Delivery) -> tuple[int, float]:
    """(entries not yet acknowledged, age in seconds of the oldest of them)."""
    entries = max(0, delivery.hash_list.log_size - delivery.acked_position)
    if not entries:
        return 0, 0.0
    oldest = (
        LogEntry.objects.filter(hash_list=delivery.hash_list, index=delivery.acked_position)
        .values_list("timestamp", flat=True)
        .first()
    )
    return entries, max(0.0, time.time() - oldest) if oldest else 0.0


def delivery_redeliver_from(*, delivery: Delivery, index: int) -> None:
    """Operators: send everything again from ``index`` (e.g. after a partner lost data)."""
    if index < 0 or index > delivery.hash_list.log_size:
        raise ValueError("index out of range")
    Delivery.objects.filter(pk=delivery.pk).update(
        acked_position=index,
        batch_start=None,
        batch_end=None,
        webhook_id="",
        attempts=0,
        next_attempt_at=None,
    )
