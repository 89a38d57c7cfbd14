"""Synthetic market data with the real schema, for tests, benchmarks and demos.

``generate(path, ...)`` creates (or extends) a SQLite database at ``path`` with
``markets``, ``market_tokens`` and ``snapshot_values`` rows: ``n_markets``
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
    mid = np.round((bid + ask) / 2, 6)
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
    rows = 0
    ins = (
        "INSERT OR REPLACE INTO snapshot_values (timestamp, token_id, market_id, best_bid, best_ask, mid, spread, "
        "last_trade_price, bid_depth, ask_depth, bids, asks, volume_24h, liquidity, source) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'collected')"
    )
    batch: list = []
    conn.execute("BEGIN")
    for t in range(steps):
        ts = start_ts + t * interval
        b, a, m, s = bid[t].tolist(), ask[t].tolist(), mid[t].tolist(), sizes[t].tolist()
        for i in range(n):
            bi, ai, si = b[i], a[i], s[i]
            bids: str | None
            asks: str | None
            if with_depth:
                bids = f"{bi:.2f}:{si[0]:g},{bi - tick:.2f}:{si[1]:g},{bi - 2 * tick:.2f}:{si[2]:g}"
                asks = f"{ai:.2f}:{si[3]:g},{ai + tick:.2f}:{si[4]:g},{ai + 2 * tick:.2f}:{si[5]:g}"
            else:
                bids = asks = None
            bd, ad = si[0] + si[1] + si[2], si[3] + si[4] + si[5]
            batch.append(
                (
                    ts,
                    yes[i],
                    market_ids[i],
                    bi,
                    ai,
                    m[i],
                    round(ai - bi, 6),
                    m[i],
                    bd,
                    ad,
                    bids,
                    asks,
                    1000.0,
                    1000.0,
                )
            )
            if both_tokens:
                nb, na = round(1 - ai, 6), round(1 - bi, 6)
                nbids: str | None
                nasks: str | None
                if with_depth:
                    nbids = f"{nb:.2f}:{si[3]:g},{nb - tick:.2f}:{si[4]:g},{nb - 2 * tick:.2f}:{si[5]:g}"
                    nasks = f"{na:.2f}:{si[0]:g},{na + tick:.2f}:{si[1]:g},{na + 2 * tick:.2f}:{si[2]:g}"
                else:
                    nbids = nasks = None
                batch.append(
                    (
                        ts,
                        no[i],
                        market_ids[i],
                        nb,
                        na,
                        round(1 - m[i], 6),
                        round(na - nb, 6),
                        round(1 - m[i], 6),
                        ad,
                        bd,
                        nbids,
                        nasks,
                        1000.0,
                        1000.0,
                    )
                )
        if len(batch) >= 200_000:
            conn.executemany(ins, batch)
            rows += len(batch)
            batch = []
    if batch:
        conn.executemany(ins, batch)
        rows += len(batch)
    conn.execute("COMMIT")
    conn.close()
    return SyntheticData(path, start_ts, start_ts + (steps - 1) * interval, market_ids, yes, no, rows)


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
    """One snapshot row (for hand-built unit scenarios)."""
    if mid is None and bid is not None and ask is not None:
        mid = round((bid + ask) / 2, 6)
    conn.execute(
        "INSERT INTO snapshot_values (timestamp, token_id, market_id, best_bid, best_ask, mid, spread, "
        "last_trade_price, bids, asks, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            ts,
            token_id,
            market_id,
            bid,
            ask,
            mid,
            None if bid is None or ask is None else round(ask - bid, 6),
            last,
            bids,
            asks,
            source,
        ),
    )
