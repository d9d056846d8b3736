"""Roles, each tested for every action: reviewers decide but manage no partners, keys or
peers; operators flag and manage but can't confirm a disable; auditors read everything
and change nothing."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied

from exchange.models import Credential, Partner, Peer
from hashbank.models import Hash
from reviewers import services
from reviewers.models import AllowlistEntry, Decision, Dispute
from reviewers.roles import AUDITORS, OPERATORS, REVIEWERS
from tests.conftest import pdq

pytestmark = pytest.mark.django_db

ROLES = [REVIEWERS, OPERATORS, AUDITORS]


@pytest.fixture
def hash_(make_case) -> Hash:
    make_case(pdq("roles"))
    return Hash.objects.get()


@pytest.fixture
def proposer(staff: Callable[..., User]) -> User:
    return staff("proposer", REVIEWERS)


def _open(h: Hash) -> Dispute:
    return services.hash_flag(
        user=User.objects.get_or_create(username="flagger", is_superuser=True)[0],
        hash=h,
        reason="x",
    )


def _proposed(h: Hash, proposer: User) -> Dispute:
    dispute = _open(h)
    return services.dispute_disable(user=proposer, dispute=dispute, reason="benign")


def _disabled(h: Hash, proposer: User) -> Dispute:
    dispute = _proposed(h, proposer)
    confirmer = User.objects.create_superuser("confirmer")
    return services.dispute_confirm_disable(user=confirmer, dispute=dispute, reason="agreed")


ACTIONS: dict[str, Callable[[User, Hash, User], Any]] = {
    "flag": lambda user, h, p: services.hash_flag(user=user, hash=h, reason="r"),
    "take": lambda user, h, p: services.dispute_take(user=user, dispute=_open(h)),
    "keep": lambda user, h, p: services.dispute_keep(user=user, dispute=_open(h), reason="r"),
    "disable": lambda user, h, p: services.dispute_disable(user=user, dispute=_open(h), reason="r"),
    "confirm_disable": lambda user, h, p: services.dispute_confirm_disable(
        user=user, dispute=_proposed(h, p), reason="r"
    ),
    "escalate": lambda user, h, p: services.dispute_escalate(
        user=user, dispute=_open(h), reason="r"
    ),
    "reenable": lambda user, h, p: services.hash_reenable(
        user=user, dispute=_disabled(h, p), reason="r"
    ),
    "allowlist_load": lambda user, h, p: services.allowlist_load(
        user=user, lines=[pdq("allow")["value"]]
    ),
    "journal_export": lambda user, h, p: services.journal_export(
        user=user, out=io.StringIO(), decisions=Decision.objects.all()
    ),
}


def _escalated(h: Hash, proposer: User) -> Dispute:
    return services.dispute_escalate(user=proposer, dispute=_open(h), reason="unsure")


ACTIONS.update(
    {
        "take_escalated": lambda user, h, p: services.dispute_take(
            user=user, dispute=_escalated(h, p)
        ),
        "keep_escalated": lambda user, h, p: services.dispute_keep(
            user=user, dispute=_escalated(h, p), reason="r"
        ),
        "disable_escalated": lambda user, h, p: services.dispute_disable(
            user=user, dispute=_escalated(h, p), reason="r"
        ),
    }
)

ALLOWED = {
    REVIEWERS: {
        "take",
        "keep",
        "disable",
        "confirm_disable",
        "escalate",
        "reenable",
        "journal_export",
    },
    OPERATORS: {
        "flag",
        "take",
        "keep",
        "disable",
        "escalate",
        "reenable",
        "allowlist_load",
        "journal_export",
        "take_escalated",
        "keep_escalated",
        "disable_escalated",
    },
    AUDITORS: {"journal_export"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_role_may_do_exactly_its_actions(role, action, staff, hash_, proposer):
    user = staff(f"user-{role}", role)
    before = Decision.objects.count()
    if action in ALLOWED[role]:
        ACTIONS[action](user, hash_, proposer)
    else:
        with pytest.raises(PermissionDenied):
            ACTIONS[action](user, hash_, proposer)
        # Nothing of the refused action was journaled (set-up decisions aside).
        assert not Decision.objects.filter(user=user).exists()
        assert Decision.objects.count() >= before


# --- Admin: managing partners, keys and peers ----------------------------------------------


@pytest.fixture
def exchange_rows(make_partner) -> dict[str, Any]:
    partner, _ = make_partner()
    from hashbank.models import HashList

    peer = Peer.objects.create(
        name="Peer bank", base_url="https://peer.example", remote_list="adult",
        local_list=HashList.objects.get(slug="adult"),
    )  # fmt: skip
    return {"partner": partner, "peer": peer}


PAGES = {
    "partner list": "/admin/exchange/partner/",
    "peer list": "/admin/exchange/peer/",
    "dispute queue": "/admin/reviewers/dispute/",
    "journal": "/admin/reviewers/decision/",
    "allowlist": "/admin/reviewers/allowlistentry/",
    "hashes": "/admin/hashbank/hash/",
}


@pytest.mark.parametrize(
    ("role", "page", "status"),
    [
        (REVIEWERS, "partner list", 403),
        (REVIEWERS, "peer list", 403),
        (REVIEWERS, "dispute queue", 200),
        (REVIEWERS, "journal", 200),
        (REVIEWERS, "allowlist", 200),
        (REVIEWERS, "hashes", 200),
        *[(AUDITORS, page, 200) for page in PAGES],
        *[(OPERATORS, page, 200) for page in PAGES],
    ],
)
def test_admin_pages_by_role(client, staff, role, page, status, exchange_rows):
    client.force_login(staff(f"user-{role}", role))
    assert client.get(PAGES[page]).status_code == status


@pytest.mark.parametrize("role", [REVIEWERS, AUDITORS])
def test_reviewers_and_auditors_cannot_manage_partners_keys_or_peers(
    client, staff, role, exchange_rows
):
    client.force_login(staff(f"user-{role}", role))
    partner, peer = exchange_rows["partner"], exchange_rows["peer"]
    credentials = Credential.objects.filter(revoked_at=None).count()
    assert client.get("/admin/exchange/partner/add/").status_code == 403
    assert client.post("/admin/exchange/partner/add/", {"name": "New"}).status_code == 403
    assert (
        client.post(
            f"/admin/exchange/partner/{partner.pk}/change/", {"name": "Renamed"}
        ).status_code
        == 403
    )
    # Keys: issuing or revoking a partner's credentials is an admin action.
    for action in ("rotate_credentials", "revoke_credentials", "deactivate"):
        client.post(
            "/admin/exchange/partner/", {"action": action, "_selected_action": [partner.pk]}
        )
    assert Credential.objects.filter(revoked_at=None).count() == credentials
    assert Partner.objects.get(pk=partner.pk).active
    assert client.get("/admin/exchange/peer/add/").status_code == 403
    client.post("/admin/exchange/peer/", {"action": "unsubscribe", "_selected_action": [peer.pk]})
    assert Peer.objects.get(pk=peer.pk).active
    assert (
        client.post(f"/admin/exchange/peer/{peer.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Partner.objects.filter(name="New").count() == 0


def test_operators_manage_partners_keys_and_peers(client, operator, exchange_rows):
    client.force_login(operator)
    partner = exchange_rows["partner"]
    assert client.get("/admin/exchange/partner/add/").status_code == 200
    assert client.get("/admin/exchange/peer/add/").status_code == 200
    response = client.post(
        "/admin/exchange/partner/",
        {"action": "revoke_credentials", "_selected_action": [partner.pk]},
    )
    assert response.status_code == 302
    assert not Credential.objects.filter(partner=partner, revoked_at=None).exists()


def test_auditors_change_nothing_in_reviewers_admin(client, auditor, hash_):
    dispute = _open(hash_)
    client.force_login(auditor)
    page = client.get(f"/admin/reviewers/dispute/{dispute.pk}/change/")
    assert page.status_code == 200
    assert b'id="decide"' not in page.content
    for action in ("take", "keep", "disable", "escalate"):
        client.post(
            f"/admin/reviewers/dispute/{dispute.pk}/decide/", {"action": action, "reason": "r"}
        )
    dispute.refresh_from_db()
    assert dispute.state == "open" and dispute.assignee is None
    assert client.get("/admin/reviewers/dispute/add/").status_code == 403
    assert client.get("/admin/reviewers/allowlistentry/add/").status_code == 403
    assert client.get("/admin/reviewers/allowlistentry/load/").status_code == 403
    assert not AllowlistEntry.objects.exists()
