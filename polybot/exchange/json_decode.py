"""JSON decoding of the exchange's answers: orjson (pinned in requirements.txt), with the
result of the standard library's ``json.loads`` for every input.

A whole-universe collection cycle decodes ~230 MB of JSON (Gamma's keyset pages and the
``POST /books`` answers); orjson does it about twice as fast as ``json.loads`` (measured on
the simulator's pages: ~31 → 15 µs a Gamma market, ~12 → 5 µs a book), CPU taken from the
GIL the book threads and the listing share.

orjson differs from the standard library in what it accepts, never in what it returns
for the rest (tests/exchange/test_json_decode.py compares them on the real samples and on
random floats), except for one thing: an integer literal beyond 64 bits becomes a float
(a 77-digit token id written as a bare number would lose its digits). So:

- a body with a bare number of 19 or more integer digits (found by one C-speed scan: a run
  of 19 digits whose preceding byte is not the quote that opens a string) goes to
  ``json.loads``, which keeps every digit;
- whatever orjson refuses (NaN/Infinity, numbers out of double range, text that is not
  UTF-8) is decoded again by ``json.loads``, so the parsers see exactly what they always
  saw; a body neither accepts raises ``ValueError`` as before (``orjson.JSONDecodeError``
  and ``json.JSONDecodeError`` are both ``ValueError``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# digits → "0", the quote stays, every other byte → "x": a bare number of ≥ 19 integer
# digits is then "x" + 19 zeros (or 19 zeros at the very start); digits inside a string
# start after its quote (a JSON number is never preceded by a quote)
_CLASSES = bytes(48 if 48 <= c <= 57 else c if c == 34 else 120 for c in range(256))
_LONG = b"0" * 19
_BARE_LONG = b"x" + _LONG


def _has_long_bare_number(data: bytes) -> bool:
    t = data.translate(_CLASSES)
    return t.find(_BARE_LONG) >= 0 or t.startswith(_LONG)


def loads(data: bytes | bytearray | str) -> Any:
    """Decode one JSON document (bytes or str) → Python objects, exactly as ``json.loads``."""
    try:
        raw = data.encode() if isinstance(data, str) else bytes(data)
    except UnicodeEncodeError:  # a lone surrogate: only the standard decoder takes it
        return json.loads(data)
    if _has_long_bare_number(raw):
        return json.loads(data)  # every digit of a huge integer kept
    try:
        return orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError is one
        return json.loads(data)  # NaN, out-of-range numbers, other encodings — or a real error
