"""Typed models of Polymarket data. Prices/sizes from the wire are strings; the
models hold floats for market data and micro-unit integers where money settles
(see polybot/money.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from polybot.domain import FeeSchedule  # noqa: F401  (a market fact, defined in domain; re-exported)

# Where an exchange finds a token's fee schedule: a token → schedule map, or a lookup
# function (None: unknown, read it from the market).
FeeSource: TypeAlias = Mapping[str, FeeSchedule] | Callable[[str], FeeSchedule | None]


@dataclass(frozen=True)
class OutcomeToken:
    token_id: str
    outcome: str
    index: int
    price: float | None = None  # last displayed price (Gamma outcomePrices)
    winner: bool | None = None  # CLOB tokens[].winner when resolved


@dataclass(frozen=True)
class Market:
    id: str  # Gamma id
    condition_id: str
    question: str
    slug: str
    tokens: tuple[OutcomeToken, ...]
    version: str = "v1"  # "v1" (clobTokenIds) or "v2" (positionIds)
    event_id: str | None = None
    event_title: str | None = None
    neg_risk: bool = False
    neg_risk_market_id: str | None = None
    end_date: int | None = None  # epoch seconds UTC
    active: bool = True
    closed: bool = False
    archived: bool = False
    accepting_orders: bool = True
    enable_order_book: bool = True
    tick_size: float = 0.01
    min_order_size: float = 5.0
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    volume_24h: float = 0.0
    liquidity: float = 0.0
    best_bid: float | None = None
    best_ask: float | None = None
    last_trade_price: float | None = None
    uma_resolution_status: str | None = None
    # Settlement payout per token id (1.0 / 0.0 / 0.5) once the market is resolved
    # (umaResolutionStatus == "resolved" or a CLOB winner flag), else None.
    payouts: dict | None = None
    tags: tuple[str, ...] = ()
    # --- additions (all optional, appended so positional construction still works)
    question_id: str | None = None
    start_date: int | None = None  # epoch seconds UTC
    closed_time: int | None = None  # epoch seconds UTC (Gamma closedTime)
    volume: float = 0.0  # lifetime volume (USDC)
    fee_type: str | None = None  # e.g. "politics_fees", "crypto_fees"
    uma_resolution_statuses: tuple[str, ...] = ()

    @property
    def resolved(self) -> bool:
        return self.payouts is not None

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(t.token_id for t in self.tokens)


@dataclass(frozen=True)
class BookLevel:
    price: float
    size: float


@dataclass(frozen=True)
class OrderBook:
    """An order book with levels sorted BEST FIRST on both sides (the wire sends
    bids ascending and asks descending, best last — parsers reverse them)."""

    token_id: str
    market: str  # condition id
    timestamp_ms: int
    bids: tuple[BookLevel, ...]  # best (highest) first
    asks: tuple[BookLevel, ...]  # best (lowest) first
    tick_size: float = 0.01
    min_order_size: float = 5.0
    neg_risk: bool = False
    last_trade_price: float | None = None
    hash: str = ""

    @property
    def best_bid(self) -> float | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> float | None:
        if self.bids and self.asks:
            return (self.bids[0].price + self.asks[0].price) / 2
        return None

    @property
    def spread(self) -> float | None:
        if self.bids and self.asks:
            return self.asks[0].price - self.bids[0].price
        return None


@dataclass(frozen=True)
class PricePoint:
    t: int  # epoch seconds
    p: float


# ---------------------------------------------------------------------------
# Additions for the read side (parsers in polybot/exchange/parse.py).
# Market data (prices, depth) are floats; anything that settles (position sizes,
# trade sizes/prices, order amounts, values) is integer micro-units.


@dataclass(frozen=True)
class ParseIssue:
    """One record a list parser skipped (or a non-fatal oddity), with the reason."""

    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.record_id}: {self.reason}"


@dataclass(frozen=True)
class Event:
    """A Gamma event (a group of markets, e.g. one neg-risk multi-outcome question)."""

    id: str
    slug: str
    title: str
    markets: tuple[Market, ...] = ()
    neg_risk: bool = False
    neg_risk_market_id: str | None = None
    active: bool = True
    closed: bool = False
    end_date: int | None = None
    volume_24h: float = 0.0
    liquidity: float = 0.0
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LastTrade:
    token_id: str
    price: float
    side: str | None = None  # "BUY" / "SELL" (taker side) when given


@dataclass(frozen=True)
class Position:
    """A Data-API position (v1 camelCase or v2 snake_case), money in micro-units."""

    token_id: str
    condition_id: str
    size: int  # shares, micro
    avg_price: int  # micro USDC per share
    initial_value: int = 0  # micro USDC
    current_value: int = 0  # micro USDC
    cash_pnl: int = 0  # unrealized, micro USDC
    realized_pnl: int = 0  # micro USDC
    total_bought: int = 0  # shares, micro
    cur_price: float | None = None  # market data
    redeemable: bool = False
    mergeable: bool = False
    outcome: str = ""
    outcome_index: int | None = None
    opposite_token_id: str | None = None
    title: str = ""
    slug: str = ""
    event_slug: str = ""
    end_date: int | None = None
    negative_risk: bool = False
    status: str | None = None  # v2: OPEN | REDEEMABLE | REDEEMABLE_LOST | MERGEABLE | CLOSED
    proxy_wallet: str = ""


@dataclass(frozen=True)
class UserTrade:
    """A Data-API trade row (public, v1 or v2 shape)."""

    token_id: str
    condition_id: str
    side: str  # BUY / SELL
    size: int  # shares, micro
    price: int  # micro USDC per share
    timestamp: int  # epoch seconds
    outcome: str = ""
    outcome_index: int | None = None
    transaction_hash: str = ""
    proxy_wallet: str = ""
    title: str = ""
    slug: str = ""


@dataclass(frozen=True)
class ClobTrade:
    """A CLOB ``/data/trades`` row (authenticated), money in micro-units."""

    id: str
    market: str  # condition id
    asset_id: str  # token id
    side: str
    size: int  # shares, micro
    price: int  # micro USDC per share
    status: str  # MATCHED, MINED, CONFIRMED, RETRYING, FAILED (prefix stripped)
    match_time: int | None = None  # epoch seconds
    last_update: int | None = None
    fee_rate_bps: int = 0
    outcome: str = ""
    taker_order_id: str = ""
    trader_side: str = ""  # TAKER / MAKER
    owner: str = ""
    maker_address: str = ""
    transaction_hash: str = ""
    bucket_index: int | None = None
    maker_orders: tuple = ()  # raw dicts, as sent


@dataclass(frozen=True)
class OpenOrder:
    """A CLOB ``/data/orders`` row, money in micro-units."""

    id: str
    status: str
    market: str
    asset_id: str
    side: str
    original_size: int  # shares, micro
    size_matched: int  # shares, micro
    price: int  # micro USDC per share
    outcome: str = ""
    order_type: str = ""
    expiration: int | None = None  # epoch seconds, None = no expiry
    created_at: int | None = None
    maker_address: str = ""
    owner: str = ""
    associate_trades: tuple[str, ...] = ()

    @property
    def size_remaining(self) -> int:
        return max(0, self.original_size - self.size_matched)


@dataclass(frozen=True)
class Page:
    """One page of a cursor-paginated list; ``next_cursor`` None on the last page."""

    items: tuple
    next_cursor: str | None = None
    issues: tuple[ParseIssue, ...] = ()


ACCEPTED_ORDER_STATUSES = ("live", "matched", "delayed")


@dataclass(frozen=True)
class OrderPostResult:
    """The answer to ``POST /order``. ``making_amount``/``taking_amount`` are micro-units
    read from the wire as DECIMAL amounts (see parse_order_post_response)."""

    success: bool
    order_id: str
    status: str  # live | matched | delayed | unmatched
    making_amount: int = 0
    taking_amount: int = 0
    error_msg: str = ""
    trade_ids: tuple[str, ...] = ()
    transaction_hashes: tuple[str, ...] = ()
    raw_making_amount: str = ""  # as sent (decimal vs base units is unverified)
    raw_taking_amount: str = ""

    @property
    def accepted(self) -> bool:
        """Accepted (docs/dev/api_notes.md §4): success, no errorMsg, an orderID, status live/matched/delayed."""
        return (
            self.success
            and not self.error_msg
            and bool(self.order_id)
            and self.status in ACCEPTED_ORDER_STATUSES
        )


@dataclass(frozen=True)
class CancelResult:
    canceled: tuple[str, ...] = ()
    not_canceled: dict = field(default_factory=dict)  # order id -> reason


@dataclass(frozen=True)
class ApiErrorBody:
    """An error body ``{"error": ..., "code"?: ..., "retry_after_seconds"?: ...}``."""

    message: str
    code: str | None = None
    retry_after_seconds: float | None = None
