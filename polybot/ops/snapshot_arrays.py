"""Book sides of many snapshots at once, as numpy arrays, for ``maintain_database.py --migrate``.

The migration moves ~4 M rows in about a minute, so it cannot spend the codec's ~25 µs a book
side in Python. The functions here do the same work for a whole batch in numpy and give
exactly the codec's results (tests/ops/test_snapshot_migration.py checks them against it):

- :func:`parse_texts`: the old ``"p:s,p:s"`` text → levels (Python's ``float``, as
  :func:`polybot.snapshots.codec.levels_of`);
- :func:`pack_bulk`: levels → the BLOBs of :func:`codec.pack_levels`, byte for byte (a side
  that needs the codec's float mode is packed by the codec itself);
- :func:`decode_blobs`: BLOBs → levels by the format of :func:`codec.unpack_levels` (a side in
  float mode by the codec itself);
- :func:`batch_checksum`: an order-independent 64-bit checksum of decoded snapshots.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..snapshots import codec

MASK64 = (1 << 64) - 1
_MAX_DECIMALS = 6
_TWO53 = float(1 << 53)


@dataclass
class Levels:
    """The book sides of a batch: ``kind`` per row (0 NULL, 1 empty side, 2 levels),
    ``counts`` levels per row, and the flat ``prices``/``sizes`` (row after row, best first)."""

    kind: np.ndarray
    counts: np.ndarray
    prices: np.ndarray
    sizes: np.ndarray

    def row(self, i: int) -> list[tuple[float, float]] | None:
        if self.kind[i] == 0:
            return None
        at = int(self.counts[:i].sum())
        n = int(self.counts[i])
        return list(zip(self.prices[at : at + n].tolist(), self.sizes[at : at + n].tolist(), strict=True))


def _kinds(values: Sequence) -> np.ndarray:
    return np.fromiter((0 if v is None else 1 if not v else 2 for v in values), np.int8, len(values))


def _starts(counts: np.ndarray) -> np.ndarray:
    """Index of each row's first level in the flat arrays."""
    out = np.zeros(len(counts), np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=out[1:])
    return out


# ----------------------------------------------------------------------------- text
def parse_texts(texts: Sequence[str | None]) -> Levels:
    """The old ``"p:s,p:s"`` sides parsed with ``float``. Raises ValueError on a malformed one."""
    kind = _kinds(texts)
    full = [t for t in texts if t]
    counts = np.zeros(len(texts), np.int64)
    counts[kind == 2] = [t.count(",") + 1 for t in full]
    nums = _floats(",".join(full).replace(":", ",")) if full else np.zeros(0, np.float64)
    if len(nums) != 2 * int(counts.sum()):
        raise ValueError("a book side is not 'price:size' pairs")
    return Levels(kind, counts, nums[0::2].copy(), nums[1::2].copy())


_PLAIN = str.maketrans("", "", "0123456789.,-+eE")


def _floats(flat: str) -> np.ndarray:
    """The comma-separated numbers of ``flat`` as ``float`` reads them: numpy's C parser
    (correctly rounded, as ``float``; twice as fast) when the text holds only digits, signs,
    points and exponents and it reads every number; else ``float`` one by one."""
    if not flat.translate(_PLAIN):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                nums = np.fromstring(flat, np.float64, sep=",")
            except (ValueError, DeprecationWarning):
                nums = None
        if nums is not None and len(nums) == flat.count(",") + 1:
            return nums
    return np.array(list(map(float, flat.split(","))), np.float64)


# ----------------------------------------------------------------------------- packing
def _decimals(v: np.ndarray) -> np.ndarray:
    """Per value: the fewest decimals (0..6) at which it is a whole number of units
    (:func:`codec.encode_scaled`'s test), -1 if none."""
    d = np.full(len(v), -1, np.int64)
    for k in range(_MAX_DECIMALS + 1):
        s = float(10**k)
        r = np.rint(v * s)
        ok = (d < 0) & (np.abs(r) < _TWO53) & (r / s == v)
        d[ok] = k
        if d.min(initial=0) >= 0:
            break
    return d


def pack_bulk(lv: Levels, texts: Sequence[str | None]) -> list[bytes | None]:
    """``codec.pack_levels`` of every row's levels (``texts`` only for the codec fallback)."""
    out: list[bytes | None] = [None if k == 0 else b"" for k in lv.kind.tolist()]
    full = np.flatnonzero(lv.kind == 2)
    if not len(full):
        return out
    with np.errstate(invalid="ignore", over="ignore"):  # exotic rows compute garbage, then the codec
        return _pack_full(lv, texts, out, full)


def _pack_full(lv: Levels, texts: Sequence[str | None], out: list[bytes | None], full: np.ndarray) -> list:
    counts = lv.counts[full]
    starts = _starts(counts)
    pd_v, sd_v = _decimals(lv.prices), _decimals(lv.sizes)
    pd = np.maximum.reduceat(pd_v, starts)
    sd = np.maximum.reduceat(sd_v, starts)
    exotic = (np.minimum.reduceat(pd_v, starts) < 0) | (np.minimum.reduceat(sd_v, starts) < 0)
    level_row = np.repeat(np.arange(len(full)), counts)
    pu = np.rint(lv.prices * (10.0 ** pd[level_row])).astype(np.int64)
    su = np.rint(lv.sizes * (10.0 ** sd[level_row])).astype(np.int64)
    prev = np.zeros_like(pu)
    prev[1:] = pu[:-1]
    prev[starts] = 0
    vals = np.empty(2 * len(pu), np.int64)
    vals[0::2] = pu - prev
    vals[1::2] = su
    zig = ((vals << 1) ^ (vals >> 63)).view(np.uint64)
    nbytes = np.ones(len(zig), np.int64)
    for j in range(1, 10):
        nbytes += zig >= np.uint64(1 << (7 * j))
    value_row = np.repeat(np.arange(len(full)), 2 * counts)
    row_len = 1 + np.bincount(value_row, weights=nbytes, minlength=len(full)).astype(np.int64)
    row_start = _starts(row_len)
    value_off = _starts(nbytes) + value_row + 1  # the mode bytes of this row and those before
    buf = np.zeros(int(row_len.sum()), np.uint8)
    buf[row_start] = (np.maximum(pd, 0) * 8 + np.maximum(sd, 0)).astype(np.uint8)
    for j in range(10):
        m = nbytes > j
        if not m.any():
            break
        b = (zig[m] >> np.uint64(7 * j)) & np.uint64(0x7F)
        b |= np.where(nbytes[m] - 1 > j, np.uint64(0x80), np.uint64(0))
        buf[value_off[m] + j] = b.astype(np.uint8)
    big = buf.tobytes()
    ends = (row_start + row_len).tolist()
    for i, a, e in zip(full.tolist(), row_start.tolist(), ends, strict=True):
        out[i] = big[a:e]
    for r in np.flatnonzero(exotic).tolist():  # float mode: the codec itself
        i = int(full[r])
        out[i] = codec.pack_levels(codec.levels_of(texts[i]))
    return out


# ----------------------------------------------------------------------------- decoding
def decode_blobs(blobs: Sequence[bytes | None]) -> Levels:
    """Packed sides decoded by the format of :func:`codec.unpack_levels`; a side in float
    mode, or whose last varint is cut short, by the codec itself."""
    n = len(blobs)
    kind = _kinds(blobs)
    counts = np.zeros(n, np.int64)
    full = np.flatnonzero(kind == 2).tolist()
    fast = [i for i in full if blobs[i][0] != 0xFF and blobs[i][-1] < 0x80]  # type: ignore[index]
    slow = sorted(set(full) - set(fast))
    if not slow:
        if not fast:
            return Levels(kind, counts, np.zeros(0), np.zeros(0))
        p, s, c = _decode_fast([blobs[i] for i in fast])  # type: ignore[misc]
        counts[fast] = c
        return Levels(kind, counts, p, s)
    rows: dict[int, list[tuple[float, float]]] = {}
    if fast:
        p, s, c = _decode_fast([blobs[i] for i in fast])  # type: ignore[misc]
        at = 0
        for i, k in zip(fast, c.tolist(), strict=True):
            rows[i] = list(zip(p[at : at + k].tolist(), s[at : at + k].tolist(), strict=True))
            at += k
    for i in slow:
        rows[i] = codec.unpack_levels(blobs[i]) or []
    flat = [lv for i in sorted(rows) for lv in rows[i]]
    for i, lv in rows.items():
        counts[i] = len(lv)
    return Levels(
        kind,
        counts,
        np.array([x for x, _ in flat], np.float64),
        np.array([y for _, y in flat], np.float64),
    )


def _decode_fast(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(b) for b in blobs), np.int64, len(blobs))
    buf = np.frombuffer(b"".join(blobs), np.uint8)
    starts = _starts(lengths)
    modes = buf[starts].astype(np.int64)
    payload = np.ones(len(buf), bool)
    payload[starts] = False
    byte_row = np.repeat(np.arange(len(blobs)), lengths)[payload]
    pay = buf[payload].astype(np.uint64)
    ends = (pay & np.uint64(0x80)) == 0  # the last byte of each varint
    first = np.ones(len(pay), bool)
    first[1:] = ends[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(pay)), 0))
    shift = (7 * (np.arange(len(pay)) - group_start)).astype(np.uint64)
    parts = (pay & np.uint64(0x7F)) << shift
    raw = np.add.reduceat(parts, np.flatnonzero(first)) if len(pay) else np.zeros(0, np.uint64)
    nums = (raw >> np.uint64(1)).astype(np.int64) ^ -(raw & np.uint64(1)).astype(np.int64)
    value_row = byte_row[ends]
    per_row = np.bincount(value_row, minlength=len(blobs))
    c = per_row // 2  # an odd last value is ignored, as unpack_levels does
    keep = np.ones(len(nums), bool)
    odd_last = np.flatnonzero(per_row % 2)
    if len(odd_last):
        keep[_starts(per_row)[odd_last] + per_row[odd_last] - 1] = False
        nums, value_row = nums[keep], value_row[keep]
    deltas, su = nums[0::2], nums[1::2]
    level_row = value_row[0::2]
    cum = np.cumsum(deltas)
    first_level = _starts(c)
    before = np.where(first_level > 0, cum[np.maximum(first_level - 1, 0)], 0) if len(cum) else first_level
    units = cum - np.repeat(before, c)
    ps = 10.0 ** (modes >> 3)
    ss = 10.0 ** (modes & 7)
    return units.astype(np.float64) / ps[level_row], su.astype(np.float64) / ss[level_row], c


def first_level_difference(a: Levels, b: Levels) -> int | None:
    """The first row whose sides differ (NULL/empty/levels, count, or any level's value)."""
    diff = (a.kind != b.kind) | (a.counts != b.counts)
    if not diff.any():
        bad = (a.prices != b.prices) | (a.sizes != b.sizes)
        if bad.any():
            diff[np.repeat(np.arange(len(a.counts)), a.counts)[bad]] = True
    rows = np.flatnonzero(diff)
    return int(rows[0]) if len(rows) else None


# ----------------------------------------------------------------------------- checksum
def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_TEXT_HASH: dict[str | None, int] = {}
_NULL_BITS = np.uint64(0x7FF8_0000_DEAD_BEEF)


def _text_hash(s: str | None) -> int:
    if s is None:
        return 0x6E756C6C
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")


def _text_words(values: Sequence[str | None]) -> np.ndarray:
    missing = set(values) - _TEXT_HASH.keys()
    if len(_TEXT_HASH) + len(missing) > 1_000_000:
        _TEXT_HASH.clear()
        missing = set(values)
    for t in missing:
        _TEXT_HASH[t] = _text_hash(t)
    return np.fromiter(map(_TEXT_HASH.__getitem__, values), np.uint64, len(values))


def _float_words(values: Sequence[float | None]) -> np.ndarray:
    arr = np.array(values, dtype=np.float64) + 0.0  # None → nan (SQLite has no NaN); -0.0 → 0.0
    return np.where(np.isnan(arr), _NULL_BITS, arr.view(np.uint64))


def _side_words(lv: Levels) -> np.ndarray:
    """One word per row for a book side: its kind and its levels in order."""
    out = _mix(lv.kind.astype(np.uint64) + np.uint64(0x51DE))
    total = int(lv.counts.sum())
    if total:
        pos = (np.arange(total) - np.repeat(_starts(lv.counts), lv.counts)).astype(np.uint64)
        p = (lv.prices + 0.0).view(np.uint64)
        s = (lv.sizes + 0.0).view(np.uint64)
        h = _mix(_mix(p ^ (pos * np.uint64(0x9E3779B97F4A7C15))) + s + pos)
        acc = np.zeros(len(lv.counts), np.uint64)
        some = lv.counts > 0
        acc[some] = np.add.reduceat(h, _starts(lv.counts)[some])
        out = _mix(out ^ acc)
    return out


def row_hashes(rows: Sequence[Sequence], columns: Sequence[Sequence] | None = None) -> np.ndarray:
    """One 64-bit hash per row of the values other than the book sides: (timestamp, token_id,
    market_id, best_bid, best_ask, mid, spread, last_trade_price, bid_depth, ask_depth,
    volume_24h, liquidity, source), or those ``columns`` (already transposed). A float counts
    by its value (0.5 and 0.50 are one value; -0.0 is 0.0), NULL by a mark of its own."""
    if columns is None:  # rows may hold more columns than these 13
        columns = list(zip(*rows, strict=False)) if rows else [()] * 13
    cols = list(columns)
    words = [
        np.array(cols[0], np.int64).view(np.uint64),
        _text_words(cols[1]),
        _text_words(cols[2]),
        *(_float_words(cols[i]) for i in range(3, 12)),
        _text_words(cols[12]),
    ]
    h = np.zeros(len(rows), np.uint64)
    for j, w in enumerate(words):
        h = _mix(h ^ _mix(w + np.uint64(((j + 1) * 0x9E3779B97F4A7C15) & MASK64)))
    return h


def batch_checksum(rows: Sequence[Sequence] | np.ndarray, bids: Levels, asks: Levels) -> int:
    """Order-independent checksum of decoded snapshots: the sum (mod 2⁶⁴) of a 64-bit hash of
    each row's values — ``rows`` as :func:`row_hashes` takes them (or their hashes), the book
    sides level by level from ``bids``/``asks`` (NULL, an empty side and levels told apart)."""
    h = rows if isinstance(rows, np.ndarray) else row_hashes(rows)
    if not len(h):
        return 0
    for j, w in enumerate((_side_words(bids), _side_words(asks))):
        h = _mix(h ^ _mix(w + np.uint64(((j + 14) * 0x9E3779B97F4A7C15) & MASK64)))
    return int(h.sum(dtype=np.uint64)) & MASK64


def levels_of_values(values: Sequence[bytes | str | None]) -> Levels:
    """Sides that may be BLOBs or old text (the view while a migration is under way)."""
    if not any(isinstance(v, str) for v in values):
        return decode_blobs(values)  # type: ignore[arg-type]
    out = [None if v is None else codec.levels_of(v) for v in values]
    flat = [lv for x in out if x for lv in x]
    return Levels(
        _kinds(values),
        np.array([len(x) if x else 0 for x in out], np.int64),
        np.array([p for p, _ in flat], np.float64),
        np.array([s for _, s in flat], np.float64),
    )
