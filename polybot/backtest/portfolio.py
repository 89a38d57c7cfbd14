"""The backtest ledger: cash, positions, fills, settlements and round trips (micro-units).

Accounting (identical to the positions table's meaning):
- BUY: cash −= notional + fee; position size += shares; cost basis += notional + fee.
- SELL: cash += notional − fee; the cost basis of the shares sold (cost × sold /
  size, rounded half-up) leaves the position; realised P&L = proceeds − that cost.
- Settlement at resolution: cash += shares × payout (1 / 0 / 0.5), no fee.
- A round trip (a "trade" in the report) runs from the first buy of a flat token
  to the moment it is flat again; its P&L = everything received − everything paid
  (fees included). ``cash == initial + Σ fills' cash deltas + Σ settlements``
  holds exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from polybot.domain import BUY, Holding, PortfolioView
from polybot.exchange.fills import FillResult
from polybot.money import MICRO, notional_micro


@dataclass(frozen=True)
class FillRecord:
    timestamp: int
    token_id: str
    market_id: str
    side: str
    price_micro: int  # average price of the order's fills
    size_micro: int
    notional_micro: int
    fee_micro: int
    cash_delta_micro: int
    realized_pnl_micro: int | None
    reason: str
    backfilled_book: bool = False


@dataclass(frozen=True)
class Settlement:
    timestamp: int
    token_id: str
    market_id: str
    size_micro: int
    payout: float
    value_micro: int
    realized_pnl_micro: int


@dataclass
class RoundTrip:
    token_id: str
    market_id: str
    opened_at: int
    entry_reason: str
    paid_micro: int = 0  # Σ buys: notional + fee
    received_micro: int = 0  # Σ sells: notional − fee, + settlement value
    fees_micro: int = 0
    closed_at: int | None = None
    exit_reason: str = ""
    max_cost_micro: int = 0

    @property
    def pnl_micro(self) -> int:
        return self.received_micro - self.paid_micro

    @property
    def return_fraction(self) -> float:
        return self.pnl_micro / self.paid_micro if self.paid_micro else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "market_id": self.market_id,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "paid": self.paid_micro / MICRO,
            "received": self.received_micro / MICRO,
            "fees": self.fees_micro / MICRO,
            "pnl": self.pnl_micro / MICRO,
            "return": round(self.return_fraction, 6),
            "entry_reason": self.entry_reason,
            "exit_reason": self.exit_reason,
        }


class Ledger:
    def __init__(self, capital_micro: int, strategy: str = ""):
        self.initial_micro = int(capital_micro)
        self.cash_micro = int(capital_micro)
        self.strategy = strategy
        self.positions: dict[str, Holding] = {}
        self.fills: list[FillRecord] = []
        self.settlements: list[Settlement] = []
        self.open_trips: dict[str, RoundTrip] = {}
        self.closed_trips: list[RoundTrip] = []
        self.fees_micro = 0

    # ------------------------------------------------------------------ views
    def portfolio_view(self) -> PortfolioView:
        return PortfolioView(self.cash_micro, dict(self.positions))

    def equity_micro(self, marks: dict[str, int]) -> int:
        total = self.cash_micro
        for t, h in self.positions.items():
            m = marks.get(t)
            total += h.cost_micro if m is None else notional_micro(m, h.size_micro)
        return total

    def exposure_micro(self) -> int:
        return sum(h.cost_micro for h in self.positions.values())

    # ------------------------------------------------------------------ changes
    def apply_fill(
        self,
        ts: int,
        token_id: str,
        market_id: str,
        r: FillResult,
        reason: str,
        group_key: str = "",
        backfilled_book: bool = False,
    ) -> FillRecord | None:
        if not r.size_micro:
            return None
        delta = r.cash_delta_micro
        self.cash_micro += delta
        self.fees_micro += r.fee_micro
        h = self.positions.get(token_id)
        realized = None
        if r.side == BUY:
            if h is None:
                h = Holding(token_id, market_id, 0, 0, ts, self.strategy, group_key)
                self.open_trips[token_id] = RoundTrip(token_id, market_id, ts, reason)
            h = replace(h, size_micro=h.size_micro + r.size_micro, cost_micro=h.cost_micro - delta)
            self.positions[token_id] = h
            trip = self.open_trips[token_id]
            trip.paid_micro += -delta
            trip.fees_micro += r.fee_micro
            trip.max_cost_micro = max(trip.max_cost_micro, h.cost_micro)
        else:
            if h is None or h.size_micro < r.size_micro:
                raise ValueError(f"sell of {r.size_micro} micro-shares of {token_id} exceeds the position")
            cost_out = _prorate(h.cost_micro, r.size_micro, h.size_micro)
            realized = delta - cost_out
            left = h.size_micro - r.size_micro
            trip = self.open_trips[token_id]
            trip.received_micro += delta
            trip.fees_micro += r.fee_micro
            if left == 0:
                del self.positions[token_id]
                self._close(token_id, ts, reason)
            else:
                self.positions[token_id] = replace(h, size_micro=left, cost_micro=h.cost_micro - cost_out)
        rec = FillRecord(
            ts,
            token_id,
            market_id,
            r.side,
            r.avg_price_micro or 0,
            r.size_micro,
            r.notional_micro,
            r.fee_micro,
            delta,
            realized,
            reason,
            backfilled_book,
        )
        self.fills.append(rec)
        return rec

    def settle(self, ts: int, market_id: str, payouts: dict[str, Any]) -> list[Settlement]:
        """Redeem every position of ``market_id`` at its payout (missing token → 0)."""
        return [
            self.settle_token(ts, token_id, float(payouts.get(token_id, 0.0)))
            for token_id in sorted(t for t, h in self.positions.items() if h.market_id == market_id)
        ]

    def settle_token(self, ts: int, token_id: str, payout: float, reason: str = "") -> Settlement:
        """Close one position at ``payout`` per share, no fee."""
        h = self.positions.pop(token_id)
        value = notional_micro(int(round(payout * MICRO)), h.size_micro)
        self.cash_micro += value
        s = Settlement(ts, token_id, h.market_id, h.size_micro, payout, value, value - h.cost_micro)
        self.settlements.append(s)
        self.open_trips[token_id].received_micro += value
        self._close(token_id, ts, reason or f"settled at {payout:g}")
        return s

    def _close(self, token_id: str, ts: int, reason: str) -> None:
        trip = self.open_trips.pop(token_id)
        trip.closed_at = ts
        trip.exit_reason = reason
        self.closed_trips.append(trip)


def _prorate(cost: int, part: int, whole: int) -> int:
    """cost × part / whole rounded half-up (whole when part == whole)."""
    if part >= whole:
        return cost
    q, r = divmod(cost * part, whole)
    return q + (1 if 2 * r >= whole else 0)
