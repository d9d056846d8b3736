"""Partners, their grants and credentials: the operations operators perform."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from exchange.models import (
    Credential,
    Feedback,
    FeedbackEvent,
    FeedbackOutcome,
    ListGrant,
    Partner,
    PartnerListState,
)
from exchange.selectors import partner_lists
from exchange.ttl_cache import TtlCache
from hashbank.algorithms import HashValueError, normalise_value
from hashbank.models import Hash, HashList
from webapi.errors import InvalidInput

Kind = Credential.Kind
# What a new partner is given: the native token and the StopNCII-style keys.
PARTNER_KINDS = (
    Kind.BEARER,
    Kind.SUBSCRIPTION_KEY,
    Kind.FETCH_FUNCTION_KEY,
    Kind.FEEDBACK_FUNCTION_KEY,
)
_PREFIX = {Kind.BEARER: "hbt_", Kind.SUBSCRIPTION_KEY: "", Kind.FETCH_FUNCTION_KEY: "",
           Kind.FEEDBACK_FUNCTION_KEY: ""}  # fmt: skip
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
    granted_by: AbstractBaseUser | None = None,
) -> ListGrant:
    grant, _ = ListGrant.objects.update_or_create(
        partner=partner,
        hash_list=hash_list,
        defaults={"explicit_confirmation": explicit, "granted_by": granted_by},
    )
    grant.full_clean()
    return grant


def partner_create(
    *,
    name: str,
    lists: Iterable[str],
    webhook_url: str = "",
    contact_email: str = "",
) -> tuple[Partner, dict[str, str]]:
    """Create a partner with read grants and a full set of credentials.

    Naming a list that needs an explicit grant (``minor``) here is taken as
    that explicit grant. Returns the partner and its secrets, shown once.
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
        secrets_ = {kind: credential_issue(partner=partner, kind=kind) for kind in PARTNER_KINDS}
        if webhook_url:
            from exchange.delivery import partner_webhook_set

            secrets_["webhook_secret"] = partner_webhook_set(partner=partner, url=webhook_url)
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


def partner_record_fetch(*, partner: Partner, hash_list: HashList, position: int) -> None:
    """Remember how far the partner has fetched (for operators)."""
    now = timezone.now()
    updated = PartnerListState.objects.filter(partner=partner, hash_list=hash_list).update(
        last_fetch_at=now, last_fetch_position=position
    )
    if not updated:
        PartnerListState.objects.get_or_create(
            partner=partner,
            hash_list=hash_list,
            defaults={"last_fetch_at": now, "last_fetch_position": position},
        )


# --- Feedback (DESIGN.md section 7) -------------------------------------------------

MAX_FEEDBACK_ITEMS = 1000
MAX_FEEDBACK_TAGS = 20
MAX_FEEDBACK_TAG_LENGTH = 64


@dataclass(frozen=True)
class FeedbackItem:
    """One partner's outcome for one hash, as either feedback API submits it."""

    list: str
    algorithm: str
    value: str
    outcome: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackResult:
    ok: bool
    code: str | None = None
    message: str | None = None


def feedback_tags_clean(tags: Sequence[object]) -> list[str]:
    """At most 20 tags of 1-64 printable characters; duplicates dropped, order kept.

    Raises InvalidInput (``field="tags"``) otherwise.
    """
    if len(tags) > MAX_FEEDBACK_TAGS:
        raise InvalidInput(f"At most {MAX_FEEDBACK_TAGS} tags.", field="tags", code="too_many_tags")
    valid: list[str] = []
    for tag in tags:
        if (
            not isinstance(tag, str)
            or not 1 <= len(tag) <= MAX_FEEDBACK_TAG_LENGTH
            or not tag.isprintable()
        ):
            raise InvalidInput(
                f"A tag is 1 to {MAX_FEEDBACK_TAG_LENGTH} printable characters.",
                field="tags",
                code="invalid_tag",
            )
        valid.append(tag)
    return list(dict.fromkeys(valid))


def _feedback_item_clean(item: FeedbackItem) -> FeedbackItem:
    if item.outcome not in FeedbackOutcome.values:
        raise InvalidInput(
            f"Outcome must be one of: {', '.join(FeedbackOutcome.values)}.",
            field="outcome",
            code="invalid_choice",
        )
    try:
        value = normalise_value(item.algorithm, item.value)
    except HashValueError as exc:
        raise InvalidInput(exc.message, field=exc.field, code=exc.code) from None
    return replace(item, value=value, tags=tuple(feedback_tags_clean(item.tags)))


_UNKNOWN_HASH = FeedbackResult(
    ok=False, code="unknown_hash", message="No such hash in a list you can read."
)


def feedback_submit(
    *, partner: Partner, items: Sequence[FeedbackItem], via: str
) -> list[FeedbackResult]:
    """Record a batch of feedback in one transaction; returns one result per item, in order.

    Every item is validated first: a malformed one (outcome, tags, hash format)
    fails the whole batch with InvalidInput naming ``items[i].<field>``, and
    nothing is saved. A hash that is not in the named list, is not published
    (withdrawn or disabled, unless this partner gave feedback on it before), or
    is in a list the partner may not read, is a per-item ``unknown_hash`` error:
    the cases look the same, so a partner learns nothing it could not see. The
    partner's current outcome per hash is upserted (the last item wins when a
    batch names a hash twice) and every item is appended to the history.
    """
    if via not in FeedbackEvent.Via.values:
        raise ValueError(f"unknown feedback channel {via!r}")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise InvalidInput(
            f"At most {MAX_FEEDBACK_ITEMS} items per request.", field="items", code="max_length"
        )
    cleaned: list[FeedbackItem] = []
    for position, item in enumerate(items):
        try:
            cleaned.append(_feedback_item_clean(item))
        except InvalidInput as exc:
            exc.field = f"items[{position}].{exc.field}"
            raise
    with transaction.atomic():
        readable = dict(partner_lists(partner=partner).values_list("slug", "pk"))
        wanted = [c for c in cleaned if c.list in readable]
        found: dict[tuple[int, str, str], int] = {}
        if wanted:
            rows = list(
                Hash.objects.filter(
                    hash_list_id__in={readable[c.list] for c in wanted},
                    value__in={c.value for c in wanted},
                ).values_list("pk", "hash_list_id", "algorithm", "value", "published")
            )
            # Feedback is taken on published hashes only (or to update the partner's
            # own earlier feedback): otherwise anyone holding a value could learn that
            # it was once submitted and withdrawn.
            mine = set(
                Feedback.objects.filter(
                    partner=partner, hash_id__in=[r[0] for r in rows]
                ).values_list("hash_id", flat=True)
            )
            found = {
                (list_id, algorithm, value): pk
                for pk, list_id, algorithm, value, published in rows
                if published or pk in mine
            }
        now = timezone.now()
        results: list[FeedbackResult] = []
        events: list[FeedbackEvent] = []
        current: dict[int, Feedback] = {}
        for item in cleaned:
            list_id = readable.get(item.list)
            pk = found.get((list_id, item.algorithm, item.value)) if list_id else None
            if pk is None:
                results.append(_UNKNOWN_HASH)
                continue
            results.append(FeedbackResult(ok=True))
            fields = {"partner": partner, "hash_id": pk, "outcome": item.outcome}
            events.append(FeedbackEvent(**fields, tags=list(item.tags), via=via, created_at=now))
            current[pk] = Feedback(**fields, tags=list(item.tags), created_at=now, updated_at=now)
        FeedbackEvent.objects.bulk_create(events)
        # One row per hash: PostgreSQL refuses to update a row twice in one
        # INSERT ... ON CONFLICT, so the batch's last item for a hash wins here.
        Feedback.objects.bulk_create(
            list(current.values()),
            update_conflicts=True,
            unique_fields=["partner", "hash"],
            update_fields=["outcome", "tags", "updated_at"],
        )
    return results
