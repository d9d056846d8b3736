#!/usr/bin/env python3
"""hashbank-sync: keep a verified local copy of a hashbank list, for partner platforms.

A partner pulls one list (``adult``, ``minor``, ...) from a hashbank server into a local
SQLite store and checks its own media hashes against it, without trusting the server: every
sync verifies the signed checkpoint against *pinned* verifier keys, checks that the new tree
extends the one verified before (no rollback, no fork), recomputes the Merkle root from the
entries (keeping only the O(log n) right edge of the tree between syncs) and refuses the
whole sync if anything does not verify. See ``docs/LOG_FORMAT.md`` section 6.

This file is only the command line (arguments, output, exit codes). The client itself is the
package :mod:`exchange.client` (no Django), which a peer bank importing a list
(``exchange.federation``) uses too; the log primitives come from :mod:`hashbank.tlog`.

Usage::

    export HASHBANK_TOKEN=...            # or --token-file FILE
    hashbank-sync sync --state-dir /var/lib/hashbank/adult \\
        --base-url https://bank.example.org --list adult \\
        --vkey 'bank.example.org/lists/adult+1476c9f3+AQOh...'    # pinned at the first sync
    hashbank-sync sync --state-dir /var/lib/hashbank/adult          # later runs
    hashbank-sync check --state-dir D --algorithm pdq --value HEX   # exit 0 if listed, 1 if not
    hashbank-sync match --state-dir D --pdq HEX [--distance 31]     # near PDQ matches
    hashbank-sync keys --base-url URL [--list adult]                # keys the server publishes

(``hashbank-sync --state-dir D ...`` without a command means ``sync``. From a checkout that
is not pip-installed, run ``python -m scripts.partner_sync ...`` from the repository root.)

Files in the state directory:

* ``state.json``: list slug, origin, pinned verifier keys, the last verified signed
  checkpoint, its size and root, and the right edge of the tree (``RightEdge.to_json()``).
  A few kilobytes at most, whatever the size of the list. Replaced atomically.
* ``store.sqlite3``: the hashes currently published (table ``hashes``), adds received
  redacted whose ``remove`` is still to come (table ``redacted``), and a copy of the state
  written in the same transaction (table ``meta``), so that a crash between the store commit
  and the state file replacement is recovered at the next sync.
* ``pdq-<size>-<root>.npy``: cache of the PDQ values as an (n, 4) big-endian uint64 array
  for ``match``.

A sync is refused (``SyncRefused``, exit 3) for: a checkpoint not signed by a pinned key
(``UnknownKey``) or badly signed (``BadSignature``), for another origin (``OriginMismatch``),
smaller than the last verified one (``Rollback``), or not extending it (``Fork``: same size
and another root, a consistency proof that fails, or two signed roots for one size); entries
missing, duplicated or out of order (``MissingOrReorderedEntries``); leaf bytes that are not
canonical or disagree with the JSON fields sent with them (``TamperedEntry``); a ``remove``
that names no earlier, still published ``add`` (``BadRemove``); a recomputed root that is not
the checkpoint's (``RootMismatch``, e.g. a wrong redacted ``leaf_hash``); answers not in the
wire format (``MalformedResponse``). A refused sync changes nothing on disk.

Exit codes: 0 ok (``check``: listed; ``match``: at least one match), 1 ``check``: not listed /
``match``: no match, 2 usage or local configuration error, 3 the sync was REFUSED because
something served did not verify (nothing local was changed), 4 network or HTTP error.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TextIO

from exchange.client import PROG, VERSION, matching
from exchange.client.errors import ConfigError, ServerError, SyncError, SyncRefused
from exchange.client.http import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_PAGE_SIZE,
    BankClient,
    normalize_base_url,
)
from exchange.client.matching import DEFAULT_PDQ_DISTANCE, PDQ_BITS
from exchange.client.store import LocalStore, validate_hash
from exchange.client.sync import SyncConfig, sync
from exchange.client.wire import b64

EXIT_OK: Final = 0
EXIT_NO: Final = 1
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_SERVER: Final = 4

_COMMANDS: Final = ("sync", "check", "match", "keys")


def _read_token(args: argparse.Namespace, err: TextIO) -> str | None:
    if args.token_file is not None and args.token is not None:
        raise ConfigError("give --token-file or --token, not both")
    if args.token_file is not None:
        path = Path(args.token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(f"cannot read the token file: {exc}") from None
        if not token:
            raise ConfigError(f"the token file {path} is empty")
        if os.name == "posix" and mode & 0o077:
            print(
                f"{PROG}: warning: {path} is readable by other users; chmod 600 it",
                file=err,
            )
        return token
    if args.token is not None:
        print(
            f"{PROG}: warning: --token is visible to other users (ps, shell history); prefer "
            "--token-file or the HASHBANK_TOKEN variable",
            file=err,
        )
        return args.token.strip() or None
    return os.environ.get("HASHBANK_TOKEN", "").strip() or None


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Keep a verified local copy of a hashbank list and query it.",
        epilog="Exit codes: 0 ok / listed, 1 not listed / no match, 2 usage or local error, "
        "3 sync refused (something served did not verify; nothing local changed), "
        "4 network or HTTP error. Without a command, the arguments are those of 'sync'.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    cmds = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def state_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--state-dir",
            required=True,
            type=Path,
            metavar="DIR",
            help="directory of the state file and the local store (one per list)",
        )

    def net(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"network timeout per request (default {DEFAULT_TIMEOUT:g})",
        )
        sub.add_argument(
            "--retries",
            type=int,
            default=DEFAULT_RETRIES,
            metavar="N",
            help=f"retries of a failed request (default {DEFAULT_RETRIES})",
        )
        sub.add_argument(
            "--allow-http",
            action="store_true",
            help="allow a plain http:// URL that is not this computer (the token travels "
            "unencrypted)",
        )

    s = cmds.add_parser("sync", help="fetch and verify the newest entries of a list")
    state_dir(s)
    s.add_argument(
        "--base-url",
        metavar="URL",
        help="the bank, e.g. https://bank.example.org (needed at the first sync, remembered after)",
    )
    s.add_argument("--list", dest="slug", metavar="SLUG", help="the list, e.g. adult")
    s.add_argument(
        "--vkey",
        action="append",
        default=[],
        metavar="VKEY",
        help="pinned verifier key <origin>+<id>+<key> (repeatable during a key rotation; "
        "needed at the first sync, remembered after)",
    )
    s.add_argument(
        "--accept-new-vkey",
        action="store_true",
        help="replace the pinned key(s) by the --vkey given (after checking them out of band)",
    )
    s.add_argument("--token-file", metavar="FILE", help="file holding the bearer token")
    s.add_argument(
        "--token", help="the bearer token (visible in ps: prefer --token-file or HASHBANK_TOKEN)"
    )
    s.add_argument(
        "--page-size",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"entries per request, 1..{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
    )
    net(s)
    s.add_argument("--json", action="store_true", help="print a JSON summary")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")

    c = cmds.add_parser("check", help="is this exact hash in the list? (exit 0 yes, 1 no)")
    state_dir(c)
    c.add_argument("--algorithm", required=True, help="pdq, md5, ...")
    c.add_argument("--value", required=True, metavar="HEX")

    m = cmds.add_parser("match", help="published PDQ hashes near this one")
    state_dir(m)
    m.add_argument("--pdq", required=True, metavar="HEX", help="64 hex digits")
    m.add_argument(
        "--distance",
        type=int,
        default=DEFAULT_PDQ_DISTANCE,
        metavar="N",
        help=f"largest Hamming distance, 0..{PDQ_BITS} (default {DEFAULT_PDQ_DISTANCE})",
    )

    k = cmds.add_parser("keys", help="show the verifier keys the server publishes")
    k.add_argument("--base-url", required=True, metavar="URL")
    k.add_argument("--list", dest="slug", metavar="SLUG")
    net(k)
    k.add_argument("--json", action="store_true")
    return p


def _cmd_sync(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    token = _read_token(args, err)
    config = SyncConfig(
        state_dir=args.state_dir,
        token=token,
        base_url=args.base_url,
        slug=args.slug,
        vkeys=tuple(args.vkey),
        accept_new_vkey=args.accept_new_vkey,
        page_size=args.page_size,
        timeout=args.timeout,
        retries=args.retries,
        pdq_cache=True,  # keep `match` instant (about 0.4 s per million PDQ hashes)
        progress=not args.no_progress and err.isatty(),
        allow_http=args.allow_http,
    )
    result = sync(config)
    if args.json:
        out.write(json.dumps(result.to_json()) + "\n")
    elif result.entries == 0:
        out.write(f"{result.slug}: up to date at size {result.size}\n")
    else:
        out.write(
            f"{result.slug}: verified checkpoint {result.size} (root {b64(result.root)}): "
            f"{result.entries} entries from {result.previous_size}, {result.added} hashes "
            f"added, {result.removed} removed, {result.redacted} redacted, in "
            f"{result.seconds:.2f} s ({result.entries_per_s:,.0f} entries/s)\n"
        )
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    algorithm, value = validate_hash(args.algorithm, args.value)
    with LocalStore(args.state_dir) as store:
        rows = store.rows(algorithm, value)
        answer = {
            "list": store.slug,
            "size": store.size,
            "algorithm": algorithm,
            "value": value,
            "present": bool(rows),
            "entries": rows,
        }
    out.write(json.dumps(answer) + "\n")
    return EXIT_OK if rows else EXIT_NO


def _cmd_match(args: argparse.Namespace, out: TextIO) -> int:
    with LocalStore(args.state_dir) as store:
        matches = matching.pdq_matches(store, args.pdq, args.distance)
        answer = {
            "list": store.slug,
            "size": store.size,
            "pdq": args.pdq.strip().lower(),
            "max_distance": args.distance,
            "matches": [{"value": v, "distance": d} for v, d in matches],
        }
    out.write(json.dumps(answer) + "\n")
    return EXIT_OK if matches else EXIT_NO


def _cmd_keys(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    base_url = normalize_base_url(args.base_url, allow_http=args.allow_http)
    with BankClient(base_url, None, timeout=args.timeout, retries=args.retries) as client:
        keys = client.keys()
    if args.slug:
        keys = [k for k in keys if k.get("list") == args.slug]
    if args.json:
        out.write(json.dumps({"keys": keys}) + "\n")
    else:
        for k in keys:
            out.write(f"{k.get('list')}\t{k.get('status')}\t{k.get('vkey')}\n")
    print(
        f"{PROG}: these keys come from the server itself: confirm them with the bank out of "
        "band before pinning one with --vkey",
        file=err,
    )
    return EXIT_OK if keys else EXIT_NO


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``hashbank-sync``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "sync")
    out, err = sys.stdout, sys.stderr
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    try:
        if args.command == "sync":
            return _cmd_sync(args, out, err)
        if args.command == "check":
            return _cmd_check(args, out)
        if args.command == "match":
            return _cmd_match(args, out)
        return _cmd_keys(args, out, err)
    except SyncRefused as exc:
        print(
            f"{PROG}: REFUSED ({type(exc).__name__}): {exc}\n"
            f"{PROG}: nothing was changed locally; the last verified state is kept. Tell the "
            "bank's operators: this may be an attack or a server bug.",
            file=err,
        )
        if as_json:
            out.write(json.dumps({"error": str(exc), "refused": type(exc).__name__}) + "\n")
        return EXIT_REFUSED
    except SyncError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        if as_json:
            out.write(json.dumps({"error": str(exc)}) + "\n")
        return EXIT_SERVER if isinstance(exc, ServerError) else EXIT_USAGE
    except (sqlite3.Error, OSError) as exc:  # the local disk or store, not the server
        print(f"{PROG}: error: local state in {getattr(args, 'state_dir', '?')}: {exc}", file=err)
        if as_json:
            out.write(json.dumps({"error": str(exc)}) + "\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was changed locally", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
