"""What happens to a victim's case: creation, authentication, withdrawal.

Cases call the bank's services (``hashbank.services``) to hold and release
hashes; they never touch a hash's published state or the log directly.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases import case_numbers, pins
from cases.models import Case
from hashbank.models import Hash, HashList
from hashbank.selectors import list_id
from hashbank.services import HashInput, hashes_hold, holds_release
from webapi.errors import InvalidCredentials, InvalidInput, NotEligible

logger = logging.getLogger(__name__)

ADULT_LIST = "adult"
MINOR_LIST = "minor"


@dataclass(frozen=True)
class Eligibility:
    in_image: bool
    under_18_at_capture: bool
    has_media: bool
    intimate: bool


@dataclass(frozen=True)
class CaseCreated:
    case: Case
    case_number: str
    pin: str
    hashes: list[Hash]


def case_number_digest(canonical_number: str) -> str:
    key = settings.HASHBANK_CASE_KEY.encode()
    return hmac.new(key, canonical_number.encode(), hashlib.sha256).hexdigest()


def _help_for(eligibility: Eligibility) -> list[str]:
    if eligibility.under_18_at_capture:
        return [
            _(
                "If you were under 18 in the image, you can still ask for it to be taken down: "
                "a trusted adult, a child-protection helpline or a hotline for young people can "
                "help you, and the platform where it appears has its own reporting tools."
            ),
        ]
    return [
        _(
            "If the image is already on a platform, use that platform's own reporting tools: "
            "they can remove it even when this service can't help."
        ),
        _("A victim support service or helpline in your country can help you with next steps."),
    ]


def eligibility_route(*, eligibility: Eligibility) -> str:
    """The list this case belongs on, or NotEligible with a kind explanation."""
    if not eligibility.in_image:
        reason, field = (
            _(
                "This service can only take hashes from the person in the image, so that nobody "
                "can have someone else's pictures blocked. If you are helping someone, they can "
                "make a case themselves."
            ),
            "eligibility.in_image",
        )
    elif not eligibility.has_media:
        reason, field = (
            _(
                "To make a case you need the image or video on your own device: it is hashed "
                "there, and the file itself never leaves your device."
            ),
            "eligibility.has_media",
        )
    elif not eligibility.intimate:
        reason, field = (
            _(
                "This service is only for intimate images (nude, partly nude or sexual). For "
                "other images, the platform's own reporting tools are the right place."
            ),
            "eligibility.intimate",
        )
    else:
        return MINOR_LIST if eligibility.under_18_at_capture else ADULT_LIST
    raise NotEligible(reason, field=field, extra={"help": _help_for(eligibility)})


def case_create(
    *,
    eligibility: Eligibility,
    hashes: list[HashInput],
    pin: str | None = None,
    email: str | None = None,
) -> CaseCreated:
    """Create a case holding these hashes; the number and PIN are returned once, never stored."""
    slug = eligibility_route(eligibility=eligibility)
    hash_list = HashList(pk=list_id(slug), slug=slug)
    chosen_pin = pin if pin is not None else pins.generate()
    # The slow hash runs before the transaction so no lock is held during it.
    pin_hash = pins.hash_pin(chosen_pin)
    number = case_numbers.generate()
    case = Case(
        number_digest=case_number_digest(case_numbers.canonical(number)),
        pin_hash=pin_hash,
        hash_list=hash_list,
    )
    # The case row and its holds commit together.
    with transaction.atomic():
        case.save(force_insert=True)
        held = hashes_hold(hash_list=hash_list, hashes=hashes, holder=case.holder)
    if email:
        language = translation.get_language()
        # At once, or when the caller's transaction commits.
        transaction.on_commit(lambda: _send_case_number(email, number, language))
    return CaseCreated(case=case, case_number=number, pin=chosen_pin, hashes=held)


def _send_case_number(email: str, number: str, language: str | None) -> None:
    """Send the case number once. The address is used here and then forgotten."""
    with translation.override(language):
        subject = _("Your case number")
        body = _(
            "Your case number is %(number)s.\n\n"
            "Keep it safe with your PIN: together they let you check your case or withdraw it "
            "at any time. Nobody can look them up for you, not even us.\n"
        ) % {"number": number}
    try:
        send_mail(subject, body, None, [email], fail_silently=False)
    except Exception as exc:
        # Neither the address nor the number may reach the logs.
        logger.warning("case-number email could not be sent (%s)", type(exc).__name__)


def case_authenticate(*, case_number: str, pin: str) -> Case:
    """The case these credentials open.

    Unknown case, wrong PIN and locked case all raise the same InvalidCredentials
    after the same Argon2 work, so none can be told from another. A number with
    a wrong check symbol is reported as mistyped: that needs no lookup.
    """
    try:
        canonical = case_numbers.canonical(case_number)
    except case_numbers.CaseNumberError as exc:
        if exc.code == "mistyped":
            raise InvalidInput(
                _("This case number has a typo: please check each character."),
                field="case_number",
                code="case_number_mistyped",
            ) from None
        raise InvalidInput(
            _("A case number has 16 letters and digits, like 7KQ4-M2XD-9PZA-3HC8."),
            field="case_number",
            code="case_number_malformed",
        ) from None
    case = Case.objects.filter(number_digest=case_number_digest(canonical)).first()
    now = timezone.now()
    window = timedelta(seconds=settings.HASHBANK_PIN_FAILURE_WINDOW_S)
    if case is None or _locked(case, now, window):
        pins.spend_equal_time(pin)
        raise _invalid_credentials()
    if not pins.verify(case.pin_hash, pin):
        _record_failure(case, now, window)
        raise _invalid_credentials()
    if case.failed_pin_count:
        Case.objects.filter(pk=case.pk).update(failed_pin_count=0, failed_pin_window_start=None)
    if pins.needs_rehash(case.pin_hash):
        Case.objects.filter(pk=case.pk).update(pin_hash=pins.hash_pin(pin))
    return case


def _invalid_credentials() -> InvalidCredentials:
    return InvalidCredentials(
        _(
            "The case number or PIN is not right. Please check both. After many wrong tries a "
            "case is paused for an hour to protect it."
        )
    )


def _locked(case: Case, now: datetime, window: timedelta) -> bool:
    return (
        case.failed_pin_count >= settings.HASHBANK_PIN_MAX_FAILURES
        and case.failed_pin_window_start is not None
        and case.failed_pin_window_start + window > now
    )


def _record_failure(case: Case, now: datetime, window: timedelta) -> None:
    """Count a wrong PIN in the current one-hour window, atomically."""
    fresh_window = Q(failed_pin_window_start__isnull=True) | Q(
        failed_pin_window_start__lte=now - window
    )
    restarted = Case.objects.filter(fresh_window, pk=case.pk).update(
        failed_pin_count=1, failed_pin_window_start=now
    )
    if not restarted:
        Case.objects.filter(pk=case.pk).update(failed_pin_count=F("failed_pin_count") + 1)


def case_withdraw(*, case: Case) -> Case:
    """Withdraw a case: irreversible and idempotent.

    Its hashes are unpublished unless another active case (or import) still
    holds the same hash.
    """
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        if locked.state == Case.State.ACTIVE:
            locked.state = Case.State.WITHDRAWN
            locked.withdrawn_at = timezone.now()
            locked.save(update_fields=["state", "withdrawn_at"])
        # A no-op when the case was already withdrawn.
        holds_release(holder=locked.holder)
    return locked
