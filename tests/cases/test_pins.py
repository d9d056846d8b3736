"""Generated PINs: 8 digits, every string of them equally likely."""

from __future__ import annotations

from collections import Counter

import pytest
from argon2 import PasswordHasher, Type

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


def test_a_hash_made_with_other_parameters_needs_rehashing():
    current = pins.hash_pin("123456")
    assert not pins.needs_rehash(current)
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("123456")
    stronger = PasswordHasher(time_cost=3, memory_cost=19456, parallelism=1).hash("123456")
    other_type = PasswordHasher(time_cost=2, memory_cost=19456, type=Type.I).hash("123456")
    assert pins.needs_rehash(weaker) and pins.needs_rehash(stronger)
    assert pins.needs_rehash(other_type)
    assert pins.verify(weaker, "123456")  # still opens the case, then is rehashed


@pytest.mark.django_db
def test_a_status_check_rehashes_a_pin_stored_with_old_parameters(make_case):
    from cases.models import Case
    from cases.services import case_authenticate

    created = make_case(pin="correct horse")
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("correct horse")
    Case.objects.filter(pk=created.case.pk).update(pin_hash=old)
    case_authenticate(case_number=created.case_number, pin="correct horse")
    stored = Case.objects.get(pk=created.case.pk).pin_hash
    assert stored != old and not pins.needs_rehash(stored)
    assert pins.verify(stored, "correct horse")
