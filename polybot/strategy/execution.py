"""ONE decision path for the replay (:mod:`polybot.backtest.engine`) and the paper/live
engine (:mod:`polybot.engine.loop`), so a backtest and a paper run on the same recorded
snapshots give the same orders and fills (tests/engine/test_parity.py).

Both callers work on the **decision grid**: the recorded snapshot steps
(``collection.interval_minutes``; the engine records one row per token per grid step and
decides on the rows the database holds for that step, whoever wrote them). At each step:

1. orders decided earlier whose fill time has come are executed against the token's book
   recorded at this step (:func:`due_state`): an order decided at ``t`` fills on the first
   recorded book at or after ``t + trading.fill_latency_seconds`` (default 1 s, i.e. the
   NEXT recorded book — the grid rounds any latency up to a snapshot; 0 = the book it was
   decided on, optimistic); an order whose token gets no such book within
   ``max_order_wait`` is dropped. Resting GTC orders are checked against each new book;
2. the account is marked at the recorded best bids (:func:`marks_of`); a daily-loss breach
   halts (paper/live: circuit breaker #2; the replay models the same halt);
3. :func:`decide_step`: stop losses, then the strategy's intents, filtered by the same rules
   (no second order for a token with one pending or resting, none in a resolved market, no
   exit without a position), through the shared :class:`~polybot.risk.RiskManager`;
4. each approved intent becomes an order with :func:`order_for` — the order live trading
   sends: a limit price (the intent's, else the best ask + 2 ticks) and a size in shares
   = notional ÷ limit price rounded down to 2 decimals (never spends more than approved) —
   and :func:`simulate_order` fills it exactly as :class:`polybot.exchange.paper.PaperExchange`
   does (same :func:`~polybot.exchange.fills.simulate_fill`, same cash/shares checks, GTC
   remainders rest and fill as maker at their price, no fee, via
   :func:`~polybot.exchange.fills.resting_fill`, cancelled after ``stale_order_seconds``).

Order types: ``trading.order_type`` in both (GTD is sent as GTC: resting orders are
modelled with the same rules in both; FAK/FOK take what the recorded depth gives).

What still differs between a paper run and its replay, and why (everything else is equal,
tests/engine/test_parity.py asserts it with no tolerance):

- **Halts.** Paper stops (circuit breaker #2) and waits for the operator; the replay
  cancels every order and trades nothing until the next 00:00 UTC, its assumption of when
  the operator restarts (a same-day ``--restart`` could only exit: the latched daily limit
  still blocks entries until 00:00 UTC).
- **Settlements.** Paper settles a resolved market when its lookup sees the resolution
  (recorded at that time); the replay at the recorded resolution time.
- **Closed, unresolved markets.** Paper sends no order into a market the markets table
  marks closed; the replay stops at the resolution time only (it has no closing time).
- **Correlation groups.** Paper uses ``reports/correlation_groups.json`` as it is; the
  replay only when that report's data ended before the replay starts (else look-ahead).
- **Restarts.** Orders paper has decided but not yet placed (the latency queue) live in
  memory: a restart drops them, and a restarted bot decides again at the current step.
- **The end.** The replay sells what is still held into the last books (its final
  equity); paper keeps its positions.
- **Live** (not paper): orders are sent at once (the real latency is the network's) and fill
  on the live book; between grid steps live also runs breakers #2/#3 and stop losses on fresh books; the
  ramp-up plan limits live positions during the first days (paper and the replay, which
  judge the strategy, run without it; ``Backtester(first_live_day=...)`` applies it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from polybot.config import Config
from polybot.domain import BUY, ENTER, EXIT, Holding, Intent, MarketInfo, PortfolioView
from polybot.exchange.fills import FillResult, simulate_fill
from polybot.exchange.models import FeeSchedule, OrderBook
from polybot.money import MICRO, notional_micro, round_size_down

from .base import limit_for_buy

STOP_LOSS = "stop_loss"
FILL = "fill"
WAIT = "wait"
EXPIRE = "expire"


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class ExecutionModel:
    """How decided orders become fills, the same in the replay and on paper."""

    order_type: str = "FAK"  # FAK | FOK | GTC (GTD is sent as GTC)
    fill_latency_seconds: int = 1  # decided at t → fills on the first recorded book ≥ t + this
    max_wait_seconds: int = 900  # no such book this long after it was due → dropped
    stale_order_seconds: int = 300  # a resting GTC order is cancelled this long after placement

    @classmethod
    def from_config(cls, cfg: Config) -> ExecutionModel:
        t = cfg.trading
        interval = int(cfg.collection.interval_minutes) * 60
        otype = "GTC" if t.order_type == "GTD" else t.order_type
        return cls(
            order_type=otype,
            fill_latency_seconds=int(getattr(t, "fill_latency_seconds", 1)),
            max_wait_seconds=3 * interval,
            stale_order_seconds=int(t.stale_order_seconds),
        )

    @property
    def resting(self) -> bool:
        return self.order_type == "GTC"


@dataclass
class PendingOrder:
    """An approved intent waiting for its fill time (decided at ``decided_at``)."""

    intent: Intent
    decided_at: int
    group_key: str = ""
    decision: Any = None  # the RiskDecision that approved it (engine reports)


def due_state(p: PendingOrder, book_ts: int | None, now: int, model: ExecutionModel) -> str:
    """FILL when ``book_ts`` (the token's book recorded at ``now``) is at or after the fill
    time; EXPIRE when no such book came within ``max_wait_seconds`` of it; else WAIT."""
    due_at = p.decided_at + model.fill_latency_seconds
    if book_ts is not None and book_ts == now and book_ts >= due_at:
        return FILL
    if now - due_at > model.max_wait_seconds:
        return EXPIRE
    return WAIT


# ----------------------------------------------------------------------------- orders
@dataclass(frozen=True)
class OrderSpec:
    """The order to send for an approved intent (what live trading signs)."""

    token_id: str
    market_id: str
    side: str
    order_type: str
    price_micro: int
    size_micro: int
    tick_size: float
    neg_risk: bool | None = None


def order_for(
    intent: Intent,
    market: MarketInfo | None,
    best_ask: float | None,
    order_type: str,
    *,
    tick: float | None = None,
) -> OrderSpec | None:
    """The order for an approved intent, None when there is nothing to send.

    BUY: the intent's limit, else the best ask + 2 ticks; size = the intent's shares, else
    notional ÷ limit rounded DOWN to 2 decimals (at most the approved $ is spent; a fill
    below the limit spends less). SELL: the intent's limit, else one tick (an exit that must
    happen); size rounded down to 2 decimals. ``tick``: the exchange's current tick when it is
    fresher than the market's (live: the tick changes at run time), else the market's."""
    tick = tick or (market.tick_size if market is not None else 0.01)
    price = intent.limit_price_micro
    if intent.side == BUY:
        if price is None:
            if best_ask is None or (isinstance(best_ask, float) and math.isnan(best_ask)):
                return None
            price = limit_for_buy(best_ask, tick, 2)
        if intent.size_micro is not None:
            size = intent.size_micro
        elif intent.notional_micro is not None:
            size = round_size_down(intent.notional_micro * MICRO // price)
        else:  # unreachable: Intent checks that it has one of the two
            raise ValueError("give exactly one of Intent.size_micro (shares) or notional_micro (USD)")
    else:
        if price is None:
            price = int(round(tick * MICRO))
        if intent.size_micro is None:  # unreachable: Intent only lets a BUY have a notional
            raise ValueError("a SELL intent is sized in shares (Intent.size_micro)")
        size = round_size_down(intent.size_micro)
    if size <= 0:
        return None
    otype = "GTC" if order_type == "GTD" else order_type
    return OrderSpec(
        intent.token_id,
        intent.market_id,
        intent.side,
        otype,
        int(price),
        int(size),
        tick,
        bool(market.neg_risk) if market is not None else None,
    )


def simulate_order(
    spec: OrderSpec,
    book: OrderBook,
    fee: FeeSchedule,
    *,
    cash_available_micro: int,
    shares_available_micro: int,
) -> tuple[FillResult | None, str | None]:
    """(fill, None) or (None, rejection code): the paper exchange's submit rules.

    The same :func:`simulate_fill` call as ``PaperExchange.submit`` (tick and minimum size
    from the book, i.e. the market's); a BUY needs cash for its fills, their taker fees and
    price × size of what will rest (``cash_available`` = cash − open BUYs' reservations);
    a SELL needs the shares (``shares_available`` = held − open SELLs)."""
    res = simulate_fill(
        book,
        spec.side,
        size_micro=spec.size_micro,
        limit_price_micro=spec.price_micro,
        order_type=spec.order_type,
        fee=fee,
        tick_size=format(spec.tick_size, "g"),
    )
    if res.rejected:
        return None, res.code or "rejected"
    if spec.side == BUY:
        rests = notional_micro(spec.price_micro, res.remaining_size_micro) if res.remaining_size_micro else 0
        if res.notional_micro + res.fee_micro + rests > cash_available_micro:
            return None, "insufficient_cash"
    elif (res.requested_size_micro or 0) > shares_available_micro:
        return None, "insufficient_shares"
    return res, None


# ----------------------------------------------------------------------------- marks
PriceFn = Callable[[str], tuple[int | None, int | None]]  # token → (best bid, best ask) micro


def feed_prices(feed: Any, token_id: str) -> tuple[int | None, int | None]:
    """(best bid, best ask) of the token's latest recorded row in ``feed`` (micro-units; None
    when the side is empty or the token was never seen) — the prices both callers mark at."""
    i = feed.token_index.get(token_id)
    if i is None or feed._ts[i] < 0:
        return None, None
    b, a = feed._bid.item(i), feed._ask.item(i)  # Python floats: round() on a numpy scalar is slow
    return (
        None if math.isnan(b) else int(round(b * MICRO)),
        None if math.isnan(a) else int(round(a * MICRO)),
    )


def step_prices(feed: Any) -> PriceFn:
    """:func:`feed_prices` for one decision step: the books do not change during a step, so
    each token is looked up once (marks, the halt check, the stop losses and the risk checks
    all ask for the same tokens)."""
    seen: dict[str, tuple[int | None, int | None]] = {}

    def prices(token_id: str) -> tuple[int | None, int | None]:
        p = seen.get(token_id)
        if p is None:
            p = seen[token_id] = feed_prices(feed, token_id)
        return p

    return prices


def book_time(feed: Any, token_id: str) -> int | None:
    """When the token's latest row in ``feed`` was recorded (None: never)."""
    i = feed.token_index.get(token_id)
    if i is None or feed._ts[i] < 0:
        return None
    return int(feed._ts[i])


def marks_of(tokens: Iterable[str], prices: PriceFn) -> dict[str, int]:
    """token → recorded best bid (micro-units) for the tokens that have one."""
    out = {}
    for t in tokens:
        bid = prices(t)[0]
        if bid is not None:
            out[t] = bid
    return out


# ----------------------------------------------------------------------------- the decision
@dataclass
class StepDecision:
    """What one decision step produced: (intent, RiskDecision) in order, what was skipped."""

    items: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    n_stops: int = 0


def decide_step(
    strategy: Any,
    risk: Any,
    view: Any,
    *,
    now: int,
    cash_micro: int,
    positions: Mapping[str, Holding],
    prices: PriceFn,
    markets: Callable[[str], MarketInfo | None],
    day_start_equity_micro: int | None,
    day_low_equity_micro: int | None,
    stop_exits: Mapping[str, int],
    busy_tokens: Iterable[str] = (),
    busy_markets: Iterable[str] = (),
    tradable: Callable[[Intent], bool] = lambda it: True,
    extra_marks: Mapping[str, int] | None = None,
) -> StepDecision:
    """Stop losses, then the strategy, through the risk manager (see the module docstring).

    ``busy_tokens``: tokens with an order pending (latency) or resting; ``busy_markets``:
    markets with an order whose outcome is unknown; ``tradable``: False for intents in
    closed/resolved markets. ``extra_marks`` (live: payouts of resolved, unredeemed
    positions) override the recorded bids."""
    from polybot.risk import AccountState

    busy_t, busy_m = set(busy_tokens), set(busy_markets)
    held = {t: h for t, h in positions.items() if h.size_micro > 0}
    marks = marks_of(held, prices)
    if extra_marks:
        marks.update(extra_marks)
    out = StepDecision()
    stops: dict[str, Intent] = {}
    for hit in risk.stop_losses(held.values(), marks, markets):
        it = hit.intent(strategy=STOP_LOSS)
        if it.token_id in busy_t or it.market_id in busy_m or not tradable(it):
            out.skipped["stop_loss_busy"] += 1
            continue
        stops[it.token_id] = it
    out.n_stops = len(stops)
    merged: dict[str, Intent] = dict(stops)
    strategy_intents = strategy.decide(view, PortfolioView(cash_micro, dict(positions)))
    _merge_strategy_intents(merged, strategy_intents, held, busy_t, busy_m, tradable, out.skipped)
    if not merged:
        return out
    batch = list(merged.values())
    risk_marks, asks = _entry_quotes(batch, marks, prices)
    account = AccountState(
        cash_micro,
        dict(positions),
        risk_marks,
        day_start_equity_micro,
        day_low_equity_micro=day_low_equity_micro,
        stop_exits=dict(stop_exits),
        asks=asks,
    )
    infos = {it.market_id: markets(it.market_id) for it in batch}
    decisions = risk.check_all(batch, account, {k: v for k, v in infos.items() if v is not None}, now)
    out.items = list(zip(batch, decisions, strict=True))  # check_all: one decision per intent, in order
    return out


def _merge_strategy_intents(
    merged: dict[str, Intent],
    intents: Iterable[Intent],
    held: Mapping[str, Holding],
    busy_t: set[str],
    busy_m: set[str],
    tradable: Callable[[Intent], bool],
    skipped: Counter,
) -> None:
    """Add the strategy's intents to ``merged`` (token → intent, stop losses first): one per
    token; none for a busy token or market (counted), a closed market (counted), or an exit
    of a token not held."""
    for it in intents:
        if it.token_id in merged:
            continue
        if it.token_id in busy_t or it.market_id in busy_m:
            skipped["order_pending"] += 1
            continue
        if not tradable(it):
            skipped["market_resolved"] += 1  # trading stops at resolution
            continue
        if it.action == EXIT and it.token_id not in held:
            continue
        merged[it.token_id] = it


def _entry_quotes(batch: list[Intent], marks: Mapping[str, int], prices: PriceFn) -> tuple[dict, dict]:
    """(marks for the risk manager, asks by token): the held positions' marks plus, for each
    entry, its bid (where no mark exists) and its ask."""
    risk_marks, asks = dict(marks), {}
    for it in batch:
        if it.action != ENTER:
            continue
        bid, ask = prices(it.token_id)
        if it.token_id not in risk_marks and bid is not None:
            risk_marks[it.token_id] = bid
        if ask is not None:
            asks[it.token_id] = ask
    return risk_marks, asks


def step_account(
    risk: Any,
    *,
    cash_micro: int,
    positions: Mapping[str, Holding],
    prices: PriceFn,
    day_start_equity_micro: int | None,
    day_low_equity_micro: int | None,
    extra_marks: Mapping[str, int] | None = None,
) -> Any:
    """The account at a decision step, marked at the recorded bids (for the halt check)."""
    from polybot.risk import AccountState

    marks = marks_of([t for t, h in positions.items() if h.size_micro > 0], prices)
    if extra_marks:
        marks.update(extra_marks)
    return AccountState(
        cash_micro, dict(positions), marks, day_start_equity_micro, day_low_equity_micro=day_low_equity_micro
    )


def next_day(ts: int) -> int:
    """00:00 UTC after ``ts``: when a replayed daily-loss halt ends (see the backtester)."""
    return (int(ts) // 86_400 + 1) * 86_400


__all__ = [
    "ExecutionModel",
    "PendingOrder",
    "OrderSpec",
    "StepDecision",
    "step_prices",
    "book_time",
    "decide_step",
    "due_state",
    "feed_prices",
    "marks_of",
    "next_day",
    "order_for",
    "simulate_order",
    "step_account",
    "FILL",
    "WAIT",
    "EXPIRE",
    "STOP_LOSS",
]
