"""The real partner sync client (``exchange.client``, ``hashbank-sync``) against a live server.

A tampering proxy sits between the two for the refusal tests: the server is
honest, so only a man in the middle (or a compromised server) can misbehave.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cases.services import case_withdraw
from exchange.client import errors
from exchange.client.matching import pdq_matches
from exchange.client.state import STATE_FILE
from exchange.client.store import LocalStore
from exchange.client.sync import SyncConfig, sync
from hashbank.log import list_verifiers
from scripts import partner_sync
from tests.conftest import md5, pdq

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@contextmanager
def proxy(upstream: str, rewrite: Callable[[str, bytes], bytes]) -> Iterator[str]:
    """An HTTP proxy to ``upstream`` that passes every response body through ``rewrite``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request = urllib.request.Request(
                upstream + self.path, headers={"Authorization": self.headers["Authorization"]}
            )
            try:
                with urllib.request.urlopen(request) as response:
                    status, ctype, body = (
                        response.status,
                        response.headers["Content-Type"],
                        response.read(),
                    )
            except urllib.error.HTTPError as exc:
                status, ctype, body = exc.code, exc.headers["Content-Type"], exc.read()
            body = rewrite(self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def config(state: Path, url: str, token: str, **kw: Any) -> SyncConfig:
    return SyncConfig(
        state_dir=state,
        token=token,
        base_url=url,
        slug="adult",
        vkeys=(list_verifiers("adult")[0][0],),
        allow_http=True,
        page_size=kw.pop("page_size", 3),
        retries=0,
        **kw,
    )


def snapshot(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(state.glob("*")) if p.is_file()}


def test_full_then_incremental_sync_with_withdrawals(
    live_server, make_case, make_partner, tmp_path
):
    _, secrets = make_partner(("adult",))
    kept = make_case(pdq("kept"), md5("video"))
    gone = make_case(pdq("gone"))
    result = sync(config(tmp_path, live_server.url, secrets["bearer"]))
    assert (result.size, result.added) == (3, 3)
    with LocalStore(tmp_path) as store:
        assert store.contains("pdq", pdq("gone")["value"])
        assert store.contains("md5", md5("video")["value"])
        near = pdq_matches(store, pdq("kept")["value"], 31)
        assert near and near[0][0] == pdq("kept")["value"] and near[0][1] == 0
    case_withdraw(case=gone.case)
    make_case(pdq("new"))
    result = sync(config(tmp_path, live_server.url, secrets["bearer"]))
    assert (result.previous_size, result.size, result.removed, result.added) == (3, 5, 1, 1)
    with LocalStore(tmp_path) as store:
        assert not store.contains("pdq", pdq("gone")["value"])
        assert store.contains("pdq", pdq("new")["value"])
    assert kept  # still published
    # The state file stays small: the right edge, not the leaves.
    assert (tmp_path / STATE_FILE).stat().st_size < 4096


def test_a_partner_joining_after_a_withdrawal_syncs_without_the_value(
    live_server, make_case, make_partner, tmp_path
):
    gone = make_case(pdq("early"))
    case_withdraw(case=gone.case)
    make_case(pdq("late"))
    _, secrets = make_partner(("adult",))
    result = sync(config(tmp_path, live_server.url, secrets["bearer"]))
    assert result.size == 3
    with LocalStore(tmp_path) as store:
        assert not store.contains("pdq", pdq("early")["value"])
        assert store.contains("pdq", pdq("late")["value"])
    stored = b"".join(snapshot(tmp_path).values())
    assert pdq("early")["value"].encode() not in stored


def test_the_cli_syncs_and_answers_queries(live_server, make_case, make_partner, tmp_path, capsys):
    _, secrets = make_partner(("adult",))
    make_case(pdq("cli"))
    token = tmp_path / "token"
    token.write_text(secrets["bearer"])
    state = tmp_path / "state"
    vkey = list_verifiers("adult")[0][0]
    code = partner_sync.main(
        ["sync", "--state-dir", str(state), "--base-url", live_server.url, "--list", "adult",
         "--token-file", str(token), "--vkey", vkey, "--json", "--no-progress", "--allow-http"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["size"] == 1
    assert partner_sync.main(["check", "--state-dir", str(state), "--algorithm", "pdq",
                              "--value", pdq("cli")["value"]]) == 0  # fmt: skip
    assert partner_sync.main(["check", "--state-dir", str(state), "--algorithm", "pdq",
                              "--value", pdq("other")["value"]]) == 1  # fmt: skip


def _tamper_entry_value(path: str, body: bytes) -> bytes:
    if "/entries" not in path:
        return body
    page = json.loads(body)
    for entry in page["entries"]:
        if entry.get("op") == "add":
            entry["value"] = "0" * 64
            break
    return json.dumps(page).encode()


def _drop_an_entry(path: str, body: bytes) -> bytes:
    if "/entries" not in path:
        return body
    page = json.loads(body)
    if len(page["entries"]) > 1:
        start = page["entries"][0]["index"]
        del page["entries"][1]
        # Keep "next" consistent, as a careful attacker would.
        page["next"] = start + len(page["entries"])
    return json.dumps(page).encode()


def _swap_entries(path: str, body: bytes) -> bytes:
    if "/entries" not in path:
        return body
    page = json.loads(body)
    if len(page["entries"]) > 1:
        page["entries"][0], page["entries"][1] = page["entries"][1], page["entries"][0]
    return json.dumps(page).encode()


def _flip_signature(path: str, body: bytes) -> bytes:
    if not path.endswith("/checkpoint"):
        return body
    text = body.decode()
    head, sig = text.rsplit(" ", 1)
    # Past the 4-byte key ID (base64 chars 0-5): only the signature bytes change.
    flipped = sig[:20] + ("B" if sig[20] == "A" else "A") + sig[21:]
    return (head + " " + flipped).encode()


@pytest.mark.parametrize(
    ("rewrite", "refusal"),
    [
        (_tamper_entry_value, errors.TamperedEntry),
        (_drop_an_entry, errors.MissingOrReorderedEntries),
        (_swap_entries, errors.MissingOrReorderedEntries),
        (_flip_signature, errors.BadSignature),
    ],
)
def test_tampering_between_server_and_client_is_refused_without_changing_state(
    live_server, make_case, make_partner, tmp_path, rewrite, refusal
):
    _, secrets = make_partner(("adult",))
    make_case(pdq("one"))
    sync(config(tmp_path, live_server.url, secrets["bearer"]))
    before = snapshot(tmp_path)
    make_case(pdq("two"), pdq("three"), md5("four"))
    with proxy(live_server.url, rewrite) as url, pytest.raises(refusal):
        sync(config(tmp_path, url, secrets["bearer"]))
    assert snapshot(tmp_path) == before
    # The honest server, reached directly, still syncs.
    assert sync(config(tmp_path, live_server.url, secrets["bearer"])).size == 4


def test_a_checkpoint_from_an_unknown_key_is_refused(
    live_server, make_case, make_partner, tmp_path
):
    from hashbank import tlog

    _, secrets = make_partner(("adult",))
    make_case(pdq("k"))
    other = tlog.NoteSigner("hashbank.localhost/lists/adult", tlog.generate_private_key())
    cfg = config(tmp_path, live_server.url, secrets["bearer"])
    cfg = SyncConfig(**{**cfg.__dict__, "vkeys": (other.vkey,)})
    with pytest.raises(errors.UnknownKey):
        sync(cfg)
    assert not (tmp_path / STATE_FILE).exists()


def test_a_rollback_is_refused(live_server, make_case, make_partner, tmp_path):
    _, secrets = make_partner(("adult",))
    make_case(pdq("r1"))
    old_checkpoint = urllib.request.urlopen(
        urllib.request.Request(
            live_server.url + "/exchange/v1/lists/adult/checkpoint",
            headers={"Authorization": f"Bearer {secrets['bearer']}"},
        )
    ).read()
    make_case(pdq("r2"))
    sync(config(tmp_path, live_server.url, secrets["bearer"]))
    before = snapshot(tmp_path)

    def serve_old(path: str, body: bytes) -> bytes:
        return old_checkpoint if path.endswith("/checkpoint") else body

    with proxy(live_server.url, serve_old) as url, pytest.raises(errors.Rollback):
        sync(config(tmp_path, url, secrets["bearer"]))
    assert snapshot(tmp_path) == before
