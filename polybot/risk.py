"""The ONE risk manager, shared by the backtester and the trading engine.

Pure logic: integer micro-units, the clock passed in, no I/O except the helper
that reads ``reports/correlation_groups.json`` (:func:`load_correlation_groups`).

Every intent from a strategy goes through :meth:`RiskManager.check` (or
:meth:`RiskManager.check_all` for a batch) and comes back as a
:class:`RiskDecision` ``(approved, rule, detail, intent, resized)``:

- **Exits always pass** (rule ``exit``); a SELL larger than the holding is cut
  to the holding.
- Entries are checked, in this order, against:

  0. ``paused`` — while the operator has paused entries (:attr:`RiskManager.entries_paused`,
     set by the engine from ``bot_state``: Telegram ``/pause`` or ``python trading_bot.py
     --pause``; see :mod:`polybot.control_state`), every entry is rejected; exits pass as
     always. The backtester never sets it;
  1. ``daily_loss_limit`` — realised + unrealised P&L of the current UTC day
     (equity − equity at 00:00 UTC) ≤ −limit, now or at the day's lowest equity
     (``day_low_equity_micro``: latched until 00:00 UTC), blocks every new entry;
  2. ``stop_loss_cooldown`` — no entry into a token within
     ``stop_loss_cooldown_hours`` of its last stop-loss exit (``stop_exits``);
  3. ``max_positions`` — concurrent open positions (adding to a position you
     already hold is not a new one), lowered by ``ramp_up`` (max positions by
     day since the first live day) when ``first_live_day`` is given;
  4. ``entry_cost`` — bought at the best ask (``asks``, at most the limit) with
     its taker fee and marked at the best bid (``marks``), as the stop values
     it, the entry must lose less than ``max_entry_cost_share_of_stop`` ×
     ``stop_loss_percent`` at once, or the stop would sit inside the spread and
     fee (0.05/0.07 is −29% when bought). Skipped without a bid or a price;
  5. ``max_position_size`` — $ in one token (cost basis held + this order);
  6. ``max_portfolio_exposure`` — Σ cost basis of open positions + this order
     ≤ fraction × capital;
  7. ``max_event_exposure`` — the same within each group the market belongs to
     (``negrisk:<id>`` for the outcomes of one negRisk event,
     ``event:<id>`` for one Gamma event, ``corr:<id>`` for a cluster of the
     correlation report: markets linked by statistically significant pairs with
     |r| ≥ ``analysis.strong_correlation`` — negative correlations included, since
     two outcomes that move against each other are one risk; see
     :mod:`polybot.analysis.significance`) ≤ fraction × capital;
  8. ``max_leverage`` (no leverage) — order notional + its worst-case taker fee
     ≤ cash × max_leverage (1.0: never spend more than cash);
  9. ``min_order_size`` — the (possibly resized) order must still be at least
     the market's minimum size in shares and $1 of notional.

  Caps 5–8 **resize** an entry down to the largest amount that fits (shares
  rounded down to 2 decimals, dollars down to the cent) when
  ``allow_resize`` is true (the default); the decision is then approved with
  ``resized=True`` and names the binding rule. If the fitted order falls below
  the minimum size, or resizing is off, the entry is rejected with that rule.

Exposure is measured on cost basis (money spent, fees included, on shares
still held), which is what can be lost; the order's part is its notional at
its limit price. A BUY with neither a limit price nor a notional is valued at
the worst case, $1 per share.

Every sentence carries the numbers, e.g.
``max_position_size: order $120.00 would make the position $130.00 > $100.00``.

Stop-loss: :meth:`RiskManager.stop_losses` (or :func:`stop_loss_hits`) returns
the positions whose value at the mark (the best bid) is at or below
``(1 − stop_loss_percent) × cost basis``; ``hit.intent()`` is the EXIT to send.
Given the markets, a holding smaller than its market's minimum order size is no hit:
the exchange rejects a SELL that small, so it is held to resolution.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from polybot import checks
from polybot.config import Config, RiskLimits
from polybot.domain import (
    BUY,
    ENTER,
    EXIT,
    SELL,
    Holding,
    Intent,
    MarketInfo,
    PortfolioView,
)
from polybot.errors import DataError
from polybot.money import MICRO, fmt_usd, notional_micro, round_size_down, to_micro

DAY = 86_400
MIN_MARKETABLE_NOTIONAL_MICRO = 1_000_000  # Polymarket: marketable BUYs ≥ $1

# RiskDecision.rule values
OK = "ok"
RULE_EXIT = "exit"
RULE_DAILY_LOSS = "daily_loss_limit"
RULE_STOP_COOLDOWN = "stop_loss_cooldown"
RULE_ENTRY_COST = "entry_cost"
RULE_MAX_POSITIONS = "max_positions"
RULE_RAMP_UP = "ramp_up"
RULE_POSITION_SIZE = "max_position_size"
RULE_PORTFOLIO_EXPOSURE = "max_portfolio_exposure"
RULE_EVENT_EXPOSURE = "max_event_exposure"
RULE_LEVERAGE = "max_leverage"
RULE_MIN_SIZE = "min_order_size"
RULE_INVALID = "invalid_intent"
RULE_PAUSED = "paused"


@dataclass(frozen=True)
class RiskDecision:
    """The risk manager's answer for one intent.

    ``intent`` is what to execute (the original, or a resized copy) when
    ``approved``; ``None`` when rejected. ``rule`` is ``ok``/``exit`` for a clean
    approval, else the rule that rejected or resized; ``detail`` is one
    sentence with the numbers.
    """

    approved: bool
    rule: str
    detail: str
    intent: Intent | None = None
    resized: bool = False

    def __str__(self) -> str:
        verdict = "approved" if self.approved else "rejected"
        return f"{verdict} ({self.rule}): {self.detail}"


@dataclass(frozen=True)
class AccountState:
    """The account as the risk manager sees it (micro-units).

    ``marks``: token → mark price (best bid) in micro-units; a token without a
    mark is valued at its cost basis (marks of tokens not held feed ``entry_cost``).
    ``day_start_equity_micro``: equity at 00:00 UTC of the current day (the
    engine reads it from ``performance``, the backtester tracks it);
    ``day_low_equity_micro``: the lowest equity recorded earlier today (None:
    none). ``stop_exits``: token → epoch s of its last stop-loss exit.
    ``asks``: token → best ask (micro-units).
    """

    cash_micro: int
    positions: Mapping[str, Holding] = field(default_factory=dict)
    marks: Mapping[str, int] = field(default_factory=dict)
    day_start_equity_micro: int | None = None
    day_low_equity_micro: int | None = None
    stop_exits: Mapping[str, int] = field(default_factory=dict)
    asks: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_portfolio(
        cls, portfolio: PortfolioView, marks: Mapping[str, int], day_start_equity_micro: int | None, **kw
    ) -> AccountState:
        return cls(portfolio.cash_micro, dict(portfolio.positions), dict(marks), day_start_equity_micro, **kw)

    def open_positions(self) -> list[Holding]:
        return [h for h in self.positions.values() if h.size_micro > 0]

    def value_micro(self, h: Holding) -> int:
        mark = self.marks.get(h.token_id)
        return h.cost_micro if mark is None else notional_micro(mark, h.size_micro)

    def equity_micro(self) -> int:
        return self.cash_micro + sum(self.value_micro(h) for h in self.open_positions())

    def exposure_micro(self) -> int:
        return sum(h.cost_micro for h in self.open_positions())

    def daily_pnl_micro(self) -> int:
        return self.daily_pnl_range()[0]

    def worst_daily_pnl_micro(self) -> int:
        """Today's lowest P&L so far: min(equity now, the day's low) − equity at 00:00 UTC."""
        return self.daily_pnl_range()[1]

    def daily_pnl_range(self) -> tuple[int, int]:
        """(today's P&L now, today's lowest P&L so far), equity valued once; (0, 0) without
        the day's starting equity."""
        if self.day_start_equity_micro is None:
            return 0, 0
        now = self.equity_micro()
        low = now if self.day_low_equity_micro is None else min(now, int(self.day_low_equity_micro))
        return now - self.day_start_equity_micro, low - self.day_start_equity_micro


@dataclass(frozen=True)
class StopLossHit:
    holding: Holding
    mark_micro: int
    value_micro: int
    pnl_fraction: float
    detail: str

    def intent(self, strategy: str = "risk") -> Intent:
        """The EXIT for the whole holding, at any price (a stop must happen)."""
        h = self.holding
        return Intent(
            action=EXIT,
            token_id=h.token_id,
            market_id=h.market_id,
            side=SELL,
            size_micro=h.size_micro,
            reason=f"stop_loss: {self.detail}",
            strategy=strategy,
            tag="stop_loss",
        )


def sellable(h: Holding, market: MarketInfo | None) -> bool:
    """Whether the exchange would take a SELL of the whole holding: its size, rounded down to
    the exchange's 2 decimals, is at least the market's minimum order size (True when the
    market is unknown: the exchange decides)."""
    return market is None or round_size_down(h.size_micro) >= market.min_size_micro


def stop_loss_hits(
    positions: Iterable[Holding],
    marks: Mapping[str, int],
    stop_loss_percent: float,
    markets: Callable[[str], MarketInfo | None] | None = None,
) -> list[StopLossHit]:
    """Positions to exit: value at the mark ≤ (1 − stop_loss_percent) × cost basis.

    A position without a mark is skipped (no price, no decision), and so is one smaller
    than its market's minimum order size after rounding down to 2 decimals, when
    ``markets`` (market id → metadata) knows the market: the exchange rejects such a SELL
    ("Size (…) lower than the minimum", shared/polymarket/API_NOTES.md), so a stop would
    only be refused again at every step.
    """
    out = []
    stop_micro = to_micro(stop_loss_percent)
    for h in positions:
        if h.size_micro <= 0 or h.cost_micro <= 0:
            continue
        mark = marks.get(h.token_id)
        if mark is None:
            continue
        value = notional_micro(mark, h.size_micro)
        frac = (value - h.cost_micro) / h.cost_micro
        # integer test: value ≤ cost × (1 − s), exact at the boundary
        limit = h.cost_micro - (h.cost_micro * stop_micro) // MICRO
        # the market is looked up only for a hit (the live loop calls this between steps)
        if value <= limit and (markets is None or sellable(h, markets(h.market_id))):
            out.append(
                StopLossHit(
                    h,
                    mark,
                    value,
                    frac,
                    f"position worth {fmt_usd(value)} at the bid {mark / MICRO:.4f} is "
                    f"{frac:+.1%} of its cost {fmt_usd(h.cost_micro)} "
                    f"(stop at -{stop_loss_percent:.0%})",
                )
            )
    return out


def load_correlation_groups(path: Path | str) -> dict[str, str]:
    """``reports/correlation_groups.json`` → {market_id: group id}. Missing file → {}."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out = {}
        for g in data["groups"]:
            for m in g["markets"]:
                out[str(m)] = str(g["id"])
        return out
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path} is not a valid correlation groups file ({exc}); regenerate it with "
            f"python correlation_analysis.py --days 7."
        ) from exc


def group_keys(market: MarketInfo, correlation_groups: Mapping[str, str]) -> tuple[str, ...]:
    """The exposure groups a market belongs to (see the module docstring)."""
    keys = []
    if market.neg_risk and market.neg_risk_market_id:
        keys.append(f"negrisk:{market.neg_risk_market_id}")
    if market.event_id:
        keys.append(f"event:{market.event_id}")
    g = correlation_groups.get(market.market_id)
    if g is not None:
        keys.append(f"corr:{g}")
    return tuple(keys)


class RiskManager:
    """Checks intents against ``risk_limits`` (see the module docstring).

    - ``capital_micro``: the configured capital (``cfg.capital``), the base of the
      fractional limits.
    - ``correlation_groups``: {market_id: group id} (:func:`load_correlation_groups`).
    - ``first_live_day``: epoch s of the first live day (bot_state
      ``first_live_day``); None = the ramp-up plan does not apply.
    - ``markets``: metadata of markets (for the groups of positions already
      held); add more with :meth:`register_markets`.
    """

    def __init__(
        self,
        limits: RiskLimits,
        capital_micro: int,
        *,
        correlation_groups: Mapping[str, str] | None = None,
        first_live_day: int | None = None,
        allow_resize: bool = True,
        markets: Iterable[MarketInfo] = (),
    ):
        self.limits = limits
        self.capital_micro = int(capital_micro)
        self.correlation_groups = dict(correlation_groups or {})
        self.first_live_day = first_live_day
        self.allow_resize = allow_resize
        self.markets: dict[str, MarketInfo] = {}
        self._groups_cache: dict[str, tuple[str, ...]] = {}
        # the operator's pause (the sentence that says who paused, when and why), None: entries run
        self.entries_paused: str | None = None
        self.register_markets(markets)
        self.max_position_micro = to_micro(limits.max_position_size)
        self.max_exposure_micro = (self.capital_micro * to_micro(limits.max_portfolio_exposure)) // MICRO
        self.max_group_micro = (self.capital_micro * to_micro(limits.max_event_exposure)) // MICRO
        self.daily_loss_micro = to_micro(limits.daily_loss_limit)
        self.cooldown_seconds = int(round(limits.stop_loss_cooldown_hours * 3600))
        # the most an entry may lose at the bid the moment it fills, as a fraction (micro-units)
        self.max_entry_cost_micro = (
            to_micro(limits.stop_loss_percent) * to_micro(limits.max_entry_cost_share_of_stop)
        ) // MICRO

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        first_live_day: int | None = None,
        markets: Iterable[MarketInfo] = (),
        **kw,
    ) -> RiskManager:
        """The engine's constructor: limits, capital and the correlation report from ``cfg``."""
        groups = load_correlation_groups(Path(cfg.report_dir) / "correlation_groups.json")
        return cls(
            cfg.risk_limits,
            to_micro(cfg.capital),
            correlation_groups=groups,
            first_live_day=first_live_day,
            markets=markets,
            **kw,
        )

    # ------------------------------------------------------------------ groups
    def register_markets(self, markets: Iterable[MarketInfo]) -> None:
        for m in markets:
            self.markets[m.market_id] = m
            self._groups_cache.pop(m.market_id, None)

    def groups_of(self, market: MarketInfo) -> tuple[str, ...]:
        g = self._groups_cache.get(market.market_id)
        if g is None:
            g = group_keys(market, self.correlation_groups)
            self._groups_cache[market.market_id] = g
        return g

    def group_key(self, market: MarketInfo) -> str:
        """What the engine stores in ``positions.group_key`` at entry."""
        return "|".join(self.groups_of(market))

    def _holding_groups(self, h: Holding) -> tuple[str, ...]:
        m = self.markets.get(h.market_id)
        if m is not None:
            return self.groups_of(m)
        return tuple(k for k in h.group_key.split("|") if k)

    # ------------------------------------------------------------------ limits by time
    def max_positions_at(self, now: int) -> tuple[int, str]:
        """(max concurrent positions, the rule that sets it) at ``now``."""
        cap, rule = self.limits.max_positions, RULE_MAX_POSITIONS
        if self.first_live_day is not None and self.limits.ramp_up:
            day = max(0, (int(now) - int(self.first_live_day)) // DAY)
            step = None
            for s in self.limits.ramp_up:
                if s.from_day <= day:
                    step = s
            if step is None:  # before the first step: the first step applies
                step = self.limits.ramp_up[0]
            if step.max_positions < cap:
                cap, rule = step.max_positions, RULE_RAMP_UP
        return cap, rule

    def daily_loss_breached(self, account: AccountState) -> RiskDecision | None:
        """A rejection decision when today's P&L is, or was earlier today, at or below
        −daily_loss_limit, else None. Latched until 00:00 UTC: a rebound of the marks does
        not re-open entries. (The engine also uses it to trip circuit breaker #2.)"""
        pnl, worst = account.daily_pnl_range()
        if checks.daily_loss_reached(pnl, self.daily_loss_micro):
            today = checks.daily_loss(pnl, self.daily_loss_micro)
            return RiskDecision(
                False, RULE_DAILY_LOSS, f"daily_loss_limit: {today.message}; no new entries until 00:00 UTC"
            )
        if checks.daily_loss_reached(worst, self.daily_loss_micro):
            return RiskDecision(
                False,
                RULE_DAILY_LOSS,
                f"daily_loss_limit: today's P&L fell to {fmt_usd(worst, signed=True)} (now "
                f"{fmt_usd(pnl, signed=True)}), at or below -{fmt_usd(self.daily_loss_micro)}; "
                f"no new entries until 00:00 UTC",
            )
        return None

    def cooldown_breached(self, token_id: str, account: AccountState, now: int) -> RiskDecision | None:
        """A rejection when ``token_id`` was stopped out less than the cooldown ago."""
        last = account.stop_exits.get(token_id)
        if last is None or self.cooldown_seconds <= 0:
            return None
        left = int(last) + self.cooldown_seconds - int(now)
        if left <= 0:
            return None
        return RiskDecision(
            False,
            RULE_STOP_COOLDOWN,
            f"stop_loss_cooldown: token {token_id[:12]}… was stopped out "
            f"{(int(now) - int(last)) / 3600:.1f} h ago; no re-entry for "
            f"{self.limits.stop_loss_cooldown_hours:g} h ({left / 3600:.1f} h left)",
        )

    def entry_cost_breached(
        self, intent: Intent, market: MarketInfo, account: AccountState
    ) -> RiskDecision | None:
        """A rejection when buying at the best ask (at most the limit) and marking at the best
        bid loses ≥ max_entry_cost_share_of_stop × stop_loss_percent at once."""
        bid = account.marks.get(intent.token_id)
        prices = [int(x) for x in (intent.limit_price_micro, account.asks.get(intent.token_id)) if x]
        if bid is None or not prices:
            return None
        price = min(prices)
        cost = price + -(-price * _fee_fraction(market, price) // MICRO)  # per share, fee included
        frac = max(0, ((cost - int(bid)) * MICRO) // cost)
        if frac < self.max_entry_cost_micro:
            return None
        return RiskDecision(
            False,
            RULE_ENTRY_COST,
            f"entry_cost: buying at {price / MICRO:.4g} (taker fee included) and marking at the bid "
            f"{bid / MICRO:.4g} loses {frac / MICRO:.1%} at once, ≥ "
            f"{self.limits.max_entry_cost_share_of_stop:g} × the {self.limits.stop_loss_percent:.0%} "
            f"stop loss; the stop would sit inside the spread and fees",
        )

    def position_count_breached(self, account: AccountState, now: int) -> RiskDecision | None:
        """A rejection when a new position would exceed max_positions (or the ramp-up
        plan's cap for today)."""
        cap, rule = self.max_positions_at(now)
        n_open = len(account.open_positions())
        if n_open < cap:
            return None
        if rule == RULE_RAMP_UP and self.first_live_day is not None:
            why = f"day {max(0, (int(now) - int(self.first_live_day)) // DAY)} of the ramp-up plan allows "
        else:
            why = "max_positions is "
        return RiskDecision(False, rule, f"{rule}: {n_open} positions open and {why}{cap}; no new position")

    # ------------------------------------------------------------------ checks
    def check(
        self, intent: Intent, account: AccountState, market: MarketInfo | None, now: int
    ) -> RiskDecision:
        """Check one intent against the account as it is now (see the module docstring)."""
        if intent.action == EXIT:
            return self._check_exit(intent, account)
        if self.entries_paused is not None:
            return RiskDecision(
                False,
                RULE_PAUSED,
                f"paused: {self.entries_paused}; no new entry until /resume (or python trading_bot.py --resume)",
            )
        if market is None:
            market = self.markets.get(intent.market_id)
        if market is None:
            return RiskDecision(
                False,
                RULE_INVALID,
                f"invalid_intent: market {intent.market_id} is unknown to the risk manager",
            )
        breach = self.daily_loss_breached(account) or self.cooldown_breached(intent.token_id, account, now)
        if breach:
            return breach
        held = account.positions.get(intent.token_id)
        is_new = held is None or held.size_micro <= 0
        if is_new:
            breach = self.position_count_breached(account, now)
            if breach:
                return breach
        breach = self.entry_cost_breached(intent, market, account)
        if breach:
            return breach
        price = intent.limit_price_micro or MICRO  # worst case without a limit
        order = _order_notional(intent, price)
        order_text = fmt_usd(order)

        binding = _binding_cap(self._headroom(market, account, held, order, price), order)
        if binding is None:
            return self._min_size_check(
                intent, market, price, order, OK, f"ok: order {order_text} within every limit", resized=False
            )
        rule, room, total, text = binding
        sentence = f"{rule}: " + text.format(total=fmt_usd(total))
        if not self.allow_resize or room <= 0:
            return RiskDecision(False, rule, sentence)
        resized = _resize(intent, room, price)
        if resized is None:
            return RiskDecision(False, rule, sentence + "; nothing fits")
        new_order = _order_notional(resized, price)
        return self._min_size_check(
            resized,
            market,
            price,
            new_order,
            rule,
            sentence + f"; resized to {fmt_usd(new_order)}",
            resized=True,
        )

    def _headroom(
        self, market: MarketInfo, account: AccountState, held: Holding | None, order: int, price: int
    ) -> list[tuple[str, int, int, str]]:
        """Per cap: (rule, room left in $, the total the order would make, the sentence with a
        ``{total}`` placeholder) for an entry of ``order`` µUSD at ``price``."""
        order_text = fmt_usd(order)
        held_cost = held.cost_micro if held is not None and held.size_micro > 0 else 0
        caps: list[tuple[str, int, int, str]] = []
        caps.append(
            (
                RULE_POSITION_SIZE,
                self.max_position_micro - held_cost,
                held_cost + order,
                f"order {order_text} would make the position {{total}} > {fmt_usd(self.max_position_micro)}",
            )
        )
        exposure = account.exposure_micro()
        caps.append(
            (
                RULE_PORTFOLIO_EXPOSURE,
                self.max_exposure_micro - exposure,
                exposure + order,
                f"order {order_text} would make the portfolio exposure {{total}} > "
                f"{fmt_usd(self.max_exposure_micro)} ({self.limits.max_portfolio_exposure:.0%} of "
                f"capital {fmt_usd(self.capital_micro)})",
            )
        )
        for g in self.groups_of(market):
            in_group = sum(h.cost_micro for h in account.open_positions() if g in self._holding_groups(h))
            caps.append(
                (
                    RULE_EVENT_EXPOSURE,
                    self.max_group_micro - in_group,
                    in_group + order,
                    f"order {order_text} would make the exposure of group {g} {{total}} > "
                    f"{fmt_usd(self.max_group_micro)} ({self.limits.max_event_exposure:.0%} of "
                    f"capital {fmt_usd(self.capital_micro)})",
                )
            )
        fee_frac = _fee_fraction(market, price)
        spendable = (account.cash_micro * to_micro(self.limits.max_leverage)) // MICRO
        cash_room = (spendable * MICRO) // (MICRO + fee_frac) if spendable > 0 else 0
        caps.append(
            (
                RULE_LEVERAGE,
                cash_room,
                order + _fee_bound(order, fee_frac),
                f"order {order_text} plus its worst-case taker fee would spend {{total}} > cash "
                f"{fmt_usd(account.cash_micro)} (no leverage)",
            )
        )
        return caps

    def _min_size_check(
        self,
        intent: Intent,
        market: MarketInfo,
        price: int,
        order: int,
        rule: str,
        detail: str,
        *,
        resized: bool,
    ) -> RiskDecision:
        shares = intent.size_micro if intent.size_micro is not None else (order * MICRO) // price
        if shares < market.min_size_micro or order < MIN_MARKETABLE_NOTIONAL_MICRO:
            why = (
                f"min_order_size: order of {shares / MICRO:.2f} shares ({fmt_usd(order)}) is below the "
                f"market's minimum of {market.min_order_size:g} shares and $1.00"
            )
            if resized:
                why = detail + "; " + why
            return RiskDecision(False, rule if resized else RULE_MIN_SIZE, why)
        return RiskDecision(True, rule, detail, intent, resized)

    def _check_exit(self, intent: Intent, account: AccountState) -> RiskDecision:
        held = account.positions.get(intent.token_id)
        have = held.size_micro if held is not None else 0
        if have <= 0:
            return RiskDecision(
                True, RULE_EXIT, f"exit: no position in {intent.token_id} (nothing to sell)", intent
            )
        if intent.size_micro is not None and intent.size_micro > have:
            cut = intent.with_size(size_micro=have)
            return RiskDecision(
                True, RULE_EXIT, f"exit: cut to the {have / MICRO:.2f} shares held", cut, resized=True
            )
        return RiskDecision(True, RULE_EXIT, "exit: exits always pass", intent)

    def check_all(
        self, intents: Sequence[Intent], account: AccountState, markets: Mapping[str, MarketInfo], now: int
    ) -> list[RiskDecision]:
        """Check a batch in order, exits first, each approved entry counted against the
        next ones as if filled at its limit price (its notional added to cost basis
        and exposure, notional + worst fee taken from cash). Returns decisions in
        the order of ``intents``."""
        order = sorted(range(len(intents)), key=lambda i: 0 if intents[i].action == EXIT else 1)
        decisions: list[RiskDecision | None] = [None] * len(intents)
        cash = account.cash_micro
        positions = dict(account.positions)
        for i in order:
            it = intents[i]
            state = replace(account, cash_micro=cash, positions=positions)
            d = self.check(it, state, markets.get(it.market_id), now)
            decisions[i] = d
            if d.approved and d.intent is not None and d.intent.action == ENTER:
                m = markets.get(it.market_id) or self.markets.get(it.market_id)
                price = d.intent.limit_price_micro or MICRO
                notional = _order_notional(d.intent, price)
                shares = d.intent.size_micro if d.intent.size_micro is not None else notional * MICRO // price
                fee = _fee_bound(notional, _fee_fraction(m, price)) if m is not None else 0
                cash -= notional + fee
                h = positions.get(it.token_id)
                if h is not None and h.size_micro > 0:
                    positions[it.token_id] = replace(
                        h, size_micro=h.size_micro + shares, cost_micro=h.cost_micro + notional + fee
                    )
                else:
                    positions[it.token_id] = Holding(
                        it.token_id,
                        it.market_id,
                        shares,
                        notional + fee,
                        now,
                        it.strategy,
                        self.group_key(m) if m else "",
                    )
            elif d.approved and d.intent is not None and d.intent.action == EXIT:
                pass  # an exit frees nothing until it fills (pessimistic)
        return [d for d in decisions if d is not None]

    # ------------------------------------------------------------------ stops
    def stop_losses(
        self,
        positions: Iterable[Holding],
        marks: Mapping[str, int],
        markets: Callable[[str], MarketInfo | None] | None = None,
    ) -> list[StopLossHit]:
        return stop_loss_hits(positions, marks, self.limits.stop_loss_percent, markets)


# ----------------------------------------------------------------------------- helpers
def _binding_cap(caps: list[tuple[str, int, int, str]], order: int) -> tuple[str, int, int, str] | None:
    """Of the caps ``order`` exceeds, the one with the least room left (room floored at 0);
    None when the order fits every cap."""
    binding = None
    for rule, room, total, text in caps:
        room = max(0, room)
        if order > room and (binding is None or room < binding[1]):
            binding = (rule, room, total, text)
    return binding


def _order_notional(intent: Intent, price_micro: int) -> int:
    """The intent's USD: its ``notional_micro``, else price × its shares."""
    if intent.notional_micro is not None:
        return intent.notional_micro
    # Intent.__post_init__ guarantees exactly one of notional_micro / size_micro is set.
    assert intent.size_micro is not None
    return notional_micro(price_micro, intent.size_micro)


def _fee_fraction(market: MarketInfo | None, price_micro: int) -> int:
    """Worst-case taker fee per $1 of notional at ``price_micro``, in micro-units:
    fee / notional = rate × (1 − p) × (p(1 − p))^(e − 1)."""
    if market is None or not market.fee.enabled or not market.fee.rate:
        return 0
    p = min(max(price_micro, 1), MICRO - 1) / MICRO
    frac = market.fee.rate * (1 - p) * (p * (1 - p)) ** (market.fee.exponent - 1)
    return int(frac * MICRO) + 10  # + one fee-rounding unit


def _fee_bound(notional: int, fee_frac: int) -> int:
    return -(-notional * fee_frac // MICRO)


def _resize(intent: Intent, room_micro: int, price_micro: int) -> Intent | None:
    """The intent shrunk so its notional ≤ room (shares down to 2 dp, $ down to the cent)."""
    if intent.notional_micro is not None:
        amount = (room_micro // 10_000) * 10_000
        return intent.with_size(notional_micro=amount) if amount > 0 else None
    shares = round_size_down(room_micro * MICRO // price_micro)
    while shares > 0 and notional_micro(price_micro, shares) > room_micro:
        shares -= 10_000
    return intent.with_size(size_micro=shares) if shares > 0 else None


__all__ = [
    "AccountState",
    "RiskDecision",
    "RiskManager",
    "StopLossHit",
    "group_keys",
    "load_correlation_groups",
    "sellable",
    "stop_loss_hits",
    "OK",
    "RULE_EXIT",
    "RULE_DAILY_LOSS",
    "RULE_STOP_COOLDOWN",
    "RULE_ENTRY_COST",
    "RULE_MAX_POSITIONS",
    "RULE_RAMP_UP",
    "RULE_POSITION_SIZE",
    "RULE_PORTFOLIO_EXPOSURE",
    "RULE_EVENT_EXPOSURE",
    "RULE_LEVERAGE",
    "RULE_MIN_SIZE",
    "RULE_INVALID",
    "BUY",
    "SELL",
]
