"""Interop: Go's golang.org/x/mod/sumdb/note accepts hashbank's signed checkpoints, and back;
Go's golang.org/x/mod/sumdb/tlog recomputes every root from the leaves hashbank serves.

Needs ``go`` and the Go module source on GOPATH. On Debian/Ubuntu:

    apt-get install -y golang-go golang-golang-x-mod-dev

The programs (tests/interop/verify_note.go, tests/interop/tree_root.go) are built offline in
GOPATH mode against /usr/share/gocode (override with HASHBANK_GOPATH). Skipped only when
``go`` is not on PATH.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hashbank.tlog import (
    Checkpoint,
    NoteError,
    NoteSigner,
    RightEdge,
    encode_add,
    encode_remove,
    format_checkpoint,
    generate_private_key,
    leaf_hash,
    open_note,
    parse_checkpoint,
    parse_vkey,
    private_key_to_text,
    sign_note,
)

GO = shutil.which("go")
pytestmark = pytest.mark.skipif(
    GO is None, reason="`go` is not on PATH (apt-get install golang-go)"
)

INTEROP = Path(__file__).resolve().parents[1] / "interop"
GOPATH = os.environ.get("HASHBANK_GOPATH", "/usr/share/gocode")
ORIGIN = "hashbank.example.org/lists/adult"


@pytest.fixture(scope="module")
def verify_note(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(tmp_path_factory, "verify_note")


@pytest.fixture(scope="module")
def tree_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(tmp_path_factory, "tree_root")


def go_build(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    source = INTEROP / f"{name}.go"
    workdir = tmp_path_factory.mktemp("go")
    binary = workdir / name
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOTOOLCHAIN": "local",
        "GOCACHE": str(workdir / "cache"),
    }
    result = subprocess.run(
        [GO, "build", "-o", str(binary), str(source)],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"building tests/interop/{name}.go failed; is golang-golang-x-mod-dev installed "
            f"(golang.org/x/mod/sumdb under {GOPATH}/src)?\n{result.stderr}"
        )
    return binary


def run(
    binary: Path, tmp_path: Path, flags: list[str], files: list[str]
) -> subprocess.CompletedProcess[bytes]:
    """Run the Go program with ``flags`` and one temporary file per entry of ``files``."""
    paths = []
    for i, content in enumerate(files):
        path = tmp_path / f"arg{i}"
        path.write_bytes(content.encode("utf-8"))
        paths.append(str(path))
    return subprocess.run(
        [str(binary), *flags, *paths], capture_output=True, timeout=60, check=False
    )


def go_verify(
    binary: Path, tmp_path: Path, vkeys: list[str], note: str
) -> subprocess.CompletedProcess[bytes]:
    return run(binary, tmp_path, [], ["\n".join(vkeys) + "\n", note])


def checkpoint_text(size: int = 10) -> str:
    edge = RightEdge()
    edge.extend(
        leaf_hash(
            encode_add(
                salt=bytes(32), algorithm="md5", value=f"{i:032x}", quality=None, timestamp=i
            )
        )
        for i in range(size)
    )
    return format_checkpoint(origin=ORIGIN, size=edge.size, root=edge.root())


def test_go_accepts_signed_checkpoint(verify_note: Path, tmp_path: Path) -> None:
    signer = NoteSigner(ORIGIN, generate_private_key())
    text = checkpoint_text()
    note = sign_note(text, [signer])
    result = go_verify(verify_note, tmp_path, [signer.vkey], note)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode("utf-8") == text


def test_go_accepts_rotation_with_either_key(verify_note: Path, tmp_path: Path) -> None:
    old, new = (
        NoteSigner(ORIGIN, generate_private_key()),
        NoteSigner(ORIGIN, generate_private_key()),
    )
    text = checkpoint_text(1000)
    note = sign_note(text, [old, new])
    for vkeys in ([old.vkey], [new.vkey], [old.vkey, new.vkey]):
        result = go_verify(verify_note, tmp_path, vkeys, note)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode("utf-8") == text
    stranger = NoteSigner(ORIGIN, generate_private_key())
    assert go_verify(verify_note, tmp_path, [stranger.vkey], note).returncode != 0


def test_go_rejects_tampered_checkpoint(verify_note: Path, tmp_path: Path) -> None:
    signer = NoteSigner(ORIGIN, generate_private_key())
    note = sign_note(checkpoint_text(10), [signer])
    for bad in (
        note.replace(f"{ORIGIN}\n10\n", f"{ORIGIN}\n11\n", 1),
        note.replace(ORIGIN, ORIGIN + "x", 1),
        note.replace("=\n\n", "=\nextension\n\n", 1),
    ):
        assert bad != note
        result = go_verify(verify_note, tmp_path, [signer.vkey], bad)
        assert result.returncode != 0, bad
        with pytest.raises(NoteError):
            open_note(bad, [signer.verifier()])


def test_go_signature_opens_in_python(verify_note: Path, tmp_path: Path) -> None:
    # Go signs with a key we generated: Ed25519 is deterministic, so the notes must be identical.
    key = generate_private_key()
    signer = NoteSigner(ORIGIN, key)
    verifier = parse_vkey(signer.vkey)
    seed_b64 = private_key_to_text(key)
    # Go's signer key format: PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>.
    skey = (
        f"PRIVATE+KEY+{ORIGIN}+{signer.key_id.hex()}+"
        + base64.b64encode(b"\x01" + base64.b64decode(seed_b64)).decode()
    )
    text = checkpoint_text(77)
    result = run(verify_note, tmp_path, ["-sign"], [skey, text])
    assert result.returncode == 0, result.stderr.decode()
    go_note = result.stdout.decode("utf-8")
    assert go_note == sign_note(text, [signer])
    opened = open_note(go_note, [verifier])
    assert parse_checkpoint(opened.text) == Checkpoint(
        origin=ORIGIN, size=77, root=parse_checkpoint(text).root
    )


def test_go_accepts_c2sp_vkey_format_from_keys_endpoint(verify_note: Path, tmp_path: Path) -> None:
    # The vkey string is what GET /exchange/v1/keys publishes; Go must parse it as is.
    signer = NoteSigner("bank.example/lists/minor", generate_private_key())
    note = sign_note(
        "bank.example/lists/minor\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", [signer]
    )
    result = go_verify(verify_note, tmp_path, [signer.vkey], note)
    assert result.returncode == 0, result.stderr.decode()


# --- Roots: Go's sumdb/tlog recomputes them from the leaves ----------------------------


def go_root(binary: Path, tmp_path: Path, entries: list[tuple[str, bytes]]) -> list[bytes]:
    """Go's root over ``entries`` (("leaf", bytes) or ("hash", leaf hash)), then each leaf hash."""
    path = tmp_path / "entries"
    path.write_text("".join(f"{kind} {base64.b64encode(b).decode()}\n" for kind, b in entries))
    result = subprocess.run([str(binary), str(path)], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return [bytes.fromhex(line) for line in result.stdout.decode().split()]


def test_go_recomputes_the_log_format_example(tree_root: Path, tmp_path: Path) -> None:
    from tests.hashbank.test_tlog import TestLogFormatDocExample as Example

    root, *hashes = go_root(tree_root, tmp_path, [("leaf", leaf) for leaf in Example.LEAVES])
    assert hashes == Example.LEAF_HASHES
    assert root == Example.ROOT


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 100, 1000])
def test_go_recomputes_roots_of_salted_logs(tree_root: Path, tmp_path: Path, size: int) -> None:
    def leaf(i: int) -> bytes:
        if i % 4 == 0:
            return encode_remove(index=max(0, i - 1), reason="withdrawn", timestamp=i)
        origin = "peer.example/lists/adult" if i % 3 else None
        salt = secrets.token_bytes(32)
        return encode_add(
            salt=salt, algorithm="md5", value=f"{i:032x}", quality=None, timestamp=i, origin=origin
        )

    leaves = [leaf(i) for i in range(size)]
    edge = RightEdge()
    edge.extend(leaf_hash(leaf) for leaf in leaves)
    # Every other add is given as its leaf hash only, as a redacted entry is served.
    entries = [
        ("hash", leaf_hash(leaf)) if i % 2 and leaf.startswith(b"add2 ") else ("leaf", leaf)
        for i, leaf in enumerate(leaves)
    ]
    root, *hashes = go_root(tree_root, tmp_path, entries)
    assert hashes == [leaf_hash(leaf) for leaf in leaves]
    assert root == edge.root()


@pytest.mark.django_db
def test_go_recomputes_the_root_a_bank_serves(
    tree_root: Path, tmp_path: Path, make_case: Any, partner_api: Any
) -> None:
    """Through the pull API: salted adds, a withdrawal (redacted), the same file again."""
    from cases.services import case_withdraw
    from tests.conftest import md5, pdq

    first = make_case(pdq("go-1"), md5("go-2"))
    make_case(pdq("go-3"))
    case_withdraw(case=first.case)
    make_case(md5("go-2"))
    client = partner_api("adult")
    response = client.get("/exchange/v1/lists/adult/entries?limit=100")
    body = json.loads(b"".join(response.streaming_content))
    served = [
        ("hash", base64.b64decode(e["leaf_hash"]))
        if e.get("redacted")
        else ("leaf", base64.b64decode(e["leaf"]))
        for e in body["entries"]
    ]
    assert [kind for kind, _ in served] == ["hash", "hash", "leaf", "leaf", "leaf", "leaf"]
    root, *_ = go_root(tree_root, tmp_path, served)
    keys = client.get("/exchange/v1/keys").json()["keys"]
    verifiers = [parse_vkey(k["vkey"]) for k in keys if k["list"] == "adult"]
    checkpoint = parse_checkpoint(open_note(body["checkpoint"], verifiers).text)
    assert (checkpoint.size, checkpoint.root) == (6, root)
