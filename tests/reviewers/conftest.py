"""Reviewers' fixtures: staff users in the groups the data migration makes, partners that
give feedback, and near-duplicate PDQ values."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from reviewers.roles import AUDITORS, OPERATORS, REVIEWERS


def flip(value: str, bits: int) -> str:
    """``value`` (PDQ hex) with its first ``bits`` bits inverted: at Hamming distance ``bits``."""
    number = int(value, 16) ^ (((1 << bits) - 1) << (256 - bits))
    return f"{number:064x}"


def pdq_value(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


@pytest.fixture
def staff(db: None) -> Callable[..., User]:
    """A staff user in one of the groups (``None``: a superuser)."""

    def make(name: str, group: str | None) -> User:
        if group is None:
            return User.objects.create_superuser(name, password="pw")
        user = User.objects.create_user(name, password="pw", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        return User.objects.get(pk=user.pk)  # fresh: no permission cache

    return make


@pytest.fixture
def reviewer_a(staff: Callable[..., User]) -> User:
    return staff("alice", REVIEWERS)


@pytest.fixture
def reviewer_b(staff: Callable[..., User]) -> User:
    return staff("bob", REVIEWERS)


@pytest.fixture
def operator(staff: Callable[..., User]) -> User:
    return staff("olga", OPERATORS)


@pytest.fixture
def auditor(staff: Callable[..., User]) -> User:
    return staff("aud", AUDITORS)


@pytest.fixture
def report(partner_api: Callable[..., APIClient]) -> Callable[..., Any]:
    """A new partner reports an outcome for a hash through the native feedback API."""

    def send(
        hash_: dict[str, Any], outcome: str = "not_blocked", tags: tuple[str, ...] = ()
    ) -> Any:
        client = partner_api("adult")
        response = client.post(
            "/exchange/v1/feedback",
            {
                "items": [
                    {
                        "list": "adult",
                        "algorithm": hash_["algorithm"],
                        "value": hash_["value"],
                        "outcome": outcome,
                        "tags": list(tags),
                    }
                ]
            },
            format="json",
        )
        assert response.status_code == 200, response.content
        assert response.json()["results"][0]["status"] == "ok", response.content
        return response

    return send
