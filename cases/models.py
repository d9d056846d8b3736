"""A victim's case: which hashes it holds, and nothing that identifies the person.

The case number is stored only as a keyed hash (HMAC) and the PIN only as an
Argon2id hash: neither can be recovered. No client address, email address or
free text is ever stored.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from hashbank.models import HashList, Holder, HolderKind


class Case(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"
        WITHDRAWN = "withdrawn"

    # Unique through Meta.constraints: unique=True would also build a pattern
    # index on PostgreSQL that no query uses.
    number_digest = models.CharField(max_length=64, editable=False)
    pin_hash = models.CharField(max_length=255, editable=False)
    # Indexed by Meta.indexes, which leads with it.
    hash_list = models.ForeignKey(
        HashList, on_delete=models.PROTECT, related_name="cases", db_index=False
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True, editable=False)
    failed_pin_count = models.PositiveIntegerField(default=0, editable=False)
    failed_pin_window_start = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["number_digest"], name="case_number_digest_unique")
        ]
        indexes = [models.Index(fields=["hash_list", "state"])]

    def __str__(self) -> str:
        return f"Case #{self.pk}"

    @property
    def holder(self) -> Holder:
        """How the bank names this case's holds on hashes."""
        return Holder(HolderKind.CASE, self.pk)
