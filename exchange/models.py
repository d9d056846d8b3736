"""Partners (platforms that receive the lists), their grants and credentials."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from hashbank.models import HashList


class Partner(models.Model):
    """A platform that receives hash lists. Managed by operators in admin."""

    name = models.CharField(max_length=100, unique=True)
    contact_name = models.CharField(max_length=100, blank=True)
    contact_email = models.EmailField(blank=True, help_text="The platform's operational contact.")
    active = models.BooleanField(
        default=True, help_text="An inactive partner's credentials stop working at once."
    )
    lists = models.ManyToManyField(HashList, through="ListGrant", related_name="partners")
    webhook_url = models.URLField(blank=True, help_text="Where new entries are pushed (optional).")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # DRF treats the authenticated partner as request.user.
    is_authenticated = True
    is_anonymous = False


class ListGrant(models.Model):
    """Permission for a partner to read one list.

    Lists that require an explicit grant (``minor``) need ``explicit_confirmation``:
    an operator must tick it separately, so adding the list by accident is not
    enough.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="grants")
    hash_list = models.ForeignKey(HashList, on_delete=models.PROTECT, related_name="grants")
    explicit_confirmation = models.BooleanField(
        default=False,
        help_text="Required for lists such as 'minor': confirms this partner is authorised for it.",
    )
    granted_at = models.DateTimeField(default=timezone.now, editable=False)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "hash_list"], name="grant_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.partner} may read {self.hash_list}"

    def clean(self) -> None:
        if (
            self.hash_list_id
            and self.hash_list.requires_explicit_grant
            and not self.explicit_confirmation
        ):
            raise ValidationError(
                {
                    "explicit_confirmation": (
                        f"The {self.hash_list.slug} list needs an explicit grant: tick the "
                        "confirmation box."
                    )
                }
            )

    @property
    def effective(self) -> bool:
        return self.explicit_confirmation or not self.hash_list.requires_explicit_grant


class Credential(models.Model):
    """A secret a partner presents. Only its SHA-256 is stored; it is shown once."""

    class Kind(models.TextChoices):
        BEARER = "bearer", "Bearer token (native API)"
        SUBSCRIPTION_KEY = "subscription_key", "StopNCII subscription key"
        FETCH_FUNCTION_KEY = "fetch_function_key", "StopNCII function key: FetchHashes"
        FEEDBACK_FUNCTION_KEY = "feedback_function_key", "StopNCII function key: SubmitFeedback"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(
        max_length=12, editable=False, help_text="First characters, to tell credentials apart."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["partner", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.hint}…"


class PartnerListState(models.Model):
    """What a partner has fetched from a list, and when (shown in admin)."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="list_states")
    hash_list = models.ForeignKey(HashList, on_delete=models.PROTECT, related_name="+")
    last_fetch_at = models.DateTimeField(null=True, blank=True)
    last_fetch_position = models.BigIntegerField(
        default=0, help_text="Index after the last entry fetched."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "hash_list"], name="list_state_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.partner} @ {self.hash_list}: {self.last_fetch_position}"
