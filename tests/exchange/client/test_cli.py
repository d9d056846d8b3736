"""``hashbank-sync``, the command line: output, JSON, exit codes, usage errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from exchange.client.errors import ConfigError
from exchange.client.state import STATE_FILE
from exchange.client.sync import sync
from tests.exchange.client.fake_bank import SLUG, TOKEN, FakeBank, fill, flip_bits, signer
from tests.exchange.client.partner import config, run, saved_state, snapshot, store_rows


def test_corrupt_state_is_a_local_error(
    bank: FakeBank, state_dir: Path, rng: random.Random, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(bank.log, rng, 5)
    sync(config(bank, state_dir))
    st = saved_state(state_dir)
    st["size"] = 4
    (state_dir / STATE_FILE).write_text(json.dumps(st))
    code, _, err = run(capsys, "sync", "--state-dir", str(state_dir), "--token", TOKEN)
    assert code == 2 and "state directory" in err
    with pytest.raises(ConfigError, match="page size"):
        sync(config(bank, state_dir, page_size=10_001))


def test_cli_end_to_end(
    bank: FakeBank,
    state_dir: Path,
    rng: random.Random,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(bank.log, rng, 50, remove_every=6)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    base = ["--state-dir", str(state_dir)]
    code, out, err = run(
        capsys,
        "sync",
        *base,
        "--base-url",
        bank.url,
        "--list",
        SLUG,
        "--vkey",
        bank.vkey,
        "--token-file",
        str(token_file),
        "--json",
        "--page-size",
        "16",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary) == {"list", "size", "added", "removed", "seconds", "entries_per_s"}
    assert summary["list"] == SLUG and summary["size"] == 50
    assert summary["added"] == len(store_rows(state_dir))
    assert "warning" not in err and "\r" not in err  # no progress bar: not a terminal

    # Token from the environment, no command word (sync is the default), human output.
    fill(bank.log, rng, 5)
    monkeypatch.setenv("HASHBANK_TOKEN", TOKEN)
    code, out, err = run(capsys, *base)
    assert code == 0 and "verified checkpoint 55" in out and "5 hashes added" in out
    code, out, err = run(capsys, *base)
    assert code == 0 and "up to date at size 55" in out
    monkeypatch.delenv("HASHBANK_TOKEN")

    # check: exit 0 / 1 and JSON.
    value = next(v[1] for v in store_rows(state_dir).values() if v[0] == "pdq")
    code, out, _ = run(capsys, "check", *base, "--algorithm", "pdq", "--value", value.upper())
    assert code == 0
    answer = json.loads(out)
    assert answer["present"] is True and answer["value"] == value and answer["list"] == SLUG
    code, out, _ = run(capsys, "check", *base, "--algorithm", "pdq", "--value", "0" * 64)
    assert code == 1 and json.loads(out)["present"] is False
    code, _, err = run(capsys, "check", *base, "--algorithm", "pdq", "--value", "0" * 63)
    assert code == 2 and "64" in err

    # match: exit 0 with matches, 1 without.
    code, out, _ = run(capsys, "match", *base, "--pdq", flip_bits(value, 31))
    assert code == 0
    assert json.loads(out)["matches"][0] == {"value": value, "distance": 31}
    code, out, _ = run(capsys, "match", *base, "--pdq", flip_bits(value, 40), "--distance", "5")
    assert code == 1 and json.loads(out)["matches"] == []

    # Refusal: exit 3, a clear message, a JSON error, nothing changed.
    fill(bank.log, rng, 5)
    before = snapshot(state_dir)
    bank.checkpoint_size = 10
    code, out, err = run(capsys, *base, "--token", TOKEN, "--json")
    assert code == 3
    assert "warning: --token is visible" in err
    assert "REFUSED (Rollback)" in err and "nothing was changed" in err
    assert json.loads(out)["refused"] == "Rollback"
    assert snapshot(state_dir) == before

    # Other errors: 401 (exit 4), a different vkey (exit 2), no token (exit 2).
    bank.checkpoint_size = None
    code, _, err = run(capsys, *base, "--token", "wrong")
    assert code == 4 and "check --token-file or HASHBANK_TOKEN" in err
    code, _, err = run(capsys, *base, "--token", TOKEN, "--vkey", signer().vkey)
    assert code == 2 and "--accept-new-vkey" in err
    code, _, err = run(capsys, *base)
    assert code == 2 and "HASHBANK_TOKEN" in err
    assert snapshot(state_dir) == before


def test_cli_keys(bank: FakeBank, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "keys", "--base-url", bank.url, "--json")
    assert code == 0 and json.loads(out)["keys"][0]["vkey"] == bank.vkey
    assert "out of band" in err
    assert all(p == "/exchange/v1/keys" for p, _ in bank.requests)


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "--help")[0] == 0
    assert run(capsys, "check", "--state-dir", str(tmp_path))[0] == 2
    code, _, err = run(
        capsys,
        "sync",
        "--state-dir",
        str(tmp_path / "s"),
        "--token",
        "t",
        "--base-url",
        "https://bank.example.org",
    )
    assert code == 2 and "--vkey" in err
    code, _, err = run(
        capsys, "check", "--state-dir", str(tmp_path), "--algorithm", "md5", "--value", "0" * 32
    )
    assert code == 2 and "run `hashbank-sync sync` first" in err
