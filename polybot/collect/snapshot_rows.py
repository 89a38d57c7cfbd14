"""The collector's snapshot rows: building them from the exchange's books and writing them
to ``market_snapshots`` (schema version 6).

Callers wrap writes in ``db.atomic``; these helpers never commit on their own.
Snapshot rows are tuples in :data:`SNAPSHOT_COLUMNS` order (the decoded columns of the
``snapshot_values`` view, :data:`polybot.snapshots.codec.COLUMNS`). A collected one
(:func:`snapshot_row`) has its book sides packed straight from the ``BookLevel`` objects
(:func:`pack_side`, byte for byte ``codec.pack_levels``; no text on the way) and carries
its insert parameters, made on the book threads with the integer token key (one
:class:`TokenKeys` map per cycle, loaded before the listing); :func:`insert_snapshots`
keys the tokens seen for the first time and writes ``market_snapshots`` directly —
other rows (backfill) go through :func:`polybot.snapshots.store.insert_rows`; never the
view's per-row trigger. ``INSERT OR IGNORE``: the (timestamp, token) primary key makes
every cycle and every backfill idempotent (the first row written for a grid point wins).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter

from ..exchange.models import BookLevel, Market, OrderBook
from ..snapshots import codec
from ..snapshots import store as snapshots
from ..snapshots.store import TokenKeys

SNAPSHOT_COLUMNS = codec.COLUMNS
log = logging.getLogger("polybot.collect.snapshot_rows")


# ----------------------------------------------------------------------------- snapshots
def _num(x: float) -> str:
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


def fmt_levels(levels: Sequence[BookLevel], n: int) -> str:
    """Top ``n`` levels as compact ``"p:s,p:s"``, best first ("" for an empty side) — for
    people and tests; the collector stores :func:`pack_side` instead."""
    return ",".join(f"{_num(lv.price)}:{_num(lv.size)}" for lv in levels[:n])


def parse_levels(value: bytes | str | None) -> list[tuple[float, float]]:
    """(price, size) levels, best first, of a stored side: the packed BLOB of the compact
    layout or the ``"p:s,p:s"`` text of older rows (:func:`fmt_levels`)."""
    return codec.levels_of(value)


_POW10 = tuple(10**d for d in range(7))
_MICRO = 1_000_000
_MAX_EXACT = 1 << 53


def _units(values: Iterable[float]) -> tuple[int, list[int]] | None:
    """(d, units): the fewest decimals d (0..6) at which every value is a whole number of
    units of 10⁻ᵈ, and the values in those units; None when 6 decimals are not enough.
    Each value is taken in micro-units once; d follows from the trailing zeros they share
    (their gcd) — the same d that ``codec.pack_levels`` finds by trying 0, 1, … 6."""
    us = []
    g = 0
    for v in values:
        try:
            u = round(v * _MICRO)
        except (OverflowError, ValueError):  # inf, nan
            return None
        if u / _MICRO != v or not -_MAX_EXACT < u < _MAX_EXACT:
            return None
        us.append(u)
        g = math.gcd(g, u)
    z = 0
    while z < 6 and g % _POW10[z + 1] == 0:
        z += 1
    if z:
        f = _POW10[z]
        us = [u // f for u in us]
    return 6 - z, us


def _varint(out: bytearray, n: int) -> None:
    n = (n << 1) ^ (n >> 63)  # zigzag, as codec.pack_levels
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def pack_side(levels: Sequence[BookLevel], n: int) -> tuple[bytes, float]:
    """The top ``n`` levels of one side → (packed BLOB, depth), straight from the
    ``BookLevel`` objects: byte for byte :func:`polybot.snapshots.codec.pack_levels` of
    their (price, size) pairs (tests/collect/test_collect_units.py checks it on random
    books), without its trial of each decimal count — the collector packs ~200,000 book
    sides a whole-universe cycle.
    The depth is the exact decimal sum of the sizes (their integer units ÷ the scale), so
    a book of centi-share sizes sums to a whole number of centi-shares: stored as an
    INTEGER, not a REAL with float noise."""
    blob, depth = _pack_buffer(levels, n)
    return bytes(blob), depth


def _pack_buffer(levels: Sequence[BookLevel], n: int) -> tuple[bytearray, float]:
    """:func:`pack_side` with the BLOB as the ``bytearray`` it is built in. The insert binds
    it as it is: Python's sqlite3 binds a ``bytearray`` (like int, float and str) directly,
    while ``bytes`` first goes through its adapter lookup (a registry lookup and two failed
    attribute lookups for every value) — 0.14 of 0.34 CPU seconds per 100,000 rows, measured
    on Python 3.11. SQLite stores the same BLOB from either (X'' for an empty side)."""
    top = levels[:n]
    if not top:
        return bytearray(), 0.0
    prices = _units([lv.price for lv in top])
    sizes = _units([lv.size for lv in top])
    if prices is None or sizes is None:
        return _pack_slow(top)
    (pd, pu), (sd, su) = prices, sizes
    out = bytearray((pd * 8 + sd,))
    prev = 0
    for units, size in zip(pu, su, strict=True):
        _varint(out, units - prev)
        _varint(out, size)
        prev = units
    return out, sum(su) / _POW10[sd]


def _pack_slow(top: Sequence[BookLevel]) -> tuple[bytearray, float]:
    blob = codec.pack_levels([(lv.price, lv.size) for lv in top])
    return bytearray(blob or b""), round(math.fsum(lv.size for lv in top), 6)


class Snapshot(tuple):
    """A collected snapshot: the decoded row (:data:`SNAPSHOT_COLUMNS` order, the sides
    packed) that also carries ``params`` — its ``INSERT_COLLECTED`` parameters (timestamp,
    token key, then the stored values bid … liquidity), encoded when the row was built (on
    the book threads, while the listing runs), so the cycle's insert only sorts, flattens
    and executes them. The token key is ``None`` when the key map given to
    :func:`snapshot_row` had no key for the token (a token seen for the first time):
    :func:`insert_snapshots` creates it. The book sides are ``bytearray`` there (bound
    without an adapter lookup: :func:`_pack_buffer`) and ``bytes`` in the row. The values
    are exactly what ``codec.encode`` makes of the row (with mid, spread and source the
    constants of the statement; tests/collect/test_collect_units.py checks it)."""

    params: tuple

    @property
    def stored(self) -> tuple:
        """The stored values after (timestamp, token_key): bid … liquidity."""
        return self.params[2:]


_PRICE, _SIZE, _MONEY = codec.PRICE_SCALE, codec.SIZE_SCALE, codec.MONEY_SCALE
_encode = codec.encode_scaled


def snapshot_row(
    ts: int, market: Market, book: OrderBook, depth_levels: int, keys: Mapping[str, int] | None = None
) -> Snapshot:
    """One collected snapshot of ``book`` at grid time ``ts`` (:data:`SNAPSHOT_COLUMNS`
    order; the sides packed), with its insert parameters (:class:`Snapshot`). ``keys``:
    token id → token key (``TokenKeys.keys``, loaded before the listing: a token's key never
    changes once made, so a map read earlier is still right), read — never written — here;
    a token it lacks gets its key in :func:`insert_snapshots`."""
    bids, asks = book.bids, book.asks
    bb = bids[0].price if bids else None
    ba = asks[0].price if asks else None
    mid = (bb + ba) / 2 if bb is not None and ba is not None else None
    spread = ba - bb if bb is not None and ba is not None else None
    bid_buf, bid_depth = _pack_buffer(bids, depth_levels)
    ask_buf, ask_depth = _pack_buffer(asks, depth_levels)
    bid_blob, ask_blob = bytes(bid_buf), bytes(ask_buf)
    last, vol, liq = book.last_trade_price, market.volume_24h, market.liquidity
    row = Snapshot(
        (
            ts,
            book.token_id,
            market.id,
            bb,
            ba,
            mid,
            spread,
            last,
            bid_depth,
            ask_depth,
            bid_blob,
            ask_blob,
            vol,
            liq,
            "collected",
        )
    )
    # the columns of INSERT_COLLECTED; mid and spread are the derived ones (NULL), source 0
    row.params = (
        ts,
        keys.get(book.token_id) if keys is not None else None,
        _encode(bb, _PRICE),
        _encode(ba, _PRICE),
        _encode(last, _PRICE),
        _encode(bid_depth, _SIZE),
        _encode(ask_depth, _SIZE),
        bid_buf,  # bound without the adapter lookup of bytes (_pack_buffer)
        ask_buf,
        _encode(vol, _MONEY),
        _encode(liq, _MONEY),
    )
    return row


# A collected row's mid and spread are (bid + ask) / 2 and ask - bid, the derived values
# (stored as NULL), and its source is "collected" (0): constants in the statement.
_COLLECTED_COLUMNS = codec.STORED[: codec.STORED.index("mid")]  # bid … liquidity
INSERT_COLLECTED = (
    f"INSERT OR IGNORE INTO market_snapshots (timestamp, token_key, {', '.join(_COLLECTED_COLUMNS)}, "
    f"mid, spread, source) VALUES ({', '.join('?' * (2 + len(_COLLECTED_COLUMNS)))}, NULL, NULL, "
    f"{codec.SOURCE_CODE['collected']})"
)


def backfill_row(ts: int, token_id: str, market_id: str, price: float) -> tuple:
    """A backfilled grid point: the displayed price as mid and last trade, no book."""
    return (
        ts,
        token_id,
        market_id,
        None,
        None,
        price,
        None,
        price,
        None,
        None,
        None,
        None,
        None,
        None,
        "backfill",
    )


def token_keys(conn: sqlite3.Connection) -> TokenKeys:
    """The token id → integer key map, loaded once (a cycle or a backfill keeps it)."""
    keys = TokenKeys(conn)
    keys.load()
    return keys


_clustered = itemgetter(0, 1)  # (timestamp, token key) of a parameter row
_key_only = itemgetter(1)  # the token key
_time_only = itemgetter(0)


_VALUES_ROW = (
    f"({', '.join('?' * (2 + len(_COLLECTED_COLUMNS)))}, NULL, NULL, {codec.SOURCE_CODE['collected']})"
)
_INSERT_COLLECTED_HEAD = INSERT_COLLECTED[: INSERT_COLLECTED.index(" VALUES ")] + " VALUES "
_ROWS_PER_STATEMENT = 250  # multi-row VALUES: measured 0.22 vs 0.36 CPU s per 100k rows (executemany)


def _insert_collected(conn: sqlite3.Connection, params: list[tuple]) -> None:
    """``INSERT_COLLECTED`` of every row of ``params``, in statements of up to
    :data:`_ROWS_PER_STATEMENT` rows (one multi-row VALUES each: SQLite's per-statement
    work and the module's per-row step/reset are paid once per 250 rows; ``OR IGNORE`` still
    applies row by row, the first of two rows with one key wins, as with executemany)."""
    width = 2 + len(_COLLECTED_COLUMNS)
    per = max(1, min(_ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    full = len(params) - len(params) % per
    if full:
        sql = _INSERT_COLLECTED_HEAD + ",".join([_VALUES_ROW] * per)
        flat = chain.from_iterable
        for k in range(0, full, per):
            conn.execute(sql, list(flat(params[k : k + per])))
    if full < len(params):
        rest = params[full:]
        conn.execute(
            _INSERT_COLLECTED_HEAD + ",".join([_VALUES_ROW] * len(rest)), list(chain.from_iterable(rest))
        )


def insert_snapshots(
    conn: sqlite3.Connection, rows: Sequence[tuple], *, keys: TokenKeys | None = None
) -> int:
    """INSERT OR IGNORE ``rows`` into the compact table; returns how many were new.

    Rows go in sorted by (timestamp, token key) — the clustered key — so the B-tree is
    appended to instead of split at random places. ``keys``: a loaded
    :class:`TokenKeys` to reuse (a cycle loads one; without it each token is looked up).
    A collected row (:class:`Snapshot`) goes in with the parameters it carries (its token
    key included when :func:`snapshot_row` had one); other rows through
    :func:`polybot.snapshots.store.insert_rows`."""
    if not rows:
        return 0
    if keys is None:
        keys = TokenKeys(conn)  # not loaded: a few rows look their tokens up one by one
    known = keys.keys
    snaps = [r for r in rows if type(r) is Snapshot]
    params = [r.params for r in snaps]  # built on the book threads, most with their token key
    key_column = list(map(_key_only, params))
    unkeyed = [i for i, k in enumerate(key_column) if k is None] if None in key_column else []
    others = [r for r in rows if type(r) is not Snapshot] if len(snaps) < len(rows) else []
    # the tokens seen for the first time get their keys (a cycle's rows that carry a key skip
    # this lookup: ~0.07 s of 100,000 77-digit ids in a whole-universe cycle)
    new_tokens = {r[1]: r[2] for r in chain((snaps[i] for i in unkeyed), others) if r[1] not in known}
    if len(new_tokens) > 1:  # a new universe: its keys in one statement, then looked up
        conn.executemany(
            "INSERT OR IGNORE INTO snapshot_tokens (token_id, market_id) VALUES (?, ?)", new_tokens.items()
        )
    for token_id, market_id in new_tokens.items():  # the count below is then rows only
        keys.key(token_id, market_id)
    before = conn.total_changes
    if params:  # the fast path: the parameters were built on the book threads
        for i in unkeyed:
            p = params[i]
            params[i] = (p[0], known[snaps[i][1]], *p[2:])
        # a cycle's rows share one timestamp: sorted by the integer key alone (stable, so
        # the first of two rows with one key still goes first and wins)
        one_time = len(set(map(_time_only, params))) == 1
        params.sort(key=_key_only if one_time else _clustered)
        _insert_collected(conn, params)
    if others:
        snapshots.insert_rows(conn, sorted(others, key=lambda r: r[0]), keys=keys)
    return conn.total_changes - before


def _known_keys(conn: sqlite3.Connection, token_ids: Sequence[str], keys: TokenKeys | None) -> dict[str, int]:
    """token id → key for the tokens of ``token_ids`` that have one: from ``keys`` where it
    has them (a loaded map has every key), else one lookup each (never creating a key)."""
    cached = keys.keys if keys is not None else {}
    out = {}
    for t in token_ids:
        k = cached.get(t)
        if k is None:
            row = conn.execute("SELECT token_key FROM snapshot_tokens WHERE token_id = ?", (t,)).fetchone()
            if row is None:
                continue
            k = int(row[0])
        out[t] = k
    return out


def count_cycle_snapshots(
    conn: sqlite3.Connection, ts: int, token_ids: Sequence[str], *, keys: TokenKeys | None = None
) -> int:
    """How many of ``token_ids`` already have a snapshot at ``ts`` (one seek on the
    clustered key; legacy rows waiting for ``--migrate`` included)."""
    have = {r[0] for r in conn.execute("SELECT token_key FROM market_snapshots WHERE timestamp = ?", (ts,))}
    n = 0
    if have:
        known = _known_keys(conn, token_ids, keys)
        n = sum(1 for t in token_ids if known.get(t) in have)
    if snapshots.has_legacy(conn):
        old = {
            r[0]
            for r in conn.execute(f"SELECT token_id FROM {snapshots.LEGACY_TABLE} WHERE timestamp = ?", (ts,))
        }
        n += sum(1 for t in token_ids if t in old)
    return n


def existing_timestamps(
    conn: sqlite3.Connection, token_ids: Iterable[str], start: int, end: int, *, keys: TokenKeys | None = None
) -> dict[str, set[int]]:
    """token id → the timestamps in [start, end) it has a snapshot for, for every token of
    ``token_ids`` (empty sets included): one pass over the time range of the clustered
    table, not one query per token (the table has no per-token index)."""
    out: dict[str, set[int]] = {t: set() for t in token_ids}
    known = _known_keys(conn, list(out), keys)
    by_key = {known[t]: s for t, s in out.items() if t in known}
    if by_key:
        for ts, key in conn.execute(
            "SELECT timestamp, token_key FROM market_snapshots WHERE timestamp >= ? AND timestamp < ?",
            (int(start), int(end)),
        ):
            have = by_key.get(key)
            if have is not None:
                have.add(ts)
    if snapshots.has_legacy(conn):
        for t, have in out.items():
            have.update(
                r[0]
                for r in conn.execute(
                    f"SELECT timestamp FROM {snapshots.LEGACY_TABLE} "
                    "WHERE token_id = ? AND timestamp >= ? AND timestamp < ?",
                    (t, int(start), int(end)),
                )
            )
    return out


# The collector's WAL. A cycle's transaction (the upserts of every market and ~100,000
# snapshot rows of the whole universe) writes thousands of pages, more than SQLite's default
# wal_autocheckpoint of 1,000, so the COMMIT itself used to run the checkpoint — copying every
# page into the database file and syncing it — on the cycle's critical path. The checkpoint
# is not part of committing: with journal_mode=WAL and synchronous=NORMAL a transaction is
# committed once its frames (the commit frame last) are written to the WAL; it survives a
# crash of the process (the frames are in the OS's page cache and SQLite replays the WAL on
# the next open), and like any NORMAL commit it can be lost only with the operating system
# or the power, before the OS writes the WAL out. A checkpoint moves committed pages from the
# WAL into the database file; it makes nothing more (or less) durable — except that it syncs
# the WAL first, which the default did inside the COMMIT and this does milliseconds after it
# (a power loss in between can lose that cycle, as NORMAL allows). So the collector's
# connection raises the automatic threshold above a cycle's pages and checkpoints (PASSIVE,
# as the automatic one) right after the commit (:func:`checkpoint_after_commit`, timed
# apart). The WAL stays bounded: the raised threshold still applies (if the explicit
# checkpoints are starved — a reader holding an old snapshot — every commit past it tries
# again, as the default does past 1,000 pages), other connections keep the default, and
# ``journal_size_limit`` truncates a WAL that grew once back to that size when it restarts.
COLLECTOR_WAL_AUTOCHECKPOINT_PAGES = 32_768  # 128 MB of 4 KB pages; a whole-universe cycle writes ~9,200


def tune_for_bulk(
    conn: sqlite3.Connection, cache_mb: int = 64, wal_autocheckpoint: int = COLLECTOR_WAL_AUTOCHECKPOINT_PAGES
) -> None:
    """The collector's connection: a larger page cache (a cycle's rows and the token
    table's pages stay in memory), and the WAL checkpoint moved off the COMMIT (see
    :data:`COLLECTOR_WAL_AUTOCHECKPOINT_PAGES`; never 0 — that would leave the WAL
    unbounded if :func:`checkpoint_after_commit` stopped running)."""
    pages = max(1, int(wal_autocheckpoint))
    conn.execute(f"PRAGMA cache_size = -{int(cache_mb) * 1024}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.execute(f"PRAGMA journal_size_limit = {pages * page_size}")


def checkpoint_after_commit(conn: sqlite3.Connection) -> tuple[int, int, int] | None:
    """``PRAGMA wal_checkpoint(PASSIVE)`` after a cycle's commit: (busy, frames in the WAL,
    frames checkpointed). PASSIVE never waits for readers or writers: frames a reader still
    needs stay in the WAL for the next checkpoint. Never raises — the transaction is already
    committed; a checkpoint that cannot run now (another one is running) is logged and left
    to the next (None)."""
    try:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("WAL checkpoint after the cycle's commit did not run: %s", exc)
        return None
    return int(row[0]), int(row[1]), int(row[2])
