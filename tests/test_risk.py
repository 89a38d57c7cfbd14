"""The shared risk manager (polybot/risk.py): every rule with hand-computed numbers."""

import json

import pytest

from polybot.config import RampUpStep, RiskLimits
from polybot.errors import DataError
from polybot.exchange.models import FeeSchedule
from polybot.risk import (
    RULE_DAILY_LOSS,
    RULE_EVENT_EXPOSURE,
    RULE_EXIT,
    RULE_LEVERAGE,
    RULE_MAX_POSITIONS,
    RULE_MIN_SIZE,
    RULE_PAUSED,
    RULE_PORTFOLIO_EXPOSURE,
    RULE_POSITION_SIZE,
    RULE_RAMP_UP,
    AccountState,
    RiskManager,
    load_correlation_groups,
    stop_loss_hits,
)
from polybot.strategy.base import ENTER, EXIT, Holding, Intent, MarketInfo

M = 1_000_000
DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC

LIMITS = RiskLimits(
    max_position_size=100,
    max_positions=4,
    max_portfolio_exposure=0.8,
    stop_loss_percent=0.15,
    daily_loss_limit=100,
    max_leverage=1.0,
    max_event_exposure=0.4,
    ramp_up=(RampUpStep(0, 2), RampUpStep(7, 4)),
)


def market(mid, event=None, neg=None, fee=None, min_size=5.0):
    return MarketInfo(
        market_id=mid,
        question=f"Q {mid}?",
        token_ids=(f"{mid}-yes", f"{mid}-no"),
        event_id=event,
        neg_risk=neg is not None,
        neg_risk_market_id=neg,
        fee=fee or FeeSchedule(),
        min_order_size=min_size,
    )


def buy(mid, usd=None, shares=None, price=0.50):
    return Intent(
        action=ENTER,
        token_id=f"{mid}-yes",
        market_id=mid,
        side="BUY",
        notional_micro=None if usd is None else int(usd * M),
        size_micro=None if shares is None else int(shares * M),
        limit_price_micro=int(price * M),
        reason="test",
    )


def hold(mid, cost, size=None):
    return Holding(
        token_id=f"{mid}-yes",
        market_id=mid,
        size_micro=int((size or cost * 2) * M),
        cost_micro=int(cost * M),
        opened_at=T0,
    )


def rm(markets=(), **kw):
    return RiskManager(LIMITS, 500 * M, markets=markets, **kw)


def test_clean_entry_is_approved_unchanged():
    m = market("A")
    acct = AccountState(cash_micro=500 * M, day_start_equity_micro=500 * M)
    d = rm([m]).check(buy("A", usd=50), acct, m, T0)
    assert d.approved and not d.resized and d.rule == "ok"
    assert d.intent == buy("A", usd=50)


def test_position_size_message_and_resize_or_reject():
    m = market("A")
    acct = AccountState(
        cash_micro=490 * M, positions={"A-yes": hold("A", 10)}, day_start_equity_micro=500 * M
    )
    # rejection when resizing is off: the example sentence of the issue
    d = rm([m], allow_resize=False).check(buy("A", usd=120), acct, m, T0)
    assert not d.approved and d.rule == RULE_POSITION_SIZE and d.intent is None
    assert d.detail == "max_position_size: order $120.00 would make the position $130.00 > $100.00"
    # resize: room = 100 − 10 = $90
    d = rm([m]).check(buy("A", usd=120), acct, m, T0)
    assert d.approved and d.resized and d.rule == RULE_POSITION_SIZE
    assert d.intent.notional_micro == 90 * M
    # by shares at 0.40: room $90 → 225 shares (225 × 0.40 = 90.00)
    d = rm([m]).check(buy("A", shares=400, price=0.40), acct, m, T0)
    assert d.approved and d.intent.size_micro == 225 * M


def test_portfolio_exposure_cap():
    ms = [market(x) for x in "ABCD"]
    # 3 positions of $100 cost = $300; cap 0.8 × 500 = $400 → room $100
    acct = AccountState(
        cash_micro=200 * M,
        positions={f"{x}-yes": hold(x, 100) for x in "ABC"},
        day_start_equity_micro=500 * M,
    )
    r = rm(ms, allow_resize=False)
    d = r.check(buy("D", usd=100), acct, ms[3], T0)
    assert d.approved
    acct2 = AccountState(
        cash_micro=200 * M,
        positions={f"{x}-yes": hold(x, 110 if x == "A" else 100) for x in "ABC"},
        day_start_equity_micro=500 * M,
    )
    d = r.check(buy("D", usd=100), acct2, ms[3], T0)
    assert not d.approved and d.rule == RULE_PORTFOLIO_EXPOSURE
    assert "order $100.00 would make the portfolio exposure $410.00 > $400.00" in d.detail


def test_max_positions_and_ramp_up():
    ms = [market(x) for x in "ABCDE"]
    acct = AccountState(
        cash_micro=400 * M, positions={f"{x}-yes": hold(x, 20) for x in "AB"}, day_start_equity_micro=500 * M
    )
    # no live day: max_positions 4 applies → a third position is fine
    assert rm(ms).check(buy("C", usd=20), acct, ms[2], T0).approved
    # first live day today: week 1 allows 2
    d = rm(ms, first_live_day=T0).check(buy("C", usd=20), acct, ms[2], T0 + 3 * DAY)
    assert not d.approved and d.rule == RULE_RAMP_UP
    assert d.detail == "ramp_up: 2 positions open and day 3 of the ramp-up plan allows 2; no new position"
    # day 7: 4 allowed
    assert rm(ms, first_live_day=T0).check(buy("C", usd=20), acct, ms[2], T0 + 7 * DAY).approved
    # adding to a held position is not a new position
    assert rm(ms, first_live_day=T0).check(buy("A", usd=20), acct, ms[0], T0).approved
    full = AccountState(
        cash_micro=400 * M,
        positions={f"{x}-yes": hold(x, 20) for x in "ABCD"},
        day_start_equity_micro=500 * M,
    )
    d = rm(ms).check(buy("E", usd=20), full, ms[4], T0)
    assert not d.approved and d.rule == RULE_MAX_POSITIONS


def test_event_negrisk_and_correlation_group_caps():
    a, b = market("A", event="E1"), market("B", event="E1")
    c, d_ = market("C", neg="N1"), market("D", neg="N1")
    e, f = market("E"), market("F")
    r = rm([a, b, c, d_, e, f], correlation_groups={"E": "g1", "F": "g1"}, allow_resize=False)
    cap = 200 * M  # 0.4 × 500
    for held, new in ((a, b), (c, d_), (e, f)):
        acct = AccountState(
            cash_micro=400 * M,
            positions={f"{held.market_id}-yes": hold(held.market_id, 110)},
            day_start_equity_micro=500 * M,
        )
        assert r.check(buy(new.market_id, usd=90), acct, new, T0).approved  # 200 ≤ 200
        dec = r.check(buy(new.market_id, usd=90.01), acct, new, T0)
        assert not dec.approved and dec.rule == RULE_EVENT_EXPOSURE, dec
        assert "$200.01 > $200.00" in dec.detail
    # an unrelated market is not capped by E1's exposure
    acct = AccountState(
        cash_micro=400 * M, positions={"A-yes": hold("A", 100)}, day_start_equity_micro=500 * M
    )
    assert r.check(buy("E", usd=100), acct, e, T0).approved
    assert cap == r.max_group_micro
    assert r.group_key(c) == "negrisk:N1" and r.group_key(e) == "corr:g1"


def test_no_leverage_counts_the_taker_fee():
    fee = FeeSchedule(rate=0.05, exponent=1, enabled=True)
    m = market("A", fee=fee)
    acct = AccountState(cash_micro=50 * M, day_start_equity_micro=50 * M)
    # at 0.50 the fee per $ of notional is 0.05 × (1 − 0.5) = 2.5% (+ a rounding unit):
    # $50 cash buys at most 50 / 1.02501 = $48.78 of notional
    d = rm([m]).check(buy("A", usd=60), acct, m, T0)
    assert d.approved and d.resized and d.rule == RULE_LEVERAGE
    assert d.intent.notional_micro == 48_780_000
    d = rm([m], allow_resize=False).check(buy("A", usd=60), acct, m, T0)
    assert not d.approved and d.detail.startswith(
        "max_leverage: order $60.00 plus its worst-case taker fee would spend $61.50 > cash $50.00"
    )


def test_daily_loss_limit_blocks_entries_not_exits():
    m = market("A")
    h = hold("A", 100, size=200)  # 200 shares
    # equity = cash 300 + 200 × 0.20 = 340; day started at 440 → P&L −100 ≤ −100
    acct = AccountState(
        cash_micro=300 * M, positions={"A-yes": h}, marks={"A-yes": 200_000}, day_start_equity_micro=440 * M
    )
    r = rm([m])
    d = r.check(buy("A", usd=10), acct, m, T0)
    assert not d.approved and d.rule == RULE_DAILY_LOSS
    assert d.detail == (
        "daily_loss_limit: today's P&L -$100.00 is at or below -$100.00; no new entries until 00:00 UTC"
    )
    ex = Intent(action=EXIT, token_id="A-yes", market_id="A", side="SELL", size_micro=250 * M)
    d = r.check(ex, acct, m, T0)
    assert d.approved and d.rule == RULE_EXIT and d.intent.size_micro == 200 * M  # cut to holding
    acct_ok = AccountState(
        cash_micro=300 * M,
        positions={"A-yes": h},
        marks={"A-yes": 200_000},
        day_start_equity_micro=439_990_000,
    )
    assert r.check(buy("B", usd=10), acct_ok, market("B"), T0).approved


def test_a_pause_blocks_entries_and_adding_but_not_exits():
    m = market("A")
    acct = AccountState(
        cash_micro=490 * M, positions={"A-yes": hold("A", 10)}, day_start_equity_micro=500 * M
    )
    r = rm([m, market("B")])
    r.entries_paused = "entries paused since 2026-01-01 00:00:00 UTC by @alice: news"
    for it in (buy("A", usd=10), buy("B", usd=10)):  # adding to a holding, and a new position
        d = r.check(it, acct, None, T0)
        assert not d.approved and d.rule == RULE_PAUSED and d.intent is None
        assert d.detail.startswith("paused: entries paused since 2026-01-01 00:00:00 UTC by @alice: news; ")
    ex = Intent(action=EXIT, token_id="A-yes", market_id="A", side="SELL", size_micro=20 * M)
    decisions = r.check_all([buy("B", usd=10), ex], acct, {"A": m}, T0)
    assert [(d.approved, d.rule) for d in decisions] == [(False, RULE_PAUSED), (True, RULE_EXIT)]
    r.entries_paused = None
    assert r.check(buy("B", usd=10), acct, None, T0).approved


def test_min_order_size_after_resize():
    m = market("A", min_size=5)
    acct = AccountState(cash_micro=2 * M, day_start_equity_micro=2 * M)
    d = rm([m]).check(buy("A", usd=10, price=0.5), acct, m, T0)  # $2 → 4 shares < 5
    assert not d.approved and d.rule == RULE_LEVERAGE and "min_order_size" in d.detail
    d = rm([m]).check(
        buy("A", shares=4, price=0.5), AccountState(100 * M, day_start_equity_micro=100 * M), m, T0
    )
    assert not d.approved and d.rule == RULE_MIN_SIZE


def test_check_all_counts_earlier_approvals():
    ms = {x: market(x, event="E") for x in "ABC"}
    acct = AccountState(cash_micro=500 * M, day_start_equity_micro=500 * M)
    r = rm(ms.values(), allow_resize=False)
    ds = r.check_all([buy("A", usd=100), buy("B", usd=100), buy("C", usd=100)], acct, ms, T0)
    assert [d.approved for d in ds] == [True, True, False]  # event cap $200
    assert ds[2].rule == RULE_MAX_POSITIONS or ds[2].rule == RULE_EVENT_EXPOSURE


def test_stop_loss_boundary_is_exact():
    h = Holding("A-yes", "A", size_micro=100 * M, cost_micro=50 * M, opened_at=T0)
    # −15% of $50 = $42.50 → bid 0.425 is exactly at the stop
    assert [x.holding for x in stop_loss_hits([h], {"A-yes": 425_000}, 0.15)] == [h]
    assert stop_loss_hits([h], {"A-yes": 425_001}, 0.15) == []
    assert stop_loss_hits([h], {}, 0.15) == []
    hit = stop_loss_hits([h], {"A-yes": 400_000}, 0.15)[0]
    assert hit.detail == "position worth $40.00 at the bid 0.4000 is -20.0% of its cost $50.00 (stop at -15%)"
    it = hit.intent()
    assert it.action == EXIT and it.size_micro == 100 * M and it.limit_price_micro is None


def test_no_stop_loss_for_a_holding_the_exchange_would_not_take_a_sell_of():
    # 4.999 shares round down to 4.99 < the market's 5-share minimum: a SELL would be rejected
    ms = {"A": market("A"), "B": market("B", min_size=1.0)}
    dust = Holding("A-yes", "A", size_micro=4_999_000, cost_micro=2 * M, opened_at=T0)
    five = Holding("A-yes", "A", size_micro=5 * M, cost_micro=2 * M, opened_at=T0)
    small = Holding("B-yes", "B", size_micro=4_999_000, cost_micro=2 * M, opened_at=T0)
    marks = {"A-yes": 100_000, "B-yes": 100_000}  # far below every stop
    # without markets the exchange decides
    assert [x.holding for x in stop_loss_hits([dust], marks, 0.15)] == [dust]
    assert stop_loss_hits([dust], marks, 0.15, ms.get) == []
    assert [x.holding for x in stop_loss_hits([five, small], marks, 0.15, ms.get)] == [five, small]
    assert [x.holding for x in stop_loss_hits([dust], marks, 0.15, {}.get)] == [dust]  # market unknown
    assert rm(ms.values()).stop_losses([dust, small], marks, ms.get)[0].holding == small


def test_correlation_groups_file(tmp_path):
    assert load_correlation_groups(tmp_path / "none.json") == {}
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"groups": [{"id": "g1", "markets": ["A", "B"]}]}))
    assert load_correlation_groups(p) == {"A": "g1", "B": "g1"}
    p.write_text("{not json")
    with pytest.raises(DataError, match="correlation_analysis.py"):
        load_correlation_groups(p)
