"""The hash algorithms the bank accepts, and how their values are normalised.

The set is open: add an entry to ALGORITHMS for `vpdq` and others. Messages are
translated with Django's gettext because people read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

PDQ_MIN_QUALITY = 50
QUALITY_MAX = 100  # PDQ's scale (the messages below say it in words)


@dataclass(frozen=True)
class Algorithm:
    name: str
    hex_length: int
    has_quality: bool
    description: str


ALGORITHMS: dict[str, Algorithm] = {
    "pdq": Algorithm("pdq", 64, True, "PDQ perceptual hash of an image (256 bits)"),
    "md5": Algorithm("md5", 32, False, "MD5 of a video file's bytes"),
}

_HEX = re.compile(r"[0-9a-f]+")


class HashValueError(ValueError):
    """A hash that can't be accepted; ``field`` names the offending part."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def normalise_value(algorithm: str, value: str) -> str:
    """Lower-case hex of the algorithm's exact length, or HashValueError."""
    algo = ALGORITHMS.get(algorithm)
    if algo is None:
        raise HashValueError(
            "unknown_algorithm",
            _("Unknown algorithm. Use one of: %(names)s.")
            % {"names": ", ".join(sorted(ALGORITHMS))},
            "algorithm",
        )
    lowered = value.lower()
    if len(lowered) != algo.hex_length or not _HEX.fullmatch(lowered):
        raise HashValueError(
            "invalid_hash_value",
            _("A %(algorithm)s hash is exactly %(length)d hexadecimal characters (0-9, a-f).")
            % {"algorithm": algorithm, "length": algo.hex_length},
            "value",
        )
    return lowered


def check_quality(algorithm: str, quality: int | None) -> int | None:
    algo = ALGORITHMS[algorithm]
    if not algo.has_quality:
        if quality is not None:
            raise HashValueError(
                "quality_not_applicable",
                _("%(algorithm)s hashes have no quality.") % {"algorithm": algorithm},
                "quality",
            )
        return None
    if quality is None:
        raise HashValueError(
            "quality_required",
            _("A %(algorithm)s hash needs its quality (0-100).") % {"algorithm": algorithm},
            "quality",
        )
    if not 0 <= quality <= QUALITY_MAX:
        raise HashValueError("quality_out_of_range", _("Quality must be from 0 to 100."), "quality")
    if quality < PDQ_MIN_QUALITY:
        raise HashValueError(
            "quality_too_low",
            _(
                "This image's hash quality is %(quality)d; platforms can't match hashes below "
                "%(minimum)d. A larger or more detailed copy of the image may work."
            )
            % {"quality": quality, "minimum": PDQ_MIN_QUALITY},
            "quality",
        )
    return quality


def pdq_distance(a: str, b: str) -> int:
    """Hamming distance between two 64-hex PDQ values."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
