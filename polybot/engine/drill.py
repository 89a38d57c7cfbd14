"""``drill``: a deterministic strategy that exercises the execution path on the simulator.

It is NOT a trading strategy. It buys a small amount of one liquid token at a time
(rotating through the universe), holds it ``hold_seconds`` and sells it, so that
drills, operator scenario scripts and crash tests see orders, fills, exits and
settlements within minutes. It refuses to run against a real exchange: the engine
only accepts it when every base URL points at the local machine (the simulator).

Pure like every strategy: its intents depend only on (view, portfolio).
"""

from __future__ import annotations

from typing import Any, ClassVar

from polybot.domain import BUY, ENTER, EXIT, SELL, Holding, Intent, MarketInfo, PortfolioView
from polybot.money import MICRO
from polybot.strategy import registry
from polybot.strategy.base import (
    MarketView,
    Strategy,
    limit_for_buy,
    limit_for_sell,
)
from polybot.strategy.common import taker_fee_per_share

NAME = "drill"


class Drill(Strategy):
    name = NAME
    DESCRIPTION = "simulator drills only: rotate small buys and timed exits"
    PARAMS: ClassVar[dict[str, Any]] = {
        "size_usd": 10.0,  # notional per entry
        "max_holdings": 2,  # concurrent positions it tries to hold
        "hold_seconds": 600,  # exchange-clock seconds before it exits
        "slippage_ticks": 2,
        "min_price": 0.2,
        "max_price": 0.8,
        "max_spread": 0.05,
        "entries_per_decision": 1,
        "max_entry_cost": 1.0,  # skip books whose instant loss at the bid (spread + fee) is ≥ this
    }

    def check_params(self) -> None:
        if self.params["size_usd"] <= 0:
            self.bad("size_usd", "must be > 0")
        if self.params["hold_seconds"] < 0:
            self.bad("hold_seconds", "must be ≥ 0")

    @property
    def history_seconds(self) -> int:
        return 3600

    def decide(self, view: MarketView, portfolio: PortfolioView) -> list[Intent]:
        held = {t: h for t, h in portfolio.positions.items() if h.size_micro > 0}
        out = self._exits(view, held)
        room = self.params["max_holdings"] - (len(held) - len(out))
        if room <= 0:
            return out
        return out + self._entries(view, self._candidates(view, held), room)

    def _exits(self, view: MarketView, held: dict[str, Holding]) -> list[Intent]:
        """Sell every holding kept ``hold_seconds`` that has a bid (one intent per token)."""
        p = self.params
        out: list[Intent] = []
        for token, h in sorted(held.items()):
            q = view.quote(token)
            if view.now - h.opened_at < p["hold_seconds"] or q is None or q.best_bid is None:
                continue
            m = view.market_of(token)
            tick = m.tick_size if m else 0.01
            out.append(
                Intent(
                    action=EXIT,
                    token_id=token,
                    market_id=h.market_id,
                    side=SELL,
                    size_micro=h.size_micro,
                    limit_price_micro=limit_for_sell(q.best_bid, tick, p["slippage_ticks"]),
                    reason=f"drill: held {view.now - h.opened_at} s",
                    strategy=self.name,
                )
            )
        return out

    def _candidates(self, view: MarketView, held: dict[str, Holding]) -> list[tuple[str, MarketInfo, float]]:
        """(token, market, best ask) of the fresh two-sided books within the price, spread and
        entry-cost bounds, in markets the drill does not hold."""
        p = self.params
        held_markets = {h.market_id for h in held.values()}
        candidates = []
        for token in sorted(view.token_ids):
            q = view.quote(token)
            m = view.market_of(token)
            if q is None or m is None or q.backfilled or q.best_bid is None or q.best_ask is None:
                continue
            if token in held or m.market_id in held_markets or view.is_resolved(m.market_id):
                continue
            if not (p["min_price"] <= q.best_ask <= p["max_price"]) or q.spread > p["max_spread"] + 1e-9:
                continue
            if q.age(view.now) > 3 * view.interval_seconds:
                continue
            if p["max_entry_cost"] < 1.0:
                # the risk manager's entry_cost rule: buy at the ask, pay the fee, mark at the bid
                fee = taker_fee_per_share(m, q.best_ask) / q.best_ask
                if 1 - q.best_bid / (q.best_ask * (1 + fee)) >= p["max_entry_cost"]:
                    continue
            candidates.append((token, m, q.best_ask))
        return candidates

    def _entries(
        self, view: MarketView, candidates: list[tuple[str, MarketInfo, float]], room: int
    ) -> list[Intent]:
        """Buy into up to ``room`` (and ``entries_per_decision``) candidates, one per market,
        rotating the starting point with the clock."""
        p = self.params
        out: list[Intent] = []
        if not candidates:
            return out
        period = max(1, int(p["hold_seconds"]) or 60)
        start = (view.now // period) % len(candidates)
        picked: set[str] = set()
        for k in range(len(candidates)):
            if len(picked) >= min(room, p["entries_per_decision"]):
                break
            token, m, ask = candidates[(start + k) % len(candidates)]
            if m.market_id in picked:
                continue
            picked.add(m.market_id)
            out.append(
                Intent(
                    action=ENTER,
                    token_id=token,
                    market_id=m.market_id,
                    side=BUY,
                    notional_micro=int(round(p["size_usd"] * MICRO)),
                    limit_price_micro=limit_for_buy(ask, m.tick_size, p["slippage_ticks"]),
                    reason=f"drill: rotate into {m.short_label()}",
                    strategy=self.name,
                )
            )
        return out


def register_drill() -> None:
    """Add ``drill`` to the strategy registry (after the built-ins, which the registry
    only loads while it is empty)."""
    registry.strategy_names()  # loads the built-ins first
    if NAME not in registry.STRATEGIES:
        registry.register(Drill)
