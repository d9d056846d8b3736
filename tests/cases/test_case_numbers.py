"""Case numbers: random, readable, and their check symbol catches typos."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases import case_numbers
from cases.case_numbers import ALPHABET, CaseNumberError


def test_it_has_at_least_64_random_bits_in_readable_groups():
    number = case_numbers.generate()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", number)
    assert case_numbers.PAYLOAD_LENGTH * 5 >= 64
    assert not set("ILOU") & set(number)


def test_generated_numbers_do_not_repeat():
    assert len({case_numbers.generate() for _ in range(5000)}) == 5000


def test_every_position_draws_from_the_whole_alphabet_evenly():
    payloads = [case_numbers.canonical(case_numbers.generate())[:15] for _ in range(16_000)]
    for position in range(case_numbers.PAYLOAD_LENGTH):
        counts = Counter(p[position] for p in payloads)
        assert set(counts) == set(ALPHABET)
        # 500 expected per symbol; a fair draw stays well within 350..650.
        assert 350 < min(counts.values()) and max(counts.values()) < 650, (position, counts)


@given(st.integers(min_value=0, max_value=15), st.integers(min_value=1, max_value=31))
def test_every_single_substitution_is_caught(position, shift):
    canonical = case_numbers.canonical(case_numbers.generate())
    wrong = ALPHABET[(ALPHABET.index(canonical[position]) + shift) % 32]
    typo = canonical[:position] + wrong + canonical[position + 1 :]
    with pytest.raises(CaseNumberError) as exc:
        case_numbers.canonical(typo)
    assert exc.value.code == "mistyped"


def test_most_neighbour_swaps_are_caught():
    caught = total = 0
    for _ in range(300):
        canonical = case_numbers.canonical(case_numbers.generate())
        for i in range(15):
            if canonical[i] == canonical[i + 1]:
                continue
            swapped = canonical[:i] + canonical[i + 1] + canonical[i] + canonical[i + 2 :]
            total += 1
            try:
                case_numbers.canonical(swapped)
            except CaseNumberError:
                caught += 1
    assert caught / total > 0.95


def test_reading_is_forgiving_about_case_dashes_and_lookalikes():
    number = case_numbers.generate()
    canonical = case_numbers.canonical(number)
    loose = " " + number.lower().replace("0", "o").replace("1", "i").replace("-", "  ") + " "
    assert case_numbers.canonical(loose) == canonical


@pytest.mark.parametrize("text", ["", "ABC", "U" * 16, "0" * 17, "!" * 16, "x" * 100])
def test_it_calls_wrongly_shaped_input_malformed(text):
    with pytest.raises(CaseNumberError) as exc:
        case_numbers.canonical(text)
    assert exc.value.code == "malformed"
