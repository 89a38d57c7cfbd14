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

import operator
import sqlite3
import struct
import warnings
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np

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
    """``value`` as whole units of ``1/scale`` when that is exact, else the float itself.

    NaN is stored as NULL (what SQLite itself does with a NaN bound to any column) and an
    infinity as the REAL it is."""
    if value is None:
        return None
    v = float(value)
    if v != v:
        return None
    k = v * scale
    if -_MAX_EXACT < k < _MAX_EXACT:
        k = round(k)
        if k / scale == v:
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
_FAST_LIMIT = float(1 << 50)  # |value| × 10⁶ below this: the one-multiplication test is exact
_TENS = tuple(10**d for d in range(_MAX_DECIMALS + 1))


def _value_decimals(v: float) -> int | None:
    """The fewest decimals (0..6) at which ``v`` is a whole number of units, else None;
    -1 when ``v`` is too large for the one-multiplication test (the caller checks it).

    Below 2⁵⁰ micro-units, a value whole at ``d`` decimals is whole at every finer ``d``
    (the products are exact to well under half a unit), so one multiplication by 10⁶ and
    the trailing zeros of the units answer the question."""
    k = v * 1e6
    if -_FAST_LIMIT < k < _FAST_LIMIT:
        r = round(k)
        if r / 1e6 != v:
            return None
        if r % 100 == 0:
            if r % 10_000 == 0:
                return 0 if r % 1_000_000 == 0 else (1 if r % 100_000 == 0 else 2)
            return 3 if r % 1_000 == 0 else 4
        return 5 if r % 10 == 0 else 6
    return None if v != v else -1


def _decimals(values: Sequence[float]) -> int | None:
    """The fewest decimals (0..6) at which every value is a whole number of units."""
    best = 0
    large = False
    for v in values:
        d = _value_decimals(v)
        if d is None:
            return None
        if d < 0:
            large = True
        elif d > best:
            best = d
    if large:  # a large value may be whole at few decimals only (its units pass 2⁵³): the definition
        for d in range(best, _MAX_DECIMALS + 1):
            if all(encode_scaled(v, _TENS[d]).__class__ is int for v in values):
                return d
        return None
    return best


def _varint(out: bytearray, n: int) -> None:
    n = (n << 1) ^ (n >> 63)  # zigzag: small magnitudes of either sign stay small
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _pairs(levels) -> list[tuple[float, float]]:
    """(price, size) floats from tuples or objects with ``price``/``size`` (BookLevel)."""
    out = []
    for lv in levels:
        if isinstance(lv, tuple):
            p, s = lv
        else:
            p, s = lv.price, lv.size
        out.append((float(p), float(s)))
    return out


def pack_levels(levels: Sequence | None) -> bytes | None:
    """Book levels (price, size), best first → one BLOB.

    Layout: a mode byte ``price_decimals * 8 + size_decimals``, then per level the price
    (the first in units, each next one as the signed step from the previous) and the size,
    all zigzag varints. Three levels of a 0.01-tick book with sizes in whole or cent shares
    take 10–16 bytes (the text ``"0.52:1500,0.51:220.5,0.5:80"`` takes 27). Values that no
    power of ten up to 10⁻⁶ makes whole are stored as float64 pairs after a 0xFF byte.
    ``None`` stays None (not recorded); ``[]`` is ``b""`` (an empty side). A level is a
    ``(price, size)`` tuple or an object with ``price`` and ``size`` (a BookLevel)."""
    if levels is None:
        return None
    if not levels:
        return b""
    pairs = _pairs(levels)
    prices = [p for p, _ in pairs]
    sizes = [s for _, s in pairs]
    pd, sd = _decimals(prices), _decimals(sizes)
    if pd is None or sd is None:
        return bytes([_FLOAT_MODE]) + struct.pack(f"<{2 * len(pairs)}d", *[x for lv in pairs for x in lv])
    out = bytearray([pd * 8 + sd])
    ps, ss = _TENS[pd], _TENS[sd]
    prev = 0
    for p, s in pairs:
        units = round(p * ps)
        _varint(out, units - prev)
        prev = units
        _varint(out, round(s * ss))
    return bytes(out)


def pack_levels_many(sides: Sequence) -> list[bytes | None]:
    """:func:`pack_levels` of many sides at once (the same bytes), vectorised with numpy.

    Each side is None, a ``"p:s,p:s"`` text, a packed BLOB (kept) or a sequence of levels
    (tuples or BookLevels). A batch of texts is parsed in one call, a batch of sequences is
    flattened at C speed; the decimals, units, steps and varints of every level are then
    computed on arrays and the BLOBs cut from one buffer. Sides that need the float mode,
    batches of mixed kinds and anything malformed go through :func:`pack_levels` /
    :func:`levels_of` one by one (which name a malformed side)."""
    kinds = set(map(type, sides))
    if kinds <= {tuple, list} and all(sides):  # the collector's batch: every side has levels
        out: list[bytes | None] = list(sides)
        idx: Sequence[int] = range(len(sides))
        group = sides
    else:
        out = [None if side is None else b"" for side in sides]
        idx = [i for i, side in enumerate(sides) if side]
        if not idx:
            return out
        group = [sides[i] for i in idx]
        kinds = set(map(type, group))
    values: np.ndarray | None = None
    counts: list[int] = []
    if kinds == {str}:
        counts = [t.count(":") for t in group]
        values = _text_values(group, counts)
    elif kinds <= {tuple, list}:
        counts = list(map(len, group))
        values = _level_values(group, 2 * sum(counts))
    slow: list[int] = []
    if values is None:
        slow = list(idx)
    else:
        blobs = _pack_arrays(values, np.asarray(counts, dtype=np.int64))
        if isinstance(idx, range):
            out = blobs
            slow = [i for i, blob in enumerate(blobs) if blob is None]
        else:
            for i, blob in zip(idx, blobs, strict=True):
                if blob is None:
                    slow.append(i)
                else:
                    out[i] = blob
    for i in slow:
        out[i] = _levels_blob(sides[i])
    return out


_PRICE_SIZE = operator.attrgetter("price", "size")


def _level_values(group: Sequence, n_values: int) -> np.ndarray | None:
    """The interleaved (price, size) values of sequences of levels, or None (slow path)."""
    levels = list(chain.from_iterable(group))
    try:
        if all(type(lv) is tuple for lv in levels[:1]):
            if set(map(len, levels)) != {2}:
                return None
            flat = chain.from_iterable(levels)
        else:
            flat = chain.from_iterable(map(_PRICE_SIZE, levels))
        return np.fromiter(flat, dtype=np.float64, count=n_values)
    except (TypeError, ValueError, AttributeError):
        return None


def _text_values(texts: Sequence[str], counts: list[int]) -> np.ndarray | None:
    """All (price, size) values of ``"p:s,p:s"`` texts in order, or None when one looks
    malformed (then the slow path names the problem)."""
    if not all(counts):
        return None
    joined = ",".join(texts).replace(":", ",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            values = np.fromstring(joined, dtype=np.float64, sep=",")
        except ValueError:
            return None
    if len(values) != 2 * sum(counts) or joined.count(",") + 1 != len(values):
        return None
    return values


def _pack_arrays(values: np.ndarray, counts: np.ndarray) -> list[bytes | None]:
    """The BLOBs of sides given as interleaved (price, size) values and level counts (all
    counts ≥ 1); None for a side that needs the float mode."""
    with np.errstate(invalid="ignore"):
        k = values * 1e6
        fast = np.abs(k) < _FAST_LIMIT
        r = np.where(fast, np.rint(k), 0.0)
        exact = fast & (r / 1e6 == values)
    # each value's fewest decimals: 6 minus the trailing decimal zeros of its micro-units
    # (a float division by a power of ten is whole exactly when the units are a multiple)
    dec = np.full(len(values), _MAX_DECIMALS, dtype=np.int64)
    for m in range(1, _MAX_DECIMALS + 1):
        q = r / float(_TENS[m])
        dec -= q == np.floor(q)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    level_ok = exact[0::2] & exact[1::2]
    side_ok = np.logical_and.reduceat(level_ok, starts)
    pd = np.maximum.reduceat(dec[0::2], starts)
    sd = np.maximum.reduceat(dec[1::2], starts)
    tens = np.asarray(_TENS, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # sides that need the float mode: their units are unused
        pu = np.rint(values[0::2] * tens[np.repeat(pd, counts)]).astype(np.int64)
        su = np.rint(values[1::2] * tens[np.repeat(sd, counts)]).astype(np.int64)
    step = pu.copy()
    step[1:] -= pu[:-1]
    step[starts] = pu[starts]  # the first level of a side: its units
    nums = np.empty(2 * len(pu), dtype=np.int64)
    nums[0::2] = step
    nums[1::2] = su
    z = ((nums << 1) ^ (nums >> 63)).view(np.uint64)  # zigzag
    nb = np.ones(len(z), dtype=np.int64)  # varint bytes per number
    for j in range(1, 10):
        more = z >= np.uint64(1 << (7 * j))
        if not more.any():
            break
        nb += more
    width = int(nb.max())
    col = np.arange(width, dtype=np.int64)
    grid = (z[:, None] >> (np.uint64(7) * col.astype(np.uint64))) & np.uint64(0x7F)
    grid |= (col[None, :] + 1 < nb[:, None]).astype(np.uint64) << np.uint64(7)
    stream = grid[col[None, :] < nb[:, None]].astype(np.uint8)  # every side's varints, in order
    stream_len = np.add.reduceat(nb, 2 * starts)
    stream_off = np.concatenate(([0], np.cumsum(stream_len)[:-1]))
    data = np.insert(stream, stream_off, (pd * 8 + sd).astype(np.uint8)).tobytes()
    side_off = stream_off + np.arange(len(counts))
    blobs: list[bytes | None] = list(
        map(data.__getitem__, map(slice, side_off.tolist(), (side_off + 1 + stream_len).tolist()))
    )
    if not side_ok.all():
        for i in np.flatnonzero(~side_ok).tolist():
            blobs[i] = None
    return blobs


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


def levels_of(value: bytes | str | Sequence | None) -> list[tuple[float, float]]:
    """Levels from a packed BLOB (this schema), the old ``"p:s,p:s"`` text, or levels
    already (tuples or BookLevels, as :func:`encode` accepts them)."""
    if not value:
        return []
    if isinstance(value, str):
        out = []
        for item in value.split(","):
            p, s = item.split(":")
            out.append((float(p), float(s)))
        return out
    if isinstance(value, (bytes, bytearray, memoryview)):
        return unpack_levels(bytes(value)) or []
    return _pairs(value)


def top_size(blob: bytes | str | None) -> float | None:
    """The size of the first level (None for an empty or unrecorded side): of a packed BLOB
    only its first two numbers are decoded (SQL calls this for ~180,000 rows when a replay
    estimates the books of backfilled rows); anything else through :func:`levels_of`."""
    if not blob:
        return None
    if isinstance(blob, (bytes, bytearray)):
        if blob[0] == _FLOAT_MODE:
            return struct.unpack_from("<d", blob, 9)[0] if len(blob) >= 17 else None
        end = len(blob)
        i = 1
        while i < end and blob[i] & 0x80:  # the first price's varint, skipped
            i += 1
        n = shift = 0
        for c in blob[i + 1 :]:  # the first size's varint
            n |= (c & 0x7F) << shift
            if not c & 0x80:
                return ((n >> 1) ^ -(n & 1)) / 10 ** (blob[0] & 7)
            shift += 7
        return None  # no complete first level
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


def _scaled_column(col: Sequence, scale: int) -> list:
    """:func:`encode_scaled` of a whole column (the same values), on arrays."""
    n = len(col)
    nulls = col.count(None) if isinstance(col, (list, tuple)) else sum(v is None for v in col)
    if nulls == n:
        return [None] * n
    try:
        v = np.asarray(col, dtype=np.float64)
    except (TypeError, ValueError):  # a value numpy cannot take: one by one
        return [encode_scaled(x, scale) for x in col]
    k = v * scale
    with np.errstate(invalid="ignore"):
        ok = np.abs(k) < _MAX_EXACT
        r = np.where(ok, np.rint(k), 0.0)
        ok &= r / scale == v
    out = r.astype(np.int64).tolist()
    if not ok.all():
        for i in np.flatnonzero(~ok).tolist():
            out[i] = encode_scaled(col[i], scale)
    return out


def _floats_or_nan(col: Sequence) -> np.ndarray:
    try:
        return np.asarray(col, dtype=np.float64)  # None → NaN
    except (TypeError, ValueError):
        return np.asarray([np.nan if x is None else float(x) for x in col], dtype=np.float64)


def _exception_column(col: Sequence, derived: np.ndarray) -> list:
    """:func:`_exception` of a whole column (mid or spread against its derived value)."""
    v = _floats_or_nan(col)
    with np.errstate(invalid="ignore"):
        same = v == derived  # NaN (None) on either side: not the same
    if same.all():
        return [None] * len(v)
    out: list = [None] * len(v)
    for i in np.flatnonzero(~same).tolist():
        d = derived[i]
        out[i] = _exception(col[i], None if d != d else float(d))
    return out


# the stored columns that are usually all NULL / default in a batch: left out of its INSERT
OPTIONAL = ("mid", "spread", "source")


def _needed(name: str, values: list) -> bool:
    if name == "source":
        return any(values)  # the column's default is 0 (collected)
    if name in OPTIONAL:
        return values.count(None) != len(values)
    return True


def encode_rows(
    rows: Sequence[Sequence], token_keys: Sequence[int], *, blob_type: type = bytes
) -> tuple[tuple[str, ...], list[tuple]]:
    """:func:`encode` of many rows at once (the same values), vectorised with numpy.

    Returns the ``market_snapshots`` columns to insert and the tuples in that order: the
    columns of :data:`OPTIONAL` that are NULL (mid, spread) or 0 (source) in every row are
    left out (they are the table's defaults) — fewer bound parameters per row make
    ``executemany`` about a third faster. ``blob_type=bytearray``: the packed sides as
    bytearrays, the same bytes (an INSERT binds them without the sqlite3 module's adapter
    lookup for ``bytes``: see polybot/collect/snapshot_rows.py ``_pack_buffer``)."""
    if not rows:
        return ("timestamp", "token_key", *STORED), []
    cols = list(zip(*rows, strict=True))
    if len(cols) != len(COLUMNS):
        raise ValueError(f"a snapshot row has {len(COLUMNS)} values ({', '.join(COLUMNS)}), not {len(cols)}")
    ts, _tok, _mkt, bid, ask, mid, spread, last, bdep, adep, bids, asks, vol, liq, src = cols
    n = len(rows)
    b, a = _floats_or_nan(bid), _floats_or_nan(ask)
    bid_col, ask_col = _scaled_column(bid, PRICE_SCALE), _scaled_column(ask, PRICE_SCALE)
    with np.errstate(invalid="ignore"):
        mid_col = _exception_column(mid, (b + a) / 2)
        spread_col = _exception_column(spread, a - b)
    if src.count("collected") == n:
        src_col = [0] * n
    else:
        src_col = []
        for source in src:
            try:
                src_col.append(SOURCE_CODE[source or "collected"])
            except KeyError:
                raise ValueError(
                    f"unknown snapshot source {source!r} (expected one of {', '.join(SOURCES)})"
                ) from None
    sides: list = pack_levels_many(bids + asks)  # one batch: both sides' levels in the same arrays
    if blob_type is not bytes:
        sides = [None if b is None else blob_type(b) for b in sides]
    columns: list[tuple[str, list]] = [
        ("timestamp", list(map(int, ts))),
        ("token_key", list(token_keys)),
        ("bid", bid_col),
        ("ask", ask_col),
        ("last", _scaled_column(last, PRICE_SCALE)),
        ("bid_depth", _scaled_column(bdep, SIZE_SCALE)),
        ("ask_depth", _scaled_column(adep, SIZE_SCALE)),
        ("bids", sides[:n]),
        ("asks", sides[n:]),
        ("volume_24h", _scaled_column(vol, MONEY_SCALE)),
        ("liquidity", _scaled_column(liq, MONEY_SCALE)),
        ("mid", mid_col),
        ("spread", spread_col),
        ("source", src_col),
    ]
    kept = [(name, values) for name, values in columns if _needed(name, values)]
    return tuple(name for name, _ in kept), list(zip(*(values for _, values in kept), strict=True))


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
