"""Fixtures of the partner client's tests: a live ``FakeBank`` and a state directory."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.exchange.client.fake_bank import FakeBank, served_bank


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The local test server must be reached directly, whatever the environment says.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("HASHBANK_TOKEN", raising=False)


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture
def bank() -> Iterator[FakeBank]:
    with served_bank() as fake:
        yield fake


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
