"""Two real banks federating over loopback, each with its own PostgreSQL database.

Bank A and bank B run as separate gunicorn servers in production settings (DEBUG off), with
distinct origins. B imports A's ``adult`` list (``peer_add`` + ``peer_sync``), and a partner
platform of B runs the real ``hashbank-sync`` client against B: a case created on A reaches
the platform, and its withdrawal on A removes it there. Then A also imports B's list, and
neither bank echoes the other's entries back, even for an image submitted to both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from hashbank import tlog
from scripts.benchlib import (
    PG_ADMIN_URL,
    REDIS_URL,
    REPO,
    free_port,
    fresh_database,
    gunicorn,
    manage,
    production_env,
)
from tests.conftest import ADULT, pdq


def _reachable() -> str | None:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=2).close()
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc})"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:
        return f"Redis is not reachable at {REDIS_URL} ({exc})"
    return None


_WHY_NOT = _reachable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT))]


@dataclass
class Bank:
    name: str
    origin: str
    env: dict[str, str]
    db_url: str
    url: str = ""

    @property
    def list_origin(self) -> str:
        return f"{self.origin}/lists/adult"

    def manage(self, *args: str) -> Any:
        return json.loads(manage(self.env, *args))

    def start_manage(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), *args],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def vkey(self) -> str:
        keys = requests.get(f"{self.url}/exchange/v1/keys", timeout=10).json()["keys"]
        return next(k["vkey"] for k in keys if k["list"] == "adult" and k["status"] == "active")

    def create_case(self, *hashes: dict[str, Any]) -> dict[str, Any]:
        body = {"eligibility": ADULT, "hashes": list(hashes)}
        response = requests.post(f"{self.url}/api/v1/cases", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    def withdraw(self, case: dict[str, Any]) -> None:
        body = {"case_number": case["case_number"], "pin": case["pin"]}
        response = requests.post(f"{self.url}/api/v1/cases/withdraw", json=body, timeout=30)
        assert response.status_code == 200, response.text

    def leaves(self) -> list[tlog.Leaf]:
        """Every entry of the adult log, from the database (redacted adds included)."""
        with psycopg.connect(self.db_url) as conn:
            rows = conn.execute(
                "SELECT e.leaf FROM hashbank_logentry e JOIN hashbank_hashlist l "
                "ON l.id = e.hash_list_id WHERE l.slug = 'adult' ORDER BY e.index"
            ).fetchall()
        return [tlog.decode_leaf(bytes(leaf)) for (leaf,) in rows]


def sync_peers(*banks: Bank, rounds: int = 1) -> None:
    """``manage.py peer_sync`` on every bank at once, ``rounds`` times."""
    for _ in range(rounds):
        procs = [bank.start_manage("peer_sync") for bank in banks]
        for bank, proc in zip(banks, procs, strict=True):
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, f"{bank.name}: {out}\n{err}"
            for result in json.loads(out)["results"]:
                assert result["status"] in ("ok", "up_to_date"), result


@dataclass
class Platform:
    """A partner platform of a bank, running the real partner client."""

    state_dir: Path
    token_file: Path
    base_url: str
    vkey: str

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts.partner_sync", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def sync(self) -> None:
        done = self._run("sync", "--state-dir", str(self.state_dir), "--base-url", self.base_url,
                         "--list", "adult", "--token-file", str(self.token_file),
                         "--vkey", self.vkey, "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr

    def check(self, value: str) -> dict[str, Any] | None:
        done = self._run("check", "--state-dir", str(self.state_dir), "--algorithm", "pdq",
                         "--value", value)  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout) if done.returncode == 0 else None


def secret_file(path: Path, secret: str) -> Path:
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def banks(tmp_path: Path) -> Iterator[tuple[Bank, Bank]]:
    suffix = uuid.uuid4().hex[:8]
    made: list[Bank] = []
    for name, cache_db in (("a", 14), ("b", 15)):
        db_url = fresh_database(f"hashbank_fed_{name}_{suffix}")
        origin = f"bank-{name}.test"
        env = production_env(
            db_url,
            tmp_path / f"var-{name}",
            BANK_ORIGIN=origin,
            HASHBANK_PEER_ALLOW_HTTP="1",
            HASHBANK_WEBHOOK_ALLOW_PRIVATE="1",
            CACHE_URL=f"{REDIS_URL}/{cache_db}",
            RATELIMIT_ENABLE="0",
        )
        made.append(Bank(name, origin, env, db_url))
    migrations = [bank.start_manage("migrate", "--no-input") for bank in made]
    for proc in migrations:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    try:
        with ExitStack() as stack:
            for bank in made:
                port = free_port()
                stack.enter_context(gunicorn(bank.env, port=port, workers=2))
                bank.url = f"http://127.0.0.1:{port}"
            yield made[0], made[1]
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for bank in made:
                name = bank.db_url.rsplit("/", 1)[1]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def subscribe(importer: Bank, exporter: Bank, tmp_path: Path) -> None:
    """``importer`` imports ``exporter``'s adult list, as operators would set it up."""
    granted = exporter.manage("partner_create", f"bank-{importer.name}", "--lists", "adult")
    token = secret_file(tmp_path / f"{importer.name}-at-{exporter.name}",
                        granted["credentials"]["bearer"])  # fmt: skip
    added = importer.manage(
        "peer_add", exporter.name, "--base-url", exporter.url, "--list", "adult",
        "--token-file", str(token), "--vkey", exporter.vkey(), "--local-list", "adult",
    )  # fmt: skip
    assert added["origin"] == exporter.list_origin


def test_a_case_on_bank_a_reaches_a_partner_of_bank_b_and_its_withdrawal_too(banks, tmp_path):
    a, b = banks
    subscribe(b, a, tmp_path)
    joined = b.manage("partner_create", "platform", "--lists", "adult")
    platform = Platform(
        state_dir=tmp_path / "platform",
        token_file=secret_file(tmp_path / "platform-token", joined["credentials"]["bearer"]),
        base_url=b.url,
        vkey=b.vkey(),
    )
    image = pdq("an image on bank A")

    case = a.create_case(image)
    sync_peers(b)
    platform.sync()

    found = platform.check(image["value"])
    assert found is not None
    assert found["entries"][0]["origin"] == a.list_origin  # provenance reaches the platform

    a.withdraw(case)
    sync_peers(b)
    platform.sync()
    assert platform.check(image["value"]) is None

    # Both ways now: A imports B's list too. Nothing echoes, even for an image both hold.
    subscribe(a, b, tmp_path)
    only_a = a.create_case(pdq("only on A"))
    only_b = b.create_case(pdq("only on B"))
    shared = pdq("submitted to both banks")
    on_a, on_b = a.create_case(shared), b.create_case(shared)
    sync_peers(a, b, rounds=3)
    sizes = (len(a.leaves()), len(b.leaves()))
    sync_peers(a, b)
    assert (len(a.leaves()), len(b.leaves())) == sizes
    assert not [leaf for leaf in a.leaves() if leaf.origin == a.list_origin]
    assert not [leaf for leaf in b.leaves() if leaf.origin == b.list_origin]
    platform.sync()
    for image in (pdq("only on A"), pdq("only on B"), shared):
        assert platform.check(image["value"]) is not None

    for bank, created in ((a, only_a), (b, only_b), (a, on_a), (b, on_b)):
        bank.withdraw(created)
    sync_peers(a, b, rounds=2)
    platform.sync()
    for image in (pdq("only on A"), pdq("only on B"), shared):
        assert platform.check(image["value"]) is None
    sizes = (len(a.leaves()), len(b.leaves()))
    sync_peers(a, b)
    assert (len(a.leaves()), len(b.leaves())) == sizes
