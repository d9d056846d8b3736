"""Read-only queries over lists and hashes."""

from __future__ import annotations

from django.db.models import QuerySet

from hashbank.models import Hash, HashList, Hold


def hash_list_get(*, slug: str) -> HashList:
    return HashList.objects.get(slug=slug)


def holder_hashes(*, holder: str) -> QuerySet[Hold]:
    """The holds of one holder with their hashes, in submission order."""
    return Hold.objects.filter(holder=holder).select_related("hash").order_by("pk")


def hash_published_count(*, hash_list: HashList) -> int:
    return Hash.objects.filter(hash_list=hash_list, published=True).count()
