"""Creating, checking and withdrawing a case through the public API."""

from __future__ import annotations

import pytest

from cases import case_numbers
from cases.models import Case
from hashbank.models import Hash, Hold
from tests.conftest import case_body, md5, pdq

pytestmark = pytest.mark.django_db


def create(api, body):
    response = api.post("/api/v1/cases", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_it_creates_an_adult_case_and_shows_number_and_pin_once(api):
    data = create(api, case_body(pdq("a"), md5("b")))
    assert data["list"] == "adult"
    assert case_numbers.canonical(data["case_number"])
    assert len(data["pin"]) == 8 and data["pin"].isdigit()
    assert [h["status"] for h in data["hashes"]] == ["active", "active"]
    assert Hash.objects.filter(published=True).count() == 2
    # Nothing stored could give the number or PIN back.
    case = Case.objects.get()
    stored = " ".join(str(v) for v in Case.objects.values().get().values())
    assert data["case_number"] not in stored
    assert case_numbers.canonical(data["case_number"]) not in stored
    assert data["pin"] not in stored
    assert case.pin_hash.startswith("$argon2id$")


def test_it_routes_under_18_at_capture_to_the_minor_list(api):
    data = create(api, case_body(pdq("m"), minor=True))
    assert data["list"] == "minor"
    assert Hash.objects.get().hash_list.slug == "minor"


def test_it_keeps_a_chosen_pin(api):
    data = create(api, case_body(pdq("p"), pin="correct horse"))
    assert data["pin"] == "correct horse"
    status = api.post(
        "/api/v1/cases/status",
        {"case_number": data["case_number"], "pin": "correct horse"},
        format="json",
    )
    assert status.status_code == 200


def test_it_normalises_upper_case_hashes_to_lower_case(api):
    value = pdq("u")["value"].upper()
    data = create(api, case_body({"algorithm": "pdq", "value": value, "quality": 80}))
    assert data["hashes"][0]["value"] == value.lower()


def test_status_shows_each_hash_state_and_creation_time(api):
    data = create(api, case_body(pdq("s1"), md5("s2")))
    response = api.post(
        "/api/v1/cases/status",
        {"case_number": data["case_number"], "pin": data["pin"]},
        format="json",
    )
    body = response.json()
    assert response.status_code == 200
    assert body["state"] == "active"
    assert body["created_at"] == data["created_at"]
    assert [(h["algorithm"], h["status"]) for h in body["hashes"]] == [
        ("pdq", "active"),
        ("md5", "active"),
    ]
    assert all("partners_received" in h and "partners_blocked" in h for h in body["hashes"])


def test_status_accepts_the_number_typed_loosely(api):
    data = create(api, case_body(pdq("loose")))
    typed = data["case_number"].replace("-", " ").lower().replace("0", "o").replace("1", "l")
    response = api.post(
        "/api/v1/cases/status", {"case_number": typed, "pin": data["pin"]}, format="json"
    )
    assert response.status_code == 200


def test_withdraw_unpublishes_the_case_hashes(api):
    data = create(api, case_body(pdq("w1"), md5("w2")))
    creds = {"case_number": data["case_number"], "pin": data["pin"]}
    response = api.post("/api/v1/cases/withdraw", creds, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    assert {h["status"] for h in response.json()["hashes"]} == {"withdrawn"}
    assert not Hash.objects.filter(published=True).exists()
    assert not Hold.objects.filter(active=True).exists()


def test_withdraw_is_idempotent_and_irreversible(api):
    data = create(api, case_body(pdq("i1")))
    creds = {"case_number": data["case_number"], "pin": data["pin"]}
    first = api.post("/api/v1/cases/withdraw", creds, format="json").json()
    second = api.post("/api/v1/cases/withdraw", creds, format="json").json()
    assert first == second
    status = api.post("/api/v1/cases/status", creds, format="json").json()
    assert status["state"] == "withdrawn"
    assert not Hash.objects.get().published


def test_withdraw_keeps_a_hash_that_another_active_case_holds(api):
    shared = pdq("shared")
    first = create(api, case_body(shared, md5("only-first")))
    create(api, case_body(shared))
    assert Hash.objects.count() == 2  # one record per (list, algorithm, value)
    api.post(
        "/api/v1/cases/withdraw",
        {"case_number": first["case_number"], "pin": first["pin"]},
        format="json",
    )
    published = {h.value: h.published for h in Hash.objects.all()}
    assert published[shared["value"]] is True
    assert published[md5("only-first")["value"]] is False


def test_the_same_hash_on_both_lists_is_two_records(api):
    create(api, case_body(pdq("both")))
    create(api, case_body(pdq("both"), minor=True))
    assert sorted(Hash.objects.values_list("hash_list__slug", flat=True)) == ["adult", "minor"]


def test_the_page_explains_the_service(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"never leave your device" in response.content
