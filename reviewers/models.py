"""Disputes over hashes, the reviewers' decisions on them (the journal), and the allowlist."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

from hashbank.models import Hash


class DisputeReason(models.TextChoices):
    FEEDBACK = "feedback", "partners report not blocked"
    ALLOWLIST = "allowlist", "allowlist match"
    FLAG = "flag", "flagged by an operator"


class DisputeState(models.TextChoices):
    OPEN = "open"
    DISABLE_PROPOSED = "disable_proposed", "disable proposed (awaiting a second reviewer)"
    ESCALATED = "escalated", "escalated to an operator"
    CLOSED = "closed"


class Dispute(models.Model):
    """Why a hash is under review, who is working on it, and how it ended.

    At most one dispute per hash is unresolved at a time. Its state changes only
    through ``reviewers.services``, each change with a ``Decision`` in the journal.
    """

    hash = models.ForeignKey(Hash, on_delete=models.PROTECT, related_name="disputes")
    reason = models.CharField(max_length=16, choices=DisputeReason.choices)
    state = models.CharField(max_length=16, choices=DisputeState.choices, default=DisputeState.OPEN)
    detail = models.JSONField(
        default=dict,
        blank=True,
        help_text="What opened it: the allowlist entry and distance, the partners, the flag.",
    )
    opened_at = models.DateTimeField(default=timezone.now)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who took it, so two people don't work on it unknowingly.",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who proposed disabling the hash; a different reviewer must confirm.",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hash"],
                condition=~models.Q(state="closed"),
                name="dispute_one_unresolved_per_hash",
            )
        ]
        indexes = [models.Index(fields=["state", "opened_at"], name="dispute_queue")]
        permissions = [
            ("take_dispute", "Can take a dispute (assign it to oneself)"),
            ("decide_dispute", "Can keep, propose disabling, re-enable or escalate"),
            ("confirm_disable", "Can confirm another reviewer's disable"),
            ("decide_escalated", "Can take and decide a dispute escalated to an operator"),
            ("flag_hash", "Can flag a hash for review"),
        ]

    def __str__(self) -> str:
        return f"dispute {self.pk} ({self.reason}, {self.state})"


class DecisionQuerySet(models.QuerySet["Decision"]):
    """The journal's queries: reading only. Bulk changes are refused."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise JournalImmutable("the reviewers' journal can't be changed")

    def delete(self) -> NoReturn:
        raise JournalImmutable("the reviewers' journal can't be deleted from")

    # bulk_update goes through update(); _raw_delete through the collector.
    def _raw_delete(self, using: Any) -> NoReturn:
        raise JournalImmutable("the reviewers' journal can't be deleted from")


class JournalImmutable(Exception):
    """A decision once stored is never changed or deleted."""


class DecisionAction(models.TextChoices):
    FLAG = "flag"
    TAKE = "take"
    KEEP = "keep"
    DISABLE = "disable", "propose disable"
    CONFIRM_DISABLE = "confirm_disable", "confirm disable"
    REENABLE = "reenable", "re-enable"
    ESCALATE = "escalate"


class Decision(models.Model):
    """One entry of the reviewers' journal: who decided what, when, why, seeing what.

    Append-only: ``save`` refuses to change a stored decision, ``delete`` and the
    queryset's ``update``/``delete`` refuse always; admin shows it read-only.
    """

    dispute = models.ForeignKey(
        Dispute, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    hash = models.ForeignKey(Hash, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=DecisionAction.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The name at the time: the journal reads the same after an account is renamed.
    username = models.CharField(max_length=150)
    decided_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    signals = models.JSONField(
        default=dict, help_text="What the reviewer was shown when deciding (a snapshot)."
    )

    objects = DecisionQuerySet.as_manager()

    class Meta:
        ordering = ["decided_at", "pk"]
        permissions = [("export_journal", "Can export the journal as JSON Lines")]

    def __str__(self) -> str:
        return f"{self.decided_at:%Y-%m-%d %H:%M} {self.username} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None or kwargs.get("force_update"):
            raise JournalImmutable("a stored decision can't be changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise JournalImmutable("a stored decision can't be deleted")


class AllowlistEntry(models.Model):
    """A known, widely shared, non-intimate image (or video): a new hash that matches one
    is held until a reviewer decides. Entries are added or deleted, never edited."""

    algorithm = models.CharField(max_length=16)
    value = models.CharField(max_length=512)
    description = models.CharField(max_length=200, blank=True)
    added_at = models.DateTimeField(default=timezone.now, editable=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["algorithm", "value"], name="allowlist_unique")
        ]
        verbose_name = "allowlist entry"
        verbose_name_plural = "allowlist"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value[:16]}…"
