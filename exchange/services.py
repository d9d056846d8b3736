"""Partners, their grants and credentials: the operations operators perform."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.utils import timezone

from exchange import secret_box
from exchange.models import (
    Credential,
    ListAccess,
    ListGrant,
    Partner,
    Peer,
)
from exchange.selectors import partner_lists
from exchange.ttl_cache import TtlCache
from hashbank.models import HashList
from hashbank.services import hash_list_lock
from webapi.errors import InvalidInput

Kind = Credential.Kind
# What a new partner is given: the native token and the StopNCII-style keys.
PARTNER_KINDS = (
    Kind.BEARER,
    Kind.SUBSCRIPTION_KEY,
    Kind.FETCH_FUNCTION_KEY,
    Kind.FEEDBACK_FUNCTION_KEY,
)
_PREFIX: dict[str, str] = {
    Kind.BEARER: "hbt_",
    Kind.SUBSCRIPTION_KEY: "",
    Kind.FETCH_FUNCTION_KEY: "",
    Kind.FEEDBACK_FUNCTION_KEY: "",
}
LAST_USED_RESOLUTION = timedelta(minutes=1)


def credential_digest(secret: str) -> str:
    # Secrets are 256-bit random strings, so a fast hash is enough to make a
    # database leak useless; a slow hash would only slow every request.
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(kind: str) -> str:
    if kind == Kind.SUBSCRIPTION_KEY:
        return secrets.token_hex(16)
    return _PREFIX.get(kind, "") + secrets.token_urlsafe(32)


def credential_issue(*, partner: Partner, kind: str) -> str:
    """Create a credential and return its secret: the only time it is ever visible."""
    secret = _new_secret(kind)
    Credential.objects.create(
        partner=partner, kind=kind, digest=credential_digest(secret), hint=secret[:8]
    )
    return secret


def credentials_rotate(*, partner: Partner, kinds: Iterable[str]) -> dict[str, str]:
    """Revoke the partner's current credentials of these kinds and issue new ones."""
    with transaction.atomic():
        kinds = list(kinds)
        credentials_revoke(partner=partner, kinds=kinds)
        return {kind: credential_issue(partner=partner, kind=kind) for kind in kinds}


def credentials_revoke(*, partner: Partner, kinds: Iterable[str]) -> int:
    return Credential.objects.filter(
        partner=partner, kind__in=list(kinds), revoked_at__isnull=True
    ).update(revoked_at=timezone.now())


def partner_grant(
    *,
    partner: Partner,
    hash_list: HashList,
    explicit: bool = False,
    granted_by: User | None = None,
) -> ListGrant:
    """Let the partner read the list, or change its grant; checked before anything is saved.

    A list that needs an explicit grant (``minor``) refuses ``explicit=False``
    with InvalidInput naming ``explicit_confirmation``, and an existing grant
    stays as it was.
    """
    with transaction.atomic():
        grant = ListGrant.objects.select_for_update().filter(
            partner=partner, hash_list=hash_list
        ).first() or ListGrant(partner=partner, hash_list=hash_list)
        grant.explicit_confirmation = explicit
        grant.granted_by_id = granted_by.pk if granted_by is not None else None
        try:
            grant.full_clean()
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            raise InvalidInput(
                " ".join(messages), field=None if field == NON_FIELD_ERRORS else field
            ) from None
        grant.save()
    return grant


def list_access_refresh(*, partner_id: int) -> None:
    """Open or close the partner's ``ListAccess`` periods to match what it may read now.

    Runs after every save of a partner or a grant and every deletion of a grant
    (``exchange.apps`` connects it), inside the transaction that made the change,
    so the history and the change commit together. What "may read" means is
    ``partner_lists``, for an active partner. Each list whose state changes is
    locked (``hash_list_lock``, as every append locks it), so the log size
    recorded is exactly where the change falls in that list's log.
    """
    with transaction.atomic():
        # The partner's row lock serialises refreshes of one partner; lists are locked after it.
        partner = Partner.objects.select_for_update().filter(pk=partner_id).first()
        readable: set[int] = set()
        if partner is not None and partner.active:
            readable = set(partner_lists(partner=partner).values_list("pk", flat=True))
        open_periods = dict(
            ListAccess.objects.filter(partner_id=partner_id, end__isnull=True).values_list(
                "hash_list_id", "pk"
            )
        )
        starting = readable - open_periods.keys()
        ending = open_periods.keys() - readable
        now = timezone.now()
        for list_id in sorted(starting | ending):  # one lock order everywhere: by id
            size = hash_list_lock(hash_list_id=list_id).log_size
            if list_id in ending:
                ListAccess.objects.filter(pk=open_periods[list_id]).update(end=size, ended_at=now)
            else:
                ListAccess.objects.create(
                    partner_id=partner_id, hash_list_id=list_id, start=size, started_at=now
                )
        # Each grant shows where the partner's current access began (saving a stale
        # grant instance cannot leave a wrong value behind: this runs after every save).
        current = dict(
            ListAccess.objects.filter(partner_id=partner_id, end__isnull=True).values_list(
                "hash_list_id", "start"
            )
        )
        grants = ListGrant.objects.filter(partner_id=partner_id)
        grants.exclude(hash_list_id__in=list(current)).exclude(granted_log_size=None).update(
            granted_log_size=None
        )
        for list_id, start in current.items():
            grants.filter(hash_list_id=list_id).exclude(granted_log_size=start).update(
                granted_log_size=start
            )


def partner_create(
    *,
    name: str,
    lists: Iterable[str],
    contact_email: str = "",
) -> tuple[Partner, dict[str, str]]:
    """Create a partner with read grants and a full set of credentials.

    Naming a list that needs an explicit grant (``minor``) here is taken as
    that explicit grant. Returns the partner and its secrets, shown once.
    A webhook for push is set afterwards (``exchange.push.services.partner_webhook_set``).
    """
    slugs = [s for s in lists if s]
    hash_lists = {hl.slug: hl for hl in HashList.objects.filter(slug__in=slugs)}
    unknown = sorted(set(slugs) - set(hash_lists))
    if unknown:
        raise InvalidInput(f"unknown list(s): {', '.join(unknown)}", field="lists")
    if not name.strip():
        raise InvalidInput("a partner needs a name", field="name")
    with transaction.atomic():
        if Partner.objects.filter(name=name).exists():
            raise InvalidInput(f"a partner named {name!r} exists already", field="name")
        partner = Partner.objects.create(name=name, contact_email=contact_email)
        for slug in slugs:
            partner_grant(partner=partner, hash_list=hash_lists[slug], explicit=True)
        secrets_: dict[str, str] = {
            kind: credential_issue(partner=partner, kind=kind) for kind in PARTNER_KINDS
        }
    return partner, secrets_


_auth_cache: TtlCache[tuple[str, tuple[str, ...]], tuple[Partner, Credential]] = TtlCache()


def partner_authenticate(*, secret: str, kinds: Iterable[str]) -> tuple[Partner, Credential] | None:
    """The active partner holding this unrevoked credential of one of ``kinds``, if any.

    Successful lookups are cached per process for HASHBANK_AUTH_CACHE_S seconds
    (feeds are polled hard), so a revocation or deactivation takes effect
    within that time everywhere.
    """
    if not secret or len(secret) > 256:
        return None
    kinds = tuple(sorted(kinds))
    key = (credential_digest(secret), kinds)
    ttl = settings.HASHBANK_AUTH_CACHE_S
    hit = _auth_cache.get(key) if ttl else None
    if hit is not None:
        return hit
    credential = (
        Credential.objects.select_related("partner")
        .filter(digest=key[0], kind__in=kinds, revoked_at__isnull=True)
        .first()
    )
    if credential is None or not credential.partner.active:
        _auth_cache.discard(key)
        return None
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at > LAST_USED_RESOLUTION:
        Credential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now
    _auth_cache.put(key, (credential.partner, credential), ttl)
    return credential.partner, credential


def auth_cache_clear() -> None:
    _auth_cache.clear()


# Every secret the bank stores sealed (exchange.secret_box), with the purpose
# it was sealed for: where the field is written, the same purpose is used
# (exchange/push/services.py for webhooks, exchange/federation/services.py for
# peers). tests/exchange/test_encryption_key_rotate.py fails on a "_sealed"
# field missing here.
SEALED_FIELDS: tuple[tuple[type[models.Model], str, str], ...] = (
    (Partner, "webhook_secret_sealed", "webhook:{pk}"),
    (Partner, "webhook_previous_sealed", "webhook-previous:{pk}"),
    (Peer, "token_sealed", "peer:{pk}"),
)


@dataclass(frozen=True)
class ResealReport:
    sealed: int  # secrets found
    under_old_keys: int  # of which an old key opened (the rest were current already)


def secrets_reseal(*, dry_run: bool = False) -> ResealReport:
    """Seal every stored secret again under the current HASHBANK_ENCRYPTION_KEY.

    All or nothing: the rows are locked and rewritten in one transaction, and a
    secret that no accepted key opens (HASHBANK_ENCRYPTION_KEY_OLD incomplete)
    raises InvalidInput before anything is written. With ``dry_run`` every
    secret is opened and counted, and nothing is written.
    """
    sealed = under_old = 0
    with transaction.atomic():
        for model, field, purpose in SEALED_FIELDS:
            rows = model._default_manager.select_for_update().exclude(**{field: ""}).order_by("pk")
            for pk, token in rows.values_list("pk", field):
                try:
                    fresh, was_old = secret_box.reseal(token, purpose=purpose.format(pk=pk))
                except ValueError as exc:
                    raise InvalidInput(
                        f"{model._meta.label} {pk} {field}: {exc}",
                        field="HASHBANK_ENCRYPTION_KEY_OLD",
                    ) from None
                sealed += 1
                under_old += was_old
                if not dry_run:
                    model._default_manager.filter(pk=pk).update(**{field: fresh})
    return ResealReport(sealed=sealed, under_old_keys=under_old)
