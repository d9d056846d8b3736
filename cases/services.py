"""What happens to a victim's case: creation, authentication, withdrawal.

Cases call the bank's services (``hashbank.services``) to hold and release
hashes; they never touch a hash's published state or the log directly.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Case as SqlCase
from django.db.models import F, Q, Value, When
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
    after the same statements and the same Argon2 work, so none can be told from
    another, by the answer or by its time. A number with
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
    case, reserved = _attempt_reserve(number_digest=case_number_digest(canonical))
    if case is None or not reserved:
        # Unknown or locked: the same Argon2 work as a wrong PIN, after the same statements.
        pins.spend_equal_time(pin)
        raise _invalid_credentials()
    if not pins.verify(case.pin_hash, pin):
        # The attempt stays counted: it was reserved as a failure.
        raise _invalid_credentials()
    _attempt_give_back(case=case)
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


def _attempt_reserve(*, number_digest: str) -> tuple[Case | None, bool]:
    """Count a PIN attempt as a failure before the PIN is checked; the case and whether it was.

    The lock is one rule, in this UPDATE's condition: a case whose count reached
    HASHBANK_PIN_MAX_FAILURES is locked for HASHBANK_PIN_FAILURE_WINDOW_S from the
    attempt that reached it; otherwise the count restarts once its window has passed.
    The database applies concurrent UPDATEs of one row one after another and
    re-checks the condition each time, so of any number of simultaneous guesses at
    most the maximum are counted, and only counted attempts reach the PIN hash.
    Unknown, locked and open cases run the same statements.
    """
    now = timezone.now()
    window = timedelta(seconds=settings.HASHBANK_PIN_FAILURE_WINDOW_S)
    maximum = settings.HASHBANK_PIN_MAX_FAILURES
    expired = Q(failed_pin_window_start__isnull=True) | Q(failed_pin_window_start__lte=now - window)
    with _counting_transaction():
        reserved = Case.objects.filter(
            expired | Q(failed_pin_count__lt=maximum), number_digest=number_digest
        ).update(
            failed_pin_count=SqlCase(
                When(expired, then=Value(1)), default=F("failed_pin_count") + 1
            ),
            failed_pin_window_start=SqlCase(
                When(expired, then=Value(now)),
                # The attempt that reaches the maximum starts the lock's whole window.
                When(failed_pin_count=maximum - 1, then=Value(now)),
                default=F("failed_pin_window_start"),
            ),
        )
        # In the same transaction: this is the row as our UPDATE left it.
        case = Case.objects.filter(number_digest=number_digest).first()
    return case, reserved == 1


def _attempt_give_back(*, case: Case) -> None:
    """Un-count the attempt a right PIN reserved.

    Only in the window it was counted in: if the window moved on meanwhile (a
    lock started by concurrent guesses), the attempt stays counted, on the safe side.
    Its commit does not wait for the WAL flush either: a crash that loses it leaves the
    attempt counted, again on the safe side, and the owner's answer does not wait.
    """
    with _counting_transaction():
        Case.objects.filter(
            pk=case.pk,
            failed_pin_window_start=case.failed_pin_window_start,
            failed_pin_count__gt=0,
        ).update(
            failed_pin_count=F("failed_pin_count") - 1,
            failed_pin_window_start=SqlCase(
                When(failed_pin_count=1, then=Value(None)), default=F("failed_pin_window_start")
            ),
        )


@contextmanager
def _counting_transaction() -> Iterator[None]:
    """A transaction whose commit does not wait for its WAL flush (PostgreSQL).

    A counted attempt writes a row and an unknown or locked case writes none;
    waiting for the flush (~2 ms) would tell them apart by time. Giving back a right
    PIN's attempt needs no flush either (``_attempt_give_back``). Other
    transactions see the count at once, so the lock is as strict; a database
    crash may lose the last fraction of a second of counts. Inside a caller's
    transaction the setting would cover all of it, so it is left alone there.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


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
