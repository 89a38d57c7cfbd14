"""Regressions for the demo backtest that lost 99.8% of its capital (83 trades, 2 won).

Each test names the defect it pins down and fails on the code before its fix:

1. the stop loss sat inside the entry's own spread + fee (cheap tokens were stopped out
   at the next mark) → risk rule ``entry_cost``;
2. a stopped-out token was bought back at the next step, again and again →
   ``stop_loss_cooldown``;
3. the daily loss limit re-opened entries as soon as the marks bounced back above
   −limit, although it says "no new entries until 00:00 UTC" → latched on the day's low;
4. the strategies asked for $50 entries with no cash (2,339 max_leverage rejections);
5. the strategies entered trades whose expected move could not pay the spread and the
   two taker fees;
6. the backtester dropped a cash-bound dollar BUY that filled below its limit price
   (more shares → more fee than reserved) as ``insufficient_cash``, every step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from polybot.backtest.data import load_markets
from polybot.config import RampUpStep, RiskLimits
from polybot.db import connect
from polybot.exchange.fills import simulate_fill
from polybot.exchange.models import BookLevel, FeeSchedule, OrderBook
from polybot.risk import (
    RULE_DAILY_LOSS,
    RULE_ENTRY_COST,
    RULE_STOP_COOLDOWN,
    AccountState,
    RiskManager,
)
from polybot.strategy import ENTER, Intent, MarketInfo, PortfolioView
from polybot.strategy.correlation_pairs import CorrelationPairs
from polybot.strategy.feed import MarketFeed
from polybot.strategy.mean_reversion import MeanReversion
from tests.backtest.helpers import DAY, T0, M, add_market, new_db, snap
from tests.backtest.test_backtest import Scripted, run_bt
from tests.strategy.test_strategy import PAIR_PARAMS, _pair_feed, mk, row

H = 3600
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
CRYPTO_FEE = FeeSchedule(rate=0.07, exponent=1, enabled=True)  # the simulator's Crypto markets


def market(mid, fee=None):
    return MarketInfo(
        market_id=mid, question=f"Q {mid}?", token_ids=(f"{mid}-yes", f"{mid}-no"), fee=fee or FeeSchedule()
    )


def buy(mid, usd=50, price=0.5):
    return Intent(
        action=ENTER,
        token_id=f"{mid}-yes",
        market_id=mid,
        side="BUY",
        notional_micro=int(usd * M),
        limit_price_micro=int(round(price * M)),
        reason="test",
    )


# ------------------------------------------------------------------ 1. stop inside the spread
def test_entry_whose_spread_and_fee_already_reach_the_stop_is_refused():
    m = market("A", CRYPTO_FEE)
    r = RiskManager(LIMITS, 500 * M, markets=[m])
    # the demo's backfilled book around 0.23: bid 0.22, ask 0.24 (+1 tick limit 0.25). Bought at
    # 0.24 + 5.3% fee and marked at 0.22, the position is at −13.0% at once: one tick from the
    # 15% stop. Refused: the instant loss must stay below 0.5 × 15% = 7.5%.
    acct = AccountState(
        cash_micro=500 * M, marks={"A-yes": 220_000}, asks={"A-yes": 240_000}, day_start_equity_micro=500 * M
    )
    d = r.check(buy("A", price=0.25), acct, m, T0)
    assert not d.approved and d.rule == RULE_ENTRY_COST, d
    assert "loses 13.0% at once" in d.detail and "0.5 × the 15% stop loss" in d.detail
    # the same market at 0.50/0.51 loses 1 − 0.50 / (0.51 × 1.0343) = 5.2%: fine
    acct = AccountState(
        cash_micro=500 * M, marks={"A-yes": 500_000}, asks={"A-yes": 510_000}, day_start_equity_micro=500 * M
    )
    d = r.check(buy("A", price=0.52), acct, m, T0)
    assert d.approved and d.rule == "ok", d
    # no ask known: the limit price is the entry price (0.52 → 7.0%, still below 7.5%)
    acct = AccountState(cash_micro=500 * M, marks={"A-yes": 500_000}, day_start_equity_micro=500 * M)
    assert r.check(buy("A", price=0.52), acct, m, T0).approved
    assert r.check(buy("A", price=0.53), acct, m, T0).rule == RULE_ENTRY_COST


def test_replay_does_not_buy_a_cheap_token_the_stop_would_sell_at_the_next_mark(tmp_path):
    db = tmp_path / "cheap.db"
    conn = new_db(db)
    add_market(conn, "A", fee_rate=0.07)
    for k in range(12):  # backfilled price 0.06 → traded at 0.05 / 0.07
        snap(conn, T0 + 300 * k, "A-yes", "A", last=0.06, source="backfill")
    conn.close()
    script = {
        T0 + 300 * k: [(ENTER, "A-yes", "A", {"notional_micro": 50 * M, "limit_price_micro": 80_000})]
        for k in range(0, 10, 2)
    }
    bt, res, m = run_bt(db, Scripted(script), T0, T0 + DAY - 1)
    # before: bought at 0.07, worth −33% at the bid 0.05 → stopped out, bought again, 5 times
    assert res.ledger.fills == []
    assert res.rejections["entry_cost"] == 5
    assert m["final_capital"] == 500


# ------------------------------------------------------------------ 2. re-entry after a stop
def test_no_reentry_into_a_token_within_the_cooldown_after_its_stop_loss():
    m = market("A")
    r = RiskManager(LIMITS, 500 * M, markets=[m])
    base = dict(cash_micro=500 * M, day_start_equity_micro=500 * M)
    d = r.check(buy("A"), AccountState(**base, stop_exits={"A-yes": T0 - H}), m, T0)
    assert not d.approved and d.rule == RULE_STOP_COOLDOWN, d
    assert "stopped out 1.0 h ago; no re-entry for 24 h (23.0 h left)" in d.detail
    assert r.check(buy("A"), AccountState(**base, stop_exits={"A-yes": T0 - 24 * H}), m, T0).approved
    assert r.check(buy("B"), AccountState(**base, stop_exits={"A-yes": T0 - H}), market("B"), T0).approved
    off = RiskManager(RiskLimits(stop_loss_cooldown_hours=0), 500 * M, markets=[m])
    assert off.check(buy("A"), AccountState(**base, stop_exits={"A-yes": T0 - H}), m, T0).approved


def test_replay_does_not_buy_back_what_the_stop_loss_just_sold(tmp_path):
    db = tmp_path / "reentry.db"
    conn = new_db(db)
    add_market(conn, "A")
    prices = [0.50, 0.50, 0.40, 0.40, 0.40, 0.40, 0.40, 0.40, 0.40, 0.40]
    for k, p in enumerate(prices):
        snap(conn, T0 + 300 * k, "A-yes", "A", round(p - 0.01, 2), p)
    conn.close()
    # the "signal" stays on: the script asks to buy at every step while it is flat
    script = {
        T0 + 300 * k: [(ENTER, "A-yes", "A", {"notional_micro": 50 * M, "limit_price_micro": 510_000})]
        for k in range(9)
    }
    bt, res, m = run_bt(db, WhenFlat(script), T0, T0 + DAY - 1)
    sides = [(f.timestamp, f.side, f.reason.split(":")[0]) for f in res.ledger.fills]
    # bought at T0+300 (0.50), the bid 0.39 at T0+600 is −22% → stop, sold at T0+900; before the
    # fix it bought straight back at T0+1200 (in the demo: to be stopped out again at once)
    assert sides == [(T0 + 300, "BUY", "script ENTER"), (T0 + 900, "SELL", "stop_loss")]
    assert res.rejections["stop_loss_cooldown"] == 6  # asked at T0+900 … T0+2400


class WhenFlat(Scripted):
    """The scripted strategy, entering only tokens it does not hold (like the built-ins)."""

    def decide(self, view, portfolio):
        return [
            it
            for it in super().decide(view, portfolio)
            if it.action != ENTER or not portfolio.holds(it.token_id)
        ]


# ------------------------------------------------------------------ 3. daily loss limit latch
def test_daily_loss_limit_stays_latched_after_the_marks_bounce_back():
    m = market("A")
    r = RiskManager(LIMITS, 500 * M, markets=[m])
    # the day started at $500, equity fell to $399 (−$101) earlier today and is $450 now (−$50)
    acct = AccountState(cash_micro=450 * M, day_start_equity_micro=500 * M, day_low_equity_micro=399 * M)
    d = r.check(buy("A", usd=10), acct, m, T0)
    assert not d.approved and d.rule == RULE_DAILY_LOSS, d
    assert d.detail == (
        "daily_loss_limit: today's P&L fell to -$101.00 (now -$50.00), at or below -$100.00; "
        "no new entries until 00:00 UTC"
    )
    assert r.daily_loss_breached(acct) is not None
    # a low of −$99 never reached the limit
    ok = AccountState(cash_micro=450 * M, day_start_equity_micro=500 * M, day_low_equity_micro=401 * M)
    assert r.check(buy("A", usd=10), ok, m, T0).approved


def test_replay_keeps_entries_closed_for_the_rest_of_the_day_after_the_daily_loss(tmp_path):
    db = tmp_path / "daily.db"
    conn = new_db(db)
    add_market(conn, "A")
    add_market(conn, "B")
    # A: bought 400 shares at 0.50 ($200; the cap is opened wide), dips to 0.24 (−$104 at the
    # bid; the stop is set beyond it) and recovers to 0.45 (−$20). B: a steady market.
    a_bid = {0: 0.49, 1: 0.49, 2: 0.24, 3: 0.44, 4: 0.44, 5: 0.44, 6: 0.44}
    for k in range(int(DAY / 300) + 12):
        t = T0 + 300 * k
        ab = a_bid.get(k, 0.44)
        snap(conn, t, "A-yes", "A", ab, round(ab + 0.01, 2))
        snap(conn, t, "B-yes", "B", 0.49, 0.50)
    conn.close()
    script = {T0: [(ENTER, "A-yes", "A", {"notional_micro": 200 * M, "limit_price_micro": 510_000})]}
    for k in (4, 6, 100, 280):  # later the same day, after the bounce
        script[T0 + 300 * k] = [
            (ENTER, "B-yes", "B", {"notional_micro": 20 * M, "limit_price_micro": 510_000})
        ]
    script[T0 + DAY + 600] = [(ENTER, "B-yes", "B", {"notional_micro": 20 * M, "limit_price_micro": 510_000})]
    limits = dataclasses.replace(LIMITS, max_position_size=300, stop_loss_percent=0.6)
    risk = RiskManager(
        limits, 500 * M, first_live_day=T0, markets=load_markets(connect(db, readonly=True))[0]
    )
    bt, res, m = run_bt(db, Scripted(script), T0, T0 + DAY + 3600, risk=risk, record_decisions=True)
    b_decisions = [(t, d.approved, d.rule) for t, it, d in bt.decisions if it.token_id == "B-yes"]
    # the breach at T0+600 halts the replay like circuit breaker #2 halts the bot (issue 14 #4):
    # nothing is decided for the rest of day 1, the bounce to −$20 changes nothing; day 2 trades again
    assert [(t, detail.split(":")[0]) for t, detail in res.halts] == [(T0 + 600, RULE_DAILY_LOSS)]
    assert b_decisions == [(T0 + DAY + 600, True, "ok")]
    assert [f.token_id for f in res.ledger.fills if f.side == "BUY"] == ["A-yes", "B-yes"]


# ------------------------------------------------------------------ 4. the strategy sees cash
def test_correlation_pairs_sizes_entries_to_the_cash_it_has():
    feed, before, last = _pair_feed(jump=0.08)
    s = CorrelationPairs(PAIR_PARAMS)
    s.decide(feed.view(before), PortfolioView(500 * M))
    now = last()
    assert s.decide(feed.view(now), PortfolioView(int(0.5 * M))) == []  # cannot pay $1: no ask
    out = s.decide(feed.view(now), PortfolioView(20 * M))
    assert [(it.action, it.notional_micro) for it in out] == [(ENTER, 20 * M)]  # $20, not $50


def test_mean_reversion_sizes_entries_to_the_cash_it_has():
    feed, now = _drop_feed(fee=None)
    s = MeanReversion({"window_hours": 12})
    assert s.decide(feed.view(now), PortfolioView(int(0.5 * M))) == []
    out = s.decide(feed.view(now), PortfolioView(30 * M))
    assert [(it.action, it.notional_micro) for it in out] == [(ENTER, 30 * M)]


# ------------------------------------------------------------------ 5. expected move vs costs
def test_correlation_pairs_skips_a_divergence_that_cannot_pay_spread_and_fees():
    # the laggard's expected catch-up (≈ 0.03) beats min_edge after the ask, but the round trip
    # costs the 0.01 spread + 2 × 0.07 × 0.5 × 0.5 = 0.035 of fees = 0.045 a share
    feed, before, last = _pair_feed(jump=0.025)
    s = CorrelationPairs(PAIR_PARAMS)
    s.decide(feed.view(before), PortfolioView(500 * M))
    now = last()
    assert [it.action for it in s.decide(feed.view(now), PortfolioView(500 * M))] == [ENTER]  # no fees
    for mid in ("A", "B"):
        feed.add_market(mk(mid, end_date=T0 + 60 * DAY, fee=CRYPTO_FEE))
    s2 = CorrelationPairs(PAIR_PARAMS)
    s2._pairs, s2._pairs_epoch = s.pairs, s._pairs_epoch
    assert s2.decide(feed.view(now), PortfolioView(500 * M)) == []


def test_mean_reversion_skips_a_drop_whose_reversion_cannot_pay_spread_and_fees():
    # mean 0.50, bid/ask 0.46/0.47: mean − ask = 0.03 ≥ min_edge, and a return to the mean sells
    # at 0.495: +0.025 a share before fees; the two 0.07 fees are 0.0349 → a sure loss
    feed, now = _drop_feed(fee=None, bid=0.46, ask=0.47)
    assert [
        it.action for it in MeanReversion({"window_hours": 12}).decide(feed.view(now), PortfolioView(500 * M))
    ] == [ENTER]
    feed, now = _drop_feed(fee=CRYPTO_FEE, bid=0.46, ask=0.47)
    assert MeanReversion({"window_hours": 12}).decide(feed.view(now), PortfolioView(500 * M)) == []


def _drop_feed(fee, bid=0.44, ask=0.45):
    kw = {"fee": fee} if fee else {}
    feed = MarketFeed([mk("A", end_date=T0 + 60 * DAY, **kw)], history_seconds=20 * H, interval_seconds=300)
    rng = np.random.default_rng(1)
    n = 200
    for k in range(n):
        p = 0.50 + rng.normal(0, 0.003)
        feed.add_rows([row(T0 + 300 * k, "A-yes", "A", round(p - 0.005, 3), round(p + 0.005, 3))])
    now = T0 + 300 * n
    feed.add_rows([row(now, "A-yes", "A", bid, ask)])
    return feed, now


# ------------------------------------------------------------------ 6. cash-bound dollar BUY
def test_cash_bound_dollar_buy_filled_below_its_limit_is_cut_to_the_cash_not_dropped(tmp_path):
    db = tmp_path / "cash.db"
    conn = new_db(db)
    add_market(conn, "A", fee_rate=0.07)
    for k in range(4):
        snap(conn, T0 + 300 * k, "A-yes", "A", 0.73, 0.74)
    conn.close()
    capital = 41.87713
    # $50 at limit 0.75: the risk manager reserves the fee at 0.75 (1.75%) and resizes to $41.15;
    # the order (as live sends it) is $41.15 / 0.75 = 54.86 shares at limit 0.75; filled at the ask
    # 0.74 it costs $40.5964 + $0.7384 fee = $41.3348 ≤ cash (a depth walk spending the whole
    # $41.15 at 0.74 would buy 55.6 shares for $41.893 > cash)
    script = {T0: [(ENTER, "A-yes", "A", {"notional_micro": 50 * M, "limit_price_micro": 750_000})]}
    # the caps are those of a $500 account whose cash is down to $41.88
    risk = RiskManager(LIMITS, 500 * M, markets=load_markets(connect(db, readonly=True))[0])
    bt, res, m = run_bt(
        db, Scripted(script), T0, T0 + DAY - 1, capital=capital, record_decisions=True, risk=risk
    )
    ((t, it, d),) = bt.decisions
    assert d.approved and d.resized and d.intent.notional_micro == 41_150_000
    assert res.unfilled.get("insufficient_cash", 0) == 0
    buy_fill = res.ledger.fills[0]
    assert buy_fill.side == "BUY" and buy_fill.size_micro == 54_860_000  # notional ÷ limit
    assert -buy_fill.cash_delta_micro <= round(capital * M)
    # the fill simulator agrees on the cost
    book = OrderBook(
        token_id="A-yes",
        market="A",
        timestamp_ms=0,
        bids=(BookLevel(0.73, 1000),),
        asks=(BookLevel(0.74, 1000),),
        tick_size=0.01,
        min_order_size=5,
    )
    same = simulate_fill(
        book,
        "BUY",
        size_micro=54_860_000,
        limit_price_micro=750_000,
        order_type="FAK",
        fee=CRYPTO_FEE,
        tick_size=0.01,
        min_order_size=5,
    )
    assert same.cash_delta_micro == buy_fill.cash_delta_micro


def test_engine_account_carries_the_days_low_and_recent_stop_exits(tmp_path, sim):
    """The live/paper engine gives the risk manager the same inputs as the backtester."""
    from polybot import db
    from polybot.config import load_config
    from polybot.engine import ledger
    from polybot.engine.bot import startup
    from polybot.engine.drill import Drill
    from polybot.engine.loop import Engine
    from polybot.exchange.client import PolymarketClient
    from tests.engine.helpers import make_workspace

    make_workspace(tmp_path, sim)
    cfg = load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    conn = db.open_database(cfg)
    client = PolymarketClient.from_config(cfg)
    eng = Engine(
        cfg, conn, mode="paper", client=client, strategy=Drill({"max_holdings": 0}), sleep=lambda s: None
    )
    try:
        startup(eng, halt=None, restart=False)
        assert eng.refresh()
        now = eng.now_ts
        token, market = conn.execute(
            "SELECT t.token_id, t.market_id FROM market_tokens t JOIN markets m "
            "ON m.id = t.market_id WHERE m.tracked = 1 ORDER BY t.token_id"
        ).fetchone()
        with db.atomic(conn):
            ledger.record_trade(
                conn,
                mode="paper",
                trade_id="b",
                token_id=token,
                market_id=market,
                side="BUY",
                price_micro=500_000,
                size_micro=10 * M,
                fee_micro=0,
                ts=now - 600,
            )
            ledger.record_trade(
                conn,
                mode="paper",
                trade_id="s",
                token_id=token,
                market_id=market,
                side="SELL",
                price_micro=400_000,
                size_micro=10 * M,
                fee_micro=0,
                ts=now - 300,
                strategy="stop_loss",
                reason="stop_loss: test",
            )
            conn.execute(
                "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
                "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
                "VALUES (?, 'paper', ?, ?, 0, 0, 0, 0, 0)",
                (now - (now % DAY), 380 * M, 380 * M),
            )
        acct = eng.account()
        assert acct.stop_exits == {token: now - 300}
        assert acct.day_low_equity_micro == 380 * M
        d = eng.risk.check(
            Intent(ENTER, token, market, "BUY", notional_micro=10 * M, limit_price_micro=500_000),
            acct,
            eng.md.info(market),
            now,
        )
        assert not d.approved and d.rule == RULE_DAILY_LOSS, d  # the day's low: −$120
        assert eng.risk.cooldown_breached(token, acct, now).rule == RULE_STOP_COOLDOWN
    finally:
        client.close()
        eng.alerter.close(5)
        conn.close()
