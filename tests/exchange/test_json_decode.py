"""polybot.exchange.json_decode: the fast decoder gives what json.loads gives, on the real
samples and on what orjson alone would refuse."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from polybot.exchange import json_decode

SAMPLES = Path("/work/shared/polymarket/samples")


def _samples() -> list[Path]:
    return sorted(SAMPLES.glob("*.json")) if SAMPLES.is_dir() else []


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.name)
def test_real_samples_decode_as_the_standard_library(path: Path) -> None:
    raw = path.read_bytes()
    assert json_decode.loads(raw) == json.loads(raw)
    assert json_decode.loads(raw.decode("utf-8")) == json.loads(raw.decode("utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        '{"token_id": 46939902395547315419862520238573192966689186006195011117138035220679687572986}',
        '{"price": NaN, "size": Infinity, "other": -Infinity}',
        '["0.495", "0.505"]',
        '{"p": 0.1, "q": 1e-7, "r": 123456789.123456789, "s": 5e-324}',
        '{"a": "\\u201cYes\\u201d", "b": null, "c": true, "d": [1, 2.5, "x"]}',
    ],
)
def test_what_orjson_refuses_still_decodes_like_json(text: str) -> None:
    got = json_decode.loads(text)
    want = json.loads(text)
    assert repr(got) == repr(want)  # repr: NaN != NaN, and 1 == 1.0 would hide a type change
    assert repr(json_decode.loads(text.encode())) == repr(want)


def test_random_floats_decode_as_the_standard_library() -> None:
    rng = random.Random(16)
    texts = []
    for _ in range(20_000):
        texts.append(
            f"{rng.randrange(10 ** rng.randrange(1, 13))}.{rng.randrange(10**12):0{rng.randrange(1, 13)}d}"
        )
        texts.append(repr(rng.uniform(-1e9, 1e9)))
        texts.append(f"{rng.randrange(1, 10**17)}e{rng.randrange(-330, 300)}")
    doc = "[" + ", ".join(texts) + "]"
    assert json_decode.loads(doc) == json.loads(doc)


@pytest.mark.parametrize(
    "text",
    ["[1234567890123456789]", "1234567890123456789", '{"a":\n-12345678901234567890123}', "[1e400]"],
)
def test_long_integers_keep_every_digit(text: str) -> None:
    assert repr(json_decode.loads(text)) == repr(json.loads(text))
    assert repr(json_decode.loads(text.encode())) == repr(json.loads(text))


def test_utf16_body_decodes_like_json() -> None:
    raw = '{"market": "0xabc", "bids": []}'.encode("utf-16")
    assert json_decode.loads(raw) == json.loads(raw)


@pytest.mark.parametrize("bad", [b"", b"{", b"<html>busy</html>", b'{"a": 1,}'])
def test_invalid_json_raises_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        json_decode.loads(bad)
