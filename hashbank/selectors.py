"""Read-only queries over lists and hashes."""

from __future__ import annotations

import functools

from hashbank import store
from hashbank.models import HashList
from hashbank.store import HashRow


def holder_hashes(*, holder: str) -> list[HashRow]:
    """The hashes one holder holds or held, in submission order."""
    return store.hashes_of_holder(holder)


# Lists are never deleted (PROTECT) and their slugs never change (admin shows
# them read-only: the slug names the list in its log's signed checkpoints), so
# both directions can be remembered for the life of the process.


@functools.lru_cache(maxsize=64)
def list_slug(list_id: int) -> str:
    """A list's slug."""
    return HashList.objects.values_list("slug", flat=True).get(pk=list_id)


@functools.lru_cache(maxsize=64)
def list_id(slug: str) -> int:
    """A list's id, by its slug."""
    return HashList.objects.values_list("pk", flat=True).get(slug=slug)
