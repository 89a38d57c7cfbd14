"""Reading stored market data for replays: markets, resolutions, snapshot chunks.

Snapshots are read in time chunks (``chunk_seconds``, one UTC day by default) as
numpy columns: the token id is mapped to the feed's integer index inside SQLite
(a TEMP lookup table), so the Python side only handles numbers. For long
replays, :func:`read_chunks` runs the reader in a separate process that hands
numpy chunks over a small queue, so reading overlaps the replay on a second
core (the sqlite3 module is mostly GIL-bound; a thread would not overlap). Depth strings
(``bids``/``asks``) are NOT bulk-loaded: the feed asks :meth:`SnapshotStore.depth`
for the one book it needs when an order fills (a primary-key lookup).

Also here: the point-in-time market metadata (:func:`load_metadata_history`, schema
table ``market_metadata_history``) and the book model for backfilled rows
(:func:`estimate_backfill_books`: each token's recorded spread and top-of-book depth,
else its market's, else a conservative default).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import sqlite3
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from polybot.domain import MarketInfo
from polybot.errors import DataError
from polybot.exchange.models import FeeSchedule
from polybot.snapshots import store as snapshot_store
from polybot.snapshots.codec import PRICE_SCALE, sql_decode

_BITS = 21
_SHIFT = 1 << _BITS
_NUL = _SHIFT - 1  # "no price" (real prices are ≤ 1_000_000 micro-units)


def _price(micro: np.ndarray) -> np.ndarray:
    out = micro.astype(np.float64) / 1e6
    out[micro == _NUL] = np.nan
    return out


@dataclass(frozen=True)
class Resolution:
    market_id: str
    resolved_at: int
    payouts: dict  # token_id → payout per share (1.0 / 0.0 / 0.5)


@dataclass(frozen=True)
class Chunk:
    """Snapshot rows of one time window, in time order (within a timestamp, in the order
    of the stored key)."""

    timestamp: np.ndarray  # int64
    token: np.ndarray  # int64 feed index
    bid: np.ndarray  # float64, NaN = none
    ask: np.ndarray
    price: np.ndarray  # mid, else last trade price
    backfill: np.ndarray  # bool: source == 'backfill'

    def __len__(self) -> int:
        return len(self.timestamp)


def load_markets(conn: sqlite3.Connection) -> tuple[list[MarketInfo], dict[str, Resolution]]:
    """Every market's latest metadata (``markets`` rows), and the resolutions (resolved_at +
    payouts). For a replay, metadata is point-in-time: see :func:`load_metadata_history`."""
    markets, resolutions = [], {}
    for row in conn.execute("SELECT * FROM markets ORDER BY id"):
        m = MarketInfo.from_row(row)
        markets.append(m)
        if row["resolved_at"] is not None and row["payouts"]:
            try:
                pay = json.loads(row["payouts"])
                pay = {str(k): float(v) for k, v in pay.items()}
            except (ValueError, TypeError, AttributeError):
                continue
            resolutions[m.market_id] = Resolution(m.market_id, int(row["resolved_at"]), pay)
    return markets, resolutions


@dataclass(frozen=True)
class MetadataChange:
    """Market metadata in force from ``effective_from`` (epoch s) until the next change."""

    market_id: str
    effective_from: int
    tick_size: float
    min_order_size: float
    fee: FeeSchedule
    end_date: int | None


def load_metadata_history(
    conn: sqlite3.Connection, market_ids: Iterable[str] | None = None
) -> dict[str, list[MetadataChange]]:
    """Every market's metadata changes (``market_metadata_history``), oldest first.

    Give these to :class:`~polybot.strategy.feed.MarketFeed` (``metadata_history=``): the
    feed applies the value in force at each step instead of today's ``markets`` row. A
    market without rows (a database older than schema version 3 and never collected
    since) keeps its ``markets`` row for all times."""
    try:
        rows = conn.execute(
            "SELECT market_id, effective_from, tick_size, min_order_size, fees_enabled, fee_rate, "
            "fee_exponent, end_date FROM market_metadata_history ORDER BY market_id, effective_from"
        ).fetchall()
    except sqlite3.OperationalError:  # no such table: schema before version 3
        return {}
    wanted = None if market_ids is None else {str(m) for m in market_ids}
    out: dict[str, list[MetadataChange]] = {}
    for mid, eff, tick, min_size, enabled, rate, exponent, end in rows:
        if wanted is not None and mid not in wanted:
            continue
        out.setdefault(str(mid), []).append(
            MetadataChange(
                str(mid),
                int(eff),
                float(tick),
                float(min_size),
                FeeSchedule(rate=float(rate), exponent=float(exponent), enabled=bool(enabled)),
                int(end) if end is not None else None,
            )
        )
    return out


# ----------------------------------------------------------------------------- backfilled books
# Defaults for a backfilled row of a market that has no recorded book at all (config
# backtest.backfill_default_spread / backfill_default_depth; docs/strategies.md).
# Conservative on purpose: a 4-cent spread is wider than the median recorded spread of
# the markets a strategy can trade (1–3 cents on liquid Polymarket books; the issue's
# example market had 3), so a strategy pays at least what it would on a real book; and
# 100 shares at the top level (≈ $50 at 0.50) is below a typical top level, so a larger
# order fills only in part instead of at one price for 1,000 shares.
DEFAULT_BACKFILL_SPREAD = 0.04
DEFAULT_BACKFILL_DEPTH = 100.0
_DEPTH_EDGES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
# Without it SQLite inlines the CTE and decodes the top sizes again in every CASE branch
# (16×); MATERIALIZED needs SQLite ≥ 3.35 (2021).
_MATERIALIZED = "MATERIALIZED " if sqlite3.sqlite_version_info >= (3, 35, 0) else ""
FULL_SCAN_ROWS = 200_000  # up to this many rows in the range: read them all, else sample
SAMPLE_ROWS = 100_000  # … about this many (≥ 200 grid points per token for 500 tokens)
_MAX_SPREAD = 0.5  # wider recorded "spreads" are empty or one-sided books, not a spread


@dataclass(frozen=True)
class BackfillBook:
    """The synthetic book of a backfilled row: price ∓ ``half_spread`` (rounded outward to
    the tick by the feed), ``depth`` shares at that one level a side; ``basis`` says where
    the figures come from: 'token' / 'market' (recorded books) or 'default'."""

    half_spread: float
    depth: float
    basis: str = "default"


def _snapshot_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables that hold snapshots: the compact one, and the old one while a database
    waits for ``maintain_database.py --migrate``."""
    return ["market_snapshots"] + ([snapshot_store.LEGACY_TABLE] if snapshot_store.has_legacy(conn) else [])


def _time_range(conn: sqlite3.Connection, tables: list[str]) -> tuple[int | None, int | None]:
    """The first and last snapshot timestamps over ``tables`` (index seeks)."""
    lo = hi = None
    for table in tables:
        # two subqueries: one MIN(...), MAX(...) aggregate would scan the whole table
        a, b = conn.execute(
            f"SELECT (SELECT MIN(timestamp) FROM {table}), (SELECT MAX(timestamp) FROM {table})"
        ).fetchone()
        if a is not None:
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    return lo, hi


def _recorded_books_sql(table: str, source: str) -> str:
    """SQL of the recorded books of the ``bf_tokens`` in one snapshot table: token, market,
    spread in 10⁻⁵ units and the thinner top level's size (``snapshot_top_size`` reads a
    packed BLOB or the old text). ``source`` is the FROM clause up to the WHERE's terms."""
    top = "min(snapshot_top_size(s.bids), snapshot_top_size(s.asks)) AS d"
    books = "length(s.bids) > 0 AND length(s.asks) > 0"  # X'' (compact) or '' (old): empty side
    if table == "market_snapshots":
        bid, ask = sql_decode("s.bid", PRICE_SCALE), sql_decode("s.ask", PRICE_SCALE)
        return (
            f"SELECT k.token_id AS token_id, k.market_id AS market_id, "
            f"CAST(round(({ask} - {bid}) * 100000) AS INTEGER) AS sp, {top} "
            f"FROM {source.format(table=table, join='JOIN snapshot_tokens k ON k.token_key = s.token_key')}"
            f"s.token_key IN (SELECT t.token_key FROM snapshot_tokens t JOIN temp.bf_tokens b "
            f"ON b.token_id = t.token_id) AND s.source = 0 AND s.bid IS NOT NULL AND s.ask IS NOT NULL "
            f"AND {ask} > {bid} AND {ask} - {bid} <= {_MAX_SPREAD} AND {books}"
        )
    return (
        f"SELECT s.token_id AS token_id, s.market_id AS market_id, "
        f"CAST(round((s.best_ask - s.best_bid) * 100000) AS INTEGER) AS sp, {top} "
        f"FROM {source.format(table=table, join='')}"
        f"+s.token_id IN (SELECT token_id FROM temp.bf_tokens) AND s.source = 'collected' "
        f"AND s.best_bid IS NOT NULL AND s.best_ask IS NOT NULL AND s.best_ask > s.best_bid "
        f"AND s.best_ask - s.best_bid <= {_MAX_SPREAD} AND {books}"
    )


def _weighted_median(values: list[float], weights: list[int]) -> float:
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=np.float64)[order]
    w = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    return float(v[np.searchsorted(w, w[-1] / 2.0)])


def estimate_backfill_books(
    conn: sqlite3.Connection,
    token_ids: Iterable[str],
    *,
    start_ts: int | None = None,
    end_ts: int | None = None,
    default_spread: float = DEFAULT_BACKFILL_SPREAD,
    default_depth: float = DEFAULT_BACKFILL_DEPTH,
    sample_seconds: int = 3600,
) -> dict[str, BackfillBook]:
    """The book each token's backfilled rows should have, from RECORDED books.

    Per token: the median recorded spread (half of it each side) and the median size of
    the thinner top level (min of best-bid size and best-ask size, rounded DOWN to
    1-2-5 steps), over the collected rows of ``[start_ts, end_ts]`` (all time when not
    given): all of them up to :data:`FULL_SCAN_ROWS` rows in the range, else a sample on a
    grid of ``sample_seconds`` multiples (hourly or coarser) of about :data:`SAMPLE_ROWS`
    rows, read by primary-key seeks. A token without recorded books takes its
    market's (the other outcome of a binary market has the same spread); a market
    without any takes ``default_spread`` / ``default_depth``. Spreads above 0.5 (an
    empty or one-sided book) are ignored."""
    universe = sorted({str(t) for t in token_ids})
    if not universe:
        return {}
    default = BackfillBook(max(0.0, float(default_spread)) / 2.0, max(0.0, float(default_depth)), "default")
    tables = _snapshot_tables(conn)
    lo, hi = _time_range(conn, tables)
    if lo is None or hi is None:
        return {t: default for t in universe}
    lo = max(int(lo), int(start_ts)) if start_ts is not None else int(lo)
    hi = min(int(hi), int(end_ts)) if end_ts is not None else int(hi)
    step = max(1, int(sample_seconds))
    rows_in_range = sum(  # counted up to the threshold only
        conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE timestamp >= ? AND timestamp <= ? LIMIT ?)",
            (lo, hi, FULL_SCAN_ROWS + 1),
        ).fetchone()[0]
        for table in tables
    )
    if rows_in_range <= FULL_SCAN_ROWS:  # small: every row (the sample could miss sparse rows)
        source = "{table} s {join} WHERE s.timestamp >= ?1 AND s.timestamp <= ?2 AND ?3 > 0 AND "
    else:
        # about SAMPLE_ROWS rows: one grid point every ``step`` (a multiple of sample_seconds)
        points = max(1, SAMPLE_ROWS // len(universe))
        step = max(step, -(-((hi - lo) // points) // step) * step)
        lo = -(-lo // step) * step
        source = "g CROSS JOIN {table} s ON s.timestamp = g.ts {join} WHERE "
    was_in_transaction = conn.in_transaction
    snapshot_store.register_functions(conn)  # snapshot_top_size (db.connect registers it too)
    conn.execute("DROP TABLE IF EXISTS temp.bf_tokens")
    conn.execute("CREATE TEMP TABLE bf_tokens (token_id TEXT PRIMARY KEY) WITHOUT ROWID")
    bucket = " ".join(f"WHEN d >= {e} THEN {e}" for e in reversed(_DEPTH_EDGES))
    recorded = " UNION ALL ".join(_recorded_books_sql(table, source) for table in tables)
    sql = (
        f"WITH RECURSIVE g(ts) AS (SELECT ?1 UNION ALL SELECT ts + ?3 FROM g WHERE ts + ?3 <= ?2), "
        f"r AS {_MATERIALIZED}({recorded}) "
        f"SELECT token_id, market_id, sp, CASE {bucket} ELSE 0 END, COUNT(*) FROM r GROUP BY 1, 2, 3, 4"
    )
    try:
        conn.executemany("INSERT INTO temp.bf_tokens VALUES (?)", ((t,) for t in universe))
        rows = conn.execute(sql, (lo, hi, step)).fetchall() if lo <= hi else []
        market_of = dict(
            conn.execute(
                "SELECT t.token_id, t.market_id FROM market_tokens t JOIN temp.bf_tokens k "
                "ON k.token_id = t.token_id"
            ).fetchall()
        )
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.bf_tokens")
        if not was_in_transaction and conn.in_transaction:
            conn.commit()  # the temp table's implicit transaction (a legacy-mode connection)
    per_token: dict[str, tuple[list, list, list]] = {}
    per_market: dict[str, tuple[list, list, list]] = {}
    for tok, mid, sp, d, n in rows:
        market_of.setdefault(tok, mid)
        for key, acc in ((tok, per_token), (mid, per_market)):
            spreads, depths, counts = acc.setdefault(key, ([], [], []))
            spreads.append(sp / 100000.0)
            depths.append(float(d))
            counts.append(int(n))

    def book(acc, basis: str) -> BackfillBook:
        spreads, depths, counts = acc
        return BackfillBook(
            round(_weighted_median(spreads, counts) / 2.0, 6), _weighted_median(depths, counts), basis
        )

    out: dict[str, BackfillBook] = {}
    market_books: dict[str, BackfillBook] = {}
    for t in universe:
        if t in per_token:
            out[t] = book(per_token[t], "token")
            continue
        mid = market_of.get(t)
        if mid is not None and mid in per_market:
            if mid not in market_books:
                market_books[mid] = book(per_market[mid], "market")
            out[t] = market_books[mid]
        else:
            out[t] = default
    return out


ESTIMATE_MARGIN = 30 * 86_400  # recorded books this far around the window inform the estimate


def prepare_backfill_books(
    feed, conn: sqlite3.Connection, backtest_cfg, start_ts: int, end_ts: int
) -> dict[str, int]:
    """Give the feed the book of each token's backfilled rows: its market's recorded spread
    and top-of-book depth within 30 days of the window, else
    ``backtest.backfill_half_spread`` / ``backfill_default_depth``. Only backfilled rows use
    them, so the backtester calls this at its first backfilled row (a replay of collected
    rows only never needs it). Returns how many tokens got their book from each basis."""
    books = estimate_backfill_books(
        conn,
        feed.tokens,
        start_ts=int(start_ts) - ESTIMATE_MARGIN,
        end_ts=int(end_ts) + ESTIMATE_MARGIN,
        default_spread=2 * float(backtest_cfg.backfill_half_spread),
        default_depth=float(getattr(backtest_cfg, "backfill_default_depth", DEFAULT_BACKFILL_DEPTH)),
    )
    feed.set_backfill_books(books)
    basis: dict[str, int] = {"token": 0, "market": 0, "default": 0}
    for b in books.values():
        basis[b.basis] = basis.get(b.basis, 0) + 1
    return basis


class SnapshotStore:
    """Chunked, index-mapped reads of the stored snapshots for a set of tokens.

    Reads ``market_snapshots`` directly (schema version 6, :mod:`polybot.snapshots.store`):
    token keys are mapped to the feed's indexes with a numpy lookup array, prices come as
    integer 0.0001 units (a REAL where a value is off that grid), so SQLite hands over
    two integers per row and the rest is array arithmetic. Rows still waiting in
    ``market_snapshots_legacy`` (a database not yet migrated) are read too, with the old
    table's columns."""

    def __init__(self, conn: sqlite3.Connection, token_ids: list[str]):
        self.conn = conn
        self.token_ids = list(token_ids)
        index = {t: i for i, t in enumerate(self.token_ids)}
        self.keys: dict[str, int] = {}  # token_id → token_key (tokens of this replay)
        top = -1
        for key, tok in conn.execute("SELECT token_key, token_id FROM snapshot_tokens"):
            if tok in index:
                self.keys[tok] = int(key)
                top = max(top, int(key))
        self._lut = np.full(top + 2, -1, dtype=np.int64)  # token_key → feed index (-1: not ours)
        for tok, key in self.keys.items():
            self._lut[key] = index[tok]
        # A replay of a few tokens from a large database (e.g. a whole-universe collection)
        # lets SQLite skip the other tokens' rows instead of handing every row over.
        total = conn.execute("SELECT COUNT(*) FROM snapshot_tokens").fetchone()[0]
        self.filtered = 2 * len(self.keys) <= total
        where = ""
        if self.filtered:
            conn.execute("DROP TABLE IF EXISTS temp.bt_keys")
            conn.execute("CREATE TEMP TABLE bt_keys (token_key INTEGER PRIMARY KEY)")
            conn.executemany("INSERT INTO temp.bt_keys VALUES (?)", ((k,) for k in self.keys.values()))
            where = " AND s.token_key IN (SELECT token_key FROM temp.bt_keys)"
        self._text_sql = _INTEGER_TEXT_SQL + where
        self._exact_sql = _COMPACT_SQL.replace(" ORDER BY ", where + " ORDER BY ")
        self.legacy = snapshot_store.has_legacy(conn)
        if self.legacy:
            conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")
            conn.execute("CREATE TEMP TABLE bt_tokens (token_id TEXT PRIMARY KEY, idx INTEGER NOT NULL)")
            conn.executemany("INSERT INTO temp.bt_tokens VALUES (?, ?)", index.items())

    def bounds(self, start_ts: int, end_ts: int) -> tuple[int | None, int | None]:
        """First and last snapshot timestamps in [start_ts, end_ts] (None, None when empty)."""
        tables = ["market_snapshots"] + ([snapshot_store.LEGACY_TABLE] if self.legacy else [])
        lo = hi = None
        for table in tables:
            # two subqueries: one MIN(...), MAX(...) aggregate would read every row of the range
            a, b = self.conn.execute(
                f"SELECT (SELECT MIN(timestamp) FROM {table} WHERE timestamp >= ?1 AND timestamp <= ?2), "
                f"(SELECT MAX(timestamp) FROM {table} WHERE timestamp >= ?1 AND timestamp <= ?2)",
                (start_ts, end_ts),
            ).fetchone()
            if a is not None:
                lo = a if lo is None else min(lo, a)
                hi = b if hi is None else max(hi, b)
        return (lo, hi) if lo is not None else (None, None)

    def chunks(self, start_ts: int, end_ts: int, chunk_seconds: int = 86_400) -> Iterator[Chunk]:
        """Chunks covering [start_ts, end_ts] in time order (rows of unknown tokens skipped)."""
        return map(unpack_chunk, self.packed_chunks(start_ts, end_ts, chunk_seconds))

    def packed_chunks(self, start_ts: int, end_ts: int, chunk_seconds: int = 86_400) -> Iterator[np.ndarray]:
        """:meth:`chunks` before decoding: (rows, 3) int64 arrays of (timestamp, token index ·
        backfill flag · price, bid · ask), 24 bytes a row instead of a :class:`Chunk`'s 41 —
        what the reader process hands over (:func:`unpack_chunk` decodes one)."""
        cur = self.conn.cursor()
        cur.row_factory = None
        t = int(start_ts)
        while t <= end_ts:
            hi = min((t // chunk_seconds + 1) * chunk_seconds, int(end_ts) + 1)  # on bucket edges
            a = self._read(cur, t, hi)
            if self.legacy:
                a = _merge(a, self._read_legacy(cur, t, hi))
            t = hi
            if a is not None:
                yield a

    def _read(self, cur: sqlite3.Cursor, lo: int, hi: int) -> np.ndarray | None:
        """(timestamp, v1, v2) rows of ``market_snapshots`` in [lo, hi) as an int64 array, v1's
        token key mapped to the feed index (rows of other tokens dropped); None when none.

        SQLite hands over TWO integers a row: v2 carries the timestamp's offset from ``lo``
        above the two prices (42 bits), so windows are read ≤ 2^20 s at a time."""
        parts = []
        for a in range(lo, hi, _MAX_WINDOW):
            b = min(hi, a + _MAX_WINDOW)
            two = _integer_window(cur, self._text_sql, a, b)
            if two is None:  # a REAL price in the window (rare: off-grid prices): the exact SQL
                flat = np.fromiter(chain.from_iterable(cur.execute(self._exact_sql, (a, b))), dtype=np.int64)
                two = flat.reshape(-1, 2)
            if len(two):
                v2 = two[:, 1]
                parts.append(np.column_stack((a + (v2 >> (2 * _BITS)), two[:, 0], v2 & _PRICES)))
        if not parts:
            return None
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        key = rows[:, 1] >> (_BITS + 1)
        known = (key >= 0) & (key < len(self._lut))
        idx = np.full(len(key), -1, dtype=np.int64)
        idx[known] = self._lut[key[known]]
        ours = idx >= 0
        rows, idx = rows[ours], idx[ours]
        if not len(rows):
            return None
        rows[:, 1] = ((idx << 1) | ((rows[:, 1] >> _BITS) & 1)) << _BITS | (rows[:, 1] & _NUL)
        return rows

    def _read_legacy(self, cur: sqlite3.Cursor, lo: int, hi: int) -> np.ndarray | None:
        """The same from the old table of a database not yet migrated (three integers a row)."""
        flat = np.fromiter(chain.from_iterable(cur.execute(_LEGACY_SQL, (lo, hi))), dtype=np.int64)
        rows = flat.reshape(-1, 3)
        rows = rows[rows[:, 1] >= 0]  # tokens of no known market
        return rows if len(rows) else None

    def depth(self, token_id: str, timestamp: int) -> tuple[bytes | str | None, bytes | str | None]:
        """The recorded levels (bids, asks) of one snapshot: packed BLOBs, or the old text of
        a row not yet migrated (:func:`polybot.snapshots.codec.levels_of` reads both)."""
        key = self.keys.get(token_id)
        row = None
        if key is not None:
            row = self.conn.execute(
                "SELECT bids, asks FROM market_snapshots WHERE timestamp = ? AND token_key = ?",
                (int(timestamp), key),
            ).fetchone()
        if row is None and self.legacy:
            row = self.conn.execute(
                f"SELECT bids, asks FROM {snapshot_store.LEGACY_TABLE} WHERE timestamp = ? AND token_id = ?",
                (int(timestamp), token_id),
            ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            if self.legacy:
                self.conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")
            if self.filtered:
                self.conn.execute("DROP TABLE IF EXISTS temp.bt_keys")


def _micro_sql(col: str) -> str:
    """SQL: a stored price as integer micro-units (an INTEGER is 0.0001 units, exactly ×100;
    a REAL is rounded to the micro-unit like the old reader did), NULL stays NULL."""
    return f"CASE WHEN typeof({col}) = 'integer' THEN {col} * 100 ELSE CAST(round({col} * 1000000) AS INTEGER) END"


def _mid_micro_sql() -> str:
    """SQL: the replay's price in micro-units: the mid (stored exception, else (bid + ask) / 2
    when both sides are present; an empty BLOB means "no mid"), else the last trade."""
    derived = (
        "CASE WHEN typeof(s.bid) = 'integer' AND typeof(s.ask) = 'integer' THEN (s.bid + s.ask) * 50 "
        "WHEN s.bid IS NOT NULL AND s.ask IS NOT NULL THEN CAST(round(((CASE WHEN typeof(s.bid) = 'integer' "
        f"THEN s.bid / {float(PRICE_SCALE)!r} ELSE s.bid END) + (CASE WHEN typeof(s.ask) = 'integer' "
        f"THEN s.ask / {float(PRICE_SCALE)!r} ELSE s.ask END)) / 2 * 1000000) AS INTEGER) END"
    )
    return (
        f"ifnull(CASE WHEN s.mid IS NULL THEN {derived} WHEN typeof(s.mid) = 'blob' THEN NULL "
        f"ELSE {_micro_sql('s.mid')} END, {_micro_sql('s.last')})"
    )


# Two packed integers per row instead of seven values: Python object creation is the cost of
# reading, not SQLite. Prices are micro-units (21 bits, NUL = none):
#   v1 = (token key × 2 + backfill flag) × 2^21 + price   (price = mid, else last trade)
#   v2 = ((timestamp − window start) × 2^21 + bid) × 2^21 + ask
# (the token key becomes the feed index in numpy, SnapshotStore._read)
_MAX_WINDOW = 1 << 20  # seconds: the timestamp offset's 20 bits above 42 bits of prices
_PRICES = (1 << (2 * _BITS)) - 1
_COMPACT_SQL = (
    f"SELECT (s.token_key * 2 + (s.source = 1)) * {_SHIFT} + ifnull({_mid_micro_sql()}, {_NUL}), "
    f"((s.timestamp - ?1) * {_SHIFT} + ifnull({_micro_sql('s.bid')}, {_NUL})) * {_SHIFT} "
    f"+ ifnull({_micro_sql('s.ask')}, {_NUL}) "
    f"FROM market_snapshots s WHERE s.timestamp >= ?1 AND s.timestamp < ?2 ORDER BY s.timestamp, s.token_key"
)
# The same when every price of the window is INTEGER units (the collector's rows): no typeof
# tests but the stored mid's. A REAL price makes that row's values REAL, which
# _integer_window sees in the text and the window is read again with _COMPACT_SQL. Both
# columns of every row of the window come as two comma-separated texts (group_concat), with
# the row count; the scan follows the clustered key, and _integer_window checks the order.
_INTEGER_TEXT_SQL = (
    f"SELECT count(*), group_concat((s.token_key * 2 + (s.source = 1)) * {_SHIFT} + ifnull(CASE WHEN "
    f"s.mid IS NULL THEN (s.bid + s.ask) * 50 WHEN typeof(s.mid) = 'blob' THEN NULL ELSE s.mid * 100 END, "
    f"ifnull(s.last * 100, {_NUL}))), "
    f"group_concat(((s.timestamp - ?1) * {_SHIFT} + ifnull(s.bid * 100, {_NUL})) * {_SHIFT} "
    f"+ ifnull(s.ask * 100, {_NUL})) "
    f"FROM market_snapshots s WHERE s.timestamp >= ?1 AND s.timestamp < ?2"
)
# the same from the old table of a database not yet migrated (its token ids mapped in SQLite)
_LEGACY_SQL = (
    f"SELECT s.timestamp, "
    f"ifnull(((SELECT k.idx FROM temp.bt_tokens k WHERE k.token_id = s.token_id) * 2 "
    f"+ (s.source = 'backfill')) * {_SHIFT} "
    f"+ ifnull(CAST(round(COALESCE(s.mid, s.last_trade_price) * 1000000) AS INTEGER), {_NUL}), -1), "
    f"ifnull(CAST(round(s.best_bid * 1000000) AS INTEGER), {_NUL}) * {_SHIFT} "
    f"+ ifnull(CAST(round(s.best_ask * 1000000) AS INTEGER), {_NUL}) "
    f"FROM {snapshot_store.LEGACY_TABLE} s WHERE s.timestamp >= ? AND s.timestamp < ?"
)


def _integer_window(cur: sqlite3.Cursor, sql: str, lo: int, hi: int) -> np.ndarray | None:
    """The (v1, v2) pairs of ``market_snapshots`` rows in [lo, hi) in (timestamp, token key)
    order, read with ``sql`` (:data:`_INTEGER_TEXT_SQL`, with the replay's token filter
    when it has one); None when a value of the window is not an
    integer (a REAL price somewhere), so the caller reads it with the exact SQL.

    SQLite hands over each column as ONE comma-separated text (``group_concat``) that numpy
    parses in C: building a Python tuple and two ints per row was 3/4 of the reader's time.
    Nothing here relies on the aggregate's row order: both texts come from the same pass
    (so v1 and v2 stay paired), and the pairs are sorted by (timestamp, key) when the scan
    did not already give that order."""
    # the statement runs to its end here, so no read transaction stays open while the reader
    # waits for the replay (it would hold back the WAL's checkpoints; a test checks it)
    ((n, t1, t2),) = cur.execute(sql, (lo, hi)).fetchall()
    if not n:
        return np.empty((0, 2), dtype=np.int64)
    if not isinstance(t1, str) or not isinstance(t2, str) or any(c in t for t in (t1, t2) for c in ".eI"):
        return None  # SQLite writes a REAL as 0.5, 5.0, 1.0e+20 or Inf: never digits only
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a text numpy cannot read to its end is an error here
        v1 = np.fromstring(t1, dtype=np.int64, sep=",")
        v2 = np.fromstring(t2, dtype=np.int64, sep=",")
    if len(v1) != n or len(v2) != n:
        raise DataError(
            f"Reading market snapshots between {lo} and {hi} gave {len(v1)} values for {n} rows; "
            "check the database with python maintain_database.py."
        )
    ts, key = v2 >> (2 * _BITS), v1 >> (_BITS + 1)
    if n > 1 and not bool(np.all((ts[1:] > ts[:-1]) | ((ts[1:] == ts[:-1]) & (key[1:] > key[:-1])))):
        order = np.lexsort((key, ts))
        v1, v2 = v1[order], v2[order]
    return np.column_stack((v1, v2))


def _merge(new: np.ndarray | None, old: np.ndarray | None) -> np.ndarray | None:
    """Compact rows and legacy rows of one window, sorted by (timestamp, token); where both
    hold a (timestamp, token), the compact row wins (a migration moves rows, never edits)."""
    if old is None:
        return new
    if new is None:
        both = old
        src = np.ones(len(old), dtype=np.int8)
    else:
        both = np.concatenate((new, old))
        src = np.concatenate((np.zeros(len(new), dtype=np.int8), np.ones(len(old), dtype=np.int8)))
    token = both[:, 1] >> (_BITS + 1)
    order = np.lexsort((src, token, both[:, 0]))
    both, token = both[order], token[order]
    dup = np.zeros(len(both), dtype=bool)
    dup[1:] = (both[1:, 0] == both[:-1, 0]) & (token[1:] == token[:-1])
    return both[~dup]


def database_file(conn: sqlite3.Connection) -> Path | None:
    """The main database file of a connection (None for in-memory)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main" and row[2]:
            return Path(row[2])
    return None


def _open_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    snapshot_store.register_functions(conn)
    return conn


def unpack_chunk(a: np.ndarray) -> Chunk:
    """The :class:`Chunk` of one :meth:`SnapshotStore.packed_chunks` array."""
    v1, v2 = a[:, 1], a[:, 2]
    key = v1 >> _BITS
    return Chunk(
        timestamp=a[:, 0].copy(),
        token=key >> 1,
        bid=_price(v2 >> _BITS),
        ask=_price(v2 & _NUL),
        price=_price(v1 & _NUL),
        backfill=(key & 1).astype(bool),
    )


def _reader_worker(path: str, token_ids: list, start_ts: int, end_ts: int, chunk_seconds: int, q) -> None:
    def put(item: tuple) -> bool:
        """Hand ``item`` over; False once the parent is gone (killed: nobody will take it)."""
        parent = multiprocessing.parent_process()
        while True:
            try:
                q.put(item, timeout=2.0)
                return True
            except queue.Full:
                if parent is not None and not parent.is_alive():
                    # exit without waiting for the queue's feeder thread, which would wait
                    # forever to write into a pipe nobody reads
                    q.cancel_join_thread()
                    return False

    try:
        conn = _open_readonly(Path(path))
        store = SnapshotStore(conn, token_ids)
        for a in store.packed_chunks(start_ts, end_ts, chunk_seconds):  # decoded by the parent
            if not put(("chunk", a)):
                return
        put(("done", None))
    except BaseException as exc:  # reported to the parent, which raises it as a DataError
        put(("error", f"{type(exc).__name__}: {exc}"))


def read_chunks(
    conn: sqlite3.Connection,
    token_ids: list[str],
    start_ts: int,
    end_ts: int,
    chunk_seconds: int,
    *,
    parallel: bool,
) -> Iterator[Chunk]:
    """Chunks of [start_ts, end_ts]: in this process, or (``parallel``) from a reader
    process on its own read-only connection. Both give identical chunks."""
    path = database_file(conn)
    if not parallel or path is None:
        store = SnapshotStore(conn, token_ids)
        try:
            yield from store.chunks(start_ts, end_ts, chunk_seconds)
        finally:
            store.close()
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = (
        multiprocessing.get_context("fork")
        if "fork" in methods and sys.platform != "darwin"
        else multiprocessing.get_context("spawn")
    )
    q = ctx.Queue(maxsize=4)
    proc = ctx.Process(
        target=_reader_worker,
        args=(str(path), list(token_ids), int(start_ts), int(end_ts), int(chunk_seconds), q),
        daemon=True,
    )
    proc.start()
    try:
        while True:
            try:
                kind, payload = q.get(timeout=1.0)
            except queue.Empty:
                if not proc.is_alive():
                    raise DataError(
                        "The snapshot reader process stopped unexpectedly; run the backtest again "
                        "(check free memory and the database with python maintain_database.py)."
                    ) from None
                continue
            if kind == "chunk":
                yield unpack_chunk(payload)
            elif kind == "done":
                break
            else:
                raise DataError(
                    f"Reading market snapshots failed ({payload}); check the database with "
                    f"python maintain_database.py."
                )
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=5)
        q.close()
