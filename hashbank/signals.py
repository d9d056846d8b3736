"""Signals the bank defines so that the apps built on it can react to each other's news
without importing one another (docs/ARCHITECTURE.md, section 1)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent by whoever takes partner feedback (the exchange app) inside the transaction that
#: stores it, with ``hash_ids``: the hashes this feedback was about. Receivers read the
#: feedback itself through ``hashbank.selectors.hash_feedback``. A receiver that raises
#: fails the submission, so nothing is half-saved.
hash_feedback_received = Signal()
