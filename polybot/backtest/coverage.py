"""How much of a backtest window the stored market data actually covers.

:func:`data_coverage` answers, for the traded universe (``token_ids``) and a window
``[start_ts, end_ts]``, with these figures (the verdict's data floors use them):

- The window is cut into ``n = max(1, ceil((end_ts - start_ts) / grid_seconds))`` grid
  points ("buckets") ``[start_ts + k·grid, start_ts + (k+1)·grid)``; ``end_ts`` itself
  belongs to the last bucket.
- ``coverage``: the fraction of the ``n`` buckets in which AT LEAST ONE token of the
  universe has a snapshot row (collected or backfilled). It measures how much of the
  window's time the replay has any data for: 6 days of data in a 30-day window gives
  ≈ 0.2 whatever the number of tokens. A bucket with one token's data counts as covered
  (a market that resolved inside the window, or was listed late, has no data outside its
  life, and that is not missing data); how many tokens each point covers is in
  ``token_coverage``.
- ``token_coverage``: the fraction of (token, bucket) pairs with a snapshot row —
  stricter, and below 1 for every universe in which markets open or resolve inside the
  window; reported for information.
- ``recorded_share`` / ``backfilled_share``: the fractions of the universe's snapshot rows
  in the window with ``source = 'collected'`` (books recorded live by the collector) and
  ``source = 'backfill'`` (price history only, books synthesised); they add up to 1
  (both 0.0 when there are no rows).
- ``recorded_days``: the days' worth of buckets in which at least one token has a
  RECORDED (not backfilled) row: recorded buckets × ``grid_seconds`` / 86,400. One
  recorded snapshot in a day therefore counts as one grid point (5 minutes), not as a
  day; 7 full days recorded on the 5-minute grid give 7.0.
  ``recorded_coverage`` is the same as a fraction of the window's buckets.

Also returned: ``grid_points`` (n), ``covered_points``, ``recorded_points``, ``rows``,
``recorded_rows``, ``backfilled_rows``, ``tokens`` (universe size), ``tokens_with_data``,
``first_ts`` / ``last_ts`` (of the rows found, None when none), ``grid_seconds``,
``start_ts``, ``end_ts``.

Speed: two streaming passes over the primary-key range of the window (GROUP BY timestamp
in key order, no sort; Python sees one row per distinct timestamp; then the distinct
tokens). The compact layout (schema version 6) has no per-token index, so a small universe
reads the whole window too.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from typing import Any

import numpy as np

from polybot.snapshots.store import LEGACY_TABLE, has_legacy

DAY = 86_400


def _per_timestamp(conn: sqlite3.Connection, start_ts: int, end_ts: int, *, legacy: bool) -> np.ndarray:
    """(timestamp, rows, backfilled rows) of the universe (``temp.cov_tokens``) per distinct
    timestamp in [start_ts, end_ts], as an int64 array of shape (k, 3).

    One streaming pass over the primary key (timestamp, token_key) range: rows arrive in
    timestamp order, so GROUP BY timestamp needs no sort; the universe is a set of token
    keys. The rows of a database not yet migrated (``legacy``) are added."""
    sql = (
        "SELECT s.timestamp AS timestamp, COUNT(*) AS n, SUM(s.source = 1) AS b FROM market_snapshots s "
        "WHERE s.timestamp >= ?1 AND s.timestamp <= ?2 "
        "AND +s.token_key IN (SELECT t.token_key FROM snapshot_tokens t JOIN temp.cov_tokens c "
        "ON c.token_id = t.token_id) GROUP BY s.timestamp"
    )
    if legacy:
        sql = (
            f"SELECT timestamp, SUM(n), SUM(b) FROM ({sql} "
            f"UNION ALL SELECT s.timestamp, COUNT(*), SUM(s.source = 'backfill') FROM {LEGACY_TABLE} s "
            "WHERE s.timestamp >= ?1 AND s.timestamp <= ?2 "
            "AND +s.token_id IN (SELECT token_id FROM temp.cov_tokens) GROUP BY s.timestamp) "
            "GROUP BY timestamp ORDER BY timestamp"
        )
    cur = conn.cursor()
    cur.row_factory = None
    rows = cur.execute(sql, (start_ts, end_ts)).fetchall()
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _tokens_with_data(conn: sqlite3.Connection, start_ts: int, end_ts: int, *, legacy: bool) -> int:
    """How many tokens of ``temp.cov_tokens`` have a row in [start_ts, end_ts]."""
    sql = (
        "SELECT DISTINCT s.token_key AS k FROM market_snapshots s WHERE s.timestamp >= ?1 AND s.timestamp <= ?2 "
        "AND +s.token_key IN (SELECT t.token_key FROM snapshot_tokens t JOIN temp.cov_tokens c "
        "ON c.token_id = t.token_id)"
    )
    if legacy:
        sql = (
            f"SELECT t.token_id FROM ({sql}) d JOIN snapshot_tokens t ON t.token_key = d.k UNION "
            f"SELECT DISTINCT s.token_id FROM {LEGACY_TABLE} s WHERE s.timestamp >= ?1 AND s.timestamp <= ?2 "
            "AND +s.token_id IN (SELECT token_id FROM temp.cov_tokens)"
        )
    return int(conn.execute(f"SELECT COUNT(*) FROM ({sql})", (start_ts, end_ts)).fetchone()[0])


def data_coverage(
    conn: sqlite3.Connection, token_ids: Iterable[str], start_ts: int, end_ts: int, grid_seconds: int = 300
) -> dict[str, Any]:
    """Coverage figures of ``token_ids`` over ``[start_ts, end_ts]`` (see the module docstring)."""
    start_ts, end_ts, grid = int(start_ts), int(end_ts), int(grid_seconds)
    if grid <= 0:
        raise ValueError(f"grid_seconds must be positive (got {grid_seconds})")
    if end_ts < start_ts:
        raise ValueError(f"the window ends ({end_ts}) before it starts ({start_ts})")
    universe = sorted({str(t) for t in token_ids})
    n = max(1, math.ceil((end_ts - start_ts) / grid))
    out = {
        "coverage": 0.0,
        "token_coverage": 0.0,
        "recorded_share": 0.0,
        "backfilled_share": 0.0,
        "recorded_days": 0.0,
        "recorded_coverage": 0.0,
        "grid_points": n,
        "covered_points": 0,
        "recorded_points": 0,
        "rows": 0,
        "recorded_rows": 0,
        "backfilled_rows": 0,
        "tokens": len(universe),
        "tokens_with_data": 0,
        "first_ts": None,
        "last_ts": None,
        "grid_seconds": grid,
        "start_ts": start_ts,
        "end_ts": end_ts,
    }
    if not universe:
        return out
    was_in_transaction = conn.in_transaction
    conn.execute("DROP TABLE IF EXISTS temp.cov_tokens")
    conn.execute("CREATE TEMP TABLE cov_tokens (token_id TEXT PRIMARY KEY) WITHOUT ROWID")
    try:
        conn.executemany("INSERT INTO temp.cov_tokens VALUES (?)", ((t,) for t in universe))
        legacy = has_legacy(conn)
        per_ts = _per_timestamp(conn, start_ts, end_ts, legacy=legacy)
        with_data = _tokens_with_data(conn, start_ts, end_ts, legacy=legacy)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.cov_tokens")
        if not was_in_transaction and conn.in_transaction:
            conn.commit()  # the temp table's implicit transaction (a legacy-mode connection)
    if not len(per_ts):
        return out
    bucket = np.minimum((per_ts[:, 0] - start_ts) // grid, n - 1)
    rows = np.bincount(bucket, weights=per_ts[:, 1], minlength=n)
    bf_rows = np.bincount(bucket, weights=per_ts[:, 2], minlength=n)
    total = int(per_ts[:, 1].sum())
    backfilled = int(per_ts[:, 2].sum())
    recorded = total - backfilled
    covered = int((rows > 0).sum())
    recorded_points = int((rows > bf_rows).sum())
    first, last = int(per_ts[0, 0]), int(per_ts[-1, 0])
    # (token, bucket) pairs: each (timestamp, token) is one row (primary key); several
    # timestamps of one token inside one bucket are capped at the universe size
    pairs = float(np.minimum(rows, len(universe)).sum())
    out.update(
        coverage=covered / n,
        token_coverage=pairs / (n * len(universe)),
        recorded_share=(recorded / total) if total else 0.0,
        backfilled_share=(backfilled / total) if total else 0.0,
        recorded_days=recorded_points * grid / DAY,
        recorded_coverage=recorded_points / n,
        covered_points=covered,
        recorded_points=recorded_points,
        rows=total,
        recorded_rows=recorded,
        backfilled_rows=backfilled,
        tokens_with_data=with_data,
        first_ts=first,
        last_ts=last,
    )
    return out
