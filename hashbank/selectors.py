"""Read-only queries over lists and hashes."""

from __future__ import annotations

from django.db.models import QuerySet

from hashbank.models import Hold


def holder_hashes(*, holder: str) -> QuerySet[Hold]:
    """The holds of one holder with their hashes, in submission order."""
    return Hold.objects.filter(holder=holder).select_related("hash").order_by("pk")
