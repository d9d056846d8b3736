"""Messages a person reads come in English, Dutch and Swedish, by Accept-Language."""

from __future__ import annotations

import pytest

from tests.conftest import case_body, pdq

pytestmark = pytest.mark.django_db

REFUSED = {
    **case_body(pdq("lang")),
    "eligibility": {
        "in_image": False,
        "under_18_at_capture": False,
        "has_media": True,
        "intimate": True,
    },
}


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "only take hashes from the person in the image"),
        ("nl", "alleen hashes aannemen van de persoon op de afbeelding"),
        ("sv", "bara ta emot hashar från personen på bilden"),
        ("nl-BE,nl;q=0.9,en;q=0.5", "alleen hashes aannemen"),
        ("de", "only take hashes from the person in the image"),
    ],
)
def test_refusals_are_in_the_asked_language(api, language, expected):
    response = api.post("/api/v1/cases", REFUSED, format="json", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 422
    assert expected in response.json()["message"]
    assert response.json()["code"] == "not_eligible"  # codes never change with language


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "is not right"), ("nl", "klopt niet"), ("sv", "stämmer inte")],
)
def test_credential_errors_are_translated(api, language, expected):
    from cases import case_numbers

    response = api.post(
        "/api/v1/cases/status",
        {"case_number": case_numbers.generate(), "pin": "123456"},
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert expected in response.json()["message"]


@pytest.mark.parametrize(
    ("language", "expected"), [("nl", "Schrijf je zaaknummer"), ("sv", "Skriv upp ditt")]
)
def test_the_created_message_is_translated(api, language, expected):
    response = api.post(
        "/api/v1/cases",
        case_body(pdq("m" + language)),
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert expected in response.json()["message"]


def test_the_page_is_translated(client):
    # The page's address decides its language (no cookie needed to switch); a browser
    # asking for Swedish at / is offered the Swedish page.
    assert "Stoppa spridningen av dina intima bilder" in client.get("/sv/").content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert '<a href="/sv/" hreflang="sv">Den här sidan finns också på svenska</a>' in english
