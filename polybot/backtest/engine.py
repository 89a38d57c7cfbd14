"""Event-driven replay of stored snapshots, in time order, with no look-ahead.

The replay takes the SAME decision path as paper trading (:mod:`polybot.strategy.execution`,
tests/engine/test_parity.py). Per snapshot timestamp t (rows sharing a timestamp form one step):

1. markets whose resolution time is ≤ t settle (positions redeemed at the payout,
   their pending and resting orders cancelled — trading stops at resolution);
2. the rows at t go into the shared :class:`~polybot.strategy.feed.MarketFeed`;
3. orders: resting GTC orders are checked against each token's new book (maker fill at
   their price, no fee; cancelled ``trading.stale_order_seconds`` after placement), then
   orders decided earlier fill when the token's book recorded at t is at or after
   ``decided + trading.fill_latency_seconds`` (default: the next snapshot, never the book
   that triggered them): the order live trading would send (limit price, shares =
   notional ÷ limit rounded down) filled like the paper exchange fills it
   (:func:`~polybot.strategy.execution.simulate_order`: recorded depth, the market's
   taker fee, tick and minimum size, cash and share checks). An order whose token has no
   new snapshot within ``max_order_wait_seconds`` is dropped;
4. at the end of each grid bucket (``collection.interval_minutes``): equity is marked
   at the recorded best bid; a daily-loss breach HALTS the replay like circuit breaker #2
   halts the bot (pending and resting orders cancelled, nothing traded — no entries,
   exits or stop losses); assumption: the operator restarts at the next 00:00 UTC, when
   the replay resumes. Otherwise stop losses and the strategy's intents on ``feed.view(t)``
   (rows ≤ t only) go through the SAME :class:`~polybot.risk.RiskManager` as paper/live
   and become pending orders.

Pessimism: the fill latency, taker fees on every marketable fill, buys at the ask / sells
at the bid through the depth, exits limited to the bid minus the strategy's slippage ticks,
a risk cash check that reserves the worst-case fee, and positions still open at the end are
sold into the last book (taker fee paid). Backfilled rows (no book) trade at price ±
``backtest.backfill_half_spread``.

Like paper trading: no ramp-up (the ramp-up plan limits the first LIVE days; pass
``first_live_day`` to apply it), and the correlation groups of
``reports/correlation_groups.json`` — but only when that report was computed on data
that ended before the replay starts (else it would be look-ahead; ``notes`` says so);
event and negRisk groups always apply.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polybot.config import Config
from polybot.domain import BUY, EXIT, SELL, Intent, MarketInfo
from polybot.errors import DataError
from polybot.exchange.fills import FILLED, resting_fill, simulate_fill
from polybot.money import MICRO, notional_micro
from polybot.risk import RiskManager, load_correlation_groups
from polybot.strategy.base import Strategy
from polybot.strategy.execution import (
    EXPIRE,
    FILL,
    STOP_LOSS,
    ExecutionModel,
    OrderSpec,
    PendingOrder,
    decide_step,
    due_state,
    feed_prices,
    next_day,
    order_for,
    simulate_order,
    step_account,
    step_prices,
)
from polybot.strategy.feed import MarketFeed
from polybot.timefmt import parse_utc_minute, utc_day

from .data import (
    Resolution,
    SnapshotStore,
    load_markets,
    load_metadata_history,
    prepare_backfill_books,
    read_chunks,
)
from .portfolio import Ledger

DAY = 86_400


class BacktestDataError(DataError):
    """Not enough stored data for the requested backtest (exit code 2)."""

    exit_code = 2


Pending = PendingOrder  # an approved intent waiting for its fill time


@dataclass
class Resting:
    """A GTC order's unfilled remainder resting on the book (the paper exchange's model)."""

    spec: OrderSpec
    intent: Intent
    remaining_micro: int
    placed_at: int
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
    curve_equity: np.ndarray  # micro-units
    curve_exposure: np.ndarray  # cost basis held, micro-units
    markets: dict[str, MarketInfo]
    counts: dict = field(default_factory=dict)
    rejections: Counter = field(default_factory=Counter)
    unfilled: Counter = field(default_factory=Counter)
    halts: list = field(default_factory=list)  # [(t, sentence)] daily-loss halts
    notes: list = field(default_factory=list)  # assumptions worth reporting


class Backtester:
    def __init__(
        self,
        conn: sqlite3.Connection,
        cfg: Config,
        strategy: Strategy,
        *,
        start_ts: int,
        end_ts: int,
        capital_micro: int,
        progress: bool = False,
        order_type: str | None = None,
        max_order_wait_seconds: int | None = None,
        chunk_seconds: int = 6 * 3600,
        risk: RiskManager | None = None,
        parallel_load: bool | None = None,
        record_decisions: bool = False,
        first_live_day: int | None = None,
        correlation_groups: Mapping[str, str] | None = None,
        fill_latency_seconds: int | None = None,
    ):
        self.conn = conn
        self.cfg = cfg
        self.strategy = strategy
        self.start_ts, self.end_ts = int(start_ts), int(end_ts)
        self.capital_micro = int(capital_micro)
        self.progress = progress
        self.interval = int(cfg.collection.interval_minutes) * 60
        model = ExecutionModel.from_config(cfg)
        over: dict[str, Any] = {}
        if order_type is not None:
            over["order_type"] = "GTC" if order_type == "GTD" else order_type
        if max_order_wait_seconds is not None:
            over["max_wait_seconds"] = int(max_order_wait_seconds)
        if fill_latency_seconds is not None:
            over["fill_latency_seconds"] = int(fill_latency_seconds)
        if over:
            from dataclasses import replace

            model = replace(model, **over)
        self.model = model
        self.order_type = model.order_type
        self.max_wait = model.max_wait_seconds
        self.chunk_seconds = max(self.interval, (chunk_seconds // self.interval) * self.interval)
        markets, self.resolutions = load_markets(conn)
        self.markets = {m.market_id: m for m in markets}
        self.notes: list[str] = []
        if correlation_groups is None:
            correlation_groups, note = replay_correlation_groups(cfg, self.start_ts)
            if note:
                self.notes.append(note)
        self.risk = risk or RiskManager(
            cfg.risk_limits,
            self.capital_micro,
            first_live_day=first_live_day,
            correlation_groups=correlation_groups,
            markets=markets,
        )
        self.feed = MarketFeed(
            markets,
            history_seconds=strategy.history_seconds,
            interval_seconds=self.interval,
            backfill_half_spread=cfg.backtest.backfill_half_spread,
            resolved_at={k: r.resolved_at for k, r in self.resolutions.items()},
        )
        # point in time: each step's tick, fees, minimum size and end date (data.py)
        self.feed.set_metadata_history(load_metadata_history(conn, list(self.feed.markets)))
        # backfilled rows are priced with their market's recorded spread and depth, estimated
        # at the first backfilled row (prepare_backfill): None until then
        self.backfill_basis: dict[str, int] | None = None
        self.store = SnapshotStore(conn, self.feed.tokens)
        self.feed.depth_loader = self.store.depth
        self.ledger = Ledger(self.capital_micro, strategy.name)
        self.record_decisions = record_decisions
        self.decisions: list[tuple[int, Intent, Any]] = []  # (t, intent, RiskDecision) when recorded
        self.orders: list[tuple[int, OrderSpec]] = []  # every order sent (the paper orders table)
        # a reader process pays off from a few hundred thousand rows on
        est_rows = len(self.feed.tokens) * max(1, (self.end_ts - self.start_ts) // self.interval)
        self.parallel_load = est_rows > 500_000 if parallel_load is None else parallel_load

    @property
    def fill_model(self) -> str:
        """One line for the report: how orders were filled."""
        lat = self.model.fill_latency_seconds
        when = (
            "on the book they were decided on"
            if lat == 0
            else f"on the first recorded book ≥ {lat} s after the decision (the next snapshot)"
        )
        return (
            f"{self.order_type} orders (limit, shares = notional ÷ limit) filled {when}, walking the recorded "
            f"depth with taker fees" + ("; remainders rest as maker orders" if self.model.resting else "")
        )

    def prepare_backfill(self, backfill: np.ndarray | None = None) -> None:
        """Estimate the books of backfilled rows once, before the first one is fed: when
        ``backfill`` (a chunk's flags) has one, or at once without it."""
        if self.backfill_basis is None and (backfill is None or backfill.any()):
            self.backfill_basis = prepare_backfill_books(
                self.feed, self.conn, self.cfg.backtest, self.start_ts, self.end_ts
            )

    # ------------------------------------------------------------------ run
    def run(self) -> BacktestResult:
        first, last = self.store.bounds(self.start_ts, self.end_ts)
        if first is None:
            raise BacktestDataError(
                f"No market snapshots between {utc_day(self.start_ts)} and {utc_day(self.end_ts)} in "
                f"{getattr(self.cfg, 'database_path', 'the database')}; collect data first "
                f"(python collect_market_data.py) or choose dates that have data."
            )
        L = self.ledger
        feed = self.feed
        self._pending: dict[str, PendingOrder] = {}
        self._resting: dict[str, list[Resting]] = {}
        self._marks: dict[str, int] = {}
        self.rejections: Counter[str] = Counter()
        self.unfilled: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.halts: list[tuple[int, str]] = []
        self._halted_until = -1
        res_queue = sorted(self.resolutions.values(), key=lambda r: (r.resolved_at, r.market_id))
        self._res_queue, self._res_pos = res_queue, 0
        while self._res_pos < len(res_queue) and res_queue[self._res_pos].resolved_at < self.start_ts:
            self._res_pos += 1  # resolved before the replay: nothing to settle
        cts: list[int] = []
        ceq: list[int] = []
        cex: list[int] = []
        self._day = self.start_ts // DAY
        self._day_start_equity = self.capital_micro
        self._day_low_equity: int | None = None
        self._last_equity = self.capital_micro
        self._stop_exits: dict[str, int] = {}  # token → time its last stop-loss exit filled
        bar = _progress(self.progress, (self.end_ts - self.start_ts + DAY) // DAY)
        interval = self.interval
        chunk_start = (self.start_ts // interval) * interval
        done_days = 0
        same_book = self.model.fill_latency_seconds == 0
        try:
            for chunk in read_chunks(
                self.conn,
                self.feed.tokens,
                max(chunk_start, self.start_ts),
                self.end_ts,
                self.chunk_seconds,
                parallel=self.parallel_load,
            ):
                n = len(chunk)
                self.counts["rows"] += n
                self.prepare_backfill(chunk.backfill)
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
                    feed.ingest(
                        t,
                        chunk.token[s:e],
                        chunk.bid[s:e],
                        chunk.ask[s:e],
                        chunk.price[s:e],
                        chunk.backfill[s:e],
                        micro_exact=True,  # the reader's prices are micro / 1e6
                    )
                    if self._pending or self._resting:
                        self._fill_pending(t)
                    if last_of_bucket[g]:
                        eq, ex = self._step(t)
                        if same_book and self._pending:
                            self._fill_pending(t)
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
            self.unfilled["cancelled_at_end"] += len(self._pending) + sum(
                len(v) for v in self._resting.values()
            )
            self._pending.clear()
            self._resting.clear()
            self._liquidate(self.end_ts)
            cts.append(self.end_ts)
            ceq.append(L.cash_micro)
            cex.append(0)
        finally:
            if bar is not None:
                bar.update(max(0, bar.total - done_days))
                bar.close()
            self.store.close()
        return BacktestResult(
            self.start_ts,
            self.end_ts,
            self.capital_micro,
            self.strategy.name,
            dict(self.strategy.params),
            L,
            np.asarray(cts, dtype=np.int64),
            np.asarray(ceq, dtype=np.int64),
            np.asarray(cex, dtype=np.int64),
            self.markets,
            dict(self.counts),
            self.rejections,
            self.unfilled,
            list(self.halts),
            list(self.notes),
        )

    # ------------------------------------------------------------------ pieces
    def _settle_until(self, t: int) -> None:
        q = self._res_queue
        while self._res_pos < len(q) and q[self._res_pos].resolved_at <= t:
            r: Resolution = q[self._res_pos]
            self._res_pos += 1
            for tok in [k for k, p in self._pending.items() if p.intent.market_id == r.market_id]:
                del self._pending[tok]
                self.unfilled["market_resolved"] += 1
            for tok in [k for k, v in self._resting.items() if v and v[0].spec.market_id == r.market_id]:
                self.unfilled["market_resolved"] += len(self._resting.pop(tok))
            if any(h.market_id == r.market_id for h in self.ledger.positions.values()):
                self.ledger.settle(r.resolved_at, r.market_id, r.payouts)
                self.counts["settlements"] += 1

    def _market(self, market_id: str) -> MarketInfo | None:
        """The market's metadata as it was at the current step (point in time)."""
        return self.feed.market(market_id) or self.markets.get(market_id)

    def _prices(self, token_id: str) -> tuple[int | None, int | None]:
        """(best bid, best ask) of the token's latest recorded row, micro-units."""
        return feed_prices(self.feed, token_id)

    def _fill_pending(self, t: int) -> None:
        feed = self.feed
        if self._resting:
            self._poll_resting(t)
        for tok in sorted(self._pending):
            p = self._pending[tok]
            i = feed.token_index[tok]
            state = due_state(p, int(feed._ts[i]), t, self.model)
            if state == FILL:
                del self._pending[tok]
                self._execute(p, t)
            elif state == EXPIRE:
                del self._pending[tok]
                self.unfilled["no_new_snapshot"] += 1

    def _poll_resting(self, t: int) -> None:
        """The paper exchange's poll, then its stale-order cancel: resting orders fill as maker
        (their price, no fee) against each NEW book; cancelled once stale."""
        feed = self.feed
        for tok in sorted(self._resting):
            orders = self._resting[tok]
            i = feed.token_index[tok]
            if int(feed._ts[i]) == t:
                book = feed.book(tok)
                for o in list(orders):
                    if t <= o.placed_at or book is None:
                        continue
                    r = resting_fill(
                        book,
                        o.spec.side,
                        price_micro=o.spec.price_micro,
                        remaining_size_micro=o.remaining_micro,
                    )
                    if not r.fills:
                        continue
                    if o.spec.side == SELL:
                        held = self.ledger.positions.get(tok)
                        if held is None or held.size_micro < r.size_micro:
                            continue
                    self._apply(o.intent, r, t, o.group_key)
                    o.remaining_micro = r.remaining_size_micro
                    if r.status == FILLED:
                        orders.remove(o)
            for o in list(orders):
                if t - o.placed_at >= self.model.stale_order_seconds:
                    orders.remove(o)
                    self.unfilled["stale_cancelled"] += 1
            if not orders:
                del self._resting[tok]

    def _reserved_cash(self) -> int:
        return sum(
            notional_micro(o.spec.price_micro, o.remaining_micro)
            for v in self._resting.values()
            for o in v
            if o.spec.side == BUY
        )

    def _execute(self, p: PendingOrder, t: int) -> None:
        it = p.intent
        m = self._market(it.market_id)
        book = self.feed.book(it.token_id)
        if book is None or m is None:
            self.unfilled["no_book"] += 1
            return
        held = self.ledger.positions.get(it.token_id)
        if it.action == EXIT and held is None:
            return
        ask = self._prices(it.token_id)[1]
        spec = order_for(it, m, None if ask is None else ask / MICRO, self.order_type)
        if spec is None:
            self.unfilled["no_book"] += 1
            return
        self.orders.append((t, spec))
        resting_sells = sum(
            o.remaining_micro for o in self._resting.get(it.token_id, ()) if o.spec.side == SELL
        )
        r, code = simulate_order(
            spec,
            book,
            m.fee,
            cash_available_micro=self.ledger.cash_micro - self._reserved_cash(),
            shares_available_micro=(held.size_micro if held else 0) - resting_sells,
        )
        if r is None:
            assert code is not None  # simulate_order names the reason of every order it does not fill
            self.unfilled[code] += 1
            return
        if r.size_micro:
            self._apply(it, r, t, p.group_key)
        if self.model.resting and r.remaining_size_micro:
            self._resting.setdefault(it.token_id, []).append(
                Resting(spec, it, r.remaining_size_micro, t, p.group_key)
            )
            self.counts["resting"] += 1
        elif not r.size_micro:
            self.unfilled["nothing_filled"] += 1

    def _apply(self, it: Intent, r: Any, t: int, group_key: str) -> None:
        bf = bool(self.feed._bf[self.feed.token_index[it.token_id]])
        self.ledger.apply_fill(t, it.token_id, it.market_id, r, it.reason, group_key, bf)
        if it.action == EXIT and it.tag == STOP_LOSS:
            self._stop_exits[it.token_id] = t
        self.counts["fills"] += 1
        if bf:
            self.counts["fills_on_backfill"] += 1

    def _halt(self, t: int, detail: str) -> None:
        """Circuit breaker #2 as the bot has it: cancel every order, trade nothing until the
        operator restarts — assumed at the next 00:00 UTC (a restart earlier the same day
        could only exit, as the latched daily limit still blocks entries)."""
        self._halted_until = next_day(t)
        n = len(self._pending) + sum(len(v) for v in self._resting.values())
        self.unfilled["halted"] += n
        self._pending.clear()
        self._resting.clear()
        self.halts.append((t, detail))
        self.counts["halts"] += 1

    def _step(self, t: int) -> tuple[int, int]:
        L, feed = self.ledger, self.feed
        prices = step_prices(feed)
        marks = {}
        for tok in L.positions:
            b = prices(tok)[0]
            if b is not None:
                marks[tok] = b
        self._marks.update(marks)
        equity = L.equity_micro(marks)
        day = t // DAY
        if day != self._day:
            self._day = day
            self._day_start_equity = self._last_equity
            self._day_low_equity = None
        day_low = self._day_low_equity  # the lowest equity of the earlier steps today
        self._day_low_equity = equity if day_low is None else min(day_low, equity)
        self._last_equity = equity
        self.counts["steps"] += 1
        if t < self._halted_until:
            self.counts["halted_steps"] += 1
            return equity, L.exposure_micro()
        account = step_account(
            self.risk,
            cash_micro=L.cash_micro,
            positions=L.positions,
            prices=prices,
            day_start_equity_micro=self._day_start_equity,
            day_low_equity_micro=day_low,
        )
        breach = self.risk.daily_loss_breached(account)
        if breach is not None:
            self._halt(t, breach.detail)
            return equity, L.exposure_micro()
        resolved_at = feed.resolved_at
        sd = decide_step(
            self.strategy,
            self.risk,
            feed.view(t),
            now=t,
            cash_micro=L.cash_micro,
            positions=L.positions,
            prices=prices,
            markets=self._market,
            day_start_equity_micro=self._day_start_equity,
            day_low_equity_micro=day_low,
            stop_exits=self._stop_exits,
            busy_tokens=list(self._pending) + list(self._resting),
            tradable=lambda it: resolved_at.get(it.market_id, t + 1) > t,
        )
        if sd.skipped.get("market_resolved"):
            self.rejections["market_resolved"] += sd.skipped["market_resolved"]
        if sd.items:
            self.counts["intents"] += len(sd.items)
        for it, d in sd.items:
            if self.record_decisions:
                self.decisions.append((t, it, d))
            if d.approved and d.intent is not None:
                if d.resized:
                    self.counts["resized"] += 1
                m = self.markets.get(d.intent.market_id)
                self._pending[d.intent.token_id] = PendingOrder(
                    d.intent, t, self.risk.group_key(m) if m else ""
                )
                self.counts["approved"] += 1
            else:
                self.rejections[d.rule] += 1
        return equity, L.exposure_micro()

    def _liquidate(self, t: int) -> None:
        L = self.ledger
        for tok in sorted(L.positions):
            h = L.positions[tok]
            m = self._market(h.market_id)
            book = self.feed.book(tok)
            if book is not None and m is not None:
                r = simulate_fill(
                    book,
                    SELL,
                    size_micro=h.size_micro,
                    order_type="FAK",
                    fee=m.fee,
                    tick_size=m.tick_size,
                    min_order_size=0,
                )
                if r.size_micro:
                    L.apply_fill(t, tok, h.market_id, r, "end of backtest: sold into the last book")
                    self.counts["fills"] += 1
            if L.positions.get(tok) is not None:  # what the book could not absorb: valued at the last bid
                mark = self._marks.get(tok, 0)
                L.settle_token(t, tok, mark / MICRO, "end of backtest: marked at the last bid")


def replay_correlation_groups(cfg: Config, start_ts: int) -> tuple[dict[str, str], str | None]:
    """The correlation groups paper trading uses (``reports/correlation_groups.json``), if the
    report's data ended at or before ``start_ts``; else none (they would be look-ahead) and a
    sentence saying so."""
    path = Path(getattr(cfg, "report_dir", "reports")) / "correlation_groups.json"
    if not path.exists():
        return {}, None
    try:
        end_text = str(json.loads(path.read_text(encoding="utf-8")).get("end") or "")
        end = parse_utc_minute(end_text)
    except (OSError, ValueError, TypeError, AttributeError):
        return {}, f"{path} has no readable 'end' time; its correlation groups are not used in the replay"
    if end > start_ts:
        return {}, (
            f"{path} was computed on data up to {utc_day(end)}, after the replay starts; its correlation "
            f"groups are not used (look-ahead), while paper trading uses them"
        )
    return load_correlation_groups(path), None


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="day",
        file=sys.stderr,
        desc="backtest",
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
    )
