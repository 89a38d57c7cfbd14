"""The compact encoding of a market snapshot (schema version 6, issue 16).

A stored snapshot (``market_snapshots``) holds integers wherever the value allows it, and the
decoded value is always the original float, bit for bit:

- **prices** (best bid, best ask, last trade; mid and spread where they are stored) are
  INTEGER units of 0.0001 — the finest tick Polymarket lists, so every book price is one;
- **depth sums** (``bid_depth``/``ask_depth``) are INTEGER centi-shares;
- **volume and liquidity** are INTEGER micro-USDC (the project's money unit);
- a value that is not a whole number of its unit (a float that came from a sum, or an
  off-grid price) is stored as the REAL it is. SQLite keeps the type per value, so the
  decoder tells the two apart (``typeof``) and nothing is ever rounded: decoding is
  ``units / scale`` — a correctly rounded IEEE division of two exact numbers, which gives
  the same double as parsing the decimal the exchange sent.
- **mid and spread** are derived on read — ``(bid + ask) / 2`` and ``ask - bid``, the
  collector's own formulas — and stored only where the row's value differs (a backfilled
  row's mid is the history price; it has no book). An empty BLOB there means "NULL although
  both sides are present".
- **book levels** (``bids``/``asks``, best first) are one BLOB a side, see
  :func:`pack_levels`; an empty BLOB is an empty side, NULL is "not recorded".

The codec is pure: no I/O. :mod:`polybot.snapshots.store` writes and reads rows with it and
the ``snapshot_values`` view decodes the scalar columns in plain SQL (so the sqlite3 shell
and the checklist's queries work without any registered function).
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterable, Sequence

PRICE_SCALE = 10_000  # units of 0.0001
SIZE_SCALE = 100  # centi-shares
MONEY_SCALE = 1_000_000  # micro-USDC

SOURCES = ("collected", "backfill")
SOURCE_CODE = {name: code for code, name in enumerate(SOURCES)}

NULL_MARK = b""  # mid/spread: NULL on purpose (the derived value would not be)

_MAX_EXACT = 1 << 53
_FLOAT_MODE = 0xFF
_MAX_DECIMALS = 6


def encode_scaled(value: float | int | None, scale: int) -> int | float | None:
    """``value`` as whole units of ``1/scale`` when that is exact, else the float itself."""
    if value is None:
        return None
    v = float(value)
    k = round(v * scale)
    if -_MAX_EXACT < k < _MAX_EXACT and k / scale == v:
        return k
    return v


def decode_scaled(stored: int | float | None, scale: int) -> float | None:
    """Inverse of :func:`encode_scaled` (an INTEGER is units, a REAL is the value)."""
    if stored is None:
        return None
    if isinstance(stored, int):
        return stored / scale
    return float(stored)


def sql_decode(column: str, scale: int) -> str:
    """The SQL of :func:`decode_scaled` for one column (used by the view)."""
    return f"CASE WHEN typeof({column}) = 'integer' THEN {column} / {float(scale)!r} ELSE {column} END"


# ----------------------------------------------------------------------------- levels
def _decimals(values: Sequence[float]) -> int | None:
    """The fewest decimals (0..6) at which every value is a whole number of units."""
    for d in range(_MAX_DECIMALS + 1):
        scale = 10**d
        if all(encode_scaled(v, scale).__class__ is int for v in values):
            return d
    return None


def _varint(out: bytearray, n: int) -> None:
    n = (n << 1) ^ (n >> 63)  # zigzag: small magnitudes of either sign stay small
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def pack_levels(levels: Sequence[tuple[float, float]] | None) -> bytes | None:
    """Book levels (price, size), best first → one BLOB.

    Layout: a mode byte ``price_decimals * 8 + size_decimals``, then per level the price
    (the first in units, each next one as the signed step from the previous) and the size,
    all zigzag varints. Three levels of a 0.01-tick book with sizes in whole or cent shares
    take 10–16 bytes (the text ``"0.52:1500,0.51:220.5,0.5:80"`` takes 27). Values that no
    power of ten up to 10⁻⁶ makes whole are stored as float64 pairs after a 0xFF byte.
    ``None`` stays None (not recorded); ``[]`` is ``b""`` (an empty side)."""
    if levels is None:
        return None
    if not levels:
        return b""
    prices = [float(p) for p, _ in levels]
    sizes = [float(s) for _, s in levels]
    pd, sd = _decimals(prices), _decimals(sizes)
    if pd is None or sd is None:
        return bytes([_FLOAT_MODE]) + struct.pack(
            f"<{2 * len(levels)}d", *[x for lv in zip(prices, sizes, strict=True) for x in lv]
        )
    out = bytearray([pd * 8 + sd])
    ps, ss = 10**pd, 10**sd
    prev = 0
    for p, s in zip(prices, sizes, strict=True):
        units = round(p * ps)
        _varint(out, units - prev)
        prev = units
        _varint(out, round(s * ss))
    return bytes(out)


def unpack_levels(blob: bytes | None) -> list[tuple[float, float]] | None:
    """Inverse of :func:`pack_levels`."""
    if blob is None:
        return None
    if not blob:
        return []
    mode = blob[0]
    if mode == _FLOAT_MODE:
        vals = struct.unpack(f"<{(len(blob) - 1) // 8}d", blob[1:])
        return [(vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]
    ps, ss = 10 ** (mode >> 3), 10 ** (mode & 7)
    nums: list[int] = []
    n = shift = 0
    for b in blob[1:]:
        n |= (b & 0x7F) << shift
        if b & 0x80:
            shift += 7
            continue
        nums.append((n >> 1) ^ -(n & 1))
        n = shift = 0
    out = []
    price = 0
    for i in range(0, len(nums) - 1, 2):
        price += nums[i]
        out.append((price / ps, nums[i + 1] / ss))
    return out


def levels_of(value: bytes | str | None) -> list[tuple[float, float]]:
    """Levels from either a packed BLOB (this schema) or the old ``"p:s,p:s"`` text."""
    if not value:
        return []
    if isinstance(value, str):
        out = []
        for item in value.split(","):
            p, s = item.split(":")
            out.append((float(p), float(s)))
        return out
    return unpack_levels(bytes(value)) or []


def top_size(blob: bytes | str | None) -> float | None:
    """The size of the first level (None for an empty or unrecorded side)."""
    levels = levels_of(blob)
    return levels[0][1] if levels else None


def text_of(value: bytes | str | None) -> str | None:
    """Levels as the compact text ``"p:s,p:s"`` (for people and CSV exports)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ",".join(f"{_num(p)}:{_num(s)}" for p, s in levels_of(value))


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


# ----------------------------------------------------------------------------- rows
# The columns of a decoded snapshot, in the order of the ``snapshot_values`` view.
COLUMNS = (
    "timestamp",
    "token_id",
    "market_id",
    "best_bid",
    "best_ask",
    "mid",
    "spread",
    "last_trade_price",
    "bid_depth",
    "ask_depth",
    "bids",
    "asks",
    "volume_24h",
    "liquidity",
    "source",
)
# The stored columns of ``market_snapshots`` after (timestamp, token_key).
STORED = (
    "bid",
    "ask",
    "last",
    "bid_depth",
    "ask_depth",
    "bids",
    "asks",
    "volume_24h",
    "liquidity",
    "mid",
    "spread",
    "source",
)


def derived_mid(bid: float | None, ask: float | None) -> float | None:
    return (bid + ask) / 2 if bid is not None and ask is not None else None


def derived_spread(bid: float | None, ask: float | None) -> float | None:
    return ask - bid if bid is not None and ask is not None else None


def _exception(value: float | None, derived: float | None) -> int | float | bytes | None:
    if value is None:
        return None if derived is None else NULL_MARK
    if derived is not None and float(value) == derived:
        return None
    return encode_scaled(value, PRICE_SCALE)


def _levels_blob(value: bytes | str | Sequence[tuple[float, float]] | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return pack_levels(levels_of(value))
    return pack_levels(value)


def encode(row: Sequence, token_key: int) -> tuple:
    """A decoded snapshot (:data:`COLUMNS` order; ``bids``/``asks`` as text, levels or
    a packed BLOB) → the ``market_snapshots`` tuple (timestamp, token_key, *STORED)."""
    (ts, _token, _market, bid, ask, mid, spread, last, bdep, adep, bids, asks, vol, liq, source) = row
    bid = None if bid is None else float(bid)
    ask = None if ask is None else float(ask)
    try:
        src = SOURCE_CODE[source or "collected"]
    except KeyError:
        raise ValueError(
            f"unknown snapshot source {source!r} (expected one of {', '.join(SOURCES)})"
        ) from None
    return (
        int(ts),
        token_key,
        encode_scaled(bid, PRICE_SCALE),
        encode_scaled(ask, PRICE_SCALE),
        encode_scaled(last, PRICE_SCALE),
        encode_scaled(bdep, SIZE_SCALE),
        encode_scaled(adep, SIZE_SCALE),
        _levels_blob(bids),
        _levels_blob(asks),
        encode_scaled(vol, MONEY_SCALE),
        encode_scaled(liq, MONEY_SCALE),
        _exception(mid, derived_mid(bid, ask)),
        _exception(spread, derived_spread(bid, ask)),
        src,
    )


def _decode_exception(stored, derived: float | None) -> float | None:
    if stored is None:
        return derived
    if isinstance(stored, bytes):
        return None
    return decode_scaled(stored, PRICE_SCALE)


def decode(stored: Sequence, token_id: str, market_id: str) -> tuple:
    """Inverse of :func:`encode` (``bids``/``asks`` stay packed BLOBs)."""
    ts, _key, bid, ask, last, bdep, adep, bids, asks, vol, liq, mid, spread, src = stored
    b, a = decode_scaled(bid, PRICE_SCALE), decode_scaled(ask, PRICE_SCALE)
    return (
        ts,
        token_id,
        market_id,
        b,
        a,
        _decode_exception(mid, derived_mid(b, a)),
        _decode_exception(spread, derived_spread(b, a)),
        decode_scaled(last, PRICE_SCALE),
        decode_scaled(bdep, SIZE_SCALE),
        decode_scaled(adep, SIZE_SCALE),
        bids,
        asks,
        decode_scaled(vol, MONEY_SCALE),
        decode_scaled(liq, MONEY_SCALE),
        SOURCES[src],
    )


def canonical(row: Sequence) -> tuple:
    """A decoded row with its levels as numbers: what "the same values" means for the
    migration's checksum (the old text ``"0.50:10"`` and the BLOB of (0.5, 10.0) are equal)."""
    out = list(row)
    out[10] = None if row[10] is None else tuple(levels_of(row[10]))
    out[11] = None if row[11] is None else tuple(levels_of(row[11]))
    return tuple(out)


# ----------------------------------------------------------------------------- SQL functions
def register_functions(conn: sqlite3.Connection) -> None:
    """Functions our own queries (not the view) may use: the top level's size of a side."""
    conn.create_function("snapshot_top_size", 1, top_size, deterministic=True)


def chunked(rows: Iterable, n: int) -> Iterable[list]:
    batch: list = []
    for r in rows:
        batch.append(r)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch
