"""Paper trading: orders filled against the CURRENT real (or simulated) order book.

``PaperExchange(book_source, fees_by_token=..., clock=..., initial_cash_micro=...)``
implements the same :class:`~polybot.exchange.base.Exchange` interface as the live
exchange. Taker fills come from :func:`polybot.exchange.fills.simulate_fill` on
``book_source(token_id)`` (the engine passes a function that calls
``PolymarketClient.get_book``); GTC/GTD orders that do not cross rest and are
checked against fresh books by :meth:`PaperExchange.poll` (they fill as maker, at
their own price, with no fee — ``fills.resting_fill``).

Money rules mirror the CLOB: a BUY needs cash for its fills + taker fees + the
price × size of what will rest (open BUYs reserve cash); a SELL needs the shares
(open SELLs reserve shares) — no short selling; otherwise the order is rejected
with Polymarket's "not enough balance / allowance".

Restart safety: everything is in :class:`PaperState` (cash, positions, orders,
fills, settlements, the id counter). Persist ``exchange.state.to_json()`` and
pass ``state=PaperState.from_json(...)`` back, or rebuild from the engine's own
records with :meth:`PaperExchange.from_records` (fills + open orders +
settlements → identical cash, positions and open orders).
Order ids are deterministic: ``paper-<n>`` from the state's counter.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from polybot.domain import BUY, SELL, ExchangeOrderStatus, TradeStatus
from polybot.errors import DataError
from polybot.exchange.base import (
    CancelResult,
    Exchange,
    Fill,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Position,
    PreparedOrder,
)
from polybot.exchange.fills import FILLED, LevelFill, resting_fill, simulate_fill
from polybot.exchange.models import FeeSchedule, FeeSource, OrderBook
from polybot.money import MICRO, average_price_micro, fmt_usd, notional_micro
from polybot.money import div_half_up as _half_up_div

GTD_SECURITY_SECONDS = 60  # Polymarket: a GTD order stops 60 s before its expiration
ID_PREFIX = "paper-"


@dataclass
class PaperOrder:
    order_id: str
    token_id: str
    side: str
    order_type: str
    price_micro: int  # limit price (0 for a market order without one)
    original_size_micro: int  # shares (for a BUY by amount: the shares it bought)
    size_matched_micro: int = 0
    status: str = ExchangeOrderStatus.LIVE  # live | matched | canceled | expired | rejected
    created_ts: int = 0
    expiration: int | None = None
    client_tag: str = ""
    error: str | None = None

    def to_status(self, fills: Iterable[Fill] = ()) -> OrderStatus:
        return OrderStatus(
            order_id=self.order_id,
            status=self.status,
            token_id=self.token_id,
            side=self.side,
            price_micro=self.price_micro,
            original_size_micro=self.original_size_micro,
            size_matched_micro=self.size_matched_micro,
            order_type=self.order_type,
            created_ts=self.created_ts,
            expiration=self.expiration,
            fills=tuple(fills),
        )

    @property
    def remaining_size_micro(self) -> int:
        return max(0, self.original_size_micro - self.size_matched_micro)


class PaperPosition(TypedDict):
    """A paper holding (integer micro-units): shares, and their cost basis including fees."""

    size_micro: int
    cost_micro: int


@dataclass
class PaperState:
    """Everything the paper exchange knows. JSON round-trips exactly (integers only)."""

    cash_micro: int
    next_seq: int = 1
    positions: dict[str, PaperPosition] = field(default_factory=dict)  # token → holding
    orders: dict[str, PaperOrder] = field(default_factory=dict)  # order id → PaperOrder
    fills: list[Fill] = field(default_factory=list)
    settlements: list[dict[str, Any]] = field(
        default_factory=list
    )  # [{"token_id","payout_micro","size_micro","amount_micro","ts"}]

    def to_dict(self) -> dict:
        return {
            "cash_micro": self.cash_micro,
            "next_seq": self.next_seq,
            "positions": {t: dict(p) for t, p in self.positions.items()},
            "orders": {k: asdict(o) for k, o in self.orders.items()},
            "fills": [f.to_dict() for f in self.fills],
            "settlements": [dict(s) for s in self.settlements],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> PaperState:
        return cls(
            cash_micro=int(d["cash_micro"]),
            next_seq=int(d.get("next_seq", 1)),
            positions={
                t: {"size_micro": int(p["size_micro"]), "cost_micro": int(p["cost_micro"])}
                for t, p in d.get("positions", {}).items()
            },
            orders={k: PaperOrder(**o) for k, o in d.get("orders", {}).items()},
            fills=[Fill.from_dict(f) for f in d.get("fills", [])],
            settlements=[dict(s) for s in d.get("settlements", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> PaperState:
        return cls.from_dict(json.loads(text))


def _seq_of(order_id: str) -> int:
    if order_id.startswith(ID_PREFIX):
        try:
            return int(order_id[len(ID_PREFIX) :])
        except ValueError:
            return 0
    return 0


class PaperExchange(Exchange):
    name = "paper"
    mode = "paper"

    def __init__(
        self,
        book_source: Callable[[str], OrderBook],
        *,
        fees_by_token: FeeSource,
        clock: Callable[[], float],
        initial_cash_micro: int,
        state: PaperState | dict | None = None,
    ):
        self._book_source = book_source
        self._fees = fees_by_token
        self._clock = clock
        self.initial_cash_micro = int(initial_cash_micro)
        if state is None:
            state = PaperState(cash_micro=self.initial_cash_micro)
        elif isinstance(state, dict):
            state = PaperState.from_dict(state)
        self.state: PaperState = state
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ rebuild
    @classmethod
    def from_records(
        cls,
        book_source: Callable[[str], OrderBook],
        *,
        fees_by_token: FeeSource,
        clock: Callable[[], float],
        initial_cash_micro: int,
        fills: Iterable[Fill] = (),
        open_orders: Iterable[OrderStatus | PaperOrder] = (),
        settlements: Iterable[Mapping] = (),
        known_order_ids: Iterable[str] = (),
    ) -> PaperExchange:
        """Rebuild the state from what the engine recorded.

        ``fills``: every paper fill so far; ``open_orders``: the orders still resting
        (``OrderStatus`` with their matched size); ``settlements``: the records
        returned by :meth:`settle`; ``known_order_ids``: every paper id ever issued
        (so the counter does not reuse one). Cash = initial + Σ fill cash deltas +
        Σ settlement amounts.
        """
        state = PaperState(cash_micro=int(initial_cash_micro))
        ex = cls(
            book_source,
            fees_by_token=fees_by_token,
            clock=clock,
            initial_cash_micro=initial_cash_micro,
            state=state,
        )
        # (ts, 0 = fill / 1 = settlement, the fill, the settlement): fills first within a second
        events: list[tuple[int, int, Fill | None, Mapping | None]] = [(f.ts, 0, f, None) for f in fills] + [
            (int(s["ts"]), 1, None, s) for s in settlements
        ]
        events.sort(key=lambda e: (e[0], e[1]))
        ids = set(known_order_ids)
        for _, _, fill, settlement in events:
            if fill is not None:
                ex._apply_fill(fill)
                ids.add(fill.order_id)
            elif settlement is not None:
                ex._apply_settlement(dict(settlement))
        for o in open_orders:
            po = (
                o
                if isinstance(o, PaperOrder)
                else PaperOrder(
                    order_id=o.order_id,
                    token_id=o.token_id,
                    side=o.side,
                    order_type=o.order_type or "GTC",
                    price_micro=o.price_micro,
                    original_size_micro=o.original_size_micro,
                    size_matched_micro=o.size_matched_micro,
                    status=ExchangeOrderStatus.LIVE,
                    created_ts=o.created_ts,
                    expiration=o.expiration,
                )
            )
            state.orders[po.order_id] = po
            ids.add(po.order_id)
        state.next_seq = max([_seq_of(i) for i in ids] + [0]) + 1
        return ex

    # ------------------------------------------------------------------ helpers
    def _now(self) -> int:
        return int(self._clock())

    def _fee_for(self, token_id: str) -> FeeSchedule:
        fee = self._fees(token_id) if callable(self._fees) else self._fees.get(token_id)
        if fee is None:
            raise DataError(
                f"No fee schedule is known for token {token_id[:16]}…; pass it in "
                f"fees_by_token (FeeSchedule() for a fee-free market)."
            )
        return fee

    def _reserved_cash(self) -> int:
        return sum(
            notional_micro(o.price_micro, o.remaining_size_micro)
            for o in self.state.orders.values()
            if o.status == ExchangeOrderStatus.LIVE and o.side == BUY
        )

    def _reserved_shares(self, token_id: str) -> int:
        return sum(
            o.remaining_size_micro
            for o in self.state.orders.values()
            if o.status == ExchangeOrderStatus.LIVE and o.side == SELL and o.token_id == token_id
        )

    def available_cash_micro(self) -> int:
        with self._lock:
            return self.state.cash_micro - self._reserved_cash()

    def _position(self, token_id: str) -> PaperPosition:
        return self.state.positions.setdefault(token_id, {"size_micro": 0, "cost_micro": 0})

    def _apply_fill(self, f: Fill) -> None:
        pos = self._position(f.token_id)
        if f.side == BUY:
            pos["size_micro"] += f.size_micro
            pos["cost_micro"] += f.notional_micro + f.fee_micro
        else:
            held = pos["size_micro"]
            removed = _half_up_div(pos["cost_micro"] * f.size_micro, held) if held else 0
            pos["size_micro"] = held - f.size_micro
            pos["cost_micro"] -= removed
        if pos["size_micro"] == 0:
            pos["cost_micro"] = 0
            del self.state.positions[f.token_id]
        self.state.cash_micro += f.cash_delta_micro
        self.state.fills.append(f)

    def _apply_settlement(self, s: dict) -> None:
        self.state.positions.pop(s["token_id"], None)
        self.state.cash_micro += int(s["amount_micro"])
        self.state.settlements.append(s)

    def _fills_of(self, order_id: str) -> list[Fill]:
        return [f for f in self.state.fills if f.order_id == order_id]

    def _record_fills(
        self, order: PaperOrder, level_fills: Iterable[LevelFill], liquidity: str
    ) -> list[Fill]:
        n = len(self._fills_of(order.order_id))
        now = self._now()
        out = []
        for lf in level_fills:
            n += 1
            f = Fill(
                trade_id=f"{order.order_id}-t{n}",
                order_id=order.order_id,
                token_id=order.token_id,
                side=order.side,
                price_micro=lf.price_micro,
                size_micro=lf.size_micro,
                fee_micro=lf.fee_micro,
                ts=now,
                liquidity=liquidity,
                status=TradeStatus.CONFIRMED,
            )
            self._apply_fill(f)
            order.size_matched_micro += lf.size_micro
            out.append(f)
        return out

    def _result_of(self, order: PaperOrder) -> OrderResult:
        if order.status == ExchangeOrderStatus.REJECTED:
            return OrderResult(status=ExchangeOrderStatus.REJECTED, error=order.error)
        fills = tuple(self._fills_of(order.order_id))
        status = (
            ExchangeOrderStatus.LIVE
            if order.status == ExchangeOrderStatus.LIVE
            else ExchangeOrderStatus.MATCHED
            if order.size_matched_micro
            else order.status
        )
        return OrderResult(
            status=status,
            exchange_order_id=order.order_id,
            fills=fills,
            size_matched_micro=order.size_matched_micro,
        )

    # ------------------------------------------------------------------ orders
    def prepare(self, request: OrderRequest) -> PreparedOrder:
        with self._lock:
            oid = f"{ID_PREFIX}{self.state.next_seq}"
            self.state.next_seq += 1
        payload = json.dumps(
            {"order_id": oid, "request": request.to_dict()}, sort_keys=True, separators=(",", ":")
        )
        return PreparedOrder(
            client_order_id=oid,
            order_hash=oid,
            payload_json=payload,
            request=request,
            created_ts=self._now(),
            exchange=self.name,
        )

    def submit(self, prepared: PreparedOrder) -> OrderResult:
        if not prepared.order_hash.startswith(ID_PREFIX):
            raise ValueError(f"order {prepared.order_hash} was not prepared by the paper exchange")
        with self._lock:
            known = self.state.orders.get(prepared.order_hash)
            if known is not None:  # a re-submission: same answer, no second order
                return self._result_of(known)
            req = prepared.request
            book = self._book_source(req.token_id)
            fee = self._fee_for(req.token_id)
            res = simulate_fill(
                book,
                req.side,
                size_micro=req.size_micro,
                amount_micro=req.amount_micro,
                limit_price_micro=req.price_micro,
                order_type=req.order_type,
                fee=fee,
                tick_size=req.tick_size or None,
            )
            order = PaperOrder(
                order_id=prepared.order_hash,
                token_id=req.token_id,
                side=req.side,
                order_type=req.order_type,
                price_micro=req.price_micro or 0,
                original_size_micro=res.requested_size_micro or res.size_micro,
                created_ts=self._now(),
                expiration=req.expiration,
                client_tag=req.client_tag,
            )
            error = None
            if res.rejected:
                error = res.reason
            elif req.post_only and res.fills:
                error = "invalid post-only order: order crosses book"
            elif (
                req.order_type == "GTD"
                and req.expiration is not None  # always set on a GTD OrderRequest
                and req.expiration - GTD_SECURITY_SECONDS <= self._now()
            ):
                error = "invalid expiration: a GTD order must expire more than 60 s from now"
            elif req.side == BUY:
                rests = (
                    notional_micro(req.price_micro, res.remaining_size_micro)
                    if res.remaining_size_micro and req.price_micro is not None  # only GTC/GTD rest
                    else 0
                )
                need = res.notional_micro + res.fee_micro + rests
                avail = self.state.cash_micro - self._reserved_cash()
                if need > avail:
                    error = (
                        f"not enough balance / allowance: the order needs {fmt_usd(need)}, "
                        f"{fmt_usd(avail)} is available"
                    )
            else:
                pos = self.state.positions.get(req.token_id)
                held = pos["size_micro"] if pos is not None else 0
                avail = held - self._reserved_shares(req.token_id)
                need = res.requested_size_micro or 0
                if need > avail:
                    error = (
                        f"not enough balance / allowance: the order sells {need / MICRO:g} shares, "
                        f"{avail / MICRO:g} are available"
                    )
            if error:
                order.status, order.error = ExchangeOrderStatus.REJECTED, error
                self.state.orders[order.order_id] = order
                return OrderResult(status=ExchangeOrderStatus.REJECTED, error=error)
            self._record_fills(order, res.fills, "taker")
            if req.order_type in ("GTC", "GTD") and res.remaining_size_micro:
                order.status = ExchangeOrderStatus.LIVE
            else:
                order.status = ExchangeOrderStatus.MATCHED
                if req.amount_micro is not None:
                    order.original_size_micro = order.size_matched_micro
            self.state.orders[order.order_id] = order
            return self._result_of(order)

    def poll(self, books: Mapping[str, OrderBook] | None = None) -> list[Fill]:
        """Expire GTD orders and fill resting orders the fresh books now cross.

        ``books``: token → fresh book; without it every token with an open order
        is fetched through ``book_source``. Returns the new fills.
        """
        new: list[Fill] = []
        with self._lock:
            now = self._now()
            for o in list(self.state.orders.values()):
                if (
                    o.status == ExchangeOrderStatus.LIVE
                    and o.expiration
                    and now >= o.expiration - GTD_SECURITY_SECONDS
                ):
                    o.status = ExchangeOrderStatus.EXPIRED
            tokens = sorted(
                {o.token_id for o in self.state.orders.values() if o.status == ExchangeOrderStatus.LIVE}
            )
            for token in tokens:
                if books is not None and token not in books:
                    continue
                book = books[token] if books is not None else self._book_source(token)
                for o in sorted(
                    (
                        o
                        for o in self.state.orders.values()
                        if o.status == ExchangeOrderStatus.LIVE and o.token_id == token
                    ),
                    key=lambda o: (o.created_ts, _seq_of(o.order_id)),
                ):
                    res = resting_fill(
                        book, o.side, price_micro=o.price_micro, remaining_size_micro=o.remaining_size_micro
                    )
                    if res.fills:
                        new += self._record_fills(o, res.fills, "maker")
                        if res.status == FILLED:
                            o.status = ExchangeOrderStatus.MATCHED
        return new

    def settle(self, token_id: str, payout_micro: int) -> dict | None:
        """Redeem a resolved token: shares × payout (1_000_000 winner, 0 loser,
        500_000 for a 50-50) is credited, the position closed, its open orders
        cancelled. Returns the settlement record (persist it), None if flat."""
        with self._lock:
            for o in self.state.orders.values():
                if o.status == ExchangeOrderStatus.LIVE and o.token_id == token_id:
                    o.status = ExchangeOrderStatus.CANCELED
            pos = self.state.positions.get(token_id)
            if not pos or not pos["size_micro"]:
                return None
            rec = {
                "token_id": token_id,
                "payout_micro": int(payout_micro),
                "size_micro": pos["size_micro"],
                "amount_micro": notional_micro(int(payout_micro), pos["size_micro"]),
                "ts": self._now(),
            }
            self._apply_settlement(rec)
            return dict(rec)

    def lookup(self, order_id_or_hash: str) -> OrderStatus | None:
        with self._lock:
            o = self.state.orders.get(order_id_or_hash)
            if o is None or o.status == ExchangeOrderStatus.REJECTED:  # the CLOB does not know refused orders
                return None
            return o.to_status(self._fills_of(o.order_id))

    def cancel(self, order_id: str) -> CancelResult:
        with self._lock:
            o = self.state.orders.get(order_id)
            if o is None or o.status == ExchangeOrderStatus.REJECTED:
                return CancelResult(not_canceled={order_id: "order not found"})
            if o.status != ExchangeOrderStatus.LIVE:
                return CancelResult(not_canceled={order_id: f"the order is already {o.status}"})
            o.status = ExchangeOrderStatus.CANCELED
            return CancelResult(canceled=(order_id,))

    def cancel_all(self) -> CancelResult:
        with self._lock:
            ids = [o.order_id for o in self.state.orders.values() if o.status == ExchangeOrderStatus.LIVE]
            for i in ids:
                self.state.orders[i].status = ExchangeOrderStatus.CANCELED
            return CancelResult(canceled=tuple(ids))

    def open_orders(self) -> list[OrderStatus]:
        with self._lock:
            return [
                o.to_status(self._fills_of(o.order_id))
                for o in self.state.orders.values()
                if o.status == ExchangeOrderStatus.LIVE
            ]

    def trades(self, since_ts: int | None = None) -> list[Fill]:
        with self._lock:
            return [f for f in self.state.fills if since_ts is None or f.ts >= since_ts]

    def balance_micro(self) -> int:
        with self._lock:
            return self.state.cash_micro

    def positions(self) -> list[Position]:
        with self._lock:
            out = []
            for token, p in sorted(self.state.positions.items()):
                if p["size_micro"] > 0:
                    avg = average_price_micro(p["cost_micro"], p["size_micro"])
                    out.append(
                        Position(
                            token_id=token,
                            condition_id="",
                            size=p["size_micro"],
                            avg_price=avg,
                            initial_value=p["cost_micro"],
                        )
                    )
            return out

    def heartbeat(self) -> None:
        """Nothing to keep alive on paper."""
        return None
