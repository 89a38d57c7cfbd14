"""Event-driven replay of stored snapshots, in time order, with no look-ahead.

The loop, per snapshot timestamp t (rows sharing a timestamp form one step):

1. markets whose resolution time is ≤ t settle (positions redeemed at the payout,
   their pending orders cancelled — trading stops at resolution);
2. the rows at t go into the shared :class:`~polybot.strategy.feed.MarketFeed`;
3. **pending orders fill now**: an order decided at an earlier step fills against
   the token's FIRST snapshot after the decision (t+1), never against the book
   that triggered it — buys walk the recorded asks, sells the bids
   (:func:`polybot.exchange.fills.simulate_fill`, FAK by default: what is
   within the limit fills, the rest is cancelled), paying the market's taker
   fee, with tick and minimum-size rules. An order whose token has no new
   snapshot within ``max_order_wait_seconds`` is cancelled;
4. at the end of each grid bucket (``collection.interval_minutes``): equity is
   marked at the best bid, the stop-loss rule runs, the strategy decides on
   ``feed.view(t)`` (rows ≤ t only), and the SAME :class:`~polybot.risk.RiskManager`
   as live approves/resizes/rejects the intents, which become pending orders.

Pessimism: one-step latency on every order, taker fees on every fill, buys at
the ask / sells at the bid through the depth, exits limited to the bid minus the
strategy's slippage ticks, a risk cash check that reserves the worst-case fee,
and positions still open at the end are sold into the last book (taker fee
paid). Backfilled rows (no book) trade at price ± ``backtest.backfill_half_spread``.
The ramp-up plan applies from the first day of the replay (as it would live).
The correlation-groups report is NOT used (it may be computed on later data);
event and negRisk groups are.
"""
from __future__ import annotations

import math
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from polybot.errors import DataError
from polybot.exchange.fills import SELL, simulate_fill
from polybot.money import MICRO, round_size_down
from polybot.risk import AccountState, RiskManager
from polybot.strategy.base import ENTER, EXIT, Intent, MarketInfo, Strategy
from polybot.strategy.feed import MarketFeed

from .data import Resolution, SnapshotStore, load_markets, read_chunks
from .portfolio import Ledger

DAY = 86_400


class BacktestDataError(DataError):
    """Not enough stored data for the requested backtest (exit code 2)."""

    exit_code = 2


@dataclass
class Pending:
    intent: Intent
    decided_at: int
    group_key: str = ""


@dataclass
class BacktestResult:
    start_ts: int
    end_ts: int
    capital_micro: int
    strategy: str
    params: dict
    ledger: Ledger
    curve_ts: np.ndarray
    curve_equity: np.ndarray           # micro-units
    curve_exposure: np.ndarray         # cost basis held, micro-units
    markets: dict[str, MarketInfo]
    counts: dict = field(default_factory=dict)
    rejections: Counter = field(default_factory=Counter)
    unfilled: Counter = field(default_factory=Counter)


class Backtester:
    def __init__(self, conn: sqlite3.Connection, cfg: Any, strategy: Strategy, *, start_ts: int, end_ts: int,
                 capital_micro: int, progress: bool = False, order_type: Optional[str] = None,
                 max_order_wait_seconds: Optional[int] = None, chunk_seconds: int = 6 * 3600,
                 risk: Optional[RiskManager] = None, parallel_load: Optional[bool] = None,
                 record_decisions: bool = False):
        self.conn = conn
        self.cfg = cfg
        self.strategy = strategy
        self.start_ts, self.end_ts = int(start_ts), int(end_ts)
        self.capital_micro = int(capital_micro)
        self.progress = progress
        self.interval = int(cfg.collection.interval_minutes) * 60
        configured = cfg.trading.order_type
        self.order_type = order_type or (configured if configured in ("FAK", "FOK") else "FAK")
        self.max_wait = max_order_wait_seconds if max_order_wait_seconds is not None else 3 * self.interval
        self.chunk_seconds = max(self.interval, (chunk_seconds // self.interval) * self.interval)
        markets, self.resolutions = load_markets(conn)
        self.markets = {m.market_id: m for m in markets}
        self.risk = risk or RiskManager(cfg.risk_limits, self.capital_micro, first_live_day=self.start_ts,
                                        markets=markets)
        self.feed = MarketFeed(markets, history_seconds=strategy.history_seconds, interval_seconds=self.interval,
                               backfill_half_spread=cfg.backtest.backfill_half_spread,
                               resolved_at={k: r.resolved_at for k, r in self.resolutions.items()})
        self.store = SnapshotStore(conn, self.feed.tokens)
        self.feed.depth_loader = self.store.depth
        self.ledger = Ledger(self.capital_micro, strategy.name)
        self.record_decisions = record_decisions
        self.decisions: list[tuple[int, Intent, Any]] = []     # (t, intent, RiskDecision) when recorded
        # a reader process pays off from a few hundred thousand rows on
        est_rows = len(self.feed.tokens) * max(1, (self.end_ts - self.start_ts) // self.interval)
        self.parallel_load = est_rows > 500_000 if parallel_load is None else parallel_load

    # ------------------------------------------------------------------ run
    def run(self) -> BacktestResult:
        first, last = self.store.bounds(self.start_ts, self.end_ts)
        if first is None:
            raise BacktestDataError(
                f"No market snapshots between {_day(self.start_ts)} and {_day(self.end_ts)} in "
                f"{getattr(self.cfg, 'database_path', 'the database')}; collect data first "
                f"(python collect_market_data.py) or choose dates that have data.")
        L = self.ledger
        feed = self.feed
        self._pending: dict[str, Pending] = {}
        self._marks: dict[str, int] = {}
        self.rejections: Counter = Counter()
        self.unfilled: Counter = Counter()
        self.counts = Counter()
        res_queue = sorted(self.resolutions.values(), key=lambda r: (r.resolved_at, r.market_id))
        self._res_queue, self._res_pos = res_queue, 0
        while self._res_pos < len(res_queue) and res_queue[self._res_pos].resolved_at < self.start_ts:
            self._res_pos += 1       # resolved before the replay: nothing to settle
        cts: list[int] = []
        ceq: list[int] = []
        cex: list[int] = []
        self._day = self.start_ts // DAY
        self._day_start_equity = self.capital_micro
        self._day_low_equity: Optional[int] = None
        self._last_equity = self.capital_micro
        self._stop_exits: dict[str, int] = {}       # token → time its last stop-loss exit filled
        bar = _progress(self.progress, (self.end_ts - self.start_ts + DAY) // DAY)
        interval = self.interval
        chunk_start = (self.start_ts // interval) * interval
        done_days = 0
        try:
            for chunk in read_chunks(self.conn, self.feed.tokens, max(chunk_start, self.start_ts), self.end_ts,
                                     self.chunk_seconds, parallel=self.parallel_load):
                n = len(chunk)
                self.counts["rows"] += n
                no_book = np.isnan(chunk.bid) & np.isnan(chunk.ask)
                self.counts["backfill_rows"] += int((chunk.backfill | no_book).sum())
                ts = chunk.timestamp
                cuts = np.flatnonzero(ts[1:] != ts[:-1]) + 1
                starts = np.concatenate(([0], cuts))
                ends = np.concatenate((cuts, [n]))
                buckets = ts[starts] // interval
                last_of_bucket = np.append(buckets[1:] != buckets[:-1], True)
                for g in range(len(starts)):
                    s, e = int(starts[g]), int(ends[g])
                    t = int(ts[s])
                    self._settle_until(t)
                    feed.ingest(t, chunk.token[s:e], chunk.bid[s:e], chunk.ask[s:e], chunk.price[s:e],
                                chunk.backfill[s:e])
                    if self._pending:
                        self._fill_pending(t)
                    if last_of_bucket[g]:
                        eq, ex = self._step(t)
                        cts.append(t)
                        ceq.append(eq)
                        cex.append(ex)
                day_now = (int(ts[-1]) - self.start_ts) // DAY + 1
                if bar is not None and day_now > done_days:
                    bar.update(day_now - done_days)
                    done_days = day_now
            # the end: settle what resolved in range (a curve point at each), cancel
            # pending orders, sell the rest into the last books
            q = self._res_queue
            while self._res_pos < len(q) and q[self._res_pos].resolved_at <= self.end_ts:
                t_res = q[self._res_pos].resolved_at
                self._settle_until(t_res)
                if not cts or t_res >= cts[-1]:
                    cts.append(t_res)
                    ceq.append(L.equity_micro(self._marks))
                    cex.append(L.exposure_micro())
            for tok in list(self._pending):
                self.unfilled["cancelled_at_end"] += 1
            self._pending.clear()
            self._liquidate(self.end_ts)
            cts.append(self.end_ts)
            ceq.append(L.cash_micro)
            cex.append(0)
        finally:
            if bar is not None:
                bar.update(max(0, bar.total - done_days))
                bar.close()
            self.store.close()
        return BacktestResult(self.start_ts, self.end_ts, self.capital_micro, self.strategy.name,
                              dict(self.strategy.params), L, np.asarray(cts, dtype=np.int64),
                              np.asarray(ceq, dtype=np.int64), np.asarray(cex, dtype=np.int64),
                              self.markets, dict(self.counts), self.rejections, self.unfilled)

    # ------------------------------------------------------------------ pieces
    def _settle_until(self, t: int) -> None:
        q = self._res_queue
        while self._res_pos < len(q) and q[self._res_pos].resolved_at <= t:
            r: Resolution = q[self._res_pos]
            self._res_pos += 1
            for tok in [k for k, p in self._pending.items() if p.intent.market_id == r.market_id]:
                del self._pending[tok]
                self.unfilled["market_resolved"] += 1
            if any(h.market_id == r.market_id for h in self.ledger.positions.values()):
                self.ledger.settle(r.resolved_at, r.market_id, r.payouts)
                self.counts["settlements"] += 1

    def _fill_pending(self, t: int) -> None:
        feed = self.feed
        for tok in sorted(self._pending):
            p = self._pending[tok]
            i = feed.token_index[tok]
            if feed._ts[i] != t or t <= p.decided_at:
                if t - p.decided_at > self.max_wait:
                    del self._pending[tok]
                    self.unfilled["no_new_snapshot"] += 1
                continue
            del self._pending[tok]
            self._execute(p, t)

    def _execute(self, p: Pending, t: int) -> None:
        it = p.intent
        m = self.markets.get(it.market_id) or self.feed.markets.get(it.market_id)
        book = self.feed.book(it.token_id)
        if book is None or m is None:
            self.unfilled["no_book"] += 1
            return
        kw: dict[str, Any] = {}
        if it.action == EXIT:
            h = self.ledger.positions.get(it.token_id)
            if h is None:
                return
            kw["size_micro"] = min(it.size_micro or h.size_micro, h.size_micro)
        elif it.notional_micro is not None:
            # a BUY for $X: the shares $X buys walking the asks up to the limit, rounded
            # DOWN to 2 decimals, then bought by size — at most $X is spent and positions
            # stay in whole cents of shares (no unsellable dust)
            probe = simulate_fill(book, it.side, amount_micro=it.notional_micro,
                                  limit_price_micro=it.limit_price_micro, order_type="FAK", fee=m.fee,
                                  tick_size=m.tick_size, min_order_size=m.min_order_size)
            shares = round_size_down(probe.size_micro)
            if probe.rejected or shares <= 0:
                self.unfilled[probe.code or "nothing_filled"] += 1
                return
            # the fee comes on top of the $X; filled below the limit price, $X buys more shares
            # and pays more fee than the risk manager reserved at the limit. Like the SDK's
            # market-buy amount adjustment, buy only what the cash can pay, fee included.
            cash = self.ledger.cash_micro

            def cost(n: int) -> int:
                return -simulate_fill(book, it.side, size_micro=n, limit_price_micro=it.limit_price_micro,
                                      order_type="FAK", fee=m.fee, tick_size=m.tick_size,
                                      min_order_size=0).cash_delta_micro

            if -probe.cash_delta_micro > cash and cost(shares) > cash:
                shares = round_size_down(shares * cash // cost(shares))
                while shares > 0 and cost(shares) > cash:
                    shares -= 10_000
                if shares <= 0:
                    self.unfilled["insufficient_cash"] += 1
                    return
            kw["size_micro"] = shares
        else:
            kw["size_micro"] = it.size_micro
        r = simulate_fill(book, it.side, limit_price_micro=it.limit_price_micro, order_type=self.order_type,
                          fee=m.fee, tick_size=m.tick_size,
                          min_order_size=(0 if it.action == EXIT else m.min_order_size), **kw)
        if r.rejected or not r.size_micro:
            self.unfilled[r.code or "nothing_filled"] += 1
            return
        if it.action == ENTER and self.ledger.cash_micro + r.cash_delta_micro < 0:
            self.unfilled["insufficient_cash"] += 1
            return
        bf = bool(self.feed._bf[self.feed.token_index[it.token_id]])
        self.ledger.apply_fill(t, it.token_id, it.market_id, r, it.reason, p.group_key, bf)
        if it.action == EXIT and it.tag == "stop_loss":
            self._stop_exits[it.token_id] = t
        self.counts["fills"] += 1
        if bf:
            self.counts["fills_on_backfill"] += 1

    def _step(self, t: int) -> tuple[int, int]:
        L, feed = self.ledger, self.feed
        marks = self._marks
        for tok in L.positions:
            b = feed._bid[feed.token_index[tok]]
            if not math.isnan(b):
                marks[tok] = int(round(b * MICRO))
        equity = L.equity_micro(marks)
        day = t // DAY
        if day != self._day:
            self._day = day
            self._day_start_equity = self._last_equity
            self._day_low_equity = None
        day_low = self._day_low_equity            # the lowest equity of the earlier steps today
        self._day_low_equity = equity if day_low is None else min(day_low, equity)
        self._last_equity = equity
        self.counts["steps"] += 1
        # stop-loss first, then the strategy
        held_marks = {k: v for k, v in marks.items() if k in L.positions}
        stops = {hit.holding.token_id: hit.intent(self.strategy.name)
                 for hit in self.risk.stop_losses(L.positions.values(), held_marks)}
        intents = self.strategy.decide(feed.view(t), L.portfolio_view())
        merged: dict[str, Intent] = {}
        resolved_at = feed.resolved_at
        for it in intents:
            if it.token_id in stops or it.token_id in self._pending or it.token_id in merged:
                continue
            if resolved_at.get(it.market_id, t + 1) <= t:
                self.rejections["market_resolved"] += 1      # trading stops at resolution
                continue
            if it.action == EXIT and it.token_id not in L.positions:
                continue
            merged[it.token_id] = it
        for tok, it in stops.items():
            if tok not in self._pending:
                merged[tok] = it
        if merged:
            batch = list(merged.values())
            self.counts["intents"] += len(batch)
            # marks: the held positions' bids, plus the bid of every token an entry would buy
            # (the risk manager's entry_cost rule values an entry like the stop loss does)
            risk_marks, asks = dict(held_marks), {}
            for it in batch:
                i = feed.token_index.get(it.token_id)
                if it.action != ENTER or i is None:
                    continue
                b, a = feed._bid[i], feed._ask[i]
                if it.token_id not in risk_marks and not math.isnan(b):
                    risk_marks[it.token_id] = int(round(b * MICRO))
                if not math.isnan(a):
                    asks[it.token_id] = int(round(a * MICRO))
            account = AccountState(L.cash_micro, L.positions, risk_marks, self._day_start_equity,
                                   day_low_equity_micro=day_low, stop_exits=self._stop_exits, asks=asks)
            for it, d in zip(batch, self.risk.check_all(batch, account, self.markets, t)):
                if self.record_decisions:
                    self.decisions.append((t, it, d))
                if d.approved and d.intent is not None:
                    if d.resized:
                        self.counts["resized"] += 1
                    m = self.markets.get(d.intent.market_id)
                    self._pending[d.intent.token_id] = Pending(d.intent, t, self.risk.group_key(m) if m else "")
                    self.counts["approved"] += 1
                else:
                    self.rejections[d.rule] += 1
        return equity, L.exposure_micro()

    def _liquidate(self, t: int) -> None:
        L = self.ledger
        for tok in sorted(L.positions):
            h = L.positions[tok]
            m = self.markets.get(h.market_id) or self.feed.markets.get(h.market_id)
            book = self.feed.book(tok)
            if book is not None and m is not None:
                r = simulate_fill(book, SELL, size_micro=h.size_micro, order_type="FAK", fee=m.fee,
                                  tick_size=m.tick_size, min_order_size=0)
                if r.size_micro:
                    L.apply_fill(t, tok, h.market_id, r, "end of backtest: sold into the last book")
                    self.counts["fills"] += 1
            h = L.positions.get(tok)
            if h is not None:     # what the book could not absorb: valued at the last bid
                mark = self._marks.get(tok, 0)
                L.settle_token(t, tok, mark / MICRO, "end of backtest: marked at the last bid")


def _day(ts: int) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="day", file=sys.stderr, desc="backtest", leave=False,
                dynamic_ncols=True, mininterval=0.5)
