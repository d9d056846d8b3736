"""The bank's services for reviewers' decisions, and its screener registration, without
the reviewers app's logic: the one publish rule decides every outcome."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from hashbank import services
from hashbank.models import Hash, HashList, LogEntry
from reviewers.services import allowlist_screen
from tests.conftest import md5, pdq

pytestmark = pytest.mark.django_db


def ops(h: Hash) -> list[tuple[str, bool]]:
    return list(LogEntry.objects.filter(hash=h).order_by("index").values_list("op", "redacted"))


def test_disable_removes_and_redacts_and_enable_adds_again(make_case):
    make_case(pdq("a"))
    h = Hash.objects.get()
    services.hash_review_start(hash_id=h.pk)
    h.refresh_from_db()
    assert h.published and h.under_review, "under review alone changes nothing"
    h = services.hash_disable(hash_id=h.pk)
    assert h.disabled and not h.published and not h.under_review
    assert ops(h) == [("add", True), ("remove", False)]
    assert services.hash_disable(hash_id=h.pk).disabled  # idempotent
    assert len(ops(h)) == 2
    h = services.hash_enable(hash_id=h.pk)
    assert h.published and ops(h) == [("add", True), ("remove", False), ("add", False)]


def test_a_disabled_hash_is_not_published_by_a_new_holder(make_case):
    made = make_case(md5("v"))
    services.hash_disable(hash_id=made.hashes[0].pk)
    make_case(md5("v"))
    assert not Hash.objects.get().published


@pytest.fixture
def hold_pdq_only() -> Iterator[list[int]]:
    """A screener that holds every PDQ hash, recording what it was shown."""
    shown: list[int] = []

    def screen(*, hash_list: HashList, hashes: Sequence[Hash]) -> list[int]:
        shown.extend(h.pk for h in hashes)
        return [h.pk for h in hashes if h.algorithm == "pdq"]

    services.hash_screener_provide(screen)
    yield shown
    services.hash_screener_provide(allowlist_screen)  # what reviewers.apps registers


def test_the_screener_holds_new_hashes_until_review_ends(make_case, hold_pdq_only):
    make_case(pdq("held"), md5("free"))
    held = Hash.objects.get(algorithm="pdq")
    assert held.review_hold and held.under_review and not held.published
    assert ops(held) == []
    assert Hash.objects.get(algorithm="md5").published
    shown = list(hold_pdq_only)
    make_case(pdq("held"), md5("free"))
    assert hold_pdq_only == shown, "held and published hashes are not screened again"
    released = services.hash_review_end(hash_id=held.pk)
    assert released.published and not released.review_hold and ops(released) == [("add", False)]


def test_without_a_screener_everything_is_published(make_case):
    services.hash_screener_provide(None)
    try:
        make_case(pdq("x"))
    finally:
        services.hash_screener_provide(allowlist_screen)
    assert Hash.objects.get().published
