"""Building a warm MarketFeed from the database (for the trading engine's start-up).

The engine cannot wait ``strategy.history_seconds`` of live cycles before its
strategy has a history, so at start it replays the stored snapshots of that
window into the feed — through the same reader as the backtester — and then
keeps feeding the rows of each new cycle with ``feed.add_rows(rows)``. It lives in the engine,
not in :mod:`polybot.strategy`, because it reads through the backtester's reader
(:mod:`polybot.backtest.data`), which sits above the strategies::

    feed = warm_feed(conn, strategy, now, interval_seconds=cfg.collection.interval_minutes * 60,
                     backfill_half_spread=cfg.backtest.backfill_half_spread)
"""

from __future__ import annotations

import sqlite3

import numpy as np

from polybot.backtest.data import SnapshotStore, load_markets
from polybot.strategy.base import Strategy
from polybot.strategy.feed import MarketFeed


def warm_feed(
    conn: sqlite3.Connection,
    strategy: Strategy,
    now: int,
    *,
    interval_seconds: int = 300,
    backfill_half_spread: float = 0.01,
) -> MarketFeed:
    """A feed holding every market's metadata and the snapshots of the last
    ``strategy.history_seconds`` up to ``now`` (inclusive); depth on demand from ``conn``."""
    markets, resolutions = load_markets(conn)
    feed = MarketFeed(
        markets,
        history_seconds=strategy.history_seconds,
        interval_seconds=interval_seconds,
        backfill_half_spread=backfill_half_spread,
        resolved_at={k: r.resolved_at for k, r in resolutions.items()},
    )
    store = SnapshotStore(conn, feed.tokens)
    feed.depth_loader = store.depth
    start = int(now) - strategy.history_seconds
    start -= start % interval_seconds
    for ch in store.chunks(start, int(now), 6 * 3600):
        ts = ch.timestamp
        cuts = np.flatnonzero(ts[1:] != ts[:-1]) + 1
        for s, e in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [len(ts)])), strict=True):
            feed.ingest(int(ts[s]), ch.token[s:e], ch.bid[s:e], ch.ask[s:e], ch.price[s:e], ch.backfill[s:e])
    store.close()  # drops the TEMP lookup table; depth lookups do not need it
    return feed
