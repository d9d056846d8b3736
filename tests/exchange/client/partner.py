"""The partner's side of the client tests: sync settings and what a state directory holds."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from exchange.client.errors import SyncRefused
from exchange.client.state import STATE_FILE
from exchange.client.store import STORE_FILE
from exchange.client.sync import SyncConfig, sync
from scripts.partner_sync import main
from tests.exchange.client.fake_bank import SLUG, TOKEN, FakeBank


def config(bank: FakeBank, state_dir: Path, **kw: Any) -> SyncConfig:
    defaults: dict[str, Any] = {
        "state_dir": state_dir,
        "token": TOKEN,
        "base_url": bank.url,
        "slug": SLUG,
        "vkeys": (bank.vkey,),
        "backoff": 0.0,
        "timeout": 5.0,
    }
    return SyncConfig(**{**defaults, **kw})


def store_rows(state_dir: Path) -> dict[int, tuple[Any, ...]]:
    conn = sqlite3.connect(state_dir / STORE_FILE)
    try:
        return {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                "SELECT add_index, algorithm, value, quality, timestamp, origin FROM hashes"
            )
        }
    finally:
        conn.close()


def snapshot(state_dir: Path) -> dict[str, Any]:
    """Every file of the state dir (bytes) and every row of every store table."""
    if not state_dir.exists():
        return {"exists": False}
    files = {
        str(p.relative_to(state_dir)): p.read_bytes()
        for p in sorted(state_dir.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }
    rows: dict[str, list[Any]] = {}
    if (state_dir / STORE_FILE).exists():
        conn = sqlite3.connect(state_dir / STORE_FILE)
        try:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                rows[table] = sorted(conn.execute(f"SELECT * FROM {table}"))
        finally:
            conn.close()
    return {"exists": True, "files": files, "rows": rows}


def saved_state(state_dir: Path) -> dict[str, Any]:
    return json.loads((state_dir / STATE_FILE).read_text())


def assert_synced(bank: FakeBank, state_dir: Path, size: int | None = None) -> None:
    """The store holds exactly the live adds of the log, and the state its checkpoint."""
    size = bank.log.size if size is None else size
    assert store_rows(state_dir) == bank.log.expected_rows(size)
    st = saved_state(state_dir)
    assert st["size"] == size
    assert base64.b64decode(st["root"]) == bank.log.roots[size]
    assert st["checkpoint"] == bank.log.note(size)


def refused(exc_type: type[SyncRefused], bank: FakeBank, state_dir: Path, **kw: Any) -> SyncRefused:
    """Run a sync that must be refused with exc_type, and leave every local byte unchanged."""
    before = snapshot(state_dir)
    with pytest.raises(exc_type) as info:
        sync(config(bank, state_dir, **kw))
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"
    assert snapshot(state_dir) == before
    return info.value


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
