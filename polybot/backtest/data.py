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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polybot.domain import MarketInfo
from polybot.errors import DataError
from polybot.exchange.models import FeeSchedule

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
    """Snapshot rows of one time window, sorted by (timestamp, token)."""

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
# Without it SQLite inlines the CTE and re-parses the depth strings in every CASE branch
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


def _top_size(col: str) -> str:
    """SQL: the size of the first level of a depth string ``"p:s,p:s"`` (NULL when empty)."""
    return (
        f"CAST(substr({col}, instr({col}, ':') + 1, "
        f"instr({col} || ',', ',') - instr({col}, ':') - 1) AS REAL)"
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
    # two subqueries: one MIN(...), MAX(...) aggregate would scan the whole table
    lo, hi = conn.execute(
        "SELECT (SELECT MIN(timestamp) FROM snapshot_values), (SELECT MAX(timestamp) FROM snapshot_values)"
    ).fetchone()
    if lo is None:
        return {t: default for t in universe}
    lo = max(int(lo), int(start_ts)) if start_ts is not None else int(lo)
    hi = min(int(hi), int(end_ts)) if end_ts is not None else int(hi)
    step = max(1, int(sample_seconds))
    rows_in_range = conn.execute(  # counted up to the threshold only
        "SELECT COUNT(*) FROM (SELECT 1 FROM snapshot_values WHERE timestamp >= ? AND timestamp <= ? "
        "LIMIT ?)",
        (lo, hi, FULL_SCAN_ROWS + 1),
    ).fetchone()[0]
    if rows_in_range <= FULL_SCAN_ROWS:  # small: every row (the sample could miss sparse rows)
        source = "snapshot_values s WHERE s.timestamp >= ?1 AND s.timestamp <= ?2 AND ?3 > 0 AND "
    else:
        # about SAMPLE_ROWS rows: one grid point every ``step`` (a multiple of sample_seconds)
        points = max(1, SAMPLE_ROWS // len(universe))
        step = max(step, -(-((hi - lo) // points) // step) * step)
        lo = -(-lo // step) * step
        source = "g CROSS JOIN snapshot_values s ON s.timestamp = g.ts WHERE "
    was_in_transaction = conn.in_transaction
    conn.execute("DROP TABLE IF EXISTS temp.bf_tokens")
    conn.execute("CREATE TEMP TABLE bf_tokens (token_id TEXT PRIMARY KEY) WITHOUT ROWID")
    depth = _top_size("s.bids"), _top_size("s.asks")
    bucket = " ".join(f"WHEN d >= {e} THEN {e}" for e in reversed(_DEPTH_EDGES))
    sql = (
        f"WITH RECURSIVE g(ts) AS (SELECT ?1 UNION ALL SELECT ts + ?3 FROM g WHERE ts + ?3 <= ?2), "
        f"r AS {_MATERIALIZED}(SELECT s.token_id AS token_id, s.market_id AS market_id, "
        f"CAST(round((s.best_ask - s.best_bid) * 100000) AS INTEGER) AS sp, "
        f"min({depth[0]}, {depth[1]}) AS d FROM {source}"
        f"+s.token_id IN (SELECT token_id FROM temp.bf_tokens) AND s.source = 'collected' "
        f"AND s.best_bid IS NOT NULL AND s.best_ask IS NOT NULL AND s.best_ask > s.best_bid "
        f"AND s.best_ask - s.best_bid <= {_MAX_SPREAD} AND s.bids <> '' AND s.asks <> '') "
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


def prepare_replay_feed(
    feed, conn: sqlite3.Connection, backtest_cfg, start_ts: int, end_ts: int
) -> dict[str, int]:
    """Give a replay's :class:`~polybot.strategy.feed.MarketFeed` what it must know point in
    time: the metadata history of its markets (tick, fees, minimum size, end date as they
    were at each step) and the book of each token's backfilled rows (its market's recorded
    spread and top-of-book depth within 30 days of the window, else
    ``backtest.backfill_half_spread`` / ``backfill_default_depth``). Returns how many
    tokens got their backfilled book from each basis ('token', 'market', 'default') —
    for the report."""
    feed.set_metadata_history(load_metadata_history(conn, list(feed.markets)))
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
    """Chunked, index-mapped reads of ``snapshot_values`` for a set of tokens."""

    def __init__(self, conn: sqlite3.Connection, token_ids: list[str]):
        self.conn = conn
        self.token_ids = list(token_ids)
        conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")
        conn.execute("CREATE TEMP TABLE bt_tokens (token_id TEXT PRIMARY KEY, idx INTEGER NOT NULL)")
        conn.executemany(
            "INSERT INTO temp.bt_tokens VALUES (?, ?)", ((t, i) for i, t in enumerate(self.token_ids))
        )

    def bounds(self, start_ts: int, end_ts: int) -> tuple[int | None, int | None]:
        """First and last snapshot timestamps in [start_ts, end_ts] (None, None when empty)."""
        # two subqueries: one MIN(...), MAX(...) aggregate would read every row of the range
        row = self.conn.execute(
            "SELECT (SELECT MIN(timestamp) FROM snapshot_values WHERE timestamp >= ?1 "
            "AND timestamp <= ?2), (SELECT MAX(timestamp) FROM snapshot_values "
            "WHERE timestamp >= ?1 AND timestamp <= ?2)",
            (start_ts, end_ts),
        ).fetchone()
        return (row[0], row[1]) if row and row[0] is not None else (None, None)

    def chunks(self, start_ts: int, end_ts: int, chunk_seconds: int = 86_400) -> Iterator[Chunk]:
        """Chunks covering [start_ts, end_ts] in time order (rows of unknown tokens skipped)."""
        cur = self.conn.cursor()
        cur.row_factory = None
        t = int(start_ts)
        # Two packed integers per row instead of six values: Python object creation is
        # the cost of reading, not SQLite. Prices are micro-units (21 bits, NUL = none):
        #   v1 = (token index × 2 + backfill flag) × 2^21 + price   (price = mid, else last trade)
        #   v2 = bid × 2^21 + ask
        sql = (
            f"SELECT s.timestamp, "
            f"ifnull(((SELECT k.idx FROM temp.bt_tokens k WHERE k.token_id = s.token_id) * 2 "
            f"+ (s.source = 'backfill')) * {_SHIFT} "
            f"+ ifnull(CAST(round(COALESCE(s.mid, s.last_trade_price) * 1000000) AS INTEGER), {_NUL}), -1), "
            f"ifnull(CAST(round(s.best_bid * 1000000) AS INTEGER), {_NUL}) * {_SHIFT} "
            f"+ ifnull(CAST(round(s.best_ask * 1000000) AS INTEGER), {_NUL}) "
            f"FROM snapshot_values s WHERE s.timestamp >= ? AND s.timestamp < ? "
            f"ORDER BY s.timestamp, s.token_id"
        )
        while t <= end_ts:
            hi = min((t // chunk_seconds + 1) * chunk_seconds, int(end_ts) + 1)  # on bucket edges
            rows = cur.execute(sql, (t, hi)).fetchall()
            t = hi
            if not rows:
                continue
            a = np.array(rows, dtype=np.int64)
            del rows
            a = a[a[:, 1] >= 0]  # tokens of no known market
            if not len(a):
                continue
            v1, v2 = a[:, 1], a[:, 2]
            key = v1 >> _BITS
            yield Chunk(
                timestamp=a[:, 0].copy(),
                token=key >> 1,
                bid=_price(v2 >> _BITS),
                ask=_price(v2 & _NUL),
                price=_price(v1 & _NUL),
                backfill=(key & 1).astype(bool),
            )

    def depth(self, token_id: str, timestamp: int) -> tuple[str | None, str | None]:
        """The recorded depth strings (bids, asks) of one snapshot."""
        row = self.conn.execute(
            "SELECT bids, asks FROM snapshot_values WHERE timestamp = ? AND token_id = ?",
            (int(timestamp), token_id),
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")


def database_file(conn: sqlite3.Connection) -> Path | None:
    """The main database file of a connection (None for in-memory)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main" and row[2]:
            return Path(row[2])
    return None


def _open_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _reader_worker(path: str, token_ids: list, start_ts: int, end_ts: int, chunk_seconds: int, q) -> None:
    try:
        conn = _open_readonly(Path(path))
        store = SnapshotStore(conn, token_ids)
        for ch in store.chunks(start_ts, end_ts, chunk_seconds):
            q.put(("chunk", ch))
        q.put(("done", None))
    except BaseException as exc:  # reported to the parent, which raises it as a DataError
        q.put(("error", f"{type(exc).__name__}: {exc}"))


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
                yield payload
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
