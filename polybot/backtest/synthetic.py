"""Synthetic market data with the real schema, for tests, benchmarks and demos.

``generate(path, ...)`` creates (or extends) a SQLite database at ``path`` with
``markets``, ``market_tokens`` and snapshot rows (written like the collector's, through
:func:`polybot.snapshots.store.insert_rows`): ``n_markets``
binary markets (YES + NO token, the NO book the mirror of the YES book), one
snapshot per token every ``interval`` seconds for ``days`` days, three book
levels a side. Prices move in logit space:

- ``model="pairs_edge"``: markets come in pairs sharing a common random walk,
  each with its own mean-reverting (Ornstein-Uhlenbeck) deviation: the spread of
  a pair reverts — a planted edge for correlation_pairs;
- ``model="pairs_noise"``: the same pairs, but the deviations are random walks
  (martingales): correlated, and no edge at all;
- ``model="independent"``: independent random walks.

Everything is seeded; nothing reads the clock.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polybot.db import connect, migrate
from polybot.snapshots import store as snapshot_store

DEFAULT_START = 1_767_225_600  # 2026-01-01 00:00 UTC


@dataclass(frozen=True)
class SyntheticData:
    path: Path
    start_ts: int
    end_ts: int  # last snapshot timestamp
    market_ids: tuple[str, ...]
    yes_tokens: tuple[str, ...]
    no_tokens: tuple[str, ...]
    rows: int


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit_paths(
    rng: np.random.Generator,
    pair: np.ndarray,
    steps: int,
    *,
    model: str,
    common_vol: float,
    idio_vol: float,
    reversion: float,
    noise_vol: float,
) -> np.ndarray:
    """Price paths in logit space, shape (steps, n): a pair's common walk (or each market's own
    with ``model="independent"``), plus a mean-reverting (``pairs_edge``) or random-walk
    deviation, plus optional noise. Draws from ``rng`` in the same order as always."""
    n = len(pair)
    n_pairs = int(pair.max()) + 1 if n else 0
    base = rng.normal(0, 0.6, n_pairs)[pair] + rng.normal(0, 0.15, n)
    common = np.cumsum(rng.normal(0, common_vol, (steps, n_pairs)), axis=0)[:, pair]
    if model == "independent":
        common = np.cumsum(rng.normal(0, common_vol, (steps, n)), axis=0)
    eps = rng.normal(0, idio_vol, (steps, n))
    if model == "pairs_edge":
        dev = np.zeros((steps, n))
        for t in range(1, steps):
            dev[t] = (1 - reversion) * dev[t - 1] + eps[t]
    else:
        dev = np.cumsum(eps, axis=0)
    x = base + common + dev
    if noise_vol:
        x = x + rng.normal(0, noise_vol, x.shape)
    return x


def generate(
    path: Path | str,
    *,
    n_markets: int = 10,
    days: float = 7,
    interval: int = 300,
    seed: int = 0,
    start_ts: int = DEFAULT_START,
    model: str = "pairs_edge",
    tick: float = 0.01,
    half_spread: float = 0.005,
    fee_rate: float = 0.0,
    common_vol: float = 0.02,
    idio_vol: float = 0.02,
    reversion: float = 0.05,
    noise_vol: float = 0.0,
    with_depth: bool = True,
    both_tokens: bool = True,
    end_date_days: float | None = 60,
    events: bool = False,
    token_id_length: int = 77,
) -> SyntheticData:
    """Write the data set; returns what was generated. ``*_vol`` are per-step logit st. devs."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    conn = connect(path, create=True, synchronous="OFF")
    migrate(conn, now=start_ts)
    steps = int(days * 86_400 // interval)
    n = n_markets
    pair = np.arange(n) // 2
    x = _logit_paths(
        rng,
        pair,
        steps,
        model=model,
        common_vol=common_vol,
        idio_vol=idio_vol,
        reversion=reversion,
        noise_vol=noise_vol,
    )
    p = np.clip(_sigmoid(x), 0.05, 0.95)
    # ---- books on the tick grid
    bid = np.floor(np.round((p - half_spread) / tick, 6)) * tick
    ask = np.ceil(np.round((p + half_spread) / tick, 6)) * tick
    bid = np.clip(np.round(bid, 6), tick, 1 - 2 * tick)
    ask = np.clip(np.round(np.maximum(ask, bid + tick), 6), 2 * tick, 1 - tick)
    sizes = rng.integers(50, 500, (steps, n, 6)).astype(float)

    def tok(prefix: str, i: int) -> str:
        s = f"{prefix}{seed}{i:06d}"
        return s + "7" * max(0, token_id_length - len(s))

    market_ids = tuple(f"m{seed}-{i:04d}" for i in range(n))
    yes = tuple(tok("1", i) for i in range(n))
    no = tuple(tok("2", i) for i in range(n))
    end_date = None if end_date_days is None else int(start_ts + end_date_days * 86_400)
    with conn:
        conn.execute("BEGIN")
        for i, mid_ in enumerate(market_ids):
            conn.execute(
                "INSERT OR REPLACE INTO markets (id, condition_id, question, slug, event_id, event_title, token_ids, "
                "outcomes, end_date, tick_size, min_order_size, fees_enabled, fee_rate, fee_exponent, tracked, "
                "first_seen, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    mid_,
                    f"0xc{seed}{i:04d}",
                    f"Synthetic market {i} (pair {pair[i]})?",
                    f"synthetic-{seed}-{i}",
                    f"e{seed}-{pair[i]}" if events else None,
                    f"Pair {pair[i]}" if events else None,
                    json.dumps([yes[i], no[i]]),
                    json.dumps(["Yes", "No"]),
                    end_date,
                    tick,
                    5.0,
                    1 if fee_rate else 0,
                    fee_rate,
                    1.0,
                    1,
                    start_ts,
                    start_ts,
                ),
            )
            conn.execute("INSERT OR REPLACE INTO market_tokens VALUES (?,?,?,?)", (yes[i], mid_, "Yes", 0))
            conn.execute("INSERT OR REPLACE INTO market_tokens VALUES (?,?,?,?)", (no[i], mid_, "No", 1))
        conn.execute("COMMIT")
    keys = snapshot_store.TokenKeys(conn)
    keys.load()
    rows = 0
    block = max(1, 200_000 // (2 * n if both_tokens else n) if n else 1)  # steps per insert batch
    conn.execute("BEGIN")
    for t0 in range(0, steps, block):
        t1 = min(steps, t0 + block)
        batch = _book_rows(
            start_ts + np.arange(t0, t1, dtype=np.int64) * interval,
            bid[t0:t1],
            ask[t0:t1],
            sizes[t0:t1],
            yes,
            no if both_tokens else None,
            market_ids,
            tick,
            with_depth,
        )
        rows += snapshot_store.insert_rows(conn, batch, keys=keys, replace=True)
    conn.execute("COMMIT")
    conn.close()
    return SyntheticData(path, start_ts, start_ts + (steps - 1) * interval, market_ids, yes, no, rows)


def _book_rows(
    ts: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    sizes: np.ndarray,
    yes: tuple[str, ...],
    no: tuple[str, ...] | None,
    market_ids: tuple[str, ...],
    tick: float,
    with_depth: bool,
) -> list[tuple]:
    """Snapshot rows (:data:`polybot.snapshots.codec.COLUMNS` order) of a block of steps, as
    the collector writes them: mid = (bid + ask) / 2 and spread = ask - bid (its formulas),
    three levels a side on the tick, whole-share sizes, depth = their sum; the NO token's
    book is the mirror of the YES book."""
    steps, n = bid.shape
    out: list[tuple] = []
    books = [(yes, bid, ask, sizes[..., :3], sizes[..., 3:])]
    if no is not None:
        books.append((no, np.round(1 - ask, 6), np.round(1 - bid, 6), sizes[..., 3:], sizes[..., :3]))
    ts_col = np.repeat(ts, n).tolist()
    markets = list(market_ids) * steps
    for tokens, b, a, bsz, asz in books:
        bl, al = b.ravel().tolist(), a.ravel().tolist()
        mid = ((b + a) / 2).ravel().tolist()
        last = np.round((b + a) / 2, 6).ravel().tolist()
        spread = (a - b).ravel().tolist()
        bids: list = [None] * len(bl)
        asks: list = [None] * len(bl)
        bdep: list = [None] * len(bl)
        adep: list = [None] * len(bl)
        if with_depth:
            bp = [np.round(b - k * tick, 6).ravel().tolist() for k in range(3)]
            ap = [np.round(a + k * tick, 6).ravel().tolist() for k in range(3)]
            bs = [bsz[..., k].ravel().tolist() for k in range(3)]
            as_ = [asz[..., k].ravel().tolist() for k in range(3)]
            bids = list(zip(*(zip(bp[k], bs[k], strict=True) for k in range(3)), strict=True))
            asks = list(zip(*(zip(ap[k], as_[k], strict=True) for k in range(3)), strict=True))
            bdep = bsz.sum(axis=-1).ravel().tolist()
            adep = asz.sum(axis=-1).ravel().tolist()
        out.extend(
            zip(
                ts_col,
                list(tokens) * steps,
                markets,
                bl,
                al,
                mid,
                spread,
                last,
                bdep,
                adep,
                bids,
                asks,
                [1000.0] * len(bl),
                [1000.0] * len(bl),
                ["collected"] * len(bl),
                strict=True,
            )
        )
    return out


def resolve(path: Path | str, market_id: str, resolved_at: int, payouts: dict) -> None:
    """Mark a market resolved (payouts {token_id: 1|0|0.5})."""
    conn = connect(path)
    try:
        conn.execute(
            "UPDATE markets SET payouts = ?, resolved_at = ?, resolution_status = 'resolved', closed = 1 "
            "WHERE id = ?",
            (json.dumps(payouts), int(resolved_at), market_id),
        )
    finally:
        conn.close()


def insert_snapshot(
    conn: sqlite3.Connection,
    ts: int,
    token_id: str,
    market_id: str,
    bid: float | None,
    ask: float | None,
    *,
    bids: str | None = None,
    asks: str | None = None,
    mid: float | None = None,
    last: float | None = None,
    source: str = "collected",
) -> None:
    """One snapshot row (for hand-built unit scenarios); mid and spread by the collector's
    formulas unless ``mid`` is given."""
    spread = None
    if bid is not None and ask is not None:
        mid = (bid + ask) / 2 if mid is None else mid
        spread = ask - bid
    row = (ts, token_id, market_id, bid, ask, mid, spread, last, None, None, bids, asks, None, None, source)
    snapshot_store.insert_rows(conn, [row])
