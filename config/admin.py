"""The operators' admin site: a password and, where required, a TOTP code.

With HASHBANK_ADMIN_REQUIRE_2FA (on by default when DEBUG is off), a staff
user whose session was not verified by one of their TOTP devices
(django-otp) is treated as if they were not staff: every admin page sends them
to the sign-in form, which asks for the code. Devices are enrolled with
``manage.py admin_totp_enrol``. Failed sign-ins are throttled by django-axes
(config/settings.py, "Admin").
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm


class AdminTotpSignInForm(OTPAdminAuthenticationForm):
    """Password and TOTP code in one step.

    django-otp makes a user pick a device before it checks a code; a staff
    user with one device (what ``admin_totp_enrol`` gives them) need not.
    """

    def clean_otp(self, user: Any) -> None:
        if user is not None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, confirmed=True))
            if len(devices) == 1:
                self.cleaned_data["otp_device"] = devices[0].persistent_id
        super().clean_otp(user)


class HashbankAdminSite(admin.AdminSite):
    site_header = "hashbank"
    site_title = "hashbank admin"

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.HASHBANK_ADMIN_REQUIRE_2FA or request.user.is_verified()  # type: ignore[union-attr]

    # Read on each sign-in, so the setting decides per request rather than at import.
    @property
    def login_form(self) -> type[AdminAuthenticationForm]:  # type: ignore[override]
        return (
            AdminTotpSignInForm if settings.HASHBANK_ADMIN_REQUIRE_2FA else AdminAuthenticationForm
        )

    @property
    def login_template(self) -> str | None:  # type: ignore[override]
        return "otp/admin111/login.html" if settings.HASHBANK_ADMIN_REQUIRE_2FA else None


def lockout_page(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """What django-axes answers a locked-out sign-in: 429, and how long it lasts."""
    return render(
        request,
        "admin/lockout.html",
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
        },
        status=429,
    )
