"""The signed amounts of a CLOB order, in exact integer micro-units (pure, no network).

An order on Polymarket's CLOB is signed as two integers in base units (6 decimals =
our micro-units): ``makerAmount`` (what we give) and ``takerAmount`` (what we get).
BUY: maker = pUSD, taker = shares. SELL: maker = shares, taker = pUSD.

Limit orders (GTC/GTD) — as ``py_clob_client_v2.order_builder.builder.get_order_amounts``:
shares rounded DOWN to 2 decimals, price exactly on the tick, the other amount the
exact product (at most tick decimals + 2, e.g. 5 on a 0.001 tick), so the price the
exchange reads back (maker/taker) is exactly the limit.

Market orders (FOK/FAK): the CLOB accepts them only with makerAmount of at most 2
decimals and takerAmount of at most 4, WHATEVER the tick — its 400 reads "invalid
amounts, the market buy orders maker amount supports a max accuracy of 2 decimals,
taker amount a max of 4 decimals" (py-clob-client-v2 #99: the SDK's
``get_market_order_amounts`` uses ROUNDING_CONFIG's per-tick ``amount`` decimals, 5 or 6
on fine ticks, so its market orders are always rejected there; also py-clob-client #253,
rs-clob-client-v2 #59). So we compute them here:

- BUY ``size`` shares at worst price P: maker = floor₂(floor₄(size)·P) pUSD — never more
  than size×P — and taker = floor₄(maker / P) shares — never more than size.
- BUY by ``amount`` pUSD at worst price P: maker = floor₂(amount), taker = floor₄(maker / P).
- SELL ``size`` shares at worst price P: maker = floor₂(size) — never more than size —
  and taker = floor₄(maker·P) pUSD.

The 4-decimal amount is rounded DOWN, the way the SDK's own market builder rounds it, so
the implied price (BUY maker/taker, SELL taker/maker) lies within a hair of P on the
looser side: the 4-decimal amount loses less than 0.0001 in total, i.e. < 0.0001/shares
per share (the order is refused if that would reach a whole tick). No price level exists
strictly between P and P ± that hair (levels are on the tick), so every fill is still at
P or better; and an exchange that reads a market order's limit rounded to the tick (BUY
down, SELL up — the simulator's model, polybot/sim/RULES.md §2) reads exactly P. Rounding
the other way (implied price strictly inside P) would make such an exchange read P − tick
(BUY) / P + tick (SELL) and skip the level at P: an exit priced at the best bid would not fill.

Integer arithmetic throughout: float rounding signed 37.72 shares for 37.73
(``floor(37.73 * 100) = 3772``, issue 13 finding 9).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from polybot.domain import BUY, SELL
from polybot.money import MICRO

CENT = 10_000  # 0.01 in micro-units: 2 decimals
BASIS = 100  # 0.0001 in micro-units: 4 decimals
MIN_MARKET_BUY_MICRO = 1_000_000
"""The CLOB's minimum for a marketable BUY is $1 of pUSD (limit orders: the market's
``orderMinSize`` in shares). Source: nautilus_trader #3874 ("market order: minimum
amount is $1; limit order: minimum shares size is 5"); refusing below it loses nothing."""

TICKS = ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001")  # the SDK's ROUNDING_CONFIG keys


class AmountError(ValueError):
    """The order cannot be expressed with valid amounts; ``str()`` is one sentence."""


@dataclass(frozen=True)
class Amounts:
    side: str
    maker_micro: int  # base units the order gives (BUY: pUSD, SELL: shares)
    taker_micro: int  # base units the order gets (BUY: shares, SELL: pUSD)

    @property
    def shares_micro(self) -> int:
        return self.taker_micro if self.side == BUY else self.maker_micro

    @property
    def usd_micro(self) -> int:
        return self.maker_micro if self.side == BUY else self.taker_micro

    def implied_price(self) -> Decimal:
        """pUSD per share as the exchange reads it back from the two amounts."""
        return Decimal(self.usd_micro) / Decimal(self.shares_micro)


def tick_str(tick: object) -> str | None:
    """Canonical text of a tick (``0.010`` → ``"0.01"``); None for None/""."""
    if tick in (None, ""):
        return None
    try:
        return format(Decimal(str(tick)).normalize(), "f")
    except InvalidOperation:
        raise AmountError(f"tick size {tick!r} is not a number") from None


def valid_tick(tick: object) -> str:
    """Canonical text of a tick the CLOB uses (one of ``TICKS``); AmountError otherwise."""
    t = tick_str(tick)
    if t is None or t not in TICKS:
        raise AmountError(f"tick size {tick!r} is not one the CLOB uses ({', '.join(TICKS)})")
    return t


def tick_micro(tick: object) -> int:
    return int(Decimal(valid_tick(tick)) * MICRO)


def _floor(x: int, unit: int) -> int:
    return (x // unit) * unit


def check_price(price_micro: int, tick: object) -> None:
    """Raise AmountError unless tick ≤ price ≤ 1 − tick and price is a multiple of the tick."""
    t = tick_micro(tick)
    if not t <= price_micro <= MICRO - t:
        raise AmountError(
            f"price {price_micro / MICRO:g} is outside the market's range "
            f"{t / MICRO:g}–{(MICRO - t) / MICRO:g} (tick {tick_str(tick)})"
        )
    if price_micro % t:
        raise AmountError(
            f"price {price_micro / MICRO:g} is not a multiple of the market's tick {tick_str(tick)}"
        )


def limit_amounts(side: str, price_micro: int, size_micro: int, tick: object) -> Amounts:
    """GTC/GTD: shares floored to 2 decimals, the exact price×shares product."""
    check_price(price_micro, tick)
    shares = _floor(int(size_micro), CENT)
    if shares <= 0:
        raise AmountError(f"size {size_micro / MICRO:g} rounds to 0 shares (the CLOB takes 2 decimals)")
    usd, rest = divmod(shares * price_micro, MICRO)
    if rest:  # impossible for a price on one of TICKS and 2-decimal shares
        raise AmountError(f"{shares / MICRO:g} shares × {price_micro / MICRO:g} is not a whole micro-unit")
    return Amounts(BUY, usd, shares) if side == BUY else Amounts(SELL, shares, usd)


def market_amounts(
    side: str,
    price_micro: int,
    tick: object,
    *,
    size_micro: int | None = None,
    amount_micro: int | None = None,
) -> Amounts:
    """FOK/FAK amounts (maker ≤ 2 decimals, taker ≤ 4) for a worst price ``price_micro``.

    BUY by ``size_micro`` shares or by ``amount_micro`` pUSD; SELL by ``size_micro``.
    Never spends more than size×P (or amount), never sells more than size, implied price
    within one tick of P (see the module docstring). Raises AmountError (one sentence)
    when rounding leaves an invalid order.
    """
    p, t = int(price_micro), tick_micro(tick)
    if not t <= p <= MICRO - t:
        raise AmountError(
            f"worst price {p / MICRO:g} is outside the market's range "
            f"{t / MICRO:g}–{(MICRO - t) / MICRO:g} (tick {tick_str(tick)})"
        )
    if (size_micro is None) == (amount_micro is None):
        raise AmountError("give exactly one of size (shares) or amount (pUSD)")
    if side == SELL:
        if size_micro is None:
            raise AmountError("a SELL is sized in shares, not pUSD")
        maker = _floor(int(size_micro), CENT)
        if maker <= 0:
            raise AmountError(
                f"SELL of {size_micro / MICRO:g} shares rounds to 0 (market orders take shares to 2 decimals)"
            )
        taker = _floor(maker * p // MICRO, BASIS)  # floor₄(maker·P)
        # implied price taker/maker must stay above P − tick
        if taker <= 0 or taker * MICRO <= (p - t) * maker:
            raise AmountError(
                f"SELL of {maker / MICRO:g} shares at worst price {p / MICRO:g} is too "
                f"small to express with a 4-decimal pUSD amount; sell more shares"
            )
        return Amounts(SELL, maker, taker)
    if side != BUY:
        raise AmountError(f"side must be BUY or SELL, got {side!r}")
    if amount_micro is not None:
        maker = _floor(int(amount_micro), CENT)
    elif size_micro is not None:
        maker = _floor(_floor(int(size_micro), BASIS) * p // MICRO, CENT)  # floor₂(floor₄(size)·P)
    else:  # unreachable: "exactly one of size or amount" was checked above
        raise AmountError("give exactly one of size (shares) or amount (pUSD)")
    if maker < MIN_MARKET_BUY_MICRO:
        raise AmountError(
            f"a market BUY must spend at least $1 (the CLOB's minimum); this one "
            f"would spend ${maker / MICRO:.2f}"
        )
    taker = _floor(maker * MICRO // p, BASIS)  # floor₄(maker / P)
    # implied price maker/taker must stay below P + tick (always true with maker ≥ $1)
    if taker <= 0 or maker * MICRO >= (p + t) * taker:
        raise AmountError(
            f"BUY at worst price {p / MICRO:g} cannot be expressed with a 4-decimal share amount"
        )
    return Amounts(BUY, maker, taker)


def order_amounts(
    side: str,
    order_type: str,
    tick: object,
    *,
    price_micro: int | None,
    size_micro: int | None = None,
    amount_micro: int | None = None,
) -> Amounts:
    """Amounts for any order type: limit (GTC/GTD) or market (FOK/FAK)."""
    if order_type in ("GTC", "GTD"):
        if price_micro is None or size_micro is None:
            raise AmountError(f"a {order_type} order needs a price and a size in shares")
        return limit_amounts(side, price_micro, size_micro, tick)
    if price_micro is None:
        raise AmountError("a market order needs its worst price")
    return market_amounts(side, price_micro, tick, size_micro=size_micro, amount_micro=amount_micro)
