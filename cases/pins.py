"""PIN hashing with Argon2id, and constant-work checks for unknown cases."""

from __future__ import annotations

import functools
import secrets
import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from django.conf import settings

PIN_MIN_LENGTH = 6
PIN_MAX_LENGTH = 128
GENERATED_PIN_DIGITS = 8


@functools.cache
def _hasher() -> PasswordHasher:
    params = settings.HASHBANK_PIN_ARGON2
    return PasswordHasher(
        time_cost=params["time_cost"],
        memory_cost=params["memory_cost"],
        parallelism=params["parallelism"],
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


@functools.cache
def _decoy_hash() -> str:
    # Verified against when the case is unknown or locked, so those answers
    # take as long as a real wrong PIN.
    return _hasher().hash(secrets.token_urlsafe(16))


def normalise(pin: str) -> str:
    return unicodedata.normalize("NFC", pin)


def generate() -> str:
    # Uniform over every string of GENERATED_PIN_DIGITS digits, leading zeros included.
    return str(secrets.randbelow(10**GENERATED_PIN_DIGITS)).zfill(GENERATED_PIN_DIGITS)


def hash_pin(pin: str) -> str:
    return _hasher().hash(normalise(pin))


def verify(pin_hash: str, pin: str) -> bool:
    try:
        return _hasher().verify(pin_hash, normalise(pin))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _current_prefix() -> str:
    # "$argon2id$v=19$m=...,t=...,p=...$": every hash made with today's parameters starts so.
    return _decoy_hash().rsplit("$", 2)[0] + "$"


def needs_rehash(pin_hash: str) -> bool:
    """Was this hash made with other parameters than today's? (Checked on every status
    check, so by its prefix; argon2-cffi parses the whole hash to tell.)"""
    return not pin_hash.startswith(_current_prefix())


def spend_equal_time(pin: str) -> None:
    verify(_decoy_hash(), pin)
