"""The partner client of a hashbank: pull one list, verify everything, keep a local copy.

A partner platform (``hashbank-sync``, ``scripts/partner_sync.py``) and a peer bank
(``exchange.federation``) both use this package to pull a list without trusting the server.
It imports neither Django nor anything of the server's apps: only :mod:`hashbank.tlog`, the
pure log primitives. The modules, from the wire inwards:

* :mod:`exchange.client.errors`: what goes wrong (``SyncRefused`` and its kinds, ``ServerError``,
  ``ConfigError``).
* :mod:`exchange.client.http`: ``BankClient``, the pull API over HTTP (retries, body caps,
  https unless loopback).
* :mod:`exchange.client.verify`: checkpoint, consistency and entry verification
  (``docs/LOG_FORMAT.md`` section 6), independent of where entries are stored.
* :mod:`exchange.client.state`, :mod:`exchange.client.store`: a partner's state file and
  SQLite store; :mod:`exchange.client.sync` ties everything into one ``sync``.
* :mod:`exchange.client.matching` (numpy) and :mod:`exchange.client.progress` (tqdm): only the
  partner's command line needs them, so a peer bank never imports them.

This module imports none of them, so ``import exchange.client.verify`` costs only what
verification needs.
"""

from typing import Final

PROG: Final = "hashbank-sync"
VERSION: Final = "0.1.0"
