"""Correlation of the tracked markets' prices (checklist Validation Phase 1).

Method (printed with every report):
- one series per market: the mid (else last trade) of its FIRST outcome token
  (YES) from ``snapshot_values``. Taking one token per market excludes the
  complementary outcomes of one market (YES/NO mirror each other: r = −1 by
  construction);
- aligned on a common 5-minute grid (``collection.interval_minutes``): the last
  price seen in each bucket; gaps forward-filled for at most ``ffill_points``
  buckets (15 minutes by default), longer gaps stay missing;
- Pearson correlation of price CHANGES over ``change_minutes`` (5 by default),
  not of levels: two unrelated series that both trend (any two markets drifting
  towards resolution) correlate strongly in levels, spuriously;
- a pair needs at least ``min_overlap`` (fraction of the window's changes) of
  changes where both are present; markets below it, or that never moved, are
  left out and listed;
- whether a correlation is real (:mod:`.significance`): at least
  ``min_shared_moves`` steps where BOTH prices moved, a Fisher-z p-value with an
  autocorrelation-adjusted effective sample size, Benjamini–Hochberg q-values
  across all pairs; **strong** = q ≤ ``fdr_q`` and |r| ≥ the threshold, so a
  negative correlation (two outcomes of one decision) is strong too, and the
  correlated groups are built from strong pairs by |r|.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polybot.errors import DataError

from .significance import FDR_Q, MIN_SHARED_MOVES, PairStats, abs_clusters, pair_statistics
from .stats import corr_pairwise, ffill_limited

DAY = 86_400


class NotEnoughData(DataError):
    """Too little stored data for the analysis (exit code 2)."""

    exit_code = 2


@dataclass
class PriceMatrix:
    grid_ts: np.ndarray  # bucket start times, shape (n,)
    market_ids: list[str]
    questions: list[str]
    event_ids: list[str | None]
    prices: np.ndarray  # (n, k), NaN = no price in that bucket
    rows: int = 0
    backfill_rows: int = 0


@dataclass
class CorrelationResult:
    start_ts: int
    end_ts: int
    interval: int
    change_minutes: int
    ffill_points: int
    min_overlap: float
    market_ids: list[str]
    questions: list[str]
    r: np.ndarray  # (k, k)
    n: np.ndarray  # overlapping changes per pair
    excluded: list[tuple[str, str, str]] = field(default_factory=list)  # (id, question, why)
    rows: int = 0
    backfill_rows: int = 0
    stats: PairStats | None = None  # shared moves, n_eff, p, q (see .significance)

    def method(self) -> str:
        return (
            f"Pearson correlation of {self.change_minutes}-minute changes of each market's first-outcome "
            f"(YES) mid on a {self.interval // 60}-minute grid (changes, not levels: trending series "
            f"correlate spuriously in levels; one token per market, so complementary outcomes never pair); "
            f"gaps forward-filled up to {self.ffill_points * self.interval // 60} minutes; a pair needs "
            f"{self.min_overlap:.0%} of the window's changes in common"
            + (f"; {self.stats.method()}" if self.stats is not None else "")
        )

    @property
    def pair_stats(self) -> PairStats:
        """The pair statistics (``correlate`` always computes them)."""
        if self.stats is None:
            raise ValueError("this correlation result was built without pair statistics")
        return self.stats

    def pair_rows(self, mask: np.ndarray | None = None) -> list[dict]:
        """One dict per pair i < j (where ``mask`` is true, default all with an r): market ids, questions,
        r, p, q, n_eff, shared moves, changes in common; by q then −|r|."""
        k = len(self.market_ids)
        st = self.stats
        iu, ju = np.triu_indices(k, 1)
        sel = ~np.isnan(self.r[iu, ju]) if mask is None else mask[iu, ju]
        out: list[dict[str, Any]] = []
        for x in np.flatnonzero(sel):
            i, j = int(iu[x]), int(ju[x])
            out.append(
                {
                    "a": self.market_ids[i],
                    "b": self.market_ids[j],
                    "question_a": self.questions[i],
                    "question_b": self.questions[j],
                    "r": _num(self.r[i, j]),
                    "p": _num(st.p[i, j], 6) if st else None,
                    "q": _num(st.q[i, j], 6) if st else None,
                    "n_eff": _num(st.n_eff[i, j], 1) if st else None,
                    "shared_moves": int(st.shared[i, j]) if st else None,
                    "n": int(self.n[i, j]),
                    "move_share": _num(st.move_share[i, j], 3)
                    if st is not None and st.move_share is not None
                    else None,
                    "not_significant_because": (st.why_not(i, j) or None) if st else None,
                }
            )
        out.sort(key=lambda d: ((d["q"] if d["q"] is not None else 1.0), -abs(d["r"] or 0), d["a"], d["b"]))
        return out

    def strong_mask(self, threshold: float) -> np.ndarray:
        """Pairs that are significant after BH AND |r| ≥ threshold."""
        if self.stats is None:
            return np.zeros_like(self.r, dtype=bool)
        return self.stats.strong(threshold)

    def significant_mask(self) -> np.ndarray:
        if self.stats is None:
            return np.zeros_like(self.r, dtype=bool)
        return self.stats.significant()

    def pairs(self, lo: float = -2.0, hi: float = 2.0) -> list[tuple[float, int, int]]:
        """(r, i, j) for i < j with lo ≤ r ≤ hi (NaN excluded), strongest first."""
        k = len(self.market_ids)
        iu, ju = np.triu_indices(k, 1)
        rv = self.r[iu, ju]
        ok = ~np.isnan(rv) & (rv >= lo) & (rv <= hi)
        out = [(float(rv[x]), int(iu[x]), int(ju[x])) for x in np.flatnonzero(ok)]
        out.sort(key=lambda t: (-t[0], self.market_ids[t[1]], self.market_ids[t[2]]))
        return out

    def groups(self, threshold: float) -> list[dict]:
        """Connected components of the strong pairs (significant and |r| ≥ threshold): markets whose
        prices move together OR against each other are one risk for the exposure cap."""
        if self.stats is None:  # nothing is significant without the statistics
            return []
        strong = self.strong_mask(threshold)
        out = []
        for g, members in enumerate(abs_clusters(strong), start=1):
            sub = self.r[np.ix_(members, members)]
            linked = strong[np.ix_(members, members)]
            iu = np.triu_indices(len(members), 1)
            vals = sub[iu][linked[iu]]
            qs = self.stats.q[np.ix_(members, members)][iu][linked[iu]]
            out.append(
                {
                    "id": f"g{g}",
                    "markets": [self.market_ids[i] for i in members],
                    "questions": [self.questions[i] for i in members],
                    "mean_r": round(float(vals.mean()), 4) if len(vals) else None,
                    "min_abs_r": round(float(np.abs(vals).min()), 4) if len(vals) else None,
                    "max_q": float(f"{qs.max():.3g}") if len(qs) else None,
                    "negative_links": int((vals < 0).sum()),
                }
            )
        return out


def _num(x: float, digits: int = 4) -> float | None:
    x = float(x)
    if x != x:
        return None
    return float(f"{x:.{digits}g}") if digits > 4 else round(x, digits)


def data_bounds(conn: sqlite3.Connection) -> tuple[int | None, int | None]:
    row = conn.execute("SELECT MIN(timestamp), MAX(timestamp) FROM snapshot_values").fetchone()
    return (row[0], row[1]) if row and row[0] is not None else (None, None)


def tracked_markets(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    rows = conn.execute(
        "SELECT id, question, event_id, token_ids FROM markets WHERE tracked = 1 ORDER BY id"
    ).fetchall()
    if not rows:  # nothing flagged (e.g. backfilled history only): every market we have
        rows = conn.execute("SELECT id, question, event_id, token_ids FROM markets ORDER BY id").fetchall()
    return rows


def load_prices(conn: sqlite3.Connection, start_ts: int, end_ts: int, interval: int = 300) -> PriceMatrix:
    """The first-outcome price of every tracked market on the grid [start_ts, end_ts]."""
    markets = []
    for row in tracked_markets(conn):
        try:
            toks = json.loads(row["token_ids"]) if isinstance(row["token_ids"], str) else row["token_ids"]
        except ValueError:
            continue
        if toks:
            markets.append((row["id"], row["question"] or row["id"], row["event_id"], str(toks[0])))
    b0 = start_ts // interval
    nb = end_ts // interval - b0 + 1
    M = np.full((max(nb, 0), len(markets)), np.nan)
    if not markets or nb <= 0:
        return PriceMatrix(np.zeros(0, dtype=np.int64), [], [], [], M)
    conn.execute("DROP TABLE IF EXISTS temp.corr_tokens")
    conn.execute("CREATE TEMP TABLE corr_tokens (token_id TEXT PRIMARY KEY, idx INTEGER NOT NULL)")
    conn.executemany("INSERT INTO temp.corr_tokens VALUES (?, ?)", ((m[3], i) for i, m in enumerate(markets)))
    cur = conn.cursor()
    cur.row_factory = None
    rows = backfill = 0
    try:
        # driven by the token list through the (token_id, timestamp) index: reads only YES rows
        sql = (
            "SELECT s.timestamp, k.idx, COALESCE(s.mid, (s.best_bid + s.best_ask) / 2.0, s.last_trade_price), "
            "s.source = 'backfill' OR (s.best_bid IS NULL AND s.best_ask IS NULL) "
            "FROM temp.corr_tokens k JOIN snapshot_values s ON s.token_id = k.token_id "
            "AND s.timestamp >= ? AND s.timestamp <= ?"
        )
        data = cur.execute(sql, (start_ts, end_ts)).fetchall()
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.corr_tokens")
    if data:
        a = np.array(data, dtype=np.float64)
        del data
        a = a[~np.isnan(a[:, 2])]
        rows, backfill = len(a), int(a[:, 3].sum())
        b = (a[:, 0].astype(np.int64) // interval) - b0
        i = a[:, 1].astype(np.int64)
        # the LAST price in each (bucket, market): order by time, keep the final occurrence
        order = np.lexsort((a[:, 0], i, b))
        b, i, p = b[order], i[order], a[order, 2]
        key = b * len(markets) + i
        last = np.append(key[1:] != key[:-1], True)
        M[b[last], i[last]] = p[last]
    grid = (b0 + np.arange(nb, dtype=np.int64)) * interval
    return PriceMatrix(
        grid, [m[0] for m in markets], [m[1] for m in markets], [m[2] for m in markets], M, rows, backfill
    )


def correlate(
    pm: PriceMatrix,
    *,
    start_ts: int,
    end_ts: int,
    interval: int = 300,
    change_minutes: int = 5,
    ffill_points: int = 3,
    min_overlap: float = 0.5,
    min_shared_moves: int = MIN_SHARED_MOVES,
    fdr_q: float = FDR_Q,
) -> CorrelationResult:
    """The correlation matrix of price changes (see the module docstring)."""
    step = max(1, int(round(change_minutes * 60 / interval)))
    P = ffill_limited(pm.prices, ffill_points)
    P = P[::-1][::step][::-1] if step > 1 else P
    D = np.diff(P, axis=0) if len(P) > 1 else np.zeros((0, P.shape[1]))
    n_changes = D.shape[0]
    need = max(3, int(np.ceil(min_overlap * n_changes)))
    valid = ~np.isnan(D)
    counts = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        moved = (
            np.nanmax(np.abs(np.where(valid, D, 0.0)), axis=0) > 0
            if n_changes
            else np.zeros(D.shape[1], bool)
        )
    keep = (counts >= need) & moved
    excluded = []
    for j in np.flatnonzero(~keep):
        why = (
            f"prices for {counts[j]} of {n_changes} changes (need {need})"
            if counts[j] < need
            else "its price never moved in the window"
        )
        excluded.append((pm.market_ids[j], pm.questions[j], why))
    idx = np.flatnonzero(keep)
    r, n = corr_pairwise(D[:, idx], need)
    np.fill_diagonal(r, 1.0)
    st = pair_statistics(D[:, idx], r, n, min_shared_moves=min_shared_moves, fdr_q=fdr_q)
    return CorrelationResult(
        start_ts,
        end_ts,
        interval,
        step * interval // 60,
        ffill_points,
        min_overlap,
        [pm.market_ids[j] for j in idx],
        [pm.questions[j] for j in idx],
        r,
        n,
        excluded,
        pm.rows,
        pm.backfill_rows,
        st,
    )


def analyse(
    conn: sqlite3.Connection,
    days: float,
    *,
    interval: int = 300,
    change_minutes: int = 5,
    ffill_points: int = 3,
    min_overlap: float = 0.5,
    min_shared_moves: int = MIN_SHARED_MOVES,
    fdr_q: float = FDR_Q,
) -> CorrelationResult:
    """Load the last ``days`` of data (ending at the newest snapshot) and correlate.
    Raises NotEnoughData with one sentence when fewer than two markets qualify."""
    first, last = data_bounds(conn)
    if first is None or last is None:  # both None, or neither
        raise NotEnoughData(
            "The database has no market snapshots yet; collect data first "
            "(python collect_market_data.py, every 5 minutes for the checklist's 7 days)."
        )
    end_ts = int(last)
    # exactly days × (buckets per day) grid buckets, the newest one holding the last snapshot
    start_ts = (end_ts // interval - int(days * DAY) // interval + 1) * interval
    pm = load_prices(conn, start_ts, end_ts, interval)
    res = correlate(
        pm,
        start_ts=start_ts,
        end_ts=end_ts,
        interval=interval,
        change_minutes=change_minutes,
        ffill_points=ffill_points,
        min_overlap=min_overlap,
        min_shared_moves=min_shared_moves,
        fdr_q=fdr_q,
    )
    if len(res.market_ids) < 2:
        have = (int(last) - int(first)) / DAY
        raise NotEnoughData(
            f"Not enough data for a correlation matrix: {len(res.market_ids)} of {len(pm.market_ids)} tracked "
            f"markets have prices for {min_overlap:.0%} of the last {days:g} days "
            f"(the database holds {have:.1f} days); collect more data or lower --min-overlap."
        )
    return res
