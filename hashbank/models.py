"""Lists, hashes and the holds that keep a hash published."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils import timezone


class HashList(models.Model):
    """A list partners subscribe to: `adult` and `minor` exist from the first migration."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    requires_explicit_grant = models.BooleanField(
        default=False,
        help_text="Partners see this list only through a separate, explicit grant (minor list).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The log's head, updated under the list's row lock in the same transaction
    # as every append (hashbank.log): its size, the O(log n) right edge of the
    # Merkle tree, and the newest entry time. Checkpoints are signed from it.
    log_size = models.BigIntegerField(default=0, editable=False)
    tree_edge = models.JSONField(default=dict, editable=False)
    log_last_timestamp = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Hash(models.Model):
    """One hash value in one list, whatever number of cases hold it.

    ``published`` is derived state: only ``hashbank.services`` writes it, from
    the hash's holds and reviewer decisions, under the list's row lock.
    """

    # Indexed by the unique constraint below, which leads with it.
    hash_list = models.ForeignKey(
        HashList, on_delete=models.PROTECT, related_name="hashes", db_index=False
    )
    algorithm = models.CharField(max_length=16)
    value = models.CharField(max_length=512)
    quality = models.PositiveSmallIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now, editable=False)
    published = models.BooleanField(default=False)
    disabled = models.BooleanField(
        default=False, help_text="Set by reviewers' decisions; a disabled hash is never published."
    )
    under_review = models.BooleanField(
        default=False, help_text="A reviewer is looking into it (reviewers' disputes)."
    )
    review_hold = models.BooleanField(
        default=False,
        help_text=(
            "Held for review: not published until a reviewer decides (a new hash that matched "
            "the allowlist)."
        ),
    )
    changed_at = models.DateTimeField(default=timezone.now)
    origin = models.CharField(
        max_length=255,
        blank=True,
        help_text=(
            "For hashes published as imports from a peer bank: the log origin their add entry "
            "names (provenance). Empty when a local case holds them."
        ),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hash_list", "algorithm", "value"], name="hash_unique_per_list"
            ),
        ]
        indexes = [
            # Published counts per list (admin). Partial, so that the unique
            # constraint is the only index a lookup by list and value can take:
            # with statistics not yet caught up (a young table, a prepared
            # plan), PostgreSQL once probed by list and filtered every hash.
            models.Index(
                fields=["hash_list"],
                condition=models.Q(published=True),
                name="hash_published_per_list",
            )
        ]
        verbose_name_plural = "hashes"
        # Staff see a hash's value only with this permission (hashbank/admin.py):
        # a value lets whoever holds a file confirm it was submitted. README,
        # "Roles", says which roles get it.
        permissions = [("view_hash_value", "Can see hash values in full")]

    def __str__(self) -> str:
        # Shown in admin titles, breadcrumbs and its history, to any staff user:
        # so no part of the value.
        return f"{self.algorithm} hash #{self.pk} in list {self.hash_list_id}"


class HolderKind(models.TextChoices):
    """What keeps a hash published: a victim's case, or a peer bank's import."""

    CASE = "case"
    PEER = "peer"


@dataclass(frozen=True)
class Holder:
    """The owner of holds: a kind and the id of a row of the app that owns that kind.

    The bank stores both as columns and never reads the row itself, so it
    depends on none of the apps that hold hashes.
    """

    kind: HolderKind
    id: int

    def __str__(self) -> str:
        return f"{self.kind.label} {self.id}"


class Hold(models.Model):
    """A reason for a hash to be published: an active case, or a federated import.

    ``origin`` is the provenance of a federated import (the log origin the peer
    gave the hash); it is empty for a local holder. The publish rule reads
    holds, never their kinds (``hashbank.services``).
    """

    # Indexed by the unique constraint below, which leads with it.
    hash = models.ForeignKey(Hash, on_delete=models.PROTECT, related_name="holds", db_index=False)
    holder_kind = models.CharField(max_length=8, choices=HolderKind.choices)
    holder_id = models.BigIntegerField()
    origin = models.CharField(
        max_length=255,
        blank=True,
        help_text="For a federated import: the log origin the peer gave this hash (provenance).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hash", "holder_kind", "holder_id"], name="hold_unique_per_holder"
            ),
        ]
        indexes = [models.Index(fields=["holder_kind", "holder_id"], name="hold_by_holder")]

    def __str__(self) -> str:
        return f"{self.holder} → {self.hash_id}"

    @property
    def holder(self) -> Holder:
        return Holder(HolderKind(self.holder_kind), self.holder_id)


class LogEntry(models.Model):
    """One entry of a list's append-only log: the exact leaf bytes and their hash.

    Entries are never deleted or changed, except ``redacted``: once a hash is
    removed, its ``add`` entry is served as its leaf hash only.
    """

    class Op(models.TextChoices):
        ADD = "add"
        REMOVE = "remove"

    # Indexed by the unique constraint below, which leads with it.
    hash_list = models.ForeignKey(
        HashList, on_delete=models.PROTECT, related_name="log", db_index=False
    )
    index = models.BigIntegerField()
    op = models.CharField(max_length=8, choices=Op.choices)
    hash = models.ForeignKey(Hash, on_delete=models.PROTECT, null=True, related_name="log_entries")
    leaf = models.BinaryField()
    leaf_hash = models.BinaryField()
    timestamp = models.BigIntegerField()
    removes = models.BigIntegerField(null=True, blank=True)
    redacted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hash_list", "index"], name="log_index_unique"),
        ]
        indexes = [models.Index(fields=["hash_list", "timestamp"])]
        verbose_name_plural = "log entries"

    def __str__(self) -> str:
        return f"{self.hash_list_id}#{self.index} {self.op}"


class TreeNode(models.Model):
    """A perfect-subtree hash at ``level`` >= 1 (level 0 is ``LogEntry.leaf_hash``).

    Node ``(level, idx)`` covers leaves ``[idx * 2**level, (idx + 1) * 2**level)``.
    They make inclusion and consistency proofs a single indexed lookup.
    """

    # Indexed by the unique constraint below, which leads with it.
    hash_list = models.ForeignKey(
        HashList, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    level = models.PositiveSmallIntegerField()
    idx = models.BigIntegerField()
    hash = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hash_list", "level", "idx"], name="tree_node_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.hash_list_id}:{self.level}/{self.idx}"
