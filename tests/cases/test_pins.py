"""Generated PINs: 8 digits, every string of them equally likely."""

from __future__ import annotations

from collections import Counter

from cases import pins


def test_generated_pins_are_eight_digits_drawn_evenly_leading_zeros_included():
    generated = [pins.generate() for _ in range(20_000)]
    assert all(len(p) == pins.GENERATED_PIN_DIGITS and p.isdigit() for p in generated)
    assert len(set(generated)) > 19_900
    for position in range(pins.GENERATED_PIN_DIGITS):
        counts = Counter(p[position] for p in generated)
        assert set(counts) == set("0123456789")
        # 2,000 expected per digit; a fair draw stays well within 1,700..2,300.
        assert 1_700 < min(counts.values()) and max(counts.values()) < 2_300, (position, counts)
