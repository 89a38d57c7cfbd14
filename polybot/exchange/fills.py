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


def check_price(price_micro: int, tick_micro: int) -> tuple[str, str] | None:
    """(code, reason) when a limit price breaks the tick rules, else None."""
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
    return None


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


@dataclass(frozen=True)
class _Order:
    """The order being filled, as every :class:`FillResult` of it echoes it back."""

    side: str
    order_type: str
    limit_price_micro: int | None
    requested_size_micro: int | None = None
    requested_amount_micro: int | None = None

    def result(
        self,
        status: str,
        fills: Sequence[LevelFill] = (),
        *,
        remaining_size_micro: int = 0,
        reason: str | None = None,
    ) -> FillResult:
        return FillResult(
            status=status,
            side=self.side,
            order_type=self.order_type,
            fills=tuple(fills),
            size_micro=sum(f.size_micro for f in fills),
            notional_micro=sum(f.notional_micro for f in fills),
            fee_micro=sum(f.fee_micro for f in fills),
            requested_size_micro=self.requested_size_micro,
            requested_amount_micro=self.requested_amount_micro,
            remaining_size_micro=remaining_size_micro,
            limit_price_micro=self.limit_price_micro,
            reason=reason,
        )

    def reject(self, code: str, reason: str) -> FillResult:
        return FillResult(
            status=REJECTED,
            side=self.side,
            order_type=self.order_type,
            requested_size_micro=self.requested_size_micro,
            requested_amount_micro=self.requested_amount_micro,
            limit_price_micro=self.limit_price_micro,
            code=code,
            reason=reason,
        )


_ONE_OF_SIZE_OR_AMOUNT = "give exactly one of size_micro (shares) or amount_micro (USD)"


def _validated_order(
    side: str,
    order_type: str,
    size_micro: int | None,
    amount_micro: int | None,
    limit_price_micro: int | None,
) -> tuple[str, str]:
    """(SIDE, ORDER_TYPE) upper-cased; ValueError for a caller bug (see the module docstring)."""
    side = str(side).upper()
    order_type = str(order_type).upper()
    if side not in SIDES:
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    if order_type not in ORDER_TYPES:
        raise ValueError(f"order_type must be one of {ORDER_TYPES}, got {order_type!r}")
    if (size_micro is None) == (amount_micro is None):
        raise ValueError(_ONE_OF_SIZE_OR_AMOUNT)
    if amount_micro is not None and side != BUY:
        raise ValueError("amount_micro (USD) is for BUY orders; give a SELL in shares (size_micro)")
    if order_type in ("GTC", "GTD") and (limit_price_micro is None or amount_micro is not None):
        raise ValueError(f"a {order_type} order needs limit_price_micro and size_micro")
    return side, order_type


def _opposite_levels(book: OrderBook, side: str) -> list[tuple[int, int]]:
    """The (price, size) levels an order of ``side`` takes (BUY: asks, SELL: bids), best first."""
    levels = _levels(book.asks if side == BUY else book.bids)
    if side == BUY:
        levels.sort(key=lambda lv: lv[0])
    else:
        levels.sort(key=lambda lv: -lv[0])
    return levels


def _within_limit(
    levels: list[tuple[int, int]], side: str, limit_price_micro: int | None
) -> list[tuple[int, int]]:
    """The levels a limit price lets the order take (BUY: asks ≤ limit, SELL: bids ≥ limit)."""
    if limit_price_micro is None:
        return levels
    lim = int(limit_price_micro)
    return [lv for lv in levels if (lv[0] <= lim if side == BUY else lv[0] >= lim)]


def _amount_below_min_size(
    amount_micro: int, limit_price_micro: int | None, levels: list[tuple[int, int]], min_size: int
) -> str | None:
    """Why a BUY of ``amount_micro`` USD is below the minimum size (checked on the shares it
    buys at its limit, else at the best ask), or None when it is not."""
    ref_price = limit_price_micro if limit_price_micro is not None else (levels[0][0] if levels else None)
    implied = (amount_micro * MICRO // ref_price) if ref_price else 0
    if amount_micro <= 0 or (ref_price is not None and implied < min_size):
        return (
            f"amount ${_fmt(amount_micro)} buys about "
            f"{_fmt(implied)} shares, below the market's minimum "
            f"order size {_fmt(min_size)}"
        )
    return None


def _take_shares(
    levels: list[tuple[int, int]], size_micro: int, fee: FeeSchedule
) -> tuple[list[LevelFill], int]:
    """Walk the levels for ``size_micro`` shares: (fills, shares left unfilled)."""
    fills: list[LevelFill] = []
    left = size_micro
    for price, avail in levels:
        if left <= 0:
            break
        take = min(avail, left)
        fills.append(LevelFill(price, take, notional_micro(price, take), _fee(fee, take, price)))
        left -= take
    return fills, left


def _spend_amount(
    levels: list[tuple[int, int]], amount_micro: int, fee: FeeSchedule
) -> tuple[list[LevelFill], bool]:
    """Walk the levels spending at most ``amount_micro`` on notional: (fills, complete).

    take = floor(budget / p) micro-shares, so p × take ≤ budget and the half-up-rounded
    notional never exceeds the budget left."""
    fills: list[LevelFill] = []
    budget = amount_micro
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
    return fills, complete or budget == 0


def _empty_reason(book: OrderBook, side: str, limit_price_micro: int | None) -> str:
    """Why nothing could be taken: an empty side, or nothing at or better than the limit."""
    names = "asks" if side == BUY else "bids"
    if limit_price_micro is not None and (book.asks if side == BUY else book.bids):
        return f"no {names} at or better than the limit {_fmt(int(limit_price_micro))}"
    return f"no {names} in the book"


def _outcome(
    order: _Order, book: OrderBook, fills: list[LevelFill], *, complete: bool, left: int
) -> FillResult:
    """The FillResult of a walk: FOK all or nothing, FAK what it got, GTC/GTD the rest rests
    (``left``: shares not filled)."""
    side, order_type = order.side, order.order_type
    empty_reason = _empty_reason(book, side, order.limit_price_micro)
    side_empty = not (book.asks if side == BUY else book.bids)
    if order_type in ("FOK", "FAK") and side_empty:
        return order.reject(NO_LIQUIDITY, f"{order_type} order not filled: {empty_reason}")
    if order_type == "FOK":
        if not complete:
            why = empty_reason if not fills else "the book cannot fill the whole order"
            return order.reject(FOK_NOT_FILLED, f"FOK order not filled: {why}")
        return order.result(FILLED, fills)
    if order_type == "FAK":
        if not fills:
            return order.reject(FAK_NO_MATCH, f"FAK order not filled: {empty_reason}")
        if complete:
            return order.result(FILLED, fills)
        return order.result(PARTIAL, fills, reason="partially filled; the rest is cancelled")
    # GTC / GTD
    status = FILLED if left == 0 else (PARTIAL if fills else RESTING)
    return order.result(status, fills, remaining_size_micro=left)


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
    side, order_type = _validated_order(side, order_type, size_micro, amount_micro, limit_price_micro)
    tick = to_micro(book.tick_size if tick_size is None else tick_size)
    min_size = to_micro(book.min_order_size if min_order_size is None else min_order_size)
    if limit_price_micro is not None:
        bad_price = check_price(int(limit_price_micro), tick)
        if bad_price:
            return _Order(side, order_type, limit_price_micro).reject(*bad_price)

    levels = _opposite_levels(book, side)
    if size_micro is not None:
        req_size = round_size_down(int(size_micro))
        order = _Order(side, order_type, limit_price_micro, requested_size_micro=req_size)
        if req_size <= 0 or req_size < min_size:
            return order.reject(
                BELOW_MIN_SIZE,
                f"size {_fmt(req_size)} is below the market's minimum order size {_fmt(min_size)}",
            )
        fills, left = _take_shares(_within_limit(levels, side, limit_price_micro), req_size, fee)
        return _outcome(order, book, fills, complete=left == 0, left=left)
    if amount_micro is None:  # unreachable: _validated_order demands one of the two
        raise ValueError(_ONE_OF_SIZE_OR_AMOUNT)
    req_amount = round_size_down(int(amount_micro))
    order = _Order(side, order_type, limit_price_micro, requested_amount_micro=req_amount)
    too_small = _amount_below_min_size(req_amount, limit_price_micro, levels, min_size)
    if too_small:
        return order.reject(BELOW_MIN_SIZE, too_small)
    fills, complete = _spend_amount(_within_limit(levels, side, limit_price_micro), req_amount, fee)
    # a BUY by amount is FOK/FAK (validated), so nothing rests: left = 0
    return _outcome(order, book, fills, complete=complete, left=0)


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
    order = _Order(side, "GTC", price_micro, requested_size_micro=int(remaining_size_micro))
    if take <= 0:
        return order.result(RESTING, remaining_size_micro=int(remaining_size_micro))
    fill = LevelFill(price_micro, take, notional_micro(price_micro, take), 0)
    left = int(remaining_size_micro) - take
    return order.result(FILLED if left == 0 else PARTIAL, (fill,), remaining_size_micro=left)
