"""polybot.ledger_queries on a real SQLite ledger written by the real write side
(polybot.engine.ledger): fills, partial closes, fees, a settlement, a FAILED-then-reversed
SELL and BUY, capital flows and performance rows. Every expected figure is worked out by
hand in the comments (average-cost accounting, micro-units), never read back from the module.

Day D0 = 2026-12-06 00:00:00 UTC (1_796_515_200); Y = the day before.

Live trades (price x shares = notional; cost basis includes fees):
  #1 Y+3600    A BUY  100 @ 0.40 fee 0.20   cost A 40.20
  #2 Y+7200    C BUY   50 @ 0.60            cost C 30.00
  #3 Y+10800   A SELL  40 @ 0.50 fee 0.10   removes 40.20*40/100 = 16.08; realised 19.90-16.08 = +3.82
  #4 D0+3600   C settles 50 @ 1.00          realised 50.00-30.00 = +20.00
  #5 D0+7200   B BUY  200 @ 0.25 fee 0.05   cost B 50.05
  #6 D0+10800  B SELL  50 @ 0.20 fee 0.02   removes 50.05*50/200 = 12.5125; realised 9.98-12.5125 = -2.5325
  #7 D0+14400  A SELL  60 @ 0.45 fee 0.05   removes the rest 24.12; realised 26.95-24.12 = +2.83
  #8 D0+18000  D BUY   10 @ 0.30 fee 0.01   cost D 3.01
  #9 D0+18060  D SELL  10 @ 0.50 fee 0.01   (MATCHED: realised +1.98) then FAILED at D0+18100:
               its realised P&L becomes NULL, a reversal BUY restores D (10 shares, cost 3.01)
  #10 D0+19000 E BUY   20 @ 0.50 fee 0.02   (MATCHED) then FAILED at D0+19100: reversed, E closed
Open at the end: B 150 shares cost 37.5375, D 10 shares cost 3.01.
"""

from __future__ import annotations

import dataclasses

import pytest

from polybot import db
from polybot import ledger_queries as lq
from polybot.config import default_config
from polybot.engine import ledger

M = 1_000_000
D0 = 1_796_515_200  # 2026-12-06 00:00:00 UTC
Y = D0 - 86_400
NOW = D0 + 21_000  # 05:50 UTC
MARKETS = {"A": ("mA", "Will A happen?", "Yes"), "B": ("mB", "Will B happen?", "No")}


def _trade(conn, mode, tid, token, side, price, size, fee, ts, *, kind="fill", status="CONFIRMED"):
    with db.atomic(conn):
        assert ledger.record_trade(
            conn,
            mode=mode,
            trade_id=tid,
            token_id=token,
            market_id=MARKETS.get(token, (f"m{token}",))[0],
            side=side,
            price_micro=price,
            size_micro=size,
            fee_micro=fee,
            ts=ts,
            kind=kind,
            trade_status=status,
        )


def _perf(conn, mode, ts, equity):
    conn.execute(
        "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, realized_pnl_micro, "
        "unrealized_pnl_micro, daily_pnl_micro, open_positions) VALUES (?, ?, ?, 0, 0, 0, 0, 0, 0)",
        (ts, mode, equity),
    )


@pytest.fixture
def book(tmp_path):
    cfg = default_config(tmp_path, paper_trading=False)
    db.initialize(cfg.database_path)
    conn = db.open_database(cfg)
    for mid, question, outcome in MARKETS.values():
        token = next(t for t, v in MARKETS.items() if v[0] == mid)
        conn.execute(
            "INSERT INTO markets(id, condition_id, question, token_ids, outcomes, first_seen, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 0, 0)",
            (mid, "0x" + mid, question, f'["{token}"]', f'["{outcome}"]'),
        )
        conn.execute(
            "INSERT INTO market_tokens(token_id, market_id, outcome, outcome_index) VALUES (?, ?, ?, 0)",
            (token, mid, outcome),
        )
    live = "live"
    _trade(conn, live, "t1", "A", "BUY", 400_000, 100 * M, 200_000, Y + 3600)
    _trade(conn, live, "t2", "C", "BUY", 600_000, 50 * M, 0, Y + 7200)
    _trade(conn, live, "t3", "A", "SELL", 500_000, 40 * M, 100_000, Y + 10800)
    with db.atomic(conn):
        assert ledger.record_settlement(conn, live, "C", "mC", M, 50 * M, D0 + 3600)
    _trade(conn, live, "t5", "B", "BUY", 250_000, 200 * M, 50_000, D0 + 7200)
    _trade(conn, live, "t6", "B", "SELL", 200_000, 50 * M, 20_000, D0 + 10800)
    _trade(conn, live, "t7", "A", "SELL", 450_000, 60 * M, 50_000, D0 + 14400)
    _trade(conn, live, "t8", "D", "BUY", 300_000, 10 * M, 10_000, D0 + 18000)
    _trade(conn, live, "t9", "D", "SELL", 500_000, 10 * M, 10_000, D0 + 18060, status="MATCHED")
    _trade(conn, live, "t10", "E", "BUY", 500_000, 20 * M, 20_000, D0 + 19000, status="MATCHED")
    with db.atomic(conn):
        assert ledger.update_trade_status(conn, live, "t9", "FAILED", now=D0 + 18100) == "FAILED"
    with db.atomic(conn):
        assert ledger.update_trade_status(conn, live, "t10", "FAILED", now=D0 + 19100) == "FAILED"

    # paper trades: another mode, never in the live figures
    _trade(conn, "paper", "p1", "X", "BUY", 500_000, 10 * M, 0, Y + 100)  # X open since yesterday, cost 5
    _trade(conn, "paper", "p2", "W", "BUY", 200_000, 5 * M, 0, D0 + 150)  # cost 1.00
    _trade(conn, "paper", "p3", "W", "SELL", 400_000, 5 * M, 0, D0 + 200)  # realised 2.00-1.00 = +1.00

    # marks: B's newest snapshot has an empty book (NULLs): the last prices are the ones before it
    for ts, token, bid, mid in [
        (D0 + 20_000, "B", 0.24, 0.245),
        (D0 + 20_000, "D", 0.29, 0.30),
        (D0 + 20_100, "B", None, None),
    ]:
        conn.execute(
            "INSERT INTO snapshot_values(timestamp, token_id, market_id, best_bid, mid) VALUES (?, ?, 'm', ?, ?)",
            (ts, token, bid, mid),
        )
    # equity history: last row before midnight 510, a row exactly at 00:00 (today's), a deposit today
    _perf(conn, live, Y + 80_000, 510 * M)
    _perf(conn, live, D0, 511 * M)
    conn.execute(
        "INSERT INTO capital_flows(timestamp, mode, amount_micro, capital_micro, reason) "
        "VALUES (?, 'live', ?, ?, 'deposit')",
        (D0 + 5000, 100 * M, 600 * M),
    )
    _perf(conn, live, D0 + 20_000, 615 * M)
    conn.commit()
    yield cfg, conn
    conn.close()


def test_day_boundary_is_utc_midnight():
    assert lq.day_start(D0) == D0
    assert lq.day_start(D0 - 1) == Y
    assert lq.day_start(1_796_543_687) == D0  # 07:54:47
    assert lq.day_start(D0 + 86_399.9) == D0


def test_realized_pnl_total_periods_and_days(book):
    _, conn = book
    # +3.82 +20.00 -2.5325 +2.83; the FAILED SELL's +1.98 is gone
    assert lq.realized_pnl_micro(conn, "live") == 24_117_500
    assert lq.realized_pnl_micro(conn, "live", since=D0) == 20_297_500  # today: 20 - 2.5325 + 2.83
    assert lq.realized_pnl_micro(conn, "live", since=Y, until=D0) == 3_820_000
    assert lq.realized_pnl_micro(conn, "live", since=D0 + 3600, until=D0 + 10800) == 20 * M  # half-open
    assert lq.realized_pnl_micro(conn, "live", since=D0 + 3600, until=D0 + 10801) == 17_467_500
    assert lq.realized_pnl_micro(conn, "paper") == 1 * M
    assert lq.realized_pnl_micro(conn, "nothing") == 0
    assert lq.realized_pnl_by_day(conn, "live") == {Y: 3_820_000, D0: 20_297_500}
    assert lq.realized_pnl_by_day(conn, "paper") == {Y: 0, D0: 1 * M}  # a day of BUYs only counts as 0


def test_closing_trades_and_win_rate(book):
    _, conn = book
    c = lq.closing_trades(conn, "live")  # #3, #4, #6, #7 (the FAILED #9 and reversals have none)
    assert (c.count, c.wins, c.realized_micro) == (4, 3, 24_117_500)
    assert (c.best_micro, c.worst_micro, c.win_rate) == (20 * M, -2_532_500, 0.75)
    today = lq.closing_trades(conn, "live", since=D0)
    assert (today.count, today.wins, today.realized_micro) == (3, 2, 20_297_500)
    none = lq.closing_trades(conn, "live", since=NOW)
    assert (none.count, none.wins, none.best_micro, none.worst_micro, none.win_rate) == (
        0,
        0,
        None,
        None,
        None,
    )
    assert lq.last_closing_pnls(conn, "live", 3) == [20 * M, -2_532_500, 2_830_000]  # #4, #6, #7
    assert lq.last_closing_pnls(conn, "live", 10) == [3_820_000, 20 * M, -2_532_500, 2_830_000]
    losing = lq.losing_trades(conn, "live")
    assert [(r["trade_id"], r["realized_pnl_micro"]) for r in losing] == [("t6", -2_532_500)]


def test_trade_activity_counts_every_row_and_nets_reversed_fees(book):
    _, conn = book
    a = lq.trade_activity(conn, "live")
    # rows #1..#10 (#4 is the settlement) and the 2 reversal rows: a FAILED fill stays a row
    assert a.count == 12
    # fees 0.20+0.10+0.05+0.02+0.05+0.01 + (0.01-0.01) + (0.02-0.02) = 0.43
    assert a.fees_micro == 430_000
    # notional 40+30+20+50+50+10+27+3 + 5+5 + 10+10 = 260
    assert a.notional_micro == 260 * M
    today = lq.trade_activity(conn, "live", since=D0)
    assert (today.count, today.fees_micro, today.notional_micro) == (9, 130_000, 170 * M)
    assert lq.trade_count(conn, "live") == 12 and lq.trade_count(conn, "paper") == 3


def test_cash_flows_positions_and_valuation(book):
    _, conn = book
    # -40.20 -30 +19.90 +50 -50.05 +9.98 +26.95 -3.01 (+4.99 -4.99) (-10.02 +10.02) = -16.43
    assert lq.cash_flow_micro(conn, "live") == -16_430_000
    assert lq.cash_flow_micro(conn, "live", until=D0) == -50_300_000
    assert lq.paper_cash_micro(conn, "live", 500 * M) == 483_570_000
    pos = lq.open_positions(conn, "live")
    assert [(p.token_id, p.size_micro, p.cost_micro) for p in pos] == [
        ("B", 150 * M, 37_537_500),
        ("D", 10 * M, 3_010_000),
    ]
    assert [p.avg_price_micro for p in pos] == [250_250, 301_000]  # 37.5375/150, 3.01/10
    assert lq.stop_price_micro(250_250, 0.15) == 212_712  # 212_712.5 truncated
    assert lq.stop_price_micro(301_000, 0.5) == 150_500
    assert lq.get_position(conn, "live", "D").realized_pnl_micro == 0  # +1.98 then -1.98
    assert lq.get_position(conn, "live", "E").status == "closed"
    assert lq.get_position(conn, "live", "A").realized_pnl_micro == 6_650_000  # 3.82 + 2.83
    assert lq.open_position_count(conn, "live") == 2
    named = lq.open_positions_named(conn, "live")
    assert [(n.position.token_id, n.question, n.outcome) for n in named] == [
        ("B", "Will B happen?", "No"),
        ("D", None, None),
    ]

    bid_b, mid_b = lq.latest_mark(conn, "B", "best_bid"), lq.latest_mark(conn, "B", "mid")
    assert bid_b == lq.Mark(240_000, D0 + 20_000) and mid_b == lq.Mark(245_000, D0 + 20_000)
    assert lq.latest_mark(conn, "A", "mid") is None
    assert lq.unrealized_micro(150 * M, 37_537_500, 240_000) == -1_537_500  # 36.00 - 37.5375
    assert lq.unrealized_micro(150 * M, 37_537_500, 245_000) == -787_500  # 36.75 - 37.5375
    assert lq.unrealized_micro(3, 0, 500_000) == 2  # 1.5 micro rounds half-up
    assert lq.unrealized_micro(1, 0, 499_999) == 0

    pf = lq.portfolio(conn, "live", 483_570_000, {"B": 240_000, "D": None})  # D unknown: at its entry price
    assert pf.exposure_micro == 40_547_500
    assert pf.market_value_micro == 36 * M + 3_010_000
    assert pf.unrealized_micro == -1_537_500
    assert pf.equity_micro == 522_580_000  # 483.57 + 36.00 + 3.01
    assert pf.realized_micro == 24_117_500


def test_equity_and_daily_pnl(book):
    _, conn = book
    assert lq.latest_performance(conn, "live")["equity_micro"] == 615 * M
    assert lq.latest_performance(conn, "paper") is None
    assert lq.equity_at(conn, "live", D0) == 511 * M  # at or before
    assert lq.equity_at(conn, "live", D0, strictly_before=True) == 510 * M
    assert lq.equity_at(conn, "live", Y) is None
    assert lq.equity_series(conn, "live") == [(Y + 80_000, 510 * M), (D0, 511 * M), (D0 + 20_000, 615 * M)]
    assert lq.equity_series(conn, "live", since=D0) == [(D0, 511 * M), (D0 + 20_000, 615 * M)]
    assert lq.first_performance_ts(conn, "live") == Y + 80_000
    assert lq.first_performance_ts(conn, "paper") is None and lq.equity_series(conn, "paper") == []
    assert lq.capital_flows_micro(conn, "live", after=Y + 80_000) == 100 * M
    assert lq.capital_flows_micro(conn, "live", after=D0 + 5000) == 0
    # baseline: the last row before 00:00 (510) + the deposit made since (100); the 00:00 row is today's
    kw = {"capital_micro": 600 * M, "paper": False}
    assert lq.daily_baseline_micro(conn, "live", NOW, **kw) == 610 * M
    assert lq.daily_pnl_micro(conn, "live", 615 * M, NOW, **kw) == 5 * M
    # today's low in today's capital terms: 511 (+100 deposited after it) and 615 -> 611
    assert lq.day_low_equity_micro(conn, "live", NOW) == 611 * M
    # paper, no performance rows: capital + cash flows before today (-5.00) + cost of what was
    # open at midnight (X, 5.00)
    assert lq.daily_baseline_micro(conn, "paper", NOW, capital_micro=500 * M, paper=True) == 500 * M
    assert lq.daily_pnl_micro(conn, "paper", 503 * M, NOW, capital_micro=500 * M, paper=True) == 3 * M
    # live without any history: no baseline, no daily P&L
    assert lq.daily_baseline_micro(conn, "paper", NOW, capital_micro=500 * M, paper=False) is None
    assert lq.daily_pnl_micro(conn, "paper", 503 * M, NOW, capital_micro=500 * M, paper=False) == 0


def test_the_engine_reads_the_same_numbers(book):
    """engine/ledger re-exports the read side: one implementation, not a copy."""
    assert ledger.realized_pnl_micro is lq.realized_pnl_micro
    assert ledger.open_positions is lq.open_positions
    assert ledger.daily_pnl_micro is lq.daily_pnl_micro
    assert ledger.PositionRow is lq.PositionRow


def test_callers_show_the_hand_computed_figures(book):
    """The dashboard, Telegram, the daily and weekly reports and the verdict show what the ledger says."""
    from polybot.backtest.verdict import paper_daily_returns
    from polybot.dashboard.queries import build_state
    from polybot.notify.reports import pnl_text, positions_text
    from polybot.ops.reports import build_daily, build_weekly

    cfg, conn = book
    cfg = dataclasses.replace(cfg, capital=600.0)
    state = build_state(cfg, conn, now=NOW)
    assert state["win_rate"]["detail"] == "3 of 4 closing trades" and state["win_rate"]["text"] == "75.0%"
    assert state["win_rate"]["realized"]["micro"] == 24_117_500
    assert state["pnl"]["realized_24h"]["micro"] == 20_297_500  # NOW - 24 h is after #3
    items = {p["token_id"]: p for p in state["positions"]["items"]}
    assert items["B"]["unrealized"]["micro"] == -1_537_500 and items["B"]["mark_micro"] == 240_000
    assert items["D"]["unrealized"]["micro"] == -110_000  # 10 x 0.29 - 3.01
    assert state["trades"]["count"] == 9 and state["trades"]["fees"]["micro"] == 130_000

    pnl = pnl_text(conn, cfg, NOW)
    assert "Realized (closed trades): today +$20.30, 7 d +$24.12, total +$24.12; fees paid $0.43" in pnl
    shown = positions_text(conn, cfg, NOW)
    # B at the last mid 0.245: 36.75 (-0.79); D at 0.30: 3.00 (-0.01); total 39.75 of cost 40.55
    assert "mid 0.245 → $36.75 (-$0.79)" in shown and "mid 0.300 → $3.00 (-$0.01)" in shown
    assert "Total cost $40.55, value $39.75 (-$0.80)" in shown

    daily = build_daily(cfg, conn, now=NOW)
    assert (daily.realized_24h, daily.realized_total) == (20_297_500, 24_117_500)
    assert daily.unrealized == -787_500 - 10_000  # at the mids
    assert (daily.closed_total, daily.wins_total, daily.trades_24h, daily.fees_24h) == (4, 3, 9, 130_000)
    assert daily.equity == 615 * M and daily.pnl_today == 5 * M  # the engine's daily P&L, not +104

    weekly = build_weekly(cfg, conn, now=NOW)
    # last 24 h: 615 - 600 (capital: no row before NOW - 24 h); the 24 h before: no row at its end,
    # so realised P&L of #1..#3 = +3.82 (3 trades); earlier windows 0
    assert "Week P&L: +$18.82" in weekly
    assert "Closing trades: 4, win rate: 75%, best +$20.00, worst -$2.53" in weekly
    assert "Max drawdown this week: 0.0%" in weekly  # 510, 511, 615

    # the verdict's paper returns without performance rows: realised per UTC day / capital
    assert paper_daily_returns(conn, 500.0, NOW) == (
        [0.0, 0.002],
        "realised P&L of paper trades / capital (no performance rows)",
    )


def test_realized_pnl_sql_lives_in_ledger_queries_only():
    """The realised-P&L sums are read in one module (the engine's ledger writes them)."""
    from pathlib import Path

    import polybot

    root = Path(polybot.__file__).resolve().parent
    allowed = {"ledger_queries.py", "engine/ledger.py", "schema.py"}
    patterns = ("SUM(realized_pnl_micro", "realized_pnl_micro IS NOT NULL", "realized_pnl_micro < 0")
    offenders = sorted(
        rel
        for path in root.rglob("*.py")
        if (rel := path.relative_to(root).as_posix()) not in allowed
        and any(p in path.read_text(encoding="utf-8") for p in patterns)
    )
    assert offenders == [], f"read realised P&L through polybot.ledger_queries: {offenders}"
