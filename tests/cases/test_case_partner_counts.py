"""Case status shows how many partners received each hash and confirmed blocking it,
never which ones."""

from __future__ import annotations

import pytest

from cases.services import case_withdraw
from exchange.feeds.services import FeedbackItem, feedback_submit
from exchange.models import Delivery, PartnerListState
from tests.conftest import md5, pdq

pytestmark = pytest.mark.django_db


def status(api, created):
    response = api.post(
        "/api/v1/cases/status",
        {"case_number": created.case_number, "pin": created.pin},
        format="json",
    )
    assert response.status_code == 200
    return response.json()


def test_counts_partners_that_pulled_were_pushed_and_confirmed_blocking(
    api, make_case, make_partner, partner_api
):
    created = make_case(pdq("counted"), md5("later"))
    assert [
        (h["partners_received"], h["partners_blocked"]) for h in status(api, created)["hashes"]
    ] == [
        (0, 0),
        (0, 0),
    ]
    # One partner pulls only the first entry, another pulls both.
    partner_api("adult").get("/exchange/v1/lists/adult/entries?start=0&limit=1")
    partner_api("adult").get("/exchange/v1/lists/adult/entries?start=0&limit=2")
    # A third was pushed both entries.
    pushed, _ = make_partner(("adult",))
    Delivery.objects.create(partner=pushed, hash_list=created.case.hash_list, acked_position=2)
    # A partner of the minor list only does not count.
    partner_api("minor").get("/exchange/v1/lists/minor/entries")
    feedback_submit(
        partner=pushed,
        items=[FeedbackItem("adult", "pdq", pdq("counted")["value"], "blocked")],
        via="native",
    )
    body = status(api, created)
    assert [(h["partners_received"], h["partners_blocked"]) for h in body["hashes"]] == [
        (3, 1),
        (2, 0),
    ]
    assert "Platform" not in str(body)  # no partner names


def test_not_blocked_feedback_is_not_counted_as_blocked(api, make_case, make_partner):
    created = make_case(pdq("nb"))
    partner, _ = make_partner(("adult",))
    feedback_submit(
        partner=partner,
        items=[FeedbackItem("adult", "pdq", pdq("nb")["value"], "not_blocked")],
        via="native",
    )
    assert status(api, created)["hashes"][0]["partners_blocked"] == 0


def test_a_partner_counts_once_and_only_past_the_newest_add(api, make_case, make_partner):
    first = make_case(pdq("again"))
    partner, _ = make_partner(("adult",))
    adult = first.case.hash_list
    # Pulled the first add (index 0) and was pushed it too: one partner, not two.
    PartnerListState.objects.create(partner=partner, hash_list=adult, last_fetch_position=1)
    Delivery.objects.create(partner=partner, hash_list=adult, acked_position=1)
    assert status(api, first)["hashes"][0]["partners_received"] == 1
    # Withdrawn (remove at 1) and submitted again (add at 2): the partner has
    # not received the new add, whatever it saw of the old one.
    case_withdraw(case=first.case)
    second = make_case(pdq("again"))
    assert status(api, second)["hashes"][0]["partners_received"] == 0
    Delivery.objects.filter(partner=partner).update(acked_position=3)
    assert status(api, second)["hashes"][0]["partners_received"] == 1


def test_partner_positions_are_kept_per_process_for_the_configured_time(
    api, make_case, make_partner, settings
):
    """Within HASHBANK_PARTNER_POSITIONS_CACHE_S a status may show the counts as they were;
    after it, as they are (tests run with the cache off; conftest)."""
    from exchange.selectors import partner_positions_cache_clear

    settings.HASHBANK_PARTNER_POSITIONS_CACHE_S = 60
    created = make_case(pdq("lagging"))
    partner, _ = make_partner(("adult",))
    assert status(api, created)["hashes"][0]["partners_received"] == 0
    PartnerListState.objects.create(
        partner=partner, hash_list=created.case.hash_list, last_fetch_position=1
    )
    assert status(api, created)["hashes"][0]["partners_received"] == 0  # as it was
    partner_positions_cache_clear()  # the time has passed
    assert status(api, created)["hashes"][0]["partners_received"] == 1
    settings.HASHBANK_PARTNER_POSITIONS_CACHE_S = 0
    pushed, _ = make_partner(("adult",))
    Delivery.objects.create(partner=pushed, hash_list=created.case.hash_list, acked_position=1)
    assert status(api, created)["hashes"][0]["partners_received"] == 2  # read fresh each time
