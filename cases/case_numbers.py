"""Case numbers: unguessable, easy to read aloud, with a check character.

Pure module (no Django). A case number is 15 random symbols (75 bits) from
Crockford's base-32 alphabet, which has no I, L, O or U, followed by one Luhn
mod 32 check symbol, shown in groups of four: ``7KQ4-M2XD-9PZA-3HC8``.

The check symbol catches every single mistyped character and almost every swap
of two neighbours, so a typo is told apart from a number that is simply wrong
without asking the database. Reading is forgiving: case, spaces and dashes are
ignored, and O/I/L are read as 0/1/1.
"""

from __future__ import annotations

import secrets
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_N: Final = len(ALPHABET)
_VALUE: Final = {ch: i for i, ch in enumerate(ALPHABET)}
_READ_AS: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
PAYLOAD_LENGTH: Final = 15
LENGTH: Final = PAYLOAD_LENGTH + 1
GROUP: Final = 4


class CaseNumberError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _luhn_sum(symbols: str, *, double_first: bool) -> int:
    total = 0
    double = double_first
    for ch in reversed(symbols):
        addend = _VALUE[ch] * (2 if double else 1)
        total += addend // _N + addend % _N
        double = not double
    return total


def check_symbol(payload: str) -> str:
    return ALPHABET[(_N - _luhn_sum(payload, double_first=True) % _N) % _N]


def generate() -> str:
    # 75 random bits, five per symbol (the alphabet has exactly 32), from one
    # call to the system's generator rather than one per symbol.
    bits = secrets.randbits(5 * PAYLOAD_LENGTH)
    payload = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(PAYLOAD_LENGTH))
    return display(payload + check_symbol(payload))


def display(canonical: str) -> str:
    return "-".join(canonical[i : i + GROUP] for i in range(0, len(canonical), GROUP))


def canonical(text: str) -> str:
    """The 16-symbol form of a typed case number.

    Raises CaseNumberError("malformed") when it isn't shaped like a case number
    and CaseNumberError("mistyped") when its check symbol doesn't match.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise CaseNumberError("malformed")
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t").translate(_READ_AS)
    if len(cleaned) != LENGTH or any(ch not in _VALUE for ch in cleaned):
        raise CaseNumberError("malformed")
    if _luhn_sum(cleaned, double_first=False) % _N != 0:
        raise CaseNumberError("mistyped")
    return cleaned
