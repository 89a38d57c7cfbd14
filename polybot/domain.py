"""The shared domain vocabulary: one definition of each fact several packages pass around.

The bottom layer of the package (see docs/dev/architecture.md): it imports nothing from
polybot except :mod:`polybot.money`, so every other module may import it.

Named values are ``enum.StrEnum``: a member IS its string (``Side.BUY == "BUY"``,
``f"{OrderState.LIVE}" == "LIVE"``, SQLite stores it as that text, JSON writes it as that
text), so rows and API payloads written before these types existed compare equal to
them. The values are part of the database and of the exchange's API: never change one.

Two different facts share names and must not be confused:

- :class:`ExchangeOrderStatus` — what the EXCHANGE says about an order, in its own
  lower-case words (``"live"``, ``"matched"``, ...), as :class:`polybot.exchange.base.OrderResult`
  and ``OrderStatus`` carry it (``orders.exchange_status`` stores it verbatim);
- :class:`OrderState` — OUR order row's state in the ``orders`` table (``"LIVE"``,
  ``"PARTIALLY_FILLED"``, ...), driven by the state machine in :mod:`polybot.engine.orders`.

A fill's :class:`TradeStatus` (``"MATCHED"`` … ``"CONFIRMED"``) is the exchange's word and the
stored word alike (``trades.trade_status``), so it is a single enum.

The records (:class:`Intent`, :class:`MarketInfo`, :class:`Holding`,
:class:`PortfolioView`, :class:`FeeSchedule`) are what strategies, the risk manager, the
backtester and the engine hand each other. Money is integer micro-units.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from polybot.money import MICRO, average_price_micro


# ----------------------------------------------------------------------------- named values
class Side(StrEnum):
    """An order's side. Polymarket has no short selling: a SELL sells shares held."""

    BUY = "BUY"
    SELL = "SELL"


BUY, SELL = Side.BUY, Side.SELL  # the short names every module uses


class Action(StrEnum):
    """What a strategy's :class:`Intent` asks for: ENTER (a BUY) or EXIT (a SELL of shares held)."""

    ENTER = "ENTER"
    EXIT = "EXIT"


ENTER, EXIT = Action.ENTER, Action.EXIT


class ExchangeOrderStatus(StrEnum):
    """The exchange's status of an order, normalised to lower case (the CLOB's own words).

    After placement (``OrderResult.status``): LIVE, MATCHED, DELAYED, UNMATCHED, REJECTED.
    Later (``OrderStatus.status``, from a lookup) also CANCELED and EXPIRED.
    """

    LIVE = "live"  # accepted, resting on the book (maybe partly filled)
    MATCHED = "matched"  # accepted and filled at placement (FAK: what could fill)
    DELAYED = "delayed"  # accepted, matching delayed by the exchange (taker delay)
    UNMATCHED = "unmatched"  # accepted but nothing filled and nothing rests
    REJECTED = "rejected"  # definitively refused; nothing happened
    CANCELED = "canceled"  # no longer on the book, cancelled (by us or the exchange)
    EXPIRED = "expired"  # a GTD order past its expiration


class OrderState(StrEnum):
    """Our ``orders`` row's state (upper case; stored in SQLite — never change a value).

    The transitions are documented in :mod:`polybot.engine.orders`.
    """

    PENDING_SUBMIT = "PENDING_SUBMIT"  # signed and recorded, not sent yet
    LIVE = "LIVE"  # accepted by the exchange, nothing filled yet
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"  # sent, outcome unknown (timeout/5xx): resolved by lookup
    EXPIRED = "EXPIRED"


class TradeStatus(StrEnum):
    """A fill's (trade's) settlement status: the CLOB's own words (upper case, REST's
    ``TRADE_STATUS_`` prefix removed), which :class:`polybot.exchange.base.Fill` carries and
    ``trades.trade_status`` stores verbatim — one fact, so one enum (never change a value).

    MATCHED → MINED → CONFIRMED (final), or → RETRYING → FAILED (final: never settled on chain,
    the ledger undoes it); also MATCHED_NOT_BROADCASTED (py-sdk ``models/clob/account.py``;
    docs/dev/api_notes.md §5). Paper fills and settlements are CONFIRMED at once.
    """

    MATCHED = "MATCHED"
    MATCHED_NOT_BROADCASTED = "MATCHED_NOT_BROADCASTED"
    MINED = "MINED"
    CONFIRMED = "CONFIRMED"
    RETRYING = "RETRYING"
    FAILED = "FAILED"


# Anything but CONFIRMED / FAILED may still change: provisional.
PROVISIONAL_TRADE_STATUSES = (
    TradeStatus.MATCHED,
    TradeStatus.MATCHED_NOT_BROADCASTED,
    TradeStatus.MINED,
    TradeStatus.RETRYING,
)
FINAL_TRADE_STATUSES = (TradeStatus.CONFIRMED, TradeStatus.FAILED)


# ----------------------------------------------------------------------------- fees
@dataclass(frozen=True)
class FeeSchedule:
    """Taker fee = shares × rate × (p(1−p))^exponent. Makers never pay."""

    rate: float = 0.0
    exponent: float = 1.0
    taker_only: bool = True
    rebate_rate: float = 0.0
    enabled: bool = False

    @property
    def effective_rate(self) -> float:
        return self.rate if self.enabled else 0.0


# ----------------------------------------------------------------------------- intents
@dataclass(frozen=True)
class Intent:
    """What a strategy wants done. Money in integer micro-units.

    - ``action`` ENTER (open or add to a position: side must be BUY) or EXIT
      (reduce/close a position: side must be SELL, ``size_micro`` shares).
    - Exactly one of ``size_micro`` (shares) or ``notional_micro`` (USD to
      spend, BUY only) is set.
    - ``limit_price_micro``: the worst price accepted (a BUY pays at most it, a
      SELL gets at least it); ``None`` = any price (exits that must happen).
    - ``reason``: a short human sentence, stored with the order and trade.
    - ``tag``: the strategy's own machine label (e.g. the pair), never sent anywhere.
    """

    action: str
    token_id: str
    market_id: str
    side: str
    size_micro: int | None = None
    notional_micro: int | None = None
    limit_price_micro: int | None = None
    reason: str = ""
    strategy: str = ""
    tag: str = ""

    def __post_init__(self) -> None:
        if self.action not in tuple(Action):
            raise ValueError(f"Intent.action must be ENTER or EXIT, got {self.action!r}")
        if self.action == Action.ENTER and self.side != Side.BUY:
            raise ValueError("an ENTER intent must be a BUY (Polymarket has no short selling)")
        if self.action == Action.EXIT and self.side != Side.SELL:
            raise ValueError("an EXIT intent must be a SELL of shares held")
        if (self.size_micro is None) == (self.notional_micro is None):
            raise ValueError("give exactly one of Intent.size_micro (shares) or notional_micro (USD)")
        if self.notional_micro is not None and self.side != Side.BUY:
            raise ValueError("Intent.notional_micro (USD) is for BUYs; give a SELL in shares")
        for name in ("size_micro", "notional_micro"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ValueError(f"Intent.{name} must be a positive integer of micro-units, got {v!r}")
        p = self.limit_price_micro
        if p is not None and (not isinstance(p, int) or not 0 < p < MICRO):
            raise ValueError(f"Intent.limit_price_micro must be an integer in (0, 1_000_000), got {p!r}")

    @property
    def is_entry(self) -> bool:
        return self.action == Action.ENTER

    def with_size(self, *, size_micro: int | None = None, notional_micro: int | None = None) -> Intent:
        """A copy with a new size (used by the risk manager when it resizes)."""
        return replace(self, size_micro=size_micro, notional_micro=notional_micro)

    def estimated_price_micro(self, fallback_micro: int | None = None) -> int | None:
        return self.limit_price_micro if self.limit_price_micro is not None else fallback_micro


# ----------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class MarketInfo:
    """Static metadata of one market (a ``markets`` row). No outcome, no status.

    What changes over time and could leak the future — ``closed``, ``payouts``,
    ``resolved_at`` — is deliberately NOT here: ask the view
    (``view.is_resolved(market_id)``), which answers for ``view.now``.
    """

    market_id: str
    question: str = ""
    token_ids: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    event_id: str | None = None
    event_title: str | None = None
    neg_risk: bool = False
    neg_risk_market_id: str | None = None
    end_date: int | None = None  # epoch seconds UTC (scheduled end)
    tick_size: float = 0.01
    min_order_size: float = 5.0
    fee: FeeSchedule = field(default_factory=FeeSchedule)

    @property
    def primary_token(self) -> str | None:
        """The YES / first outcome token (the one series per market we analyse)."""
        return self.token_ids[0] if self.token_ids else None

    @property
    def tick_micro(self) -> int:
        return int(round(self.tick_size * MICRO))

    @property
    def min_size_micro(self) -> int:
        return int(round(self.min_order_size * MICRO))

    def short_label(self, width: int = 28) -> str:
        q = (self.question or self.market_id).strip()
        return q if len(q) <= width else q[: width - 1] + "…"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MarketInfo:
        """Build from a ``markets`` row (sqlite3.Row or dict)."""
        keys = row.keys() if hasattr(row, "keys") else row

        def get(k: str, d: Any = None) -> Any:
            return row[k] if k in keys and row[k] is not None else d

        token_ids = get("token_ids", "[]")
        outcomes = get("outcomes", "[]")
        token_ids = tuple(json.loads(token_ids) if isinstance(token_ids, str) else token_ids)
        outcomes = tuple(json.loads(outcomes) if isinstance(outcomes, str) else outcomes)
        fee = FeeSchedule(
            rate=float(get("fee_rate", 0.0)),
            exponent=float(get("fee_exponent", 1.0)),
            enabled=bool(get("fees_enabled", 0)),
        )
        end = get("end_date")
        return cls(
            market_id=str(row["id"]),
            question=str(get("question", "")),
            token_ids=tuple(str(t) for t in token_ids),
            outcomes=tuple(str(o) for o in outcomes),
            event_id=get("event_id"),
            event_title=get("event_title"),
            neg_risk=bool(get("neg_risk", 0)),
            neg_risk_market_id=get("neg_risk_market_id"),
            end_date=int(end) if end is not None else None,
            tick_size=float(get("tick_size", 0.01)),
            min_order_size=float(get("min_order_size", 5.0)),
            fee=fee,
        )


# ----------------------------------------------------------------------------- portfolio
@dataclass(frozen=True)
class Holding:
    """One open position (mirrors the ``positions`` table). Micro-units."""

    token_id: str
    market_id: str
    size_micro: int  # shares held
    cost_micro: int  # cost basis incl. buy fees of the shares held
    opened_at: int  # epoch s of the first fill
    strategy: str = ""
    group_key: str = ""  # "|"-joined risk groups at entry (see polybot.risk)

    @property
    def avg_price_micro(self) -> int:
        return average_price_micro(self.cost_micro, self.size_micro)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Holding:
        keys = row.keys() if hasattr(row, "keys") else row
        return cls(
            token_id=str(row["token_id"]),
            market_id=str(row["market_id"]),
            size_micro=int(row["size_micro"]),
            cost_micro=int(row["cost_micro"]),
            opened_at=int(row["opened_at"]),
            strategy=str(row["strategy"] or "") if "strategy" in keys else "",
            group_key=str(row["group_key"] or "") if "group_key" in keys else "",
        )


@dataclass(frozen=True)
class PortfolioView:
    """What a strategy may know about the account: cash and open positions."""

    cash_micro: int
    positions: Mapping[str, Holding] = field(default_factory=dict)  # token → Holding

    def holds(self, token_id: str) -> bool:
        h = self.positions.get(token_id)
        return h is not None and h.size_micro > 0

    def market_ids(self) -> set[str]:
        return {h.market_id for h in self.positions.values() if h.size_micro > 0}
