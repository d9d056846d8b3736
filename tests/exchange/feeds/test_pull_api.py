"""The partner pull API: keys, lists, checkpoints, entries and proofs."""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

from cases.services import case_withdraw
from exchange.models import Credential, ListGrant, PartnerListState
from exchange.services import credentials_rotate
from hashbank import tlog
from hashbank.models import HashList, Holder, HolderKind
from tests.conftest import md5, pdq

pytestmark = pytest.mark.django_db

PEER_9 = Holder(HolderKind.PEER, 9)


def body_of(response) -> bytes:
    """The body of a plain or a streamed (feed page) response."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def read(response) -> dict:
    import json

    return json.loads(body_of(response))


def vkeys(client: APIClient, slug: str) -> list[tlog.NoteVerifier]:
    keys = client.get("/exchange/v1/keys").json()["keys"]
    return [tlog.parse_vkey(k["vkey"]) for k in keys if k["list"] == slug]


def test_keys_are_public_and_verify_the_checkpoints(partner_api, make_case):
    make_case(pdq("k"))
    keys = APIClient().get("/exchange/v1/keys")
    assert keys.status_code == 200
    slugs = {k["list"] for k in keys.json()["keys"]}
    assert {"adult", "minor"} <= slugs
    assert all(k["status"] == "active" for k in keys.json()["keys"])
    note = partner_api("adult").get("/exchange/v1/lists/adult/checkpoint")
    assert note["Content-Type"] == "text/plain; charset=utf-8"
    opened = tlog.open_note(note.content.decode(), vkeys(APIClient(), "adult"))
    checkpoint = tlog.parse_checkpoint(opened.text)
    assert checkpoint.origin == "hashbank.localhost/lists/adult"
    assert checkpoint.size == 1


def test_an_empty_list_has_a_signed_checkpoint_of_the_empty_tree(partner_api):
    note = partner_api("adult").get("/exchange/v1/lists/adult/checkpoint").content.decode()
    checkpoint = tlog.parse_checkpoint(tlog.open_note(note, vkeys(APIClient(), "adult")).text)
    assert (checkpoint.size, checkpoint.root) == (0, tlog.EMPTY_ROOT)


def test_lists_shows_only_granted_lists(partner_api):
    body = partner_api("adult").get("/exchange/v1/lists/").json()
    assert [item["slug"] for item in body["lists"]] == ["adult"]
    both = partner_api("adult", "minor").get("/exchange/v1/lists/").json()
    assert [item["slug"] for item in both["lists"]] == ["adult", "minor"]


def test_the_minor_list_needs_an_explicit_grant(make_partner):
    partner, secrets = make_partner(("adult",))
    grant = ListGrant.objects.create(
        partner=partner, hash_list=HashList.objects.get(slug="minor"), explicit_confirmation=False
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
    assert client.get("/exchange/v1/lists/minor/checkpoint").status_code == 404
    grant.explicit_confirmation = True
    grant.save()
    assert client.get("/exchange/v1/lists/minor/checkpoint").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/exchange/v1/lists/",
        "/exchange/v1/lists/adult/checkpoint",
        "/exchange/v1/lists/adult/entries",
        "/exchange/v1/lists/adult/proof/consistency?old=0",
        "/exchange/v1/lists/adult/proof/inclusion?index=0",
    ],
)
def test_every_endpoint_needs_a_valid_token(make_partner, path):
    _, secrets = make_partner()
    assert APIClient().get(path).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer hbt_not-a-real-token")
    response = bad.get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    # A StopNCII key is not a Bearer token.
    wrong_kind = APIClient()
    wrong_kind.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['subscription_key']}")
    assert wrong_kind.get(path).status_code == 401


def test_revoked_and_rotated_tokens_stop_working(make_partner):
    partner, secrets = make_partner()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secrets['bearer']}")
    assert client.get("/exchange/v1/lists/").status_code == 200
    new = credentials_rotate(partner=partner, kinds=[Credential.Kind.BEARER])
    assert client.get("/exchange/v1/lists/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new['bearer']}")
    assert client.get("/exchange/v1/lists/").status_code == 200
    partner.active = False
    partner.save()
    assert client.get("/exchange/v1/lists/").status_code == 401


@pytest.mark.parametrize("slug", ["minor", "no-such-list"])
def test_an_ungranted_list_and_an_unknown_list_look_the_same(partner_api, slug):
    client = partner_api("adult")
    for path in ("checkpoint", "entries", "proof/consistency?old=0", "proof/inclusion?index=0"):
        response = client.get(f"/exchange/v1/lists/{slug}/{path}")
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "message": "No such list.", "field": "slug"}


def test_entries_carry_the_exact_leaves_and_a_covering_checkpoint(partner_api, make_case):
    make_case(pdq("e1"), md5("e2"))
    body = read(partner_api("adult").get("/exchange/v1/lists/adult/entries?start=0&limit=10"))
    assert body["next"] is None
    first, second = body["entries"]
    assert first == {
        "index": 0,
        "op": "add",
        "algorithm": "pdq",
        "value": pdq("e1")["value"],
        "quality": 90,
        "timestamp": first["timestamp"],
        "origin": None,
        "salt": first["salt"],
        "leaf": first["leaf"],
    }
    leaf = tlog.decode_leaf(base64.b64decode(first["leaf"]))
    assert leaf.salt == base64.b64decode(first["salt"])
    assert tlog.decode_leaf(base64.b64decode(second["leaf"])).value == md5("e2")["value"]
    checkpoint = tlog.parse_checkpoint(
        tlog.open_note(body["checkpoint"], vkeys(APIClient(), "adult")).text
    )
    hashes = [tlog.leaf_hash(base64.b64decode(e["leaf"])) for e in body["entries"]]
    assert checkpoint.size == 2
    assert tlog.root_from_leaf_hashes(hashes) == checkpoint.root


def test_entries_page_with_next(partner_api, make_case):
    for i in range(5):
        make_case(pdq(f"p{i}"))
    client = partner_api("adult")
    seen, start = [], 0
    while start is not None:
        body = read(client.get(f"/exchange/v1/lists/adult/entries?start={start}&limit=2"))
        seen += [e["index"] for e in body["entries"]]
        start = body["next"]
    assert seen == [0, 1, 2, 3, 4]
    state = PartnerListState.objects.get()
    assert state.last_fetch_position == 5 and state.last_fetch_at is not None


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("start=-1", "start", "invalid"),
        ("start=abc", "start", "invalid"),
        ("start=1.5", "start", "invalid"),
        ("start=%201", "start", "invalid"),
        ("start=99", "start", "out_of_range"),
        ("limit=0", "limit", "min_value"),
        ("limit=10001", "limit", "max_value"),
        ("limit=", "limit", "invalid"),
        ("start=99999999999999999999999", "start", "invalid"),
        ("begin=0", "begin", "unknown_field"),
    ],
)
def test_bad_entries_parameters_get_a_4xx_naming_the_parameter(
    partner_api, make_case, query, field, code
):
    make_case(pdq("bad"))
    response = partner_api("adult").get(f"/exchange/v1/lists/adult/entries?{query}")
    assert response.status_code == 400
    assert (response.json()["field"], response.json()["code"]) == (field, code)


def test_start_at_the_end_is_an_empty_page(partner_api, make_case):
    make_case(pdq("end"))
    body = read(partner_api("adult").get("/exchange/v1/lists/adult/entries?start=1"))
    assert body["entries"] == [] and body["next"] is None


def test_consistency_and_inclusion_proofs_verify(partner_api, make_case):
    client = partner_api("adult")
    verifiers = vkeys(APIClient(), "adult")
    roots = {}
    for i in range(7):
        make_case(pdq(f"c{i}"))
        note = client.get("/exchange/v1/lists/adult/checkpoint").content.decode()
        cp = tlog.parse_checkpoint(tlog.open_note(note, verifiers).text)
        roots[cp.size] = cp.root
    for old in range(1, 8):
        body = client.get(f"/exchange/v1/lists/adult/proof/consistency?old={old}&new=7").json()
        tlog.verify_consistency(
            old_size=old,
            new_size=7,
            old_root=roots[old],
            new_root=roots[7],
            proof=[base64.b64decode(p) for p in body["proof"]],
        )
    for index in range(7):
        body = client.get(f"/exchange/v1/lists/adult/proof/inclusion?index={index}&size=7").json()
        tlog.verify_inclusion(
            leaf_hash=base64.b64decode(body["leaf_hash"]),
            index=index,
            size=7,
            proof=[base64.b64decode(p) for p in body["proof"]],
            root=roots[7],
        )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("proof/consistency", "old"),
        ("proof/consistency?old=5&new=3", "old"),
        ("proof/consistency?old=1&new=9", "new"),
        ("proof/consistency?old=x", "old"),
        ("proof/inclusion", "index"),
        ("proof/inclusion?index=3", "index"),
        ("proof/inclusion?index=0&size=9", "size"),
        ("proof/inclusion?index=-1", "index"),
    ],
)
def test_bad_proof_parameters_get_a_4xx_naming_the_parameter(partner_api, make_case, path, field):
    make_case(pdq("a"), pdq("b"), pdq("c"))
    response = partner_api("adult").get(f"/exchange/v1/lists/adult/{path}")
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_a_partner_joining_after_a_withdrawal_never_receives_the_withdrawn_value(
    make_case, partner_api
):
    withdrawn = make_case(pdq("gone"), md5("gone-video"))
    make_case(pdq("stays"))
    case_withdraw(case=withdrawn.case)
    client = partner_api("adult")
    secret_values = [pdq("gone")["value"], md5("gone-video")["value"]]
    paths = [
        "/exchange/v1/keys",
        "/exchange/v1/lists/",
        "/exchange/v1/lists/adult/checkpoint",
        "/exchange/v1/lists/adult/entries?start=0&limit=10000",
        "/exchange/v1/lists/adult/proof/consistency?old=1",
        *[f"/exchange/v1/lists/adult/proof/inclusion?index={i}" for i in range(5)],
    ]
    for path in paths:
        content = body_of(client.get(path))
        for value in secret_values:
            assert value.encode() not in content, path
            assert base64.b64encode(value.encode()) not in content, path
            # Not even inside a base64-encoded leaf.
            assert value.encode() not in _decoded_leaves(content), path
    entries = read(client.get("/exchange/v1/lists/adult/entries?limit=100"))["entries"]
    redacted = [e for e in entries if e.get("redacted")]
    assert {e["index"] for e in redacted} == {0, 1}
    assert all(set(e) == {"index", "op", "redacted", "leaf_hash"} for e in redacted)
    # The tree still verifies from the redacted leaf hashes.
    digests = [
        base64.b64decode(e["leaf_hash"])
        if e.get("redacted")
        else tlog.leaf_hash(base64.b64decode(e["leaf"]))
        for e in entries
    ]
    note = client.get("/exchange/v1/lists/adult/checkpoint").content.decode()
    cp = tlog.parse_checkpoint(tlog.open_note(note, vkeys(APIClient(), "adult")).text)
    assert tlog.root_from_leaf_hashes(digests) == cp.root


def _decoded_leaves(content: bytes) -> bytes:
    import json

    try:
        body = json.loads(content)
    except ValueError:
        return b""
    if not isinstance(body, dict):
        return b""
    return b"".join(base64.b64decode(e["leaf"]) for e in body.get("entries", []) if "leaf" in e)


def test_wrong_method_is_405(partner_api):
    response = partner_api("adult").post("/exchange/v1/lists/adult/entries", {}, format="json")
    assert response.status_code == 405


def test_the_fast_entry_renderer_matches_the_reference_rendering(make_case):
    import json

    from exchange.selectors import entry_json, entry_json_text
    from hashbank.models import HashList as HL
    from hashbank.services import HashInput, hashes_hold

    hashes_hold(
        hash_list=HL.objects.get(slug="adult"),
        hashes=[HashInput("md5", md5("origin")["value"])],
        holder=PEER_9,
        origin='peer.example/lists/"adult"',
    )
    withdrawn = make_case(pdq("r1"), md5("r2"))
    case_withdraw(case=withdrawn.case)
    from hashbank.models import LogEntry

    for e in LogEntry.objects.order_by("index"):
        args = (e.index, bytes(e.leaf), bytes(e.leaf_hash), e.redacted)
        assert json.loads(entry_json_text(*args)) == entry_json(*args)


def _salted_guesses(value: str, timestamp: int) -> set[bytes]:
    """Leaf hashes someone holding the file could try with a salt anyone could pick."""
    return {
        tlog.leaf_hash(
            tlog.encode_add(salt=s, algorithm="md5", value=value, quality=None, timestamp=timestamp)
        )
        for s in (bytes(32), b"\xff" * 32, bytes(range(32)))
    }


def test_a_redacted_entry_cannot_confirm_a_guessed_value(make_case, partner_api):
    from hashbank.models import LogEntry

    held = md5("known-file")
    first = make_case(held)
    case_withdraw(case=first.case)
    make_case(held)  # the same file reported again, likely in the very same second
    make_case(held, minor=True)  # and to the other list
    client = partner_api("adult")
    entries = read(client.get("/exchange/v1/lists/adult/entries?limit=100"))["entries"]
    assert [e["op"] for e in entries] == ["add", "remove", "add"]
    redacted, _, live = entries
    assert set(redacted) == {"index", "op", "redacted", "leaf_hash"}  # no salt, no time
    # Knowing the value and the exact time of the add does not help.
    when = LogEntry.objects.get(hash_list__slug="adult", index=0).timestamp
    served = base64.b64decode(redacted["leaf_hash"])
    assert served != tlog.leaf_hash(f"add md5 {held['value']} - {when}\n".encode())  # no salt
    assert served not in _salted_guesses(held["value"], when)
    # Each add of the same value has its own leaf: after a re-submission, and in each list.
    adds = LogEntry.objects.filter(op=LogEntry.Op.ADD, hash__value=held["value"])
    assert adds.count() == 3
    assert len({bytes(e.leaf_hash) for e in adds}) == 3
    assert len({tlog.decode_leaf(bytes(e.leaf)).salt for e in adds}) == 3
    # A live add carries its salt, and the salt with the fields reproduces the leaf.
    salt = base64.b64decode(live["salt"], validate=True)
    assert len(salt) == tlog.SALT_SIZE
    rebuilt = tlog.encode_add(
        salt=salt,
        algorithm=live["algorithm"],
        value=live["value"],
        quality=live["quality"],
        timestamp=live["timestamp"],
        origin=live["origin"],
    )
    assert rebuilt == base64.b64decode(live["leaf"])
