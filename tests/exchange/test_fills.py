"""Hand-checked numbers for the pure fill simulator (polybot/exchange/fills.py)."""

import pytest

from polybot.exchange.fills import (
    BELOW_MIN_SIZE,
    FAK_NO_MATCH,
    FILLED,
    FOK_NOT_FILLED,
    INVALID_PRICE,
    INVALID_TICK,
    NO_LIQUIDITY,
    PARTIAL,
    REJECTED,
    RESTING,
    resting_fill,
    simulate_fill,
)
from polybot.exchange.models import BookLevel, FeeSchedule, OrderBook

FEE5 = FeeSchedule(rate=0.05, exponent=1, enabled=True)
NOFEE = FeeSchedule()


def book(bids=(), asks=(), tick=0.01, min_size=5.0):
    return OrderBook(
        token_id="T",
        market="0xm",
        timestamp_ms=0,
        bids=tuple(BookLevel(p, s) for p, s in bids),
        asks=tuple(BookLevel(p, s) for p, s in asks),
        tick_size=tick,
        min_order_size=min_size,
    )


def test_buy_walks_asks_vwap_notional_and_per_fill_fee():
    # 100@0.50 + 150@0.52: notional 50 + 78 = 128.00, VWAP 128/250 = 0.512;
    # fee 100×0.05×0.25 = 1.25 and 150×0.05×(0.52×0.48=0.2496) = 1.872 → 3.122.
    r = simulate_fill(
        book(asks=[(0.50, 100), (0.52, 200)]), "BUY", size_micro=250_000_000, order_type="FOK", fee=FEE5
    )
    assert r.status == FILLED
    assert [(f.price_micro, f.size_micro, f.notional_micro, f.fee_micro) for f in r.fills] == [
        (500_000, 100_000_000, 50_000_000, 1_250_000),
        (520_000, 150_000_000, 78_000_000, 1_872_000),
    ]
    assert r.size_micro == 250_000_000
    assert r.notional_micro == 128_000_000
    assert r.avg_price_micro == 512_000
    assert r.fee_micro == 3_122_000
    assert r.cash_delta_micro == -131_122_000


def test_fee_rounds_half_up_to_5_decimals_per_fill():
    # 7 × 0.05 × (0.53 × 0.47 = 0.2491) = 0.087185 exactly: a tie at the 5th
    # decimal, half-up → 0.08719 (banker's rounding would give 0.08718).
    r = simulate_fill(book(asks=[(0.53, 100)]), "BUY", size_micro=7_000_000, fee=FEE5)
    assert r.fee_micro == 87_190
    # Two fills are rounded separately, then summed: 5 × 0.05 × 0.2491 = 0.0622750
    # → 0.06228 per fill; at 0.54: 5 × 0.05 × 0.2484 = 0.0621 → sum 0.12438.
    r = simulate_fill(book(asks=[(0.53, 5), (0.54, 5)]), "BUY", size_micro=10_000_000, fee=FEE5)
    assert [f.fee_micro for f in r.fills] == [62_280, 62_100]
    assert r.fee_micro == 124_380


def test_fee_below_minimum_is_zero_and_exponent_applies():
    # 5 × 0.001 × (0.999 × 0.001) = 0.000004995 → rounds to 0.00000 → 0.
    tiny = FeeSchedule(rate=0.001, exponent=1, enabled=True)
    r = simulate_fill(book(asks=[(0.999, 50)], tick=0.001), "BUY", size_micro=5_000_000, fee=tiny)
    assert r.status == FILLED and r.fee_micro == 0
    # exponent 2 at p = 0.5: 100 × 0.05 × 0.25² = 0.3125
    sq = FeeSchedule(rate=0.05, exponent=2, enabled=True)
    r = simulate_fill(book(asks=[(0.5, 100)]), "BUY", size_micro=100_000_000, fee=sq)
    assert r.fee_micro == 312_500
    # a disabled schedule charges nothing
    off = FeeSchedule(rate=0.05, exponent=1, enabled=False)
    assert simulate_fill(book(asks=[(0.5, 100)]), "BUY", size_micro=100_000_000, fee=off).fee_micro == 0


def test_sell_walks_bids_best_first_and_cash_delta():
    # bids given out of order; best (0.48) first: 50@0.48 = 24.00, 70@0.47 = 32.90.
    # fees: 50×0.05×0.2496 = 0.624; 70×0.05×0.2491 = 0.87185 → 1.49585.
    r = simulate_fill(
        book(bids=[(0.47, 100), (0.48, 50)]), "SELL", size_micro=120_000_000, order_type="FAK", fee=FEE5
    )
    assert r.status == FILLED
    assert [(f.price_micro, f.size_micro) for f in r.fills] == [(480_000, 50_000_000), (470_000, 70_000_000)]
    assert r.notional_micro == 56_900_000
    assert r.fee_micro == 624_000 + 871_850
    assert r.cash_delta_micro == 56_900_000 - 1_495_850


def test_limit_price_stops_the_walk_fok_vs_fak():
    b = book(asks=[(0.50, 100), (0.52, 200), (0.55, 100)])
    fak = simulate_fill(
        b, "BUY", size_micro=350_000_000, limit_price_micro=520_000, order_type="FAK", fee=NOFEE
    )
    assert fak.status == PARTIAL and fak.size_micro == 300_000_000
    assert fak.notional_micro == 50_000_000 + 104_000_000
    fok = simulate_fill(
        b, "BUY", size_micro=350_000_000, limit_price_micro=520_000, order_type="FOK", fee=NOFEE
    )
    assert fok.status == REJECTED and fok.code == FOK_NOT_FILLED and fok.size_micro == 0
    assert fok.fills == ()
    # SELL limit 0.48 takes only bids ≥ 0.48
    s = simulate_fill(
        book(bids=[(0.49, 10), (0.48, 10), (0.47, 10)]),
        "SELL",
        size_micro=30_000_000,
        limit_price_micro=480_000,
        order_type="FAK",
        fee=NOFEE,
    )
    assert s.size_micro == 20_000_000 and s.status == PARTIAL
    # nothing at or better than the limit
    none = simulate_fill(
        b, "BUY", size_micro=10_000_000, limit_price_micro=400_000, order_type="FAK", fee=NOFEE
    )
    assert none.code == FAK_NO_MATCH and "limit 0.4" in none.reason


def test_tick_and_price_range():
    b = book(asks=[(0.50, 100)])
    r = simulate_fill(b, "BUY", size_micro=10_000_000, limit_price_micro=505_000, fee=NOFEE)
    assert r.code == INVALID_TICK and "0.505" in r.reason
    r = simulate_fill(b, "BUY", size_micro=10_000_000, limit_price_micro=995_000, tick_size=0.01, fee=NOFEE)
    assert r.code == INVALID_TICK
    r = simulate_fill(b, "BUY", size_micro=10_000_000, limit_price_micro=1_000_000, fee=NOFEE)
    assert r.code == INVALID_PRICE
    r = simulate_fill(b, "SELL", size_micro=10_000_000, limit_price_micro=0, fee=NOFEE)
    assert r.code == INVALID_PRICE
    # 0.99 and 0.01 are the extreme valid prices at tick 0.01
    assert (
        simulate_fill(b, "BUY", size_micro=10_000_000, limit_price_micro=990_000, fee=NOFEE).status == FILLED
    )
    # a finer tick (0.001) accepts 0.505 — the argument overrides the book's tick
    r = simulate_fill(
        b, "BUY", size_micro=10_000_000, limit_price_micro=505_000, tick_size="0.001", fee=NOFEE
    )
    assert r.status == FILLED and r.avg_price_micro == 500_000


def test_min_order_size_and_size_rounding():
    b = book(asks=[(0.50, 100)], min_size=5)
    r = simulate_fill(b, "BUY", size_micro=4_990_000, fee=NOFEE)
    assert r.status == REJECTED and r.code == BELOW_MIN_SIZE
    # 5.009 shares is rounded down to 5.00 (the CLOB's 2 decimals) and accepted
    r = simulate_fill(b, "BUY", size_micro=5_009_000, fee=NOFEE)
    assert r.status == FILLED and r.size_micro == 5_000_000 and r.requested_size_micro == 5_000_000
    # explicit min_order_size overrides the book's
    assert simulate_fill(b, "BUY", size_micro=5_000_000, min_order_size=10, fee=NOFEE).code == BELOW_MIN_SIZE


def test_empty_side():
    b = book(bids=[(0.40, 100)])
    for ot in ("FOK", "FAK"):
        r = simulate_fill(b, "BUY", size_micro=10_000_000, order_type=ot, fee=NOFEE)
        assert r.status == REJECTED and r.code == NO_LIQUIDITY and "no asks" in r.reason
    g = simulate_fill(b, "BUY", size_micro=10_000_000, limit_price_micro=300_000, order_type="GTC", fee=NOFEE)
    assert g.status == RESTING and g.remaining_size_micro == 10_000_000 and g.fills == ()


def test_buy_by_usd_amount():
    b = book(asks=[(0.50, 100), (0.52, 200)])
    # $60: $50 buys 100@0.50, $10 buys floor(10/0.52 micro) = 19.230769 shares @0.52,
    # costing 9.99999988 → 10.000000 (half-up): exactly the budget.
    r = simulate_fill(b, "BUY", amount_micro=60_000_000, order_type="FOK", fee=NOFEE)
    assert r.status == FILLED
    assert [(f.price_micro, f.size_micro, f.notional_micro) for f in r.fills] == [
        (500_000, 100_000_000, 50_000_000),
        (520_000, 19_230_769, 10_000_000),
    ]
    assert r.notional_micro == 60_000_000
    assert r.requested_amount_micro == 60_000_000
    # more than the book holds ($154): FOK killed, FAK takes everything
    assert simulate_fill(b, "BUY", amount_micro=200_000_000, fee=NOFEE).code == FOK_NOT_FILLED
    fak = simulate_fill(b, "BUY", amount_micro=200_000_000, order_type="FAK", fee=NOFEE)
    assert fak.status == PARTIAL and fak.size_micro == 300_000_000
    assert fak.notional_micro == 154_000_000
    # $2 at 0.50 implies 4 shares < 5 minimum
    assert simulate_fill(b, "BUY", amount_micro=2_000_000, fee=NOFEE).code == BELOW_MIN_SIZE
    # the amount never overspends, whatever the price
    odd = simulate_fill(book(asks=[(0.37, 1000)]), "BUY", amount_micro=13_330_000, fee=NOFEE)
    assert odd.notional_micro <= 13_330_000 and 13_330_000 - odd.notional_micro <= 1


def test_gtc_crossing_part_fills_rest_rests():
    b = book(asks=[(0.50, 100), (0.53, 100)])
    r = simulate_fill(b, "BUY", size_micro=150_000_000, limit_price_micro=510_000, order_type="GTC", fee=FEE5)
    assert r.status == PARTIAL
    assert r.size_micro == 100_000_000 and r.remaining_size_micro == 50_000_000
    assert r.fee_micro == 1_250_000  # the crossing part paid the taker fee
    r = simulate_fill(b, "BUY", size_micro=150_000_000, limit_price_micro=490_000, order_type="GTD", fee=FEE5)
    assert r.status == RESTING and r.fee_micro == 0 and r.remaining_size_micro == 150_000_000


def test_resting_fill_is_maker_at_own_price():
    # resting BUY @0.49 for 50: asks ≤ 0.49 total 40 → 40 fill at 0.49, no fee
    b = book(asks=[(0.48, 30), (0.49, 10), (0.50, 100)])
    r = resting_fill(b, "BUY", price_micro=490_000, remaining_size_micro=50_000_000)
    assert r.status == PARTIAL and r.size_micro == 40_000_000 and r.remaining_size_micro == 10_000_000
    assert r.fills[0].price_micro == 490_000 and r.fee_micro == 0
    assert r.notional_micro == 19_600_000
    # a SELL @0.60 against bids topping at 0.59 does not fill
    r = resting_fill(book(bids=[(0.59, 100)]), "SELL", price_micro=600_000, remaining_size_micro=10_000_000)
    assert r.status == RESTING and r.fills == ()
    r = resting_fill(book(bids=[(0.61, 100)]), "SELL", price_micro=600_000, remaining_size_micro=10_000_000)
    assert r.status == FILLED and r.notional_micro == 6_000_000


def test_caller_bugs_raise():
    b = book(asks=[(0.5, 100)])
    with pytest.raises(ValueError):
        simulate_fill(b, "BUY", size_micro=1, amount_micro=1, fee=NOFEE)
    with pytest.raises(ValueError):
        simulate_fill(b, "BUY", fee=NOFEE)
    with pytest.raises(ValueError):
        simulate_fill(b, "SELL", amount_micro=10_000_000, fee=NOFEE)
    with pytest.raises(ValueError):
        simulate_fill(b, "HOLD", size_micro=10_000_000, fee=NOFEE)
    with pytest.raises(ValueError):
        simulate_fill(b, "BUY", size_micro=10_000_000, order_type="GTC", fee=NOFEE)
