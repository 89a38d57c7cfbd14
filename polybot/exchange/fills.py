"""Pure fill simulation against an order-book snapshot.

Shared by the backtester and the paper exchange, so both fill orders the same
way. Nothing here reads a clock, touches the network or raises for a market
condition: an order the exchange would refuse (bad tick, below the minimum
size, nothing to match) comes back as a :class:`FillResult` with
``status == "rejected"``, a short machine ``code`` (for counting) and a
``reason`` sentence. ``ValueError`` is raised only for caller bugs (both or
neither of size/amount, unknown side, GTC without a price).

Rules (Polymarket CLOB, see docs/dev/api_notes.md §4, §10, §11):
- BUY consumes asks, SELL consumes bids, best price first; a limit price
  stops the walk (BUY takes asks ≤ limit, SELL takes bids ≥ limit).
- A limit price must be a multiple of the tick and lie in [tick, 1 − tick].
- Share sizes are rounded DOWN to 2 decimals, USD amounts of market BUYs too
  (what the SDK's order builder does before signing).
- Orders below the market's minimum size (shares) are rejected; a BUY by USD
  amount is checked on the shares it implies at its limit price (or at the
  best ask when it has none).
- FOK: all or nothing. FAK: whatever is available, the rest is cancelled.
  GTC/GTD: the crossing part fills as taker, the remainder rests (``resting``
  or ``partial`` with ``remaining_size_micro`` > 0).
- Each level's fill is a separate trade: notional = price × size rounded
  half-up to 1 micro-unit; taker fee = shares × rate × (p(1−p))^exponent at
  that level's price, rounded half-up to 5 decimals (10 micro-units), fees
  below 0.00001 are 0 (``money.taker_fee_micro``). The order's fee is the sum
  of the per-fill fees. Makers never pay (``maker_fill`` has fee 0).
- A BUY by USD amount spends at most the amount on notional (fees come on
  top, as on Polymarket); at each level it buys floor(remaining / price)
  micro-shares, so it never overspends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from polybot.domain import BUY, SELL
from polybot.exchange.models import BookLevel, FeeSchedule, OrderBook
from polybot.money import MICRO, notional_micro, round_size_down, taker_fee_micro, to_micro

SIDES = (BUY, SELL)
ORDER_TYPES = ("FOK", "FAK", "GTC", "GTD")

# FillResult.status values
FILLED = "filled"  # the whole order filled
PARTIAL = "partial"  # FAK: part filled, rest cancelled; GTC: part filled, rest rests
RESTING = "resting"  # GTC/GTD: nothing crossed, the whole order rests
REJECTED = "rejected"  # refused (see ``code``); nothing filled

# FillResult.code values for rejections (stable, for counting)
INVALID_TICK = "invalid_tick"
INVALID_PRICE = "invalid_price"
BELOW_MIN_SIZE = "below_min_size"
NO_LIQUIDITY = "no_liquidity"
FOK_NOT_FILLED = "fok_not_filled"
FAK_NO_MATCH = "fak_no_match"


@dataclass(frozen=True)
class LevelFill:
    """One trade against one book level (integer micro-units)."""

    price_micro: int
    size_micro: int
    notional_micro: int
    fee_micro: int


@dataclass(frozen=True)
class FillResult:
    status: str  # filled | partial | resting | rejected
    side: str
    order_type: str
    fills: tuple[LevelFill, ...] = ()
    size_micro: int = 0  # shares filled
    notional_micro: int = 0  # Σ fill notionals
    fee_micro: int = 0  # Σ fill fees (taker)
    requested_size_micro: int | None = None  # after rounding down to 2 dp
    requested_amount_micro: int | None = None  # BUY by USD, after rounding to 2 dp
    remaining_size_micro: int = 0  # GTC/GTD: shares left resting
    limit_price_micro: int | None = None
    code: str | None = None  # rejection code, None otherwise
    reason: str | None = None  # one sentence, None when it filled cleanly

    @property
    def rejected(self) -> bool:
        return self.status == REJECTED

    @property
    def avg_price_micro(self) -> int | None:
        """Volume-weighted average price in micro-units (half-up), None without fills."""
        if not self.size_micro:
            return None
        q, r = divmod(self.notional_micro * MICRO, self.size_micro)
        return q + (1 if 2 * r >= self.size_micro else 0)

    @property
    def avg_price(self) -> float | None:
        return None if not self.size_micro else self.notional_micro / self.size_micro

    @property
    def cash_delta_micro(self) -> int:
        """Change of cash for the trader: BUY pays notional + fee, SELL gets notional − fee."""
        if self.side == BUY:
            return -(self.notional_micro + self.fee_micro)
        return self.notional_micro - self.fee_micro


def _fmt(micro: int) -> str:
    s = f"{micro / MICRO:.6f}".rstrip("0").rstrip(".")
    return s or "0"


def check_price(price_micro: int, tick_micro: int) -> tuple[str | None, str | None]:
    """(code, reason) when a limit price breaks the tick rules, else (None, None)."""
    if tick_micro <= 0:
        raise ValueError(f"tick size must be positive, got {tick_micro} micro")
    if price_micro % tick_micro:
        return INVALID_TICK, (
            f"price {_fmt(price_micro)} breaks the minimum tick size {_fmt(tick_micro)}; round it to the tick"
        )
    if not tick_micro <= price_micro <= MICRO - tick_micro:
        return INVALID_PRICE, (
            f"price {_fmt(price_micro)} is outside [{_fmt(tick_micro)}, {_fmt(MICRO - tick_micro)}]"
        )
    return None, None


def _fee(schedule: FeeSchedule, size_micro: int, price_micro: int) -> int:
    rate = schedule.effective_rate
    if not rate or not size_micro:
        return 0
    return taker_fee_micro(size_micro, price_micro, rate, schedule.exponent)


def _levels(levels: Sequence[BookLevel]) -> list[tuple[int, int]]:
    out = []
    for lv in levels:
        p, s = to_micro(lv.price), to_micro(lv.size)
        if s > 0:
            out.append((p, s))
    return out


def simulate_fill(
    book: OrderBook,
    side: str,
    *,
    size_micro: int | None = None,
    amount_micro: int | None = None,
    limit_price_micro: int | None = None,
    order_type: str = "FOK",
    fee: FeeSchedule,
    tick_size: float | str | int | None = None,
    min_order_size: float | str | int | None = None,
) -> FillResult:
    """Fill an order against ``book`` (levels best first) and return what happened.

    ``size_micro`` = shares (BUY or SELL); ``amount_micro`` = USD to spend (BUY only).
    ``tick_size`` / ``min_order_size`` are decimal amounts like the book's fields
    (0.01, "0.001", 5 shares — NOT micro-units); by default the book's.
    """
    side = str(side).upper()
    order_type = str(order_type).upper()
    if side not in SIDES:
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    if order_type not in ORDER_TYPES:
        raise ValueError(f"order_type must be one of {ORDER_TYPES}, got {order_type!r}")
    if (size_micro is None) == (amount_micro is None):
        raise ValueError("give exactly one of size_micro (shares) or amount_micro (USD)")
    if amount_micro is not None and side != BUY:
        raise ValueError("amount_micro (USD) is for BUY orders; give a SELL in shares (size_micro)")
    resting_type = order_type in ("GTC", "GTD")
    if resting_type and (limit_price_micro is None or amount_micro is not None):
        raise ValueError(f"a {order_type} order needs limit_price_micro and size_micro")

    tick = to_micro(book.tick_size if tick_size is None else tick_size)
    min_size = to_micro(book.min_order_size if min_order_size is None else min_order_size)
    base = dict(side=side, order_type=order_type, limit_price_micro=limit_price_micro)

    def reject(code: str, reason: str, **kw) -> FillResult:
        return FillResult(status=REJECTED, code=code, reason=reason, **base, **kw)

    if limit_price_micro is not None:
        code, reason = check_price(int(limit_price_micro), tick)
        if code:
            return reject(code, reason)

    levels = _levels(book.asks if side == BUY else book.bids)
    if side == BUY:
        levels.sort(key=lambda lv: lv[0])
    else:
        levels.sort(key=lambda lv: -lv[0])

    if size_micro is not None:
        req_size = round_size_down(int(size_micro))
        req = dict(requested_size_micro=req_size)
        if req_size <= 0 or req_size < min_size:
            return reject(
                BELOW_MIN_SIZE,
                f"size {_fmt(req_size)} is below the market's minimum order size {_fmt(min_size)}",
                **req,
            )
    else:
        req_amount = round_size_down(int(amount_micro))
        req = dict(requested_amount_micro=req_amount)
        ref_price = limit_price_micro if limit_price_micro is not None else (levels[0][0] if levels else None)
        implied = (req_amount * MICRO // ref_price) if ref_price else 0
        if req_amount <= 0 or (ref_price is not None and implied < min_size):
            return reject(
                BELOW_MIN_SIZE,
                f"amount ${_fmt(req_amount)} buys about "
                f"{_fmt(implied)} shares, below the market's minimum "
                f"order size {_fmt(min_size)}",
                **req,
            )

    if limit_price_micro is not None:
        lim = int(limit_price_micro)
        levels = [lv for lv in levels if (lv[0] <= lim if side == BUY else lv[0] >= lim)]

    fills: list[LevelFill] = []
    if size_micro is not None:
        left = req["requested_size_micro"]
        for price, avail in levels:
            if left <= 0:
                break
            take = min(avail, left)
            fills.append(LevelFill(price, take, notional_micro(price, take), _fee(fee, take, price)))
            left -= take
        complete = left == 0
    else:
        # take = floor(budget / p) micro-shares, so p × take ≤ budget and the
        # half-up-rounded notional never exceeds the budget left.
        budget = req["requested_amount_micro"]
        complete = False
        for price, avail in levels:
            take = min(avail, budget * MICRO // price)
            if take <= 0:
                complete = True  # not even one micro-share is affordable
                break
            cost = notional_micro(price, take)
            fills.append(LevelFill(price, take, cost, _fee(fee, take, price)))
            budget -= cost
            if take < avail:  # the budget, not the level, ran out
                complete = True
                break
        complete = complete or budget == 0

    filled = sum(f.size_micro for f in fills)
    totals = dict(
        fills=tuple(fills),
        size_micro=filled,
        notional_micro=sum(f.notional_micro for f in fills),
        fee_micro=sum(f.fee_micro for f in fills),
    )
    empty_reason = f"no {'asks' if side == BUY else 'bids'} in the book"
    if limit_price_micro is not None and (book.asks if side == BUY else book.bids):
        empty_reason = (
            f"no {'asks' if side == BUY else 'bids'} at or better than the "
            f"limit {_fmt(int(limit_price_micro))}"
        )

    side_empty = not (book.asks if side == BUY else book.bids)
    if order_type in ("FOK", "FAK") and side_empty:
        return reject(NO_LIQUIDITY, f"{order_type} order not filled: {empty_reason}", **req)
    if order_type == "FOK":
        if not complete:
            why = empty_reason if not fills else "the book cannot fill the whole order"
            return reject(FOK_NOT_FILLED, f"FOK order not filled: {why}", **req)
        return FillResult(status=FILLED, **base, **req, **totals)
    if order_type == "FAK":
        if not fills:
            return reject(FAK_NO_MATCH, f"FAK order not filled: {empty_reason}", **req)
        return FillResult(
            status=FILLED if complete else PARTIAL,
            **base,
            **req,
            **totals,
            reason=None if complete else "partially filled; the rest is cancelled",
        )
    # GTC / GTD
    remaining = req["requested_size_micro"] - filled
    status = FILLED if remaining == 0 else (PARTIAL if fills else RESTING)
    return FillResult(status=status, **base, **req, **totals, remaining_size_micro=remaining)


def resting_fill(book: OrderBook, side: str, *, price_micro: int, remaining_size_micro: int) -> FillResult:
    """Check a resting (maker) limit order against a fresh book.

    The order fills when the opposite side has reached its price: a BUY at p
    fills against asks ≤ p, a SELL at p against bids ≥ p, up to the size shown
    at those levels. The fill is at the order's OWN price (the maker's price)
    with no fee (makers never pay). Returns ``filled``, ``partial`` (some of
    it filled, the rest keeps resting) or ``resting`` (nothing crossed).
    """
    side = str(side).upper()
    if side not in SIDES:
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    levels = _levels(book.asks if side == BUY else book.bids)
    crossing = sum(s for p, s in levels if (p <= price_micro if side == BUY else p >= price_micro))
    take = min(crossing, int(remaining_size_micro))
    base = dict(
        side=side,
        order_type="GTC",
        limit_price_micro=price_micro,
        requested_size_micro=int(remaining_size_micro),
    )
    if take <= 0:
        return FillResult(status=RESTING, remaining_size_micro=int(remaining_size_micro), **base)
    fill = LevelFill(price_micro, take, notional_micro(price_micro, take), 0)
    left = int(remaining_size_micro) - take
    return FillResult(
        status=FILLED if left == 0 else PARTIAL,
        fills=(fill,),
        size_micro=take,
        notional_micro=fill.notional_micro,
        fee_micro=0,
        remaining_size_micro=left,
        **base,
    )
