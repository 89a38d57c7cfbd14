"""Exact money and share arithmetic.

Everything that settles — cash, order prices and sizes, fills, fees, positions,
P&L — is stored and computed as INTEGER micro-units: 1 unit = 1e-6 USDC (pUSD has
6 decimals on-chain) or 1e-6 share (outcome tokens also have 6 decimals). Integers
never drift, so summing recorded trades reproduces cash to the last micro-dollar.
Prices are micro-units of USDC per share (0.53 → 530_000). Conversion from
strings/floats goes through ``Decimal`` so ``0.1`` becomes exactly 100_000.

Rounding rules (documented once, used everywhere):
- a notional (price × size) is rounded to the nearest micro-unit, half-up;
- a fee is rounded to 5 decimals as Polymarket does (10 micro-units), half-up,
  and fees below 0.00001 are 0;
- share sizes for orders are rounded DOWN to 2 decimals (the CLOB's rule).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

MICRO = 1_000_000
_D_MICRO = Decimal(MICRO)


def to_micro(value: str | float | int | Decimal) -> int:
    """Convert a decimal amount ("0.53", 0.53, 12) to integer micro-units, exactly.

    Raises ValueError for values that are not finite numbers.
    """
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return int((d * _D_MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_micro(micro: int) -> Decimal:
    """Micro-units → exact Decimal amount."""
    return Decimal(int(micro)) / _D_MICRO


def micro_to_float(micro: int) -> float:
    return int(micro) / MICRO


def notional_micro(price_micro: int, size_micro: int) -> int:
    """price × size in micro-units, rounded half-up to the nearest micro-unit."""
    q, r = divmod(int(price_micro) * int(size_micro), MICRO)
    return q + (1 if 2 * r >= MICRO else 0)


def div_half_up(a: int, b: int) -> int:
    """Integer a ÷ b rounded half away from zero (0 when b is 0): exact average prices."""
    if b == 0:
        return 0
    sign = -1 if (a < 0) != (b < 0) else 1
    q, r = divmod(abs(int(a)), abs(int(b)))
    return sign * (q + (1 if 2 * r >= abs(int(b)) else 0))


def average_price_micro(cost_micro: int, size_micro: int) -> int:
    """A position's average price per share: cost basis ÷ shares, half-up to the micro-unit (0 when
    no shares are held). The one definition: the strategy and risk view (``domain.Holding``) and the
    ledger's positions (``ledger_queries.PositionRow``) both use it."""
    return div_half_up(int(cost_micro) * MICRO, int(size_micro))


def taker_fee_micro(
    size_micro: int, price_micro: int, rate: float | str | Decimal, exponent: float | int = 1
) -> int:
    """Polymarket taker fee: shares × rate × (p × (1 − p))^exponent, rounded to 5 dp.

    Fees below 0.00001 USDC are zero (Polymarket's rule).
    """
    shares = from_micro(size_micro)
    p = from_micro(price_micro)
    base = p * (1 - p)
    exp = Decimal(str(exponent))
    factor = base if exp == 1 else Decimal(str(float(base) ** float(exp)))
    fee = shares * Decimal(str(rate)) * factor
    fee = fee.quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP)
    if fee < Decimal("0.00001"):
        return 0
    return int(fee * _D_MICRO)


def round_size_down(size_micro: int, decimals: int = 2) -> int:
    """Round a share size down to ``decimals`` places (the CLOB accepts 2)."""
    step = 10 ** (6 - decimals)
    return (int(size_micro) // step) * step


def round_price_to_tick(price_micro: int, tick_micro: int, *, up: bool) -> int:
    """Round a price to the market's tick, up (for buys that must cross) or down."""
    q, r = divmod(int(price_micro), int(tick_micro))
    if r and up:
        q += 1
    return q * int(tick_micro)


def fmt_usd(micro: int, *, signed: bool = False) -> str:
    """Format micro-units as dollars: 500_000_000 → '$500.00' ('+$1.50' when signed)."""
    d = from_micro(micro).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if d < 0 else ("+" if signed and d > 0 else "")
    return f"{sign}${abs(d):,.2f}"


def quantize_down(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
