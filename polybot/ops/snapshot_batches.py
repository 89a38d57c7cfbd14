"""One batch of ``maintain_database.py --migrate``: legacy snapshot rows → compact rows, verified.

:func:`move_batch` runs inside the caller's transaction and either moves the first ``n``
rows of ``market_snapshots_legacy`` (primary-key order) or raises and moves nothing:

1. new tokens go to ``snapshot_tokens``;
2. ``INSERT OR REPLACE INTO snapshot_rows … SELECT … FROM`` the batch: the scalar columns
   are encoded in SQL by the exact rule of :func:`polybot.snapshots.codec.encode_scaled`
   (whole units of the scale when that is exact, else the REAL itself) and mid/spread by
   :func:`codec._exception`'s rule; the book sides by :func:`pack_text`, a fast path of
   ``codec.pack_levels(codec.levels_of(text))`` that gives the same bytes (it falls back to
   the codec for anything unusual). A legacy row wins over a compact row of the same key:
   it was written first;
3. the batch is read back DECODED THROUGH THE VIEW's SQL (:func:`store._decoded_select`,
   what every reader sees) and compared with the legacy rows: every scalar column exactly
   (SQL ``IS``: same double, or both NULL), and every book level of both sides (the BLOB
   decoded with the codec's format — :func:`decode_blobs`, checked against
   ``codec.unpack_levels`` in the tests — against the legacy text parsed with ``float``);
   plus the row count and an order-independent checksum of the decoded values
   (:func:`batch_checksum`) of each side;
4. exactly those legacy rows are deleted (rows up to the batch's last key).

A mismatch raises :class:`MigrationMismatch` naming the first differing row; the caller
rolls back. Why not the codec row by row: at ~80 µs a row (encode) plus ~35 µs a row per
checksum side, 4.32 M rows would take ~10 minutes; this path does the same work in C and
numpy (benchmarks/bench_migration.py).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import PolybotError
from ..snapshots import codec, store
from ..snapshots.codec import MONEY_SCALE, PRICE_SCALE, SIZE_SCALE

LEGACY = store.LEGACY_TABLE
MASK64 = (1 << 64) - 1
_MAX_EXACT = float(1 << 53)
_MAX_DECIMALS = 6


class MigrationMismatch(PolybotError):
    """A batch read back through the view differs from the legacy rows (nothing committed)."""

    exit_code = 3


# ----------------------------------------------------------------------------- SQL
def _enc(col: str, scale: int) -> str:
    """SQL of codec.encode_scaled: INTEGER units when ``round(v*scale)/scale == v`` exactly."""
    s = f"{float(scale)!r}"
    k = f"round({col} * {s})"
    return (
        f"CASE WHEN {col} IS NULL THEN NULL "
        f"WHEN abs({k}) < {_MAX_EXACT!r} AND {k} / {s} = {col} THEN CAST({k} AS INTEGER) "
        f"ELSE {col} END"
    )


def _exception(col: str, derived: str) -> str:
    """SQL of codec._exception: NULL when the derived value is the row's, X'' for a NULL
    the derivation would not give, else the value encoded in price units."""
    both = "l.best_bid IS NOT NULL AND l.best_ask IS NOT NULL"
    return (
        f"CASE WHEN {col} IS NULL THEN CASE WHEN {both} THEN X'' END "
        f"WHEN {both} AND {col} = {derived} THEN NULL "
        f"ELSE {_enc(col, PRICE_SCALE)} END"
    )


_SOURCE = "COALESCE(NULLIF(l.source, ''), 'collected')"


def _batch(n: int) -> str:
    return f"(SELECT * FROM {LEGACY} ORDER BY timestamp, token_id LIMIT {int(n)})"


def _insert_tokens_sql(n: int) -> str:
    return (
        "INSERT OR IGNORE INTO snapshot_tokens (token_id, market_id) "
        f"SELECT l.token_id, l.market_id FROM {_batch(n)} l "
        "WHERE NOT EXISTS (SELECT 1 FROM snapshot_tokens t WHERE t.token_id = l.token_id)"
    )


def _insert_rows_sql(n: int) -> str:
    cols = ", ".join(codec.STORED)
    return (
        f"INSERT OR REPLACE INTO snapshot_rows (timestamp, token_key, {cols}) "
        "SELECT l.timestamp, k.token_key, "
        f"{_enc('l.best_bid', PRICE_SCALE)}, {_enc('l.best_ask', PRICE_SCALE)}, "
        f"{_enc('l.last_trade_price', PRICE_SCALE)}, "
        f"{_enc('l.bid_depth', SIZE_SCALE)}, {_enc('l.ask_depth', SIZE_SCALE)}, "
        "migration_pack(l.bids), migration_pack(l.asks), "
        f"{_enc('l.volume_24h', MONEY_SCALE)}, {_enc('l.liquidity', MONEY_SCALE)}, "
        f"{_exception('l.mid', '(l.best_bid + l.best_ask) / 2')}, "
        f"{_exception('l.spread', 'l.best_ask - l.best_bid')}, "
        f"CASE {_SOURCE} WHEN 'collected' THEN 0 WHEN 'backfill' THEN 1 END "
        f"FROM {_batch(n)} l JOIN snapshot_tokens k ON k.token_id = l.token_id"
    )


_SCALARS = (
    "market_id",
    "best_bid",
    "best_ask",
    "mid",
    "spread",
    "last_trade_price",
    "bid_depth",
    "ask_depth",
    "volume_24h",
    "liquidity",
)
# The decoded columns fetched for the comparison and the checksum (view order, less token_id).
_FETCH = ("timestamp", "token_id", *_SCALARS, "source")


def _compare_sql(n: int) -> str:
    same = " AND ".join(f"v.{c} IS l.{c}" for c in _SCALARS) + f" AND v.source IS {_SOURCE}"
    view_cols = ", ".join(f"v.{c}" for c in _FETCH)
    return (
        f"SELECT v.timestamp IS NOT NULL, {same}, l.bids, l.asks, v.bids, v.asks, {view_cols} "
        f"FROM {_batch(n)} l LEFT JOIN temp.migration_decoded v "
        "ON v.timestamp = l.timestamp AND v.token_id = l.token_id ORDER BY l.timestamp, l.token_id"
    )


def _legacy_sql(n: int | None, table: str = LEGACY) -> str:
    cols = ", ".join(f"l.{c}" for c in _FETCH[:-1]) + f", {_SOURCE}"
    limit = f" LIMIT {int(n)}" if n is not None else ""
    return f"SELECT l.bids, l.asks, {cols} FROM {table} l ORDER BY l.timestamp, l.token_id{limit}"


def prepare(conn: sqlite3.Connection) -> None:
    """Register :func:`pack_text` and the temporary decoded view on this connection."""
    conn.create_function("migration_pack", 1, pack_text, deterministic=True)
    conn.execute(f"CREATE TEMP VIEW IF NOT EXISTS migration_decoded AS {store._decoded_select()}")


# ----------------------------------------------------------------------------- packing
_ITEMS: dict[str, tuple[int, int, int, int]] = {}
_VARINTS: dict[int, bytes] = {}


def _decimals(v: float) -> int:
    """The fewest decimals (0..6) at which ``v`` is a whole number of units (codec rule), or -1."""
    for d in range(_MAX_DECIMALS + 1):
        scale = 10**d
        k = round(v * scale)
        if -(1 << 53) < k < (1 << 53) and k / scale == v:
            return d
    return -1


def _item(text: str) -> tuple[int, int, int, int]:
    """``"p:s"`` → (price decimals, price units, size decimals, size units); decimals -1 when
    no power of ten up to 10⁻⁶ makes the value whole (the codec's float mode)."""
    got = _ITEMS.get(text)
    if got is None:
        p, s = text.split(":")
        pv, sv = float(p), float(s)
        pd, sd = _decimals(pv), _decimals(sv)
        got = (pd, round(pv * 10**pd) if pd >= 0 else 0, sd, round(sv * 10**sd) if sd >= 0 else 0)
        if len(_ITEMS) < 1_000_000:
            _ITEMS[text] = got
    return got


def _varint(n: int) -> bytes:
    got = _VARINTS.get(n)
    if got is None:
        out = bytearray()
        codec._varint(out, n)
        got = bytes(out)
        if len(_VARINTS) < 1_000_000:
            _VARINTS[n] = got
    return got


def pack_text(text: str | None) -> bytes | None:
    """``codec.pack_levels(codec.levels_of(text))`` for the old ``"p:s,p:s"`` text, faster
    (parsed items and varints are cached); the same bytes. Anything unusual (float mode, a
    malformed item) goes to the codec itself; a text even the codec cannot read gives NULL,
    which the verification then reports with the row."""
    if text is None:
        return None
    if not text:
        return b""
    try:
        items = [_item(t) for t in text.split(",")]
        pd = max(i[0] for i in items)
        sd = max(i[2] for i in items)
        if min(i[0] for i in items) < 0 or min(i[2] for i in items) < 0:
            return codec.pack_levels(codec.levels_of(text))
        parts = [bytes((pd * 8 + sd,))]
        prev = 0
        for ipd, pu, isd, su in items:
            units = pu * 10 ** (pd - ipd)
            parts.append(_varint(units - prev))
            prev = units
            parts.append(_varint(su * 10 ** (sd - isd)))
        return b"".join(parts)
    except (ValueError, OverflowError):
        try:
            return codec.pack_levels(codec.levels_of(text))
        except (ValueError, OverflowError):
            return None


# ----------------------------------------------------------------------------- levels as arrays
@dataclass
class Levels:
    """The book sides of a batch as arrays: ``kind`` per row (0 NULL, 1 empty, 2 levels),
    ``counts`` levels per row, and the flat ``prices``/``sizes`` (row after row)."""

    kind: np.ndarray
    counts: np.ndarray
    prices: np.ndarray
    sizes: np.ndarray


def _kinds(values: Sequence) -> np.ndarray:
    return np.fromiter((0 if v is None else 1 if not v else 2 for v in values), np.int8, len(values))


def parse_texts(texts: Sequence[str | None]) -> Levels:
    """The old ``"p:s,p:s"`` sides parsed with ``float`` (as :func:`codec.levels_of` does)."""
    kind = _kinds(texts)
    full = [t for t in texts if t]
    counts = np.zeros(len(texts), np.int64)
    counts[kind == 2] = [t.count(",") + 1 for t in full]
    if full:
        flat = ",".join(full).replace(":", ",").split(",")
        nums = np.array(list(map(float, flat)), np.float64)
    else:
        nums = np.zeros(0, np.float64)
    if len(nums) != 2 * int(counts.sum()):
        raise ValueError("a book side is not 'price:size' pairs")
    return Levels(kind, counts, nums[0::2].copy(), nums[1::2].copy())


def decode_blobs(blobs: Sequence[bytes | None]) -> Levels:
    """Packed sides decoded in bulk by the format of :func:`codec.unpack_levels`; a side in
    float mode or with a dangling varint is decoded by the codec itself."""
    n = len(blobs)
    kind = _kinds(blobs)
    counts = np.zeros(n, np.int64)
    idx = np.flatnonzero(kind == 2)
    fast = [i for i in idx.tolist() if blobs[i][0] != 0xFF and blobs[i][-1] < 0x80]  # type: ignore[index]
    slow = sorted(set(idx.tolist()) - set(fast))
    prices: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    order: list[tuple[int, int]] = []  # (row, position in prices/sizes lists)
    if fast:
        p, s, c = _decode_fast([blobs[i] for i in fast])  # type: ignore[misc]
        counts[fast] = c
        bounds = np.concatenate(([0], np.cumsum(c)))
        for j, i in enumerate(fast):
            order.append((i, len(prices)))
            prices.append(p[bounds[j] : bounds[j + 1]])
            sizes.append(s[bounds[j] : bounds[j + 1]])
    for i in slow:
        lv = codec.unpack_levels(blobs[i]) or []
        counts[i] = len(lv)
        order.append((i, len(prices)))
        prices.append(np.array([x for x, _ in lv], np.float64))
        sizes.append(np.array([y for _, y in lv], np.float64))
    if not slow:  # rows are already in order
        return Levels(
            kind,
            counts,
            np.concatenate(prices) if prices else np.zeros(0),
            np.concatenate(sizes) if sizes else np.zeros(0),
        )
    order.sort()
    return Levels(
        kind,
        counts,
        np.concatenate([prices[k] for _, k in order]),
        np.concatenate([sizes[k] for _, k in order]),
    )


def _decode_fast(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(b) for b in blobs), np.int64, len(blobs))
    buf = np.frombuffer(b"".join(blobs), np.uint8)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    modes = buf[starts].astype(np.int64)
    payload_mask = np.ones(len(buf), bool)
    payload_mask[starts] = False
    row_of_byte = np.repeat(np.arange(len(blobs)), lengths)[payload_mask]
    pay = buf[payload_mask].astype(np.uint64)
    ends = (pay & 0x80) == 0  # the last byte of each varint
    value_id = np.concatenate(([0], np.cumsum(ends)[:-1]))
    first = np.concatenate(([True], ends[:-1]))
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(pay)), 0))
    shift = (7 * (np.arange(len(pay)) - group_start)).astype(np.uint64)
    raw = np.zeros(int(ends.sum()), np.uint64)
    np.add.at(raw, value_id, (pay & np.uint64(0x7F)) << shift)
    nums = (raw >> np.uint64(1)).astype(np.int64) ^ -(raw & np.uint64(1)).astype(np.int64)
    value_row = row_of_byte[ends]
    per_row = np.bincount(value_row, minlength=len(blobs))
    if np.any(per_row % 2):
        raise ValueError("a packed book side holds an odd number of values")
    c = per_row // 2
    deltas, su = nums[0::2], nums[1::2]
    level_row = value_row[0::2]
    cum = np.cumsum(deltas)
    row_first = np.concatenate(([0], np.cumsum(c)[:-1]))
    before = np.where(row_first > 0, cum[np.maximum(row_first - 1, 0)], 0)
    units = cum - np.repeat(before, c)
    ps = 10.0 ** (modes >> 3)
    ss = 10.0 ** (modes & 7)
    return units.astype(np.float64) / ps[level_row], su.astype(np.float64) / ss[level_row], c


def first_level_difference(a: Levels, b: Levels) -> int | None:
    """The first row whose sides differ (kind, count or any level value), or None."""
    diff = (a.kind != b.kind) | (a.counts != b.counts)
    if not np.any(a.counts != b.counts) and len(a.prices) == len(b.prices):
        bad = (a.prices != b.prices) | (a.sizes != b.sizes)
        if np.any(bad):
            rows = np.repeat(np.arange(len(a.counts)), a.counts)
            diff[rows[bad]] = True
    rows_bad = np.flatnonzero(diff)
    return int(rows_bad[0]) if len(rows_bad) else None


# ----------------------------------------------------------------------------- checksum
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_TEXT_HASH: dict[str, int] = {}


def _text_hash(s: str | None) -> int:
    if s is None:
        return 0x6E756C6C  # "null"
    got = _TEXT_HASH.get(s)
    if got is None:
        got = int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
        if len(_TEXT_HASH) < 1_000_000:
            _TEXT_HASH[s] = got
    return got


_NULL_BITS = np.uint64(0x7FF8_0000_DEAD_BEEF)


def _float_words(values: Sequence[float | None]) -> np.ndarray:
    arr = np.array(values, dtype=np.float64) + 0.0  # None → nan (SQLite has no NaN); -0.0 → 0.0
    bits = arr.view(np.uint64)
    return np.where(np.isnan(arr), _NULL_BITS, bits)


def _side_words(lv: Levels) -> np.ndarray:
    """One word per row for a book side: its kind, its levels in order."""
    n = len(lv.counts)
    out = _mix(lv.kind.astype(np.uint64) + np.uint64(0x51DE))
    total = int(lv.counts.sum())
    if total:
        rows = np.repeat(np.arange(n), lv.counts)
        first = np.concatenate(([0], np.cumsum(lv.counts)[:-1]))
        pos = (np.arange(total) - np.repeat(first, lv.counts)).astype(np.uint64)
        p = (lv.prices + 0.0).view(np.uint64)
        s = (lv.sizes + 0.0).view(np.uint64)
        h = _mix(_mix(p ^ (pos * _GOLDEN)) + s + pos)
        acc = np.zeros(n, np.uint64)
        np.add.at(acc, rows, h)
        out = _mix(out ^ acc)
    return out


def batch_checksum(rows: Sequence[Sequence], bids: Levels, asks: Levels) -> int:
    """Order-independent checksum of decoded snapshots: the sum (mod 2⁶⁴) of one 64-bit hash
    per row over every decoded value — (timestamp, token_id, market_id, the nine prices and
    amounts, source) from ``rows`` and both book sides level by level (a value's bits, so
    0.5 and 0.50 are the same value; NULL, an empty side and a side are told apart)."""
    if not rows:
        return 0
    cols = list(zip(*rows, strict=True))
    words = [
        np.array(cols[0], np.int64).astype(np.uint64),
        np.fromiter((_text_hash(t) for t in cols[1]), np.uint64, len(rows)),
        np.fromiter((_text_hash(t) for t in cols[2]), np.uint64, len(rows)),
        *(_float_words(cols[i]) for i in range(3, 12)),
        np.fromiter((_text_hash(t) for t in cols[12]), np.uint64, len(rows)),
        _side_words(bids),
        _side_words(asks),
    ]
    h = np.zeros(len(rows), np.uint64)
    for j, w in enumerate(words):
        h = _mix(h ^ _mix(w + np.uint64(((j + 1) * 0x9E3779B97F4A7C15) & MASK64)))
    return int(h.sum(dtype=np.uint64)) & MASK64


def legacy_checksum(conn: sqlite3.Connection, table: str = LEGACY) -> tuple[int, int]:
    """(rows, checksum) of an old-layout table's values (``market_snapshots`` of a database
    before schema 6, or the legacy table): what the migrated rows must match."""
    total = count = 0
    cur = conn.execute(_legacy_sql(None, table))
    while True:
        chunk = cur.fetchmany(100_000)
        if not chunk:
            return count, total
        total = (total + batch_checksum([r[2:] for r in chunk], *_parse(chunk))) & MASK64
        count += len(chunk)


def view_checksum(conn: sqlite3.Connection, sql: str = "SELECT * FROM market_snapshots") -> tuple[int, int]:
    """(rows, checksum) of decoded rows in :data:`codec.COLUMNS` order (default: the whole
    ``market_snapshots`` view)."""
    total = count = 0
    cur = conn.execute(sql)
    while True:
        chunk = cur.fetchmany(100_000)
        if not chunk:
            return count, total
        b = _levels_any([r[10] for r in chunk])
        a = _levels_any([r[11] for r in chunk])
        rows = [(*r[:2], *r[2:10], r[12], r[13], r[14]) for r in chunk]
        total = (total + batch_checksum(rows, b, a)) & MASK64
        count += len(chunk)


def _levels_any(values: Sequence[bytes | str | None]) -> Levels:
    if any(isinstance(v, str) for v in values):
        return _levels_mixed(values)
    return decode_blobs(values)  # type: ignore[arg-type]


def _levels_mixed(values: Sequence[bytes | str | None]) -> Levels:
    out = [codec.levels_of(v) if v else None for v in values]
    kind = _kinds(values)
    counts = np.array([len(x) if x else 0 for x in out], np.int64)
    flat = [lv for x in out if x for lv in x]
    return Levels(
        kind,
        counts,
        np.array([p for p, _ in flat], np.float64),
        np.array([s for _, s in flat], np.float64),
    )


def _parse(chunk: Sequence[Sequence]) -> tuple[Levels, Levels]:
    return parse_texts([r[0] for r in chunk]), parse_texts([r[1] for r in chunk])


# ----------------------------------------------------------------------------- one batch
@dataclass
class BatchResult:
    rows: int
    checksum: int  # of the decoded values read back through the view
    legacy_checksum: int  # of the legacy rows moved (equal, or the batch raised)


def _describe(row: Sequence) -> str:
    return f"timestamp {row[0]}, token {row[1]}"


def move_batch(conn: sqlite3.Connection, n: int) -> BatchResult:
    """Move the first ``n`` legacy rows (see the module docstring); the caller holds the
    transaction and commits. Raises :class:`MigrationMismatch` on any difference."""
    conn.execute(_insert_tokens_sql(n))
    conn.execute(_insert_rows_sql(n))
    paired = conn.execute(_compare_sql(n)).fetchall()
    if not paired:
        return BatchResult(0, 0, 0)
    legacy = conn.execute(_legacy_sql(n)).fetchall()
    if len(legacy) != len(paired):
        raise MigrationMismatch(
            f"The migration read {len(legacy)} legacy rows but {len(paired)} back; nothing of "
            f"this batch was committed — run it again (a writer may have changed the old table)."
        )
    for i, r in enumerate(paired):
        if not r[0]:
            raise _mismatch(legacy[i], "is missing from the compact table")
        if not r[1]:
            got = dict(zip(_FETCH, r[6:], strict=True))
            want = dict(zip(_FETCH, legacy[i][2:], strict=True))
            col = next((c for c in _FETCH if got[c] != want[c]), "a value")
            raise _mismatch(legacy[i], f"reads {col} = {got.get(col)!r} instead of {want.get(col)!r}")
    old_b, old_a = _parse(legacy)
    new_b, new_a = decode_blobs([r[4] for r in paired]), decode_blobs([r[5] for r in paired])
    for side, old, new in (("bids", old_b, new_b), ("asks", old_a, new_a)):
        bad = first_level_difference(old, new)
        if bad is not None:
            levels = codec.levels_of(paired[bad][4 if side == "bids" else 5])
            raise _mismatch(
                legacy[bad], f"reads {side} {levels!r} instead of {legacy[bad][0 if side == 'bids' else 1]!r}"
            )
    view_rows = [r[6:] for r in paired]
    checksum = batch_checksum(view_rows, new_b, new_a)
    old_sum = batch_checksum([r[2:] for r in legacy], old_b, old_a)
    if checksum != old_sum:  # cannot happen once every value compared equal; a second guard
        raise MigrationMismatch(
            f"The checksum of the batch starting at {_describe(legacy[0][2:])} differs after the "
            f"move although every value compared equal; nothing of this batch was committed."
        )
    last = legacy[-1]
    cur = conn.execute(f"DELETE FROM {LEGACY} WHERE (timestamp, token_id) <= (?, ?)", (last[2], last[3]))
    if cur.rowcount != len(legacy):
        raise MigrationMismatch(
            f"Deleting the moved rows up to {_describe(last[2:])} removed {cur.rowcount} rows, not "
            f"{len(legacy)}; nothing of this batch was committed."
        )
    return BatchResult(len(legacy), checksum, old_sum)


def _mismatch(legacy_row: Sequence, what: str) -> MigrationMismatch:
    return MigrationMismatch(
        f"Snapshot ({_describe(legacy_row[2:])}) {what} after the move, so the migration stopped "
        f"and committed nothing of this batch; report it with this line (the old rows are untouched)."
    )
