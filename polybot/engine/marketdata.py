"""Market data for the engine: the tracked universe, fresh books, stored snapshots,
the strategy's feed, marks, and resolution lookups.

The universe is what the collector tracks (``markets.tracked = 1``) plus every market
the bot holds a position in. The bot acts on the **decision grid** (``floor(now,
collection.interval_minutes)``), like the backtester (:mod:`polybot.strategy.execution`):

- at the first loop of a new grid step the books of the universe are fetched once
  (``POST /books``) and recorded with the collector's own functions
  (:func:`polybot.collect.snapshot_rows.snapshot_row`, ``insert_snapshots``, INSERT OR IGNORE: one
  row per token per grid step, whoever writes it first); then the rows the DATABASE holds
  for that step (ours or the collector's) are read back and fed to the strategy's
  :class:`~polybot.strategy.feed.MarketFeed` — so paper/live decide on exactly the rows a
  backtest replays (``new_step`` is True for that loop, ``step_ts`` is the step's time);
- paper: the books of that step, as recorded (the feed's books, ``depth_levels`` deep), are
  what the paper exchange fills against and what positions are marked at, until the next
  step; between steps nothing is fetched (nothing a replay could see happens there);
- live: books are also fetched at every other loop, for the marks the daily-loss breaker
  watches and for the order book of an emergency close-out.

Times: the exchange clock (CLOB ``/time``), like the collector, so the bot's rows and
the collector's rows share one timeline (the simulator's clock may run faster).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from polybot import db
from polybot.collect import snapshot_rows
from polybot.exchange.models import FeeSchedule, Market, OrderBook
from polybot.money import to_micro
from polybot.strategy.base import MarketInfo
from polybot.strategy.feed import MarketFeed

if TYPE_CHECKING:
    from polybot.config import Config
    from polybot.exchange.client import PolymarketClient

log = logging.getLogger("polybot.engine")


def market_rows(conn: sqlite3.Connection, mode: str) -> dict[str, sqlite3.Row]:
    """Tracked markets and markets with an open position (id → markets row)."""
    rows = conn.execute(
        "SELECT * FROM markets WHERE tracked = 1 OR id IN "
        "(SELECT market_id FROM positions WHERE mode = ? AND status = 'open') ORDER BY id",
        (mode,),
    ).fetchall()
    return {r["id"]: r for r in rows}


def market_version(conn: sqlite3.Connection, market_id: str) -> str | None:
    """Gamma's version of a market ('v2': Protocol V2, signed for ExchangeV3), None = unknown."""
    r = conn.execute("SELECT version FROM markets WHERE id=?", (market_id,)).fetchone()
    return r[0] if r is not None and r[0] in ("v1", "v2") else None


def market_info(row: sqlite3.Row) -> MarketInfo:
    """The MarketInfo of a ``markets`` row. MarketInfo.from_row reads a sqlite3.Row through
    ``keys()`` and ``[]`` (its docstring says so) but is annotated Mapping, which typeshed's Row
    is not: the cast states that, no conversion happens."""
    return MarketInfo.from_row(cast(Mapping[str, Any], row))


def fee_schedule(row: sqlite3.Row | None) -> FeeSchedule:
    if row is None:
        return FeeSchedule()
    return FeeSchedule(
        rate=float(row["fee_rate"] or 0),
        exponent=float(row["fee_exponent"] or 1),
        enabled=bool(row["fees_enabled"]),
    )


class MarketData:
    def __init__(
        self,
        cfg: Config,
        conn: sqlite3.Connection,
        client: PolymarketClient,
        *,
        mode: str,
        history_seconds: int,
    ):
        self.cfg = cfg
        self.conn = conn
        self.client = client
        self.mode = mode
        self.step = int(cfg.collection.interval_minutes) * 60
        self.depth = int(cfg.collection.depth_levels)
        self.rows: dict[str, sqlite3.Row] = {}
        self.token_market: dict[str, str] = {}
        self.books: dict[str, OrderBook] = {}
        self.fetched: dict[str, OrderBook] = {}  # the books as the exchange last returned them
        self.history_seconds = int(history_seconds)
        self.feed: MarketFeed | None = None
        self.step_ts: int | None = None  # the decision step the feed holds (grid time)
        self.new_step = False  # True for the loop that recorded a new step

    # ------------------------------------------------------------------ universe
    def load_universe(self) -> None:
        self.rows = market_rows(self.conn, self.mode)
        self.token_market = {}
        for mid, r in self.rows.items():
            for t in json.loads(r["token_ids"] or "[]"):
                self.token_market[str(t)] = mid
        if self.feed is not None:
            for r in self.rows.values():
                self.feed.add_market(market_info(r))
                if r["resolved_at"] is not None:
                    self.feed.set_resolved(r["id"], int(r["resolved_at"]))

    def infos(self) -> dict[str, MarketInfo]:
        return {mid: market_info(r) for mid, r in self.rows.items()}

    def info(self, market_id: str) -> MarketInfo | None:
        r = self.rows.get(market_id)
        if r is None:
            r = self.conn.execute("SELECT * FROM markets WHERE id=?", (market_id,)).fetchone()
        return market_info(r) if r is not None else None

    def fee_for(self, token_id: str) -> FeeSchedule:
        mid = self.token_market.get(token_id)
        row = self.rows.get(mid) if mid else None
        if row is None:
            row = self.conn.execute(
                "SELECT m.* FROM markets m JOIN market_tokens t ON t.market_id = m.id WHERE t.token_id = ?",
                (token_id,),
            ).fetchone()
        return fee_schedule(row)

    def market_of(self, token_id: str) -> str | None:
        mid = self.token_market.get(token_id)
        if mid is None:
            r = self.conn.execute(
                "SELECT market_id FROM market_tokens WHERE token_id=?", (token_id,)
            ).fetchone()
            mid = r[0] if r else None
        return mid

    def tradable_tokens(self) -> list[str]:
        out = []
        for r in self.rows.values():
            if r["closed"] or r["payouts"] is not None:
                continue
            out += [str(t) for t in json.loads(r["token_ids"] or "[]")]
        return out

    # ------------------------------------------------------------------ feed
    def require_feed(self) -> MarketFeed:
        if self.feed is None:
            raise RuntimeError("MarketData.start_feed() must run before the feed is read")
        return self.feed

    def start_feed(self, now: int) -> int:
        """Build the feed and warm it with stored snapshots of the universe (oldest first)."""
        infos = list(self.infos().values())
        self.feed = MarketFeed(
            infos,
            history_seconds=self.history_seconds,
            interval_seconds=self.step,
            backfill_half_spread=self.cfg.backtest.backfill_half_spread,
            resolved_at={r["id"]: r["resolved_at"] for r in self.rows.values()},
        )
        tokens = list(self.token_market)
        if not tokens:
            return 0
        since = int(now) - self.history_seconds
        rows: list = []
        for i in range(0, len(tokens), 500):
            part = tokens[i : i + 500]
            q = ",".join("?" * len(part))
            rows += self.conn.execute(
                f"SELECT * FROM snapshot_values WHERE timestamp >= ? AND timestamp <= ? AND token_id IN ({q})",
                (since, int(now), *part),
            ).fetchall()
        rows.sort(key=lambda r: r["timestamp"])
        n = self.feed.add_rows(rows)
        return n

    # ------------------------------------------------------------------ books
    def refresh(self, now: int) -> dict[str, OrderBook]:
        """At a new grid step: fetch the books of the universe, record them, feed the rows the
        database holds for the step (see the module docstring). Between steps: live fetches
        fresh books (marks), paper does nothing. ExchangeUnavailable propagates (the
        API-error breaker counts it)."""
        grid = int(now) // self.step * self.step
        if self.feed is not None and self.feed.last_timestamp is not None:
            grid = max(grid, self.feed.last_timestamp)
        self.new_step = self.step_ts is None or grid > self.step_ts
        if not self.new_step and self.mode == "paper":
            return self.books
        tokens = list(self.token_market)
        books = self.client.get_books(tokens) if tokens else {}
        self.fetched = books
        if self.mode != "paper" or self.feed is None:
            self.books = books
        if not self.new_step:
            return books
        rows = []
        for t, b in books.items():
            mid = self.token_market.get(t)
            r = self.rows.get(mid) if mid else None
            if r is None:
                continue
            # snapshot_row reads only id, volume_24h and liquidity of its Market (the cast says
            # so); the engine has the markets row, not a Gamma Market.
            m = SimpleNamespace(id=mid, volume_24h=r["volume_24h"], liquidity=r["liquidity"])
            rows.append(snapshot_rows.snapshot_row(grid, cast(Market, m), b, self.depth))
        if rows:
            with db.atomic(self.conn):
                snapshot_rows.insert_snapshots(self.conn, rows)
        self.step_ts = grid
        if self.feed is not None:
            stored = self.stored_rows(grid, tokens)
            self.feed.add_rows(stored)
            if self.mode == "paper":
                self.books = {}
                for r in stored:
                    book = self.feed.book(str(r["token_id"]))
                    if book is not None:  # always: add_rows just gave each stored token its book
                        self.books[str(r["token_id"])] = book
        return books

    def stored_rows(self, ts: int, tokens: list[str]) -> list[sqlite3.Row]:
        """The rows the database holds for grid step ``ts`` (whoever recorded them)."""
        out: list = []
        for i in range(0, len(tokens), 500):
            part = tokens[i : i + 500]
            q = ",".join("?" * len(part))
            out += self.conn.execute(
                f"SELECT * FROM snapshot_values WHERE timestamp = ? AND token_id IN ({q}) ORDER BY token_id",
                (int(ts), *part),
            ).fetchall()
        return out

    def book(self, token_id: str) -> OrderBook | None:
        return self.books.get(token_id)

    def fresh_book(self, token_id: str) -> OrderBook:
        b = self.books.get(token_id)
        if b is None:
            b = self.client.get_book(token_id)
            self.books[token_id] = b
        return b

    def marks(self) -> dict[str, int]:
        """Best bid per token (micro-units) — what a position could be sold at now."""
        out = {}
        for t, b in self.books.items():
            if b.bids:
                out[t] = to_micro(b.bids[0].price)
        return out

    # ------------------------------------------------------------------ resolution
    def payouts(self, market_id: str, *, lookup: bool) -> dict[str, float] | None:
        """{token_id: payout 1/0/0.5} once resolved (markets table, else a fresh Gamma /
        CLOB lookup when ``lookup``), None while unresolved."""
        r = self.conn.execute("SELECT payouts, condition_id FROM markets WHERE id=?", (market_id,)).fetchone()
        if r is not None and r["payouts"]:
            return {str(k): float(v) for k, v in json.loads(r["payouts"]).items()}
        if not lookup:
            return None
        m: Market = self.client.get_market(market_id)
        payouts = m.payouts
        if payouts is None and m.closed and (m.condition_id or (r and r["condition_id"])):
            cm = self.client.get_clob_market(m.condition_id or r["condition_id"])
            if cm.payouts is not None:
                p = {t: cm.payouts[t] for t in m.token_ids if t in cm.payouts}
                payouts = p if len(p) == len(m.token_ids) else None
        if payouts is not None:
            with db.atomic(self.conn):
                self.conn.execute(
                    "UPDATE markets SET payouts=?, resolved_at=COALESCE(resolved_at, ?), closed=1, "
                    "resolution_status=COALESCE(?, resolution_status) WHERE id=? AND payouts IS NULL",
                    (
                        json.dumps(payouts, sort_keys=True),
                        self._now_hint(),
                        m.uma_resolution_status,
                        market_id,
                    ),
                )
        elif m.closed:
            with db.atomic(self.conn):
                self.conn.execute("UPDATE markets SET closed=1 WHERE id=?", (market_id,))
        return {str(k): float(v) for k, v in payouts.items()} if payouts is not None else None

    def _now_hint(self) -> int | None:
        return self.feed.last_timestamp if self.feed is not None else None

    def needs_lookup(self, market_id: str, token_id: str, now: int) -> bool:
        """Ask the exchange about a held market only when something suggests it ended."""
        r = (
            self.rows.get(market_id)
            or self.conn.execute("SELECT * FROM markets WHERE id=?", (market_id,)).fetchone()
        )
        if r is None:
            return True
        b = self.fetched.get(token_id)  # as returned (a recorded row may carry a synthetic book)
        no_book = b is None or (not b.bids and not b.asks)
        ended = r["end_date"] is not None and int(r["end_date"]) <= now
        return bool(no_book or ended or r["closed"])
