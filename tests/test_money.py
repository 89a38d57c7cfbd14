"""Exact money arithmetic (pure functions)."""

from decimal import Decimal

import pytest

from polybot.money import (
    fmt_usd,
    from_micro,
    notional_micro,
    round_price_to_tick,
    round_size_down,
    taker_fee_micro,
    to_micro,
)


def test_to_micro_is_exact():
    assert to_micro("0.1") == 100_000
    assert to_micro(0.1) == 100_000
    assert to_micro("500") == 500_000_000
    assert to_micro("0.0000005") == 1  # half-up at the 7th decimal
    assert from_micro(123_456_789) == Decimal("123.456789")
    with pytest.raises(ValueError):
        to_micro("nan")


def test_notional_and_fee():
    # 150 shares at 0.52 = 78.00
    assert notional_micro(520_000, 150_000_000) == 78_000_000
    # fee: 100 shares × 0.05 × 0.5 × 0.5 = 1.25
    assert taker_fee_micro(100_000_000, 500_000, "0.05") == 1_250_000
    # 150 × 0.05 × 0.52 × 0.48 = 1.872
    assert taker_fee_micro(150_000_000, 520_000, 0.05) == 1_872_000
    # crypto example from the docs: 100 shares @0.50 at 0.07 → 1.75
    assert taker_fee_micro(100_000_000, 500_000, 0.07) == 1_750_000
    # tiny fees round to 5 dp; below 0.00001 they are zero
    assert taker_fee_micro(100, 500_000, 0.04) == 0
    assert taker_fee_micro(1_000, 500_000, 0.04) == 10  # exactly 0.00001
    assert taker_fee_micro(10_000_000, 990_000, 0.04) == 3_960  # 0.00396


def test_rounding_helpers_and_format():
    assert round_size_down(12_345_678) == 12_340_000
    assert round_price_to_tick(523_000, 10_000, up=True) == 530_000
    assert round_price_to_tick(523_000, 10_000, up=False) == 520_000
    assert fmt_usd(500_000_000) == "$500.00"
    assert fmt_usd(-12_505_000) == "-$12.51"
    assert fmt_usd(1_500_000, signed=True) == "+$1.50"
