"""Transparency log primitives (being split into modules; see merkle.py for now)."""

from hashbank.tlog.merkle import *  # noqa: F403
from hashbank.tlog.merkle import __all__  # noqa: F401
