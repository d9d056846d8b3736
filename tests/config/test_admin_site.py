"""The admin site: throttled sign-ins (django-axes) and TOTP two-factor (django-otp).

Sign-ins go through the real login view, as a browser's would; the TOTP code
is computed here from the otpauth:// URI that ``admin_totp_enrol`` prints
(RFC 6238), not by the library that checks it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-operator-password"


@pytest.fixture
def staff() -> User:
    user = User.objects.create_user("op", "op@example.org", PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_hash"))
    return user


@pytest.fixture
def require_2fa(settings: Any) -> None:
    settings.HASHBANK_ADMIN_REQUIRE_2FA = True


def totp(secret_b32: str, *, at: float | None = None) -> str:
    """RFC 6238 with RFC 4226's truncation: SHA-1, 30-second steps, 6 digits."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{code % 1_000_000:06d}"


def enrol(username: str, *extra: str) -> str:
    """Enrol through the command; returns the secret from the URI it printed."""
    out = StringIO()
    call_command("admin_totp_enrol", username, *extra, stdout=out)
    printed = out.getvalue()
    uri = next(line for line in printed.splitlines() if line.startswith("otpauth://"))
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert "▀" in printed or "█" in printed  # the QR code, drawn in the terminal
    return parse_qs(parts.query)["secret"][0]


def sign_in(client: Client, *, password: str = PASSWORD, **extra: str) -> Any:
    return client.post(reverse("admin:login"), {"username": "op", "password": password, **extra})


def admin_pages() -> list[str]:
    return [reverse("admin:index"), reverse("admin:hashbank_hash_changelist")]


def assert_sent_to_sign_in(client: Client) -> None:
    for url in admin_pages():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


# --- Two-factor sign-in -------------------------------------------------------


def test_an_unverified_staff_user_cannot_reach_admin_pages_when_2fa_is_required(
    client: Client, staff: User, require_2fa: None
) -> None:
    enrol("op")
    client.force_login(staff)  # a session from the password alone

    assert_sent_to_sign_in(client)


def test_a_password_alone_or_a_wrong_code_does_not_sign_in_when_2fa_is_required(
    client: Client, staff: User, require_2fa: None
) -> None:
    secret = enrol("op")
    wrong = f"{(int(totp(secret)) + 1) % 1_000_000:06d}"

    for response in (sign_in(client), sign_in(client, otp_token=wrong)):
        assert response.status_code == 200  # the form again, with its error
        assert response.context["form"].errors
        assert_sent_to_sign_in(client)


def test_a_staff_user_reaches_the_admin_after_verifying_a_real_totp_code(
    client: Client, staff: User, require_2fa: None
) -> None:
    secret = enrol("op")

    response = sign_in(client, otp_token=totp(secret))

    assert response.status_code == 302, response.content.decode()[-1500:]
    for url in admin_pages():
        assert client.get(url).status_code == 200, url


def test_without_2fa_required_a_password_signs_in(client: Client, staff: User) -> None:
    assert sign_in(client).status_code == 302
    for url in admin_pages():
        assert client.get(url).status_code == 200, url


def test_enrolment_refuses_a_second_device_unless_replacing_and_the_old_one_then_fails(
    client: Client, staff: User, require_2fa: None
) -> None:
    first = enrol("op")
    with pytest.raises(CommandError, match="--replace"):
        enrol("op")
    second = enrol("op", "--replace")
    assert second != first

    assert sign_in(client, otp_token=totp(second)).status_code == 302
    # The lost phone's codes are refused. (A wrong code also makes django-otp
    # refuse the device's next code for a second, doubling each time: so last.)
    assert sign_in(Client(), otp_token=totp(first)).status_code == 200


def test_enrolment_refuses_unknown_and_non_staff_users_and_dry_run_creates_nothing(
    staff: User,
) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    User.objects.create_user("visitor", "v@example.org", PASSWORD)
    with pytest.raises(CommandError, match="no user"):
        enrol("nobody")
    with pytest.raises(CommandError, match="not staff"):
        enrol("visitor")
    out = StringIO()
    call_command("admin_totp_enrol", "op", "--dry-run", stdout=out)
    assert "otpauth" not in out.getvalue()
    assert not TOTPDevice.objects.exists()


# --- Throttled sign-in (django-axes) ------------------------------------------


def test_failed_sign_ins_lock_the_account_from_that_address_with_a_clear_page(
    client: Client, staff: User, settings: Any
) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert sign_in(client, password="wrong password").status_code == 200

    locked = sign_in(client, password="wrong password")
    after = sign_in(client)  # the right password, too late

    for response in (locked, after):
        assert response.status_code == 429
        page = response.content.decode()
        assert "Sign-in locked" in page
        assert f"{limit} failed sign-ins" in page
        assert "15 minutes" in page
        assert "axes_reset_username" in page
    assert client.get(reverse("admin:index")).status_code == 302  # not signed in

    # Another address is not locked out of the same account ...
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert sign_in(elsewhere).status_code == 302
    # ... and an operator can lift the lock.
    call_command("axes_reset_username", "op", stdout=StringIO())
    assert sign_in(client).status_code == 302


def test_a_successful_sign_in_resets_the_failure_count(
    client: Client, staff: User, settings: Any
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, password="wrong password")
    assert sign_in(client).status_code == 302
    client.logout()

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, password="wrong password").status_code == 200
