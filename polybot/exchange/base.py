"""The exchange interface the trading engine uses (paper and live alike).

Crash safety is the point of the design (docs/dev/api_notes.md §13):

1. ``prepare(request)`` builds and signs the order ONCE and returns a
   :class:`PreparedOrder` whose ``payload_json`` is exactly what ``submit`` will
   send and whose ``order_hash`` is the id the exchange will know it by. Nothing
   has been sent yet.
2. The engine persists the prepared order (``to_json()``) with status
   PENDING_SUBMIT and COMMITS.
3. ``submit(prepared)`` sends that payload. Its outcome is one of:
   - an :class:`OrderResult` — ``live``/``matched``/``delayed`` (accepted),
     ``unmatched`` (accepted but killed: nothing rests, nothing filled) or
     ``rejected`` (definitively refused; ``error`` says why);
   - ``OrderOutcomeUnknown`` — the request may have reached the exchange
     (timeout, 5xx, dropped connection): mark it UNKNOWN and resolve it with
     ``resolve(prepared, known_ids)`` (by hash, then by the order's terms).
     NEVER sign a new order for the same intent until the first is proven
     absent; re-sending the SAME prepared order is safe (the exchange knows
     it by its hash and answers "Duplicated", which submit resolves);
   - ``TemporaryExchangeError`` — definitely not accepted (connection refused
     before sending, 425 restart, 429, 503 cancel-only): re-submit the same
     prepared order later, or abandon it;
   - ``AuthenticationError`` — credentials refused: stop trading.
4. ``lookup(order_id_or_hash)`` answers what the exchange knows (None = it has
   never seen that order; give a just-sent order a grace period before
   trusting None). When ``submit`` returned, ``OrderResult.exchange_order_id``
   is the authoritative id (equal to ``order_hash`` on the real CLOB); record it.

All money is integer micro-units (polybot/money.py); times are epoch seconds.
"""

from __future__ import annotations

import abc
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Shared with the read side: CancelResult(canceled, not_canceled) and the Data-API
# Position (token_id, condition_id, size, avg_price, initial_value ... in micro-units).
from polybot.domain import BUY, FINAL_TRADE_STATUSES, SELL, ExchangeOrderStatus, TradeStatus
from polybot.exchange.models import CancelResult, Position  # noqa: F401  (re-exported)

ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")

# OrderResult.status: one of these ExchangeOrderStatus values (polybot/domain.py)
RESULT_STATUSES = (
    ExchangeOrderStatus.LIVE,
    ExchangeOrderStatus.MATCHED,
    ExchangeOrderStatus.DELAYED,
    ExchangeOrderStatus.UNMATCHED,
    ExchangeOrderStatus.REJECTED,
)
ACCEPTED_STATUSES = (ExchangeOrderStatus.LIVE, ExchangeOrderStatus.MATCHED, ExchangeOrderStatus.DELAYED)

# OrderResult.code: why a rejection happened, when the caller can act on it
TICK_SIZE_CHANGED = "tick_size_changed"  # re-prepare (re-sign) at the market's new tick

# Fill.status: a polybot.domain.TradeStatus (the CLOB's trade status, prefix removed).

# OrderStatus.status: an ExchangeOrderStatus (normalised from the CLOB's LIVE / MATCHED / CANCELED ...)
OPEN_STATUSES = (ExchangeOrderStatus.LIVE, ExchangeOrderStatus.DELAYED)


@dataclass(frozen=True)
class OrderRequest:
    """What the engine wants: one order, before signing.

    - GTC/GTD: ``price_micro`` (limit) and ``size_micro`` (shares) required;
      GTD also ``expiration`` (epoch seconds).
    - FOK/FAK ("market" orders): BUY by ``amount_micro`` (USD to spend) or by
      ``size_micro``; SELL by ``size_micro``. ``price_micro`` is the worst price
      accepted (live: required for size-based FOK/FAK; optional for a BUY by
      amount, where the SDK then computes it from the book).
    - ``client_tag``: the engine's own label (intent id, strategy name), kept
      verbatim; never sent to the exchange.
    - ``tick_size`` / ``neg_risk``: the market's, when the engine knows them
      (saves the live client two lookups); ``None`` = ask the exchange. Live signs
      at the exchange's CURRENT tick (it can change at run time); a market order's
      worst price outside that tick's range is clamped to it (never looser).
    - ``market_version``: Gamma's ``version`` of the market — ``"v2"`` (Protocol V2:
      ``token_id`` is a position id from ``positionIds``; live signs it for
      ExchangeV3, domain "3"), ``"v1"`` (a CTF token), ``None`` = unknown (live asks
      Gamma once per token).
    """

    token_id: str
    side: str
    order_type: str
    price_micro: int | None = None
    size_micro: int | None = None
    amount_micro: int | None = None
    expiration: int | None = None
    client_tag: str = ""
    post_only: bool = False
    tick_size: str | None = None
    neg_risk: bool | None = None
    market_version: str | None = None

    def __post_init__(self) -> None:
        side = str(self.side).upper()
        otype = str(self.order_type).upper()
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "order_type", otype)
        if side not in (BUY, SELL):
            raise ValueError(f"side must be BUY or SELL, got {self.side!r}")
        if otype not in ORDER_TYPES:
            raise ValueError(f"order_type must be one of {ORDER_TYPES}, got {self.order_type!r}")
        if not self.token_id:
            raise ValueError("token_id is required")
        if (self.size_micro is None) == (self.amount_micro is None):
            raise ValueError("give exactly one of size_micro (shares) or amount_micro (USD)")
        if self.amount_micro is not None and (side != BUY or otype not in ("FOK", "FAK")):
            raise ValueError("amount_micro (USD to spend) is only for FOK/FAK BUY orders")
        if otype in ("GTC", "GTD") and self.price_micro is None:
            raise ValueError(f"a {otype} order needs price_micro")
        if otype == "GTD" and not self.expiration:
            raise ValueError("a GTD order needs expiration (epoch seconds)")
        if self.post_only and otype not in ("GTC", "GTD"):
            raise ValueError("post_only is only for GTC/GTD orders")
        self._check_micro_amounts()
        if self.market_version not in (None, "v1", "v2"):
            raise ValueError(f"market_version must be 'v1', 'v2' or None, got {self.market_version!r}")

    def _check_micro_amounts(self) -> None:
        """Price, size and amount: positive integers of micro-units, the price below $1."""
        for name in ("price_micro", "size_micro", "amount_micro"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise ValueError(f"{name} must be a positive integer of micro-units, got {v!r}")
        if self.price_micro is not None and self.price_micro >= 1_000_000:
            raise ValueError(f"price_micro must be below 1_000_000 ($1), got {self.price_micro}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> OrderRequest:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class PreparedOrder:
    """A signed order, ready to send, not yet sent. Persist ``to_json()`` and commit
    BEFORE calling ``submit``; rebuild with ``PreparedOrder.from_json``.

    ``client_order_id``: our id for the order (live: the order hash, since the
    CLOB has no client ids; paper: ``paper-<n>``). ``order_hash``: the id the
    exchange knows the order by (live: EIP-712 hash = the CLOB's orderID).
    ``payload_json``: exactly what ``submit`` sends (live: the POST /order body).
    """

    client_order_id: str
    order_hash: str
    payload_json: str
    request: OrderRequest
    created_ts: int = 0
    exchange: str = ""  # name of the exchange that prepared it

    def to_dict(self) -> dict:
        d = asdict(self)
        d["request"] = self.request.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> PreparedOrder:
        return cls(
            client_order_id=d["client_order_id"],
            order_hash=d["order_hash"],
            payload_json=d["payload_json"],
            request=OrderRequest.from_dict(d["request"]),
            created_ts=int(d.get("created_ts") or 0),
            exchange=d.get("exchange", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> PreparedOrder:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Fill:
    """One trade of one of our orders (integer micro-units)."""

    trade_id: str
    order_id: str
    token_id: str
    side: str
    price_micro: int
    size_micro: int
    fee_micro: int
    ts: int
    liquidity: str = "taker"  # "taker" or "maker"
    status: str = TradeStatus.MATCHED  # the CLOB trade status (MATCHED/MINED/CONFIRMED/RETRYING/FAILED)
    updated_ts: int = 0  # the trade's last status change (live: last_update), 0 = unknown

    @property
    def failed(self) -> bool:
        """The trade never settled on chain: it must not count (or must be undone)."""
        return self.status == TradeStatus.FAILED

    @property
    def final(self) -> bool:
        """CONFIRMED (settled) or FAILED: the status will not change any more."""
        return self.status in FINAL_TRADE_STATUSES

    @property
    def notional_micro(self) -> int:
        from polybot.money import notional_micro

        return notional_micro(self.price_micro, self.size_micro)

    @property
    def cash_delta_micro(self) -> int:
        n = self.notional_micro
        return -(n + self.fee_micro) if self.side == BUY else n - self.fee_micro

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Fill:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class OrderResult:
    """The answer to ``submit``. ``fills`` holds the fills known at placement (paper:
    all of them; live: usually none — read them with ``trades``/``lookup``)."""

    status: str
    exchange_order_id: str | None = None
    fills: tuple[Fill, ...] = ()
    error: str | None = None
    size_matched_micro: int = 0
    raw: dict | None = field(default=None, compare=False)
    code: str | None = None  # rejected: TICK_SIZE_CHANGED → re-prepare and submit anew
    fills_pending: bool = False  # matched, but its trades were not readable yet: poll lookup()

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED_STATUSES

    @property
    def rejected(self) -> bool:
        return self.status == ExchangeOrderStatus.REJECTED


@dataclass(frozen=True)
class OrderStatus:
    """What the exchange knows about one order."""

    order_id: str
    status: str  # live | matched | canceled | expired | unmatched | delayed | ...
    token_id: str = ""
    side: str = ""
    price_micro: int = 0
    original_size_micro: int = 0
    size_matched_micro: int = 0
    order_type: str = ""
    created_ts: int = 0
    market: str = ""
    expiration: int | None = None  # GTD expiry, epoch seconds
    fills: tuple[Fill, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_size_micro(self) -> int:
        return max(0, self.original_size_micro - self.size_matched_micro)


class Exchange(abc.ABC):
    """Interface implemented by PaperExchange and LiveExchange."""

    name: str = "exchange"
    mode: str = "paper"  # "paper" or "live"

    @abc.abstractmethod
    def prepare(self, request: OrderRequest) -> PreparedOrder:
        """Build and sign (live) the order; send nothing. Raises OrderRejected when the
        request can never be valid for the market (bad tick or price)."""

    @abc.abstractmethod
    def submit(self, prepared: PreparedOrder) -> OrderResult:
        """Send a prepared order. See the module docstring for the outcomes."""

    @abc.abstractmethod
    def lookup(self, order_id_or_hash: str) -> OrderStatus | None:
        """The exchange's view of one order, or None if it does not know it."""

    def resolve(self, prepared: PreparedOrder, known_ids=()) -> OrderStatus | None:
        """What became of a prepared order whose submit outcome is unknown (None = the
        exchange never saw it). ``known_ids``: exchange order ids the engine already
        has on record (used by exchanges that can match an order by its terms)."""
        return self.lookup(prepared.order_hash)

    @abc.abstractmethod
    def cancel(self, order_id: str) -> CancelResult: ...

    @abc.abstractmethod
    def cancel_all(self) -> CancelResult: ...

    @abc.abstractmethod
    def open_orders(self) -> list[OrderStatus]: ...

    @abc.abstractmethod
    def trades(self, since_ts: int | None = None) -> list[Fill]:
        """Our fills with ts ≥ since_ts (all when None), oldest first."""

    @abc.abstractmethod
    def balance_micro(self) -> int:
        """Collateral (USDC/pUSD) balance in micro-units."""

    @abc.abstractmethod
    def positions(self) -> list[Position]: ...

    @abc.abstractmethod
    def heartbeat(self) -> None:
        """Dead-man switch: live cancels all orders if heartbeats stop (~10 s)."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode}
