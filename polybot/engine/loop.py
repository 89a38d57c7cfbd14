"""The trading loop: one :class:`Engine` per process, paper or live.

Each iteration (every ``trading.loop_interval_seconds``):

1. ``EMERGENCY_STOP`` file? → STOP (breaker #5);
2. heartbeat: ``bot_state`` heartbeat/pid/mode/started_at and the PID file;
3. ``PRAGMA quick_check`` every ``trading.quick_check_interval_minutes`` (breaker #4);
4. the exchange clock, then — at a new step of the decision grid
   (``collection.interval_minutes``) — the books of the universe, recorded as snapshots;
   the rows the database holds for the step are what the strategy sees (live also
   fetches books between steps, for its marks); transient failures count towards breaker #1;
5. orders: resolve UNKNOWN/PENDING_SUBMIT, refresh LIVE ones (paper: fill resting
   orders against a new step's books), live: pick up fills the exchange has that the
   database lacks;
6. settle resolved markets (1/0, 0.5/0.5) from the markets table or a fresh lookup;
7. at a new step, the decision step shared with the backtester
   (:mod:`polybot.strategy.execution`): paper orders whose fill time has come
   (``trading.fill_latency_seconds``) are placed; mark to market (recorded best bid);
   breaker #2 (daily loss) and #3 (position anomaly); stop losses and strategy intents →
   the shared risk manager → orders (paper: queued until their fill time; live: sent).
   Between steps, live runs breakers #2/#3 and stop losses on fresh books. Before that, every
   iteration: the operator's pause (no new entries) and close requests from Telegram
   (:mod:`polybot.engine.controls`);
8. a ``performance`` row (equity, cash, exposure, realised/unrealised/daily P&L).

Any database error during an iteration trips breaker #4.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from polybot import db
from polybot.engine import breakers, controls, ledger, state, stop
from polybot.engine.breakers import BreakerTripped
from polybot.engine.marketdata import MarketData, market_version
from polybot.engine.orders import OPEN, Executor
from polybot.errors import DatabaseError, DataError, ExchangeError
from polybot.exchange.base import Exchange, OrderRequest
from polybot.money import MICRO, fmt_usd, to_micro
from polybot.risk import AccountState, RiskManager
from polybot.strategy.base import Holding, Intent
from polybot.strategy.execution import (
    EXPIRE,
    FILL,
    ExecutionModel,
    PendingOrder,
    book_time,
    decide_step,
    due_state,
    feed_prices,
    marks_of,
    order_for,
)

if TYPE_CHECKING:
    from polybot.alerts import Alerter
    from polybot.config import Config
    from polybot.engine.orders import PlaceOutcome
    from polybot.exchange.client import PolymarketClient
    from polybot.exchange.paper import PaperExchange
    from polybot.risk import RiskDecision
    from polybot.strategy.base import Strategy

# (intent, the risk manager's decision, the order placed or None when none was)
Executed = tuple[Intent, "RiskDecision", "PlaceOutcome | None"]

log = logging.getLogger("polybot.engine")

HEARTBEAT_SECONDS = 5.0  # Polymarket cancels every open order ~10 s after the last one


class Engine:
    def __init__(
        self,
        cfg: Config,
        conn: sqlite3.Connection,
        *,
        mode: str,
        client: PolymarketClient,
        strategy: Strategy,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        alerter: Alerter | None = None,
    ):
        self.cfg = cfg
        self.conn = conn
        self.mode = mode
        self.paper = mode == "paper"
        self.client = client
        self.strategy = strategy
        self.wall = wall
        self.sleep = sleep
        if alerter is None:
            from polybot.alerts import Alerter

            alerter = Alerter(cfg, conn)
        self.alerter = alerter
        self.capital_micro = int(round(cfg.capital * MICRO))
        self.api_errors = breakers.ApiErrorCounter(cfg.trading.max_consecutive_api_errors)
        self.md = MarketData(cfg, conn, client, mode=mode, history_seconds=strategy.history_seconds)
        self.now_ts = 0  # the exchange clock, refreshed each iteration
        self.exchange: Exchange | None = None  # built by setup() unless given before it
        self.executor: Executor | None = None
        self.risk: RiskManager | None = None
        self.pid = os.getpid()
        self.started_at = int(wall())
        self.stop_requested = False
        self.iterations = 0
        # A full or read-only logs/ filesystem: the bot must not trade on without a record
        # (issue 15 #5); the logging handler reports it once, the next iteration halts.
        from polybot.logs import log_file_failure, on_log_failure

        self.log_failure: str | None = log_file_failure()
        on_log_failure(lambda sentence: setattr(self, "log_failure", sentence))
        self._last_quick_check = time.monotonic()
        self._last_fill_sync: int | None = None
        self._loss_acknowledged_logged = False
        self._mismatch_loops: dict[str, int] = {}  # live: consecutive loops of a position mismatch
        self.close_external = False  # --close-external: the close-out sells those too
        self._empty_warned = False
        self.resolved_marks: dict[str, int] = {}  # live: resolved, not yet redeemed → payout
        self._hb_thread: threading.Thread | None = None
        self._hb_stop = threading.Event()
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.model = ExecutionModel.from_config(cfg)
        self.pending: dict[str, PendingOrder] = {}  # paper: approved orders waiting for their fill time

    # ------------------------------------------------------------------ clock
    def clock(self) -> float:
        """The exchange clock; paper: the time of the decision step whose recorded books its
        orders fill against (so fills, positions and the replay share one timeline)."""
        if self.paper and self.md.step_ts is not None:
            return float(self.md.step_ts)
        return float(self.now_ts)

    def decision_time(self) -> int:
        """The decision step's time (grid), what the strategy's view and the risk rules use."""
        if self.md.step_ts is not None:
            return int(self.md.step_ts)
        return max(self.now_ts, self.md.feed.last_timestamp or 0) if self.md.feed is not None else self.now_ts

    def prices(self, token_id: str) -> tuple[int | None, int | None]:
        """(best bid, best ask) recorded for the token at the latest step (micro-units)."""
        return feed_prices(self.md.feed, token_id) if self.md.feed is not None else (None, None)

    def sync_clock(self) -> None:
        t = int(self.client.get_server_time())
        self.now_ts = max(self.now_ts, t)

    # ------------------------------------------------------------------ built by setup()
    def require_exchange(self) -> Exchange:
        if self.exchange is None:
            raise RuntimeError("Engine.setup() must run before the engine uses the exchange")
        return self.exchange

    def require_paper_exchange(self) -> PaperExchange:
        from polybot.exchange.paper import PaperExchange

        exchange = self.require_exchange()
        if not isinstance(exchange, PaperExchange):
            raise RuntimeError(f"a paper engine needs the paper exchange, not {type(exchange).__name__}")
        return exchange

    def require_executor(self) -> Executor:
        if self.executor is None:
            raise RuntimeError("Engine.setup() must run before the engine places orders")
        return self.executor

    def require_risk(self) -> RiskManager:
        if self.risk is None:
            raise RuntimeError("Engine.setup() must run before the engine checks risk")
        return self.risk

    # ------------------------------------------------------------------ setup
    def build_exchange(self) -> Exchange:
        """Paper: rebuilt from the recorded trades. Live: the official SDK."""
        if self.paper:
            from polybot.exchange.paper import PaperExchange

            open_orders = self.conn.execute(
                "SELECT * FROM orders WHERE mode='paper' AND status IN ('LIVE','PARTIALLY_FILLED')"
            ).fetchall()
            from polybot.exchange.base import OrderStatus

            statuses = [
                OrderStatus(
                    order_id=r["client_order_id"],
                    status="live",
                    token_id=r["token_id"],
                    side=r["side"],
                    price_micro=r["price_micro"],
                    original_size_micro=r["size_micro"],
                    size_matched_micro=r["filled_micro"],
                    order_type=r["order_type"],
                    created_ts=r["created_at"],
                )
                for r in open_orders
            ]
            ids = [r[0] for r in self.conn.execute("SELECT client_order_id FROM orders WHERE mode='paper'")]
            return PaperExchange.from_records(
                self.md.fresh_book,
                fees_by_token=self.md.fee_for,
                clock=self.clock,
                initial_cash_micro=self.capital_micro,
                fills=ledger.fills_of_mode(self.conn, "paper"),
                open_orders=statuses,
                settlements=ledger.settlements_of_mode(self.conn, "paper"),
                known_order_ids=ids,
            )
        from polybot.exchange.live import LiveExchange

        return LiveExchange.from_config(
            self.cfg, reader=self.client, fees_by_token=self.md.fee_for, clock=self.clock
        )

    def setup(self) -> None:
        """Universe, feed, exchange, risk manager, executor (no trading yet)."""
        if self.paper:  # live cash is the exchange's: only paper capital is the config's
            delta = ledger.record_capital_change(self.conn, self.mode, self.capital_micro, self.now_ts)
            if delta:
                log.warning(
                    "capital changed to %s: recorded as a %s of %s, not as profit or loss",
                    fmt_usd(self.capital_micro),
                    "deposit" if delta > 0 else "withdrawal",
                    fmt_usd(abs(delta)),
                )
        self.md.load_universe()
        self.md.start_feed(self.now_ts)
        if self.exchange is None:
            self.exchange = self.build_exchange()
        first_live = db.get_state(self.conn, "first_live_day")
        if not self.paper and first_live is None:
            with db.atomic(self.conn):
                db.set_state(self.conn, "first_live_day", str(self.now_ts))
            first_live = str(self.now_ts)
        self.risk = RiskManager.from_config(
            self.cfg,
            first_live_day=None if self.paper or first_live is None else int(first_live),
            markets=self.md.infos().values(),
        )
        self.executor = Executor(
            self.conn,
            self.exchange,
            mode=self.mode,
            clock=self.clock,
            api_errors=self.api_errors,
            before_submit=lambda: breakers.check_emergency_stop(self.cfg),
            stop_loss_percent=self.cfg.risk_limits.stop_loss_percent,
            grace_seconds=max(5.0, 2 * self.cfg.trading.loop_interval_seconds),
            stale_seconds=self.cfg.trading.stale_order_seconds,
            alert=lambda key, message: self.alerter.warning(key, message),
        )

    # ------------------------------------------------------------------ heartbeat
    def heartbeat(self) -> None:
        now = int(self.wall())
        state.write_heartbeat(self.conn, mode=self.mode, pid=self.pid, started_at=self.started_at, now=now)
        state.write_pid_file(state.pid_path(self.cfg), self.pid)

    def start_exchange_heartbeat(self) -> None:
        """Live: Polymarket's dead-man switch (open orders are cancelled if the bot dies)."""
        if self.paper or not self.cfg.trading.use_exchange_heartbeat or self._hb_thread is not None:
            return

        exchange = self.require_exchange()

        def beat() -> None:
            while not self._hb_stop.wait(self.heartbeat_seconds):
                try:
                    exchange.heartbeat()
                except Exception as exc:  # noqa: BLE001 — logged; the loop's own calls count errors
                    log.warning("exchange heartbeat failed: %s", exc)

        try:
            exchange.heartbeat()
        except ExchangeError as exc:
            log.warning("exchange heartbeat failed: %s", exc)
        self._hb_thread = threading.Thread(target=beat, name="exchange-heartbeat", daemon=True)
        self._hb_thread.start()

    def stop_exchange_heartbeat(self) -> None:
        self._hb_stop.set()
        if self._hb_thread is not None:
            self._hb_thread.join(timeout=self.heartbeat_seconds + 1)
            self._hb_thread = None

    # ------------------------------------------------------------------ portfolio
    def cash_micro(self) -> int:
        if self.paper:
            return ledger.paper_cash_micro(self.conn, "paper", self.capital_micro)
        from polybot.engine.external import cash_adjustment_micro  # trades by hand are not the bot's

        return self.require_exchange().balance_micro() + cash_adjustment_micro(self.conn)

    def holdings(self) -> dict[str, Holding]:
        return {
            p.token_id: Holding(
                token_id=p.token_id,
                market_id=p.market_id,
                size_micro=p.size_micro,
                cost_micro=p.cost_micro,
                opened_at=p.opened_at,
                strategy=p.strategy or "",
                group_key=p.group_key or "",
            )
            for p in ledger.open_positions(self.conn, self.mode)
            if p.size_micro > 0
        }

    def account(self, cash: int | None = None) -> AccountState:
        """Paper: marked at the recorded books of the decision step (what the replay marks at);
        live: at the freshest books."""
        cash = self.cash_micro() if cash is None else cash
        base = ledger.daily_baseline_micro(
            self.conn, self.mode, self.now_ts, capital_micro=self.capital_micro, paper=self.paper
        )
        positions = self.holdings()
        marks = marks_of(positions, self.prices) if self.paper else self.md.marks()
        marks.update(self.resolved_marks)
        asks = {t: to_micro(b.asks[0].price) for t, b in self.md.books.items() if b.asks}
        return AccountState(
            cash_micro=cash,
            positions=positions,
            marks=marks,
            day_start_equity_micro=base,
            day_low_equity_micro=self.day_low_equity(),
            stop_exits=self.recent_stop_exits(),
            asks=asks,
        )

    def day_low_equity(self) -> int | None:
        """The lowest equity recorded today (UTC): the daily loss limit stays latched on it."""
        return ledger.day_low_equity_micro(self.conn, self.mode, self.now_ts)

    def recent_stop_exits(self) -> dict[str, int]:
        """token → time of its last stop-loss sell within the risk manager's cooldown."""
        hours = self.cfg.risk_limits.stop_loss_cooldown_hours
        if hours <= 0:
            return {}
        since = self.now_ts - int(round(hours * 3600))
        return {
            str(t): int(ts)
            for t, ts in self.conn.execute(
                "SELECT token_id, MAX(timestamp) FROM trades WHERE mode=? AND kind='fill' AND side='SELL' "
                "AND timestamp >= ? AND (strategy='stop_loss' OR reason LIKE 'stop_loss:%') GROUP BY token_id",
                (self.mode, since),
            )
        }

    # ------------------------------------------------------------------ steps
    def periodic_quick_check(self) -> None:
        interval = self.cfg.trading.quick_check_interval_minutes * 60
        if time.monotonic() - self._last_quick_check >= interval:
            # On the bot's own connection: opening a second one in this process (db.connect
            # reads the file header with open()/close()) would drop SQLite's POSIX locks.
            breakers.check_database(self.conn)
            self._last_quick_check = time.monotonic()

    def refresh(self) -> bool:
        """Exchange clock + books. False when the exchange failed (counted)."""
        try:
            self.sync_clock()
            self.md.load_universe()
            self.md.refresh(self.now_ts)
        except ExchangeError as exc:
            self.api_errors.failure(exc, "reading the order books")
            return False
        except DataError as exc:  # an unreadable answer: counted like a timeout
            self.api_errors.failure(exc, "reading the order books", transient=True)
            return False
        self.api_errors.success()
        if not self.md.token_market and not self._empty_warned:
            log.warning(
                "No tracked markets in the database: nothing to trade; run python collect_market_data.py "
                "--initial (and keep it scheduled)"
            )
            self._empty_warned = True
        if self.risk is not None:
            self.risk.register_markets(self.md.infos().values())
        return True

    def sync_orders(self) -> None:
        ex = self.require_executor()
        for line in ex.resolve_inflight():
            log.info("reconcile: %s", line)
        if self.paper and self.md.new_step:  # resting orders meet each recorded book once
            new = self.require_paper_exchange().poll(self.md.books)
            if new:
                ex.record_external_fills(new)
        for line in ex.sync_open():
            log.info("orders: %s", line)
        if not self.paper:  # fills and trade statuses (polybot/engine/reconcile.py)
            from polybot.engine.reconcile import sync_trades

            sync_trades(self)

    def settle_resolved(self) -> None:
        """Record the payout of resolved markets. Paper: at once (the paper exchange credits
        it). Live: once the exchange no longer lists the position (redeemed), so the payout is
        in the balance; until then the position is valued at its payout and never sold."""
        xpos: dict[str, int] | None = None
        for pos in ledger.open_positions(self.conn, self.mode):
            if pos.size_micro <= 0:
                continue
            lookup = self.md.needs_lookup(pos.market_id, pos.token_id, self.now_ts)
            try:
                payouts = self.md.payouts(pos.market_id, lookup=lookup)
            except ExchangeError as exc:
                self.api_errors.failure(exc, f"looking up market {pos.market_id}")
                continue
            if payouts is None or pos.token_id not in payouts:
                continue
            payout = int(round(payouts[pos.token_id] * MICRO))
            if not self.paper:
                if xpos is None:
                    try:
                        xpos = {p.token_id: p.size for p in self.require_exchange().positions()}
                    except ExchangeError as exc:
                        self.api_errors.failure(exc, "reading positions")
                        return
                if xpos.get(pos.token_id, 0) > 0:
                    if pos.token_id not in self.resolved_marks:
                        log.info(
                            "market %s resolved: token %s… pays %.2f; waiting for the redemption "
                            "(redeem on polymarket.com if it is not automatic)",
                            pos.market_id,
                            pos.token_id[:12],
                            payout / MICRO,
                        )
                    self.resolved_marks[pos.token_id] = payout
                    continue
            self.resolved_marks.pop(pos.token_id, None)
            self.settle(pos, payout)

    def settle(self, pos: ledger.PositionRow, payout_micro: int) -> None:
        if self.paper:
            rec = self.require_paper_exchange().settle(pos.token_id, payout_micro)
            size = rec["size_micro"] if rec else pos.size_micro
        else:
            size = pos.size_micro
        with db.atomic(self.conn):
            ledger.record_settlement(
                self.conn,
                self.mode,
                pos.token_id,
                pos.market_id,
                payout_micro,
                size,
                self.now_ts,
                reason=f"market resolved: payout {payout_micro / MICRO:g}",
            )
        log.info(
            "settled %.2f shares of token %s… in market %s at %.2f: %s",
            size / MICRO,
            pos.token_id[:12],
            pos.market_id,
            payout_micro / MICRO,
            fmt_usd(payout_micro * size // MICRO),
        )

    def check_limits(self, account: AccountState) -> None:
        breach = self.require_risk().daily_loss_breached(account)
        if breach is not None:
            ack = db.get_state(self.conn, "daily_loss_ack_day")
            if ack is None or int(ack) != ledger.day_start(self.now_ts):
                raise BreakerTripped(breakers.DAILY_LOSS, breach.detail)
            if not self._loss_acknowledged_logged:
                log.warning(
                    "%s (halt acknowledged by the operator: exits and stop losses continue)", breach.detail
                )
                self._loss_acknowledged_logged = True
        items = [(h.token_id, h.size_micro, h.cost_micro) for h in account.positions.values()]
        items += [
            (p.token_id, p.size_micro, p.cost_micro)
            for p in ledger.open_positions(self.conn, self.mode)
            if p.size_micro < 0
        ]
        breakers.check_positions(items, self.cfg.risk_limits.max_position_size, "the database")
        if not self.paper:  # the bot held to the exchange (polybot/engine/reconcile.py)
            from polybot.engine.reconcile import check_invariant

            check_invariant(self)

    def to_request(self, it: Intent) -> OrderRequest | None:
        """The order for an approved intent (:func:`polybot.strategy.execution.order_for`, the
        replay's too): limit price, shares = notional ÷ limit rounded down."""
        m = self.md.info(it.market_id)
        book = self.md.book(it.token_id)
        if self.paper:
            ask = self.prices(it.token_id)[1]
            tick = None  # the replay's point-in-time tick (parity)
        else:
            ask = to_micro(book.asks[0].price) if book is not None and book.asks else None
            # the fresh book's tick first: it changes at run time (0.001 above 0.96 / below 0.04)
            tick = getattr(book, "tick_size", None) if book is not None else None
        spec = order_for(it, m, None if ask is None else ask / MICRO, self.cfg.trading.order_type, tick=tick)
        if spec is None:
            return None
        return OrderRequest(
            token_id=it.token_id,
            side=it.side,
            order_type=spec.order_type,
            price_micro=spec.price_micro,
            size_micro=spec.size_micro,
            client_tag=it.strategy or "",
            tick_size=format(spec.tick_size, "g"),
            neg_risk=spec.neg_risk,
            market_version=market_version(self.conn, it.market_id),
        )

    def place_intent(self, it: Intent) -> PlaceOutcome | None:
        req = self.to_request(it)
        if req is None:
            log.info("no order for %s %s: no usable book", it.action, it.token_id[:12])
            return None
        return self.require_executor().place(
            req,
            market_id=it.market_id,
            strategy=it.strategy or self.strategy.name,
            reason=(it.reason or it.action)[:300],
        )

    def execute(self, items: list[tuple[Intent, RiskDecision]], now: int) -> list[Executed]:
        """Approved decisions → orders: paper queues them until their fill time (the replay's
        latency, ``trading.fill_latency_seconds``); live sends them now."""
        out: list[Executed] = []
        for it, d in items:
            if not d.approved:
                log.info("risk rejected %s %s %s: %s", it.action, it.side, it.token_id[:12], d.detail)
                out.append((it, d, None))
                continue
            if d.resized or d.rule not in ("ok", "exit"):
                log.info("risk %s: %s", d.rule, d.detail)
            assert d.intent is not None  # an approved decision carries the intent to execute
            if self.paper and self.model.fill_latency_seconds > 0:
                self.pending[d.intent.token_id] = PendingOrder(d.intent, now, decision=d)
                out.append((it, d, None))
                continue
            out.append((it, d, self.place_intent(d.intent)))
        controls.count_paused(self, out)
        return out

    def place_due(self, now: int, tradable: set[str]) -> list[Executed]:
        """Paper: place the queued orders whose token has a recorded book at or after their
        fill time (dropped when none came within the wait, or the market closed)."""
        out: list[Executed] = []
        for tok in sorted(self.pending):
            p = self.pending[tok]
            state = due_state(p, book_time(self.md.feed, tok), now, self.model)
            if state == EXPIRE or tok not in tradable:
                del self.pending[tok]
                log.info(
                    "order for %s %s dropped: %s",
                    p.intent.action,
                    tok[:12],
                    "its market closed" if tok not in tradable else "no new book within the wait",
                )
            elif state == FILL:
                del self.pending[tok]
                out.append((p.intent, p.decision, self.place_intent(p.intent)))
        return out

    def trade(self) -> list[Executed]:
        """One decision step, shared with the backtester (:func:`decide_step`): due paper
        orders, breakers #2/#3, stop losses and strategy intents through the risk manager to
        execution. Returns [(intent, RiskDecision, PlaceOutcome | None)]."""
        now = self.decision_time()
        tradable = set(self.md.tradable_tokens()) - set(self.resolved_marks)  # closed markets take no order
        out = self.place_due(now, tradable)
        account = self.account()
        self.check_limits(account)
        executor = self.require_executor()
        busy = set(self.pending) | {r["token_id"] for r in executor.rows(OPEN)}
        sd = decide_step(
            self.strategy,
            self.require_risk(),
            self.md.require_feed().view(now),
            now=now,
            cash_micro=account.cash_micro,
            positions=account.positions,
            prices=self.prices,
            markets=self.md.info,
            day_start_equity_micro=account.day_start_equity_micro,
            day_low_equity_micro=account.day_low_equity_micro,
            stop_exits=account.stop_exits,
            busy_tokens=busy,
            busy_markets=executor.unresolved_markets(),
            tradable=lambda it: it.token_id in tradable,
            extra_marks=self.resolved_marks,
        )
        for it, _ in sd.items[: sd.n_stops]:
            log.warning("%s", it.reason)
        return out + self.execute(sd.items, now)

    def live_stop_losses(self) -> list[Executed]:
        """Live, between decision steps: breakers #2/#3 and stop losses on the freshest books
        (real money does not wait for the next recorded step; paper and the replay, which
        must agree, act on recorded steps only)."""
        account = self.account()
        self.check_limits(account)
        executor, risk = self.require_executor(), self.require_risk()
        busy = {r["token_id"] for r in executor.rows(OPEN)}
        unresolved = executor.unresolved_markets()
        tradable = set(self.md.tradable_tokens()) - set(self.resolved_marks)
        exits = [
            hit.intent(strategy="stop_loss")
            for hit in risk.stop_losses(account.open_positions(), account.marks, self.md.info)
        ]
        exits = [
            it
            for it in exits
            if it.token_id in tradable and it.token_id not in busy and it.market_id not in unresolved
        ]
        if not exits:
            return []
        for it in exits:
            log.warning("%s", it.reason)
        decisions = risk.check_all(exits, account, {}, self.now_ts)  # one decision per intent
        return self.execute(list(zip(exits, decisions, strict=True)), self.now_ts)

    def record_performance(self) -> None:
        account = self.account()
        pf = ledger.portfolio(self.conn, self.mode, account.cash_micro, account.marks)
        daily = account.daily_pnl_micro()
        with db.atomic(self.conn):
            ledger.record_performance(self.conn, pf, daily, self.now_ts)

    # ------------------------------------------------------------------ the loop
    def iteration(self) -> None:
        breakers.check_emergency_stop(self.cfg)
        self.heartbeat()
        self.periodic_quick_check()
        if not self.refresh():
            return
        try:
            self.sync_orders()
            self.settle_resolved()
            controls.apply_pause(self)  # the operator's pause and close requests (engine/controls.py)
            controls.process_close_requests(self)
            if self.md.new_step:
                self.trade()
            elif not self.paper:  # live: breakers and stops watch the fresh books between steps
                self.live_stop_losses()
            self.record_performance()
        except ExchangeError as exc:
            self.api_errors.failure(exc, "trading")
            return
        except DataError as exc:
            self.api_errors.failure(exc, "trading", transient=True)
            return
        self.iterations += 1

    def guarded(self, fn: Callable[[], None]) -> None:
        """Run ``fn``, turning database failures into breaker #4."""
        try:
            fn()
        except BreakerTripped:
            raise
        except (sqlite3.Error, DatabaseError, OSError) as exc:
            # A full or read-only disk is a halt like any database failure (issue 15 #1), with
            # its own advice; any other OSError is a bug and propagates.
            trip = breakers.resource_trip(exc, "trading")
            if trip is not None:
                raise trip from exc
            if isinstance(exc, OSError):
                raise
            raise BreakerTripped(breakers.DATABASE, f"database failure: {exc}") from exc
        if self.log_failure:
            raise BreakerTripped(breakers.DATABASE, self.log_failure, resource="log file")

    def run(self, *, once: bool = False, max_runtime: float | None = None) -> int:
        deadline = None if max_runtime is None else time.monotonic() + max_runtime
        interval = float(self.cfg.trading.loop_interval_seconds)
        try:
            while not self.stop_requested:
                t0 = time.monotonic()
                try:
                    self.guarded(self.iteration)
                except BreakerTripped as trip:
                    self.stop(trip)
                if once or (deadline is not None and time.monotonic() >= deadline):
                    break
                left = interval - (time.monotonic() - t0)
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                while left > 0 and not self.stop_requested:
                    if breakers.emergency_stop_requested(self.cfg):
                        break
                    step = min(left, 0.5)
                    self.sleep(step)
                    left -= step
        finally:
            self.stop_exchange_heartbeat()
        log.info("Trading bot stopped after %d iteration(s) (no halt)", self.iterations)
        return 0

    # ------------------------------------------------------------------ STOP
    def stop(self, trip: BreakerTripped) -> None:
        """Cancel orders; emergency: close positions; latch the halt; alert; raise HaltedError."""
        stop.stop(self, trip)
