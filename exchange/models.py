"""Partners (platforms that receive the lists), their grants and credentials."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from hashbank.models import HashList, Holder, HolderKind


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
    # Sealed with HASHBANK_ENCRYPTION_KEY (exchange.secret_box): the bank signs
    # with it, so a one-way hash would not do. The previous secret keeps
    # co-signing until ``webhook_previous_until`` so partners can rotate calmly.
    webhook_secret_sealed = models.TextField(blank=True, editable=False)
    webhook_previous_sealed = models.TextField(blank=True, editable=False)
    webhook_previous_until = models.DateTimeField(null=True, blank=True, editable=False)
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
    granted_log_size = models.BigIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="The list's log size when this grant last let the partner read the list "
        "(empty while it does not).",
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


class ListAccess(models.Model):
    """A stretch of a list's log during which a partner could read the list.

    Positions, not clocks: ``start`` is the list's log size when the partner
    could first read it (granted, explicitly where required, and active), ``end``
    its size when that stopped (grant deleted, confirmation taken back, partner
    deactivated), NULL while it lasts. Both are read under the list's row lock,
    the lock every append takes, so each entry falls either side of them, never
    in between. A row outlives the grant that opened it: it is how FetchHashes
    knows that a value withdrawn while the partner could not see the list must
    never reach it. Kept by ``exchange.services.list_access_refresh`` only.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="list_access")
    hash_list = models.ForeignKey(HashList, on_delete=models.PROTECT, related_name="+")
    start = models.BigIntegerField(editable=False)
    end = models.BigIntegerField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(default=timezone.now, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "hash_list"],
                condition=models.Q(end__isnull=True),
                name="list_access_one_open",
            ),
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(end__gte=models.F("start")),
                name="list_access_ends_after_start",
            ),
        ]
        verbose_name_plural = "list access"

    def __str__(self) -> str:
        end = "" if self.end is None else self.end
        return f"{self.partner} read {self.hash_list} over [{self.start}, {end})"


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


class FeedbackOutcome(models.TextChoices):
    """What a partner's moderators concluded about a hash (docs/ARCHITECTURE.md, "Feedback")."""

    NONE = "none", "None (tags only)"
    PENDING_REVIEW = "pending_review", "Pending review"
    BLOCKED = "blocked", "Blocked"
    NOT_BLOCKED = "not_blocked", "Not blocked"


class Feedback(models.Model):
    """A partner's current outcome for one hash: one row per (partner, hash).

    Written only by ``exchange.feeds.services.feedback_submit``, together with the
    ``FeedbackEvent`` that records the submission.
    """

    Outcome = FeedbackOutcome

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="feedback")
    hash = models.ForeignKey(
        "hashbank.Hash", on_delete=models.PROTECT, related_name="partner_feedback"
    )
    outcome = models.CharField(max_length=16, choices=FeedbackOutcome.choices)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "hash"], name="feedback_unique_per_hash"),
        ]
        verbose_name_plural = "feedback"

    def __str__(self) -> str:
        return f"{self.partner_id} on {self.hash_id}: {self.outcome}"


class FeedbackEvent(models.Model):
    """One feedback submission, kept forever: append-only, never updated or deleted."""

    Outcome = FeedbackOutcome

    class Via(models.TextChoices):
        NATIVE = "native", "Native API"
        STOPNCII = "stopncii", "StopNCII-compatible API"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="feedback_events")
    hash = models.ForeignKey("hashbank.Hash", on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16, choices=FeedbackOutcome.choices, editable=False)
    tags = models.JSONField(default=list, blank=True, editable=False)
    via = models.CharField(max_length=16, choices=Via.choices, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["hash", "created_at"])]

    def __str__(self) -> str:
        return f"{self.partner_id} on {self.hash_id}: {self.outcome} ({self.via})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("feedback events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("feedback events are append-only")


class Delivery(models.Model):
    """Push state of one partner on one list: the outbox, derived from the log.

    What the partner is owed is ``[acked_position, log_size)`` of the list's log;
    Celery only does the sending. ``batch_*`` is the batch in flight, kept so a
    retry sends the same entries under the same ``webhook_id``. ``lease_until``
    lets exactly one worker deliver to a partner and list at a time.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="deliveries")
    hash_list = models.ForeignKey(HashList, on_delete=models.PROTECT, related_name="+")
    acked_position = models.BigIntegerField(
        default=0, help_text="Every entry below this index was delivered (2xx)."
    )
    batch_start = models.BigIntegerField(null=True, blank=True)
    batch_end = models.BigIntegerField(null=True, blank=True)
    webhook_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts of the current batch.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    degraded = models.BooleanField(default=False)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "hash_list"], name="delivery_unique"),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.partner} / {self.hash_list}: {self.acked_position}"


class Peer(models.Model):
    """Another hashbank whose list this bank imports (federation, docs/ARCHITECTURE.md section 2).

    The peer's log is verified exactly as a partner verifies it
    (``exchange.federation``). The verified state (``size``, ``root``, ``edge``,
    ``checkpoint``) is saved in the same transaction as the imports it covers.
    A refused sync sets ``stopped`` and ``alert``; nothing is imported from the
    peer again until an operator resumes it.
    """

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(
        max_length=500, help_text="The peer bank, e.g. https://bank.example.org"
    )
    remote_list = models.SlugField(max_length=64, help_text="The list to import at the peer.")
    # The bearer token the peer issued us, sealed with HASHBANK_ENCRYPTION_KEY
    # (exchange.secret_box, purpose "peer:<id>"): the bank must present it.
    token_sealed = models.TextField(blank=True, editable=False)
    vkeys = models.TextField(
        help_text="Pinned verifier keys of the peer's list, one per line (checked out of band)."
    )
    local_list = models.ForeignKey(
        HashList,
        on_delete=models.PROTECT,
        related_name="peers",
        help_text="The local list the hashes are imported into.",
    )
    active = models.BooleanField(default=True, help_text="Inactive peers are not synced.")
    size = models.BigIntegerField(default=0, editable=False, help_text="Verified log size.")
    # How far the peer's log is applied locally. A sync imports in batches, each
    # its own transaction (exchange.federation), so this runs ahead of ``size``
    # while an import is under way, or was cut short: the next sync, verifying
    # again from ``size``, skips what is applied already.
    applied_size = models.BigIntegerField(default=0, editable=False)
    root = models.CharField(max_length=44, blank=True, editable=False)
    edge = models.JSONField(default=dict, editable=False)
    checkpoint = models.TextField(blank=True, editable=False)
    last_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    stopped = models.BooleanField(default=False, editable=False)
    alert = models.TextField(blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def holder(self) -> Holder:
        """How the bank names this peer's holds on the hashes it imported."""
        return Holder(HolderKind.PEER, self.pk)


class PeerEntry(models.Model):
    """A live ``add`` of a peer's log: its index there, and the local hash it imported.

    A peer removes by index, so this is how its ``remove <index>`` finds the
    hash. ``hash`` is empty for adds verified but not imported: served
    redacted, or naming one of this bank's own origins (an echo). Rows are
    deleted when the peer removes the add.
    """

    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="entries")
    remote_index = models.BigIntegerField()
    hash = models.ForeignKey(
        "hashbank.Hash", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["peer", "remote_index"], name="peer_entry_unique"),
        ]
        indexes = [models.Index(fields=["peer", "hash"])]
        verbose_name_plural = "peer entries"

    def __str__(self) -> str:
        return f"{self.peer_id}#{self.remote_index} → {self.hash_id}"
