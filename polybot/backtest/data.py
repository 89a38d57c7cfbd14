"""Reading stored market data for replays: markets, resolutions, snapshot chunks.

Snapshots are read in time chunks (``chunk_seconds``, one UTC day by default) as
numpy columns: the token id is mapped to the feed's integer index inside SQLite
(a TEMP lookup table), so the Python side only handles numbers. For long
replays, :func:`read_chunks` runs the reader in a separate process that hands
numpy chunks over a small queue, so reading overlaps the replay on a second
core (the sqlite3 module is mostly GIL-bound; a thread would not overlap). Depth strings
(``bids``/``asks``) are NOT bulk-loaded: the feed asks :meth:`SnapshotStore.depth`
for the one book it needs when an order fills (a primary-key lookup).
"""
from __future__ import annotations

import json
import multiprocessing
import queue
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from polybot.errors import DataError
from polybot.strategy.base import MarketInfo


_BITS = 21
_SHIFT = 1 << _BITS
_NUL = _SHIFT - 1          # "no price" (real prices are ≤ 1_000_000 micro-units)


def _price(micro: np.ndarray) -> np.ndarray:
    out = micro.astype(np.float64) / 1e6
    out[micro == _NUL] = np.nan
    return out


@dataclass(frozen=True)
class Resolution:
    market_id: str
    resolved_at: int
    payouts: dict          # token_id → payout per share (1.0 / 0.0 / 0.5)


@dataclass(frozen=True)
class Chunk:
    """Snapshot rows of one time window, sorted by (timestamp, token)."""

    timestamp: np.ndarray   # int64
    token: np.ndarray       # int64 feed index
    bid: np.ndarray         # float64, NaN = none
    ask: np.ndarray
    price: np.ndarray       # mid, else last trade price
    backfill: np.ndarray    # bool: source == 'backfill'

    def __len__(self) -> int:
        return len(self.timestamp)


def load_markets(conn: sqlite3.Connection) -> tuple[list[MarketInfo], dict[str, Resolution]]:
    """Every market's static metadata, and the resolutions (resolved_at + payouts)."""
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


class SnapshotStore:
    """Chunked, index-mapped reads of ``market_snapshots`` for a set of tokens."""

    def __init__(self, conn: sqlite3.Connection, token_ids: list[str]):
        self.conn = conn
        self.token_ids = list(token_ids)
        conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")
        conn.execute("CREATE TEMP TABLE bt_tokens (token_id TEXT PRIMARY KEY, idx INTEGER NOT NULL)")
        conn.executemany("INSERT INTO temp.bt_tokens VALUES (?, ?)",
                         ((t, i) for i, t in enumerate(self.token_ids)))

    def bounds(self, start_ts: int, end_ts: int) -> tuple[Optional[int], Optional[int]]:
        """First and last snapshot timestamps in [start_ts, end_ts] (None, None when empty)."""
        row = self.conn.execute("SELECT MIN(timestamp), MAX(timestamp) FROM market_snapshots "
                                "WHERE timestamp >= ? AND timestamp <= ?", (start_ts, end_ts)).fetchone()
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
        sql = (f"SELECT s.timestamp, "
               f"ifnull(((SELECT k.idx FROM temp.bt_tokens k WHERE k.token_id = s.token_id) * 2 "
               f"+ (s.source = 'backfill')) * {_SHIFT} "
               f"+ ifnull(CAST(round(COALESCE(s.mid, s.last_trade_price) * 1000000) AS INTEGER), {_NUL}), -1), "
               f"ifnull(CAST(round(s.best_bid * 1000000) AS INTEGER), {_NUL}) * {_SHIFT} "
               f"+ ifnull(CAST(round(s.best_ask * 1000000) AS INTEGER), {_NUL}) "
               f"FROM market_snapshots s WHERE s.timestamp >= ? AND s.timestamp < ? "
               f"ORDER BY s.timestamp, s.token_id")
        while t <= end_ts:
            hi = min((t // chunk_seconds + 1) * chunk_seconds, int(end_ts) + 1)   # on bucket edges
            rows = cur.execute(sql, (t, hi)).fetchall()
            t = hi
            if not rows:
                continue
            a = np.array(rows, dtype=np.int64)
            del rows
            a = a[a[:, 1] >= 0]               # tokens of no known market
            if not len(a):
                continue
            v1, v2 = a[:, 1], a[:, 2]
            key = v1 >> _BITS
            yield Chunk(timestamp=a[:, 0].copy(), token=key >> 1, bid=_price(v2 >> _BITS),
                        ask=_price(v2 & _NUL), price=_price(v1 & _NUL), backfill=(key & 1).astype(bool))

    def depth(self, token_id: str, timestamp: int) -> tuple[Optional[str], Optional[str]]:
        """The recorded depth strings (bids, asks) of one snapshot."""
        row = self.conn.execute("SELECT bids, asks FROM market_snapshots WHERE timestamp = ? AND token_id = ?",
                                (int(timestamp), token_id)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def close(self) -> None:
        try:
            self.conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")
        except sqlite3.Error:
            pass


def database_file(conn: sqlite3.Connection) -> Optional[Path]:
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


def read_chunks(conn: sqlite3.Connection, token_ids: list[str], start_ts: int, end_ts: int,
                chunk_seconds: int, *, parallel: bool) -> Iterator[Chunk]:
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
    ctx = multiprocessing.get_context("fork" if "fork" in methods and sys.platform != "darwin" else "spawn")
    q = ctx.Queue(maxsize=4)
    proc = ctx.Process(target=_reader_worker, args=(str(path), list(token_ids), int(start_ts), int(end_ts),
                                                    int(chunk_seconds), q), daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, payload = q.get(timeout=1.0)
            except queue.Empty:
                if not proc.is_alive():
                    raise DataError("The snapshot reader process stopped unexpectedly; run the backtest again "
                                    "(check free memory and the database with python maintain_database.py).")
                continue
            if kind == "chunk":
                yield payload
            elif kind == "done":
                break
            else:
                raise DataError(f"Reading market snapshots failed ({payload}); check the database with "
                                f"python maintain_database.py.")
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=5)
        q.close()
