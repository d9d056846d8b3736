"""The JSON parser of every API: a key given twice in one object is an error.

Python's json keeps the last of two equal keys silently, and other parsers in
front of the bank (a proxy, a partner's own validator) may keep the first, so
the bank and they could act on different values. Refusing the body is the one
safe reading.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import IO, Any

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from webapi.errors import InvalidInput


class _Repeated(dict[str, Any]):
    """An object in which ``key`` appeared more than once (the last value is kept)."""

    key: str


def _repeated_key(pairs: list[tuple[str, Any]]) -> str | None:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def _first_repeat(value: Any, path: str = "") -> str | None:
    """The path (as in error bodies' ``field``) of the first repeated key, if any."""
    if isinstance(value, _Repeated):
        return f"{path}.{value.key}" if path else value.key
    if isinstance(value, dict):
        for key, child in value.items():
            found = _first_repeat(child, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for position, child in enumerate(value):
            found = _first_repeat(child, f"{path}[{position}]")
            if found is not None:
                return found
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser (no NaN or Infinity), refusing repeated keys with a 400 naming one."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", "utf-8")
        repeats = False

        def build_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            nonlocal repeats
            built = dict(pairs)
            if len(built) == len(pairs):
                return built
            repeats = True
            repeated = _Repeated(built)
            repeated.key = _repeated_key(pairs) or ""
            return repeated

        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                object_pairs_hook=build_object,
                parse_constant=strict_constant,
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        # The tree is walked only when a repeat was seen: most bodies have none.
        field = _first_repeat(data) if repeats else None
        if field is not None:
            # Echoed in `field`: escape lone surrogates, which can't be encoded.
            field = field.encode("utf-8", "backslashreplace").decode("utf-8")
            raise InvalidInput(
                _("The request body gives this key more than once: send each key once."),
                field=field,
                code="duplicate_key",
            )
        return data
