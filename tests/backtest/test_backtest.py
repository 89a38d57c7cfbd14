"""The backtester: a hand-computed scenario, no look-ahead, planted edge vs noise, the CLI."""

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from polybot.backtest.coverage import data_coverage
from polybot.backtest.engine import BacktestDataError, Backtester
from polybot.backtest.metrics import compute_metrics
from polybot.backtest.synthetic import generate
from polybot.backtest.verdict import EXIT_CODES, VERDICTS
from polybot.config import default_config
from polybot.db import connect
from polybot.money import to_micro
from polybot.strategy import ENTER, EXIT, Intent, Strategy, get_strategy
from tests.backtest.helpers import DAY, T0, M, add_market, new_db, snap
from tests.conftest import run_cli, write_config


class Scripted(Strategy):
    """Test strategy: emits pre-written intents at given times (exits sized to the holding)."""

    name = "scripted"
    PARAMS = {}

    def __init__(self, script):
        super().__init__({})
        self.script = script

    @property
    def history_seconds(self):
        return 3600

    def decide(self, view, portfolio):
        out = []
        for action, token, market, kw in self.script.get(view.now, []):
            if action == EXIT:
                h = portfolio.positions.get(token)
                if h is None:
                    continue
                kw = dict(kw, size_micro=h.size_micro)
            out.append(
                Intent(
                    action=action,
                    token_id=token,
                    market_id=market,
                    side="BUY" if action == ENTER else "SELL",
                    reason=f"script {action}",
                    **kw,
                )
            )
        return out


def run_bt(path, strategy, start, end, capital=500, backtest=None, **kw):
    cfg = default_config(path.parent)
    if backtest:  # overrides of the backtest: section
        cfg = dataclasses.replace(cfg, backtest=dataclasses.replace(cfg.backtest, **backtest))
    conn = connect(path, readonly=True)
    try:
        bt = Backtester(
            conn, cfg, strategy, start_ts=start, end_ts=end, capital_micro=to_micro(capital), **kw
        )
        res = bt.run()
        coverage = data_coverage(conn, bt.feed.tokens, start, end, grid_seconds=bt.interval)
    finally:
        conn.close()
    return bt, res, compute_metrics(res, cfg.backtest, coverage=coverage)


# ------------------------------------------------------------------ hand-computed scenario
def test_hand_computed_two_markets_one_resolution(tmp_path):
    db = tmp_path / "hand.db"
    conn = new_db(db)
    # A: taker fee rate 0.05 (fee = shares × 0.05 × p(1−p)), resolves YES at T0+1200. B: no fee.
    add_market(conn, "A", fee_rate=0.05, payouts={"A-yes": 1, "A-no": 0}, resolved_at=T0 + 1200)
    add_market(conn, "B")
    snap(conn, T0, "A-yes", "A", 0.39, 0.40, asks="0.40:50,0.41:100")
    snap(conn, T0, "B-yes", "B", 0.29, 0.30, asks="0.30:60,0.31:100")
    snap(conn, T0 + 300, "A-yes", "A", 0.39, 0.40, asks="0.40:50,0.41:100")
    snap(conn, T0 + 300, "B-yes", "B", 0.29, 0.30, asks="0.30:60,0.31:100")
    snap(conn, T0 + 600, "A-yes", "A", 0.45, 0.46)
    snap(conn, T0 + 600, "B-yes", "B", 0.33, 0.34)
    snap(conn, T0 + 900, "A-yes", "A", 0.45, 0.46)
    snap(conn, T0 + 900, "B-yes", "B", 0.35, 0.36, bids="0.35:100")
    conn.close()
    script = {
        T0: [
            (ENTER, "A-yes", "A", {"notional_micro": 40 * M, "limit_price_micro": 500_000}),
            (ENTER, "B-yes", "B", {"size_micro": 100 * M, "limit_price_micro": 300_000}),
        ],
        T0 + 600: [(EXIT, "B-yes", "B", {"limit_price_micro": 300_000})],
    }
    bt, res, m = run_bt(db, Scripted(script), T0, T0 + 2 * DAY - 1)
    L = res.ledger
    fills = [(f.timestamp, f.token_id, f.side, f.size_micro, f.notional_micro, f.fee_micro) for f in L.fills]
    # Decided at T0, filled at the NEXT snapshot (T0+300):
    # A: $40 at the 0.50 limit is the order live trading sends: 40 / 0.50 = 80 shares (limit 0.50),
    #    filled walking the asks: 50 @ 0.40 ($20.00, fee 50 × 0.05 × 0.40 × 0.60 = 0.60000) +
    #    30 @ 0.41 ($12.30, fee 30 × 0.05 × 0.41 × 0.59 = 0.36285) — never more than the $40 approved
    # B: 100 shares limit 0.30, FAK: only the 60 at 0.30 fill ($18.00, no fee); the rest is cancelled.
    # B exit decided at T0+600, filled at T0+900 against the bid 0.35: 60 × 0.35 = $21.00.
    assert fills == [
        (T0 + 300, "A-yes", "BUY", 80_000_000, 32_300_000, 962_850),
        (T0 + 300, "B-yes", "BUY", 60_000_000, 18_000_000, 0),
        (T0 + 900, "B-yes", "SELL", 60_000_000, 21_000_000, 0),
    ]
    # A resolves YES at T0+1200: 80 × $1 = $80.00 (no fee).
    assert [(s.timestamp, s.token_id, s.value_micro) for s in L.settlements] == [
        (T0 + 1200, "A-yes", 80_000_000)
    ]
    # cash: 500 − (32.30 + 0.96285) − 18 + 21 + 80 = 549.73715
    assert L.cash_micro == 549_737_150
    assert L.cash_micro == 500 * M + sum(f.cash_delta_micro for f in L.fills) + sum(
        s.value_micro for s in L.settlements
    )
    trips = sorted((t.token_id, t.pnl_micro) for t in L.closed_trips)
    assert trips == [("A-yes", 80_000_000 - 33_262_850), ("B-yes", 3_000_000)]
    assert m["total_trades"] == 2 and m["win_rate"] == 1.0 and m["profit_factor"] == math.inf
    assert m["fees_paid"] == pytest.approx(0.96285)
    assert m["final_capital"] == pytest.approx(549.73715)
    assert m["total_return"] == pytest.approx(49.73715 / 500)
    assert m["average_trade"] == pytest.approx((46.73715 + 3.0) / 2)
    # equity marked at the bid: at T0+300 cash 448.73715 + 80 × 0.39 + 60 × 0.29 = 497.33715,
    # the only dip below the $500 peak → max drawdown 2.66285 / 500
    assert m["max_drawdown"] == pytest.approx(2.66285 / 500)
    # daily equity: day 1 ends at 549.73715 (settled at T0+1200), day 2 unchanged →
    # returns [0.0994743, 0] → Sharpe = mean / stdev(ddof=1) × √365
    r = np.array([549.73715 / 500 - 1, 0.0])
    assert [d["equity"] for d in m["daily_equity"]] == [549.73715, 549.73715]
    assert m["sharpe_ratio"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))
    # every checklist criterion passes, but 2 trades over 2 days are no evidence: never a PASS
    assert all(c["passed"] for c in m["criteria"])
    assert m["verdict"] == "INSUFFICIENT_DATA"
    assert any("Only 2 closed trades" in r for r in m["reasons"]), m["reasons"]
    assert m["settlements"] == 1 and m["fills"] == 3


def test_backfilled_rows_trade_at_price_plus_minus_half_spread(tmp_path):
    db = tmp_path / "bf.db"
    conn = new_db(db)
    add_market(conn, "A")
    for k in range(4):
        snap(conn, T0 + 300 * k, "A-yes", "A", last=0.50, source="backfill")
    conn.close()
    script = {
        T0: [(ENTER, "A-yes", "A", {"size_micro": 10 * M, "limit_price_micro": 520_000})],
        T0 + 300: [(EXIT, "A-yes", "A", {})],
    }
    # no recorded book of the market: the configured default spread applies (set to 0.01 here;
    # the default 0.02 makes this entry lose 7.7% at once, which the entry_cost rule refuses)
    bt, res, m = run_bt(db, Scripted(script), T0, T0 + DAY - 1, backtest={"backfill_half_spread": 0.01})
    # backfill_half_spread 0.01: buy at 0.51, sell at 0.49
    assert [(f.side, f.price_micro, f.backfilled_book) for f in res.ledger.fills] == [
        ("BUY", 510_000, True),
        ("SELL", 490_000, True),
    ]
    assert m["data"]["backfilled_fraction"] == 1.0 and m["data"]["fills_on_backfilled_books"] == 2
    assert m["total_trades"] == 1 and m["final_capital"] == pytest.approx(499.80)


def test_stop_loss_and_risk_limits_apply_in_the_replay(tmp_path):
    db = tmp_path / "sl.db"
    conn = new_db(db)
    add_market(conn, "A")
    prices = [0.50, 0.50, 0.48, 0.40, 0.40, 0.40]
    for k, p in enumerate(prices):
        snap(conn, T0 + 300 * k, "A-yes", "A", round(p - 0.01, 2), p)
    conn.close()
    # asks $150: the risk manager resizes it to max_position_size $100
    script = {T0: [(ENTER, "A-yes", "A", {"notional_micro": 150 * M, "limit_price_micro": 500_000})]}
    bt, res, m = run_bt(db, Scripted(script), T0, T0 + DAY - 1, record_decisions=True)
    ((t, it, d),) = bt.decisions[:1]
    assert d.approved and d.resized and d.rule == "max_position_size" and d.intent.notional_micro == 100 * M
    buy, sell = res.ledger.fills
    assert buy.size_micro == 200 * M
    # at T0+900 the bid 0.39 values 200 shares at $78 = −22% ≤ −15%: stop-loss exit, filled at T0+1200
    assert sell.timestamp == T0 + 1200 and sell.reason.startswith("stop_loss:")
    assert sell.price_micro == 390_000


def test_no_look_ahead_changing_the_future_never_changes_the_past(tmp_path):
    d = generate(
        tmp_path / "la.db",
        n_markets=8,
        days=5,
        seed=11,
        tick=0.001,
        half_spread=0.002,
        common_vol=0.012,
        idio_vol=0.008,
        reversion=0.04,
    )
    params = {"lookback_hours": 24, "reselect_hours": 3, "z_window_hours": 12, "entry_z": 1.5}
    start, end = d.start_ts, d.start_ts + 5 * DAY - 1
    bt1, res1, _ = run_bt(
        d.path, get_strategy("correlation_pairs", params), start, end, record_decisions=True
    )
    cut = start + 3 * DAY + 3600
    conn = connect(d.path)
    # rewrite every price after the cut (mirror them) and resolve a market right after it
    # (the stored rows: prices in 0.0001 units, mid derived unless stored — mirrored with them)
    conn.execute(
        "UPDATE market_snapshots SET bid = 10000 - ask, ask = 10000 - bid, "
        "mid = CASE WHEN typeof(mid) = 'integer' THEN 10000 - mid ELSE mid END, "
        "bids = NULL, asks = NULL WHERE timestamp > ?",
        (cut,),
    )
    assert conn.execute("SELECT COUNT(*) FROM market_snapshots WHERE typeof(bid) = 'real'").fetchone()[0] == 0
    conn.execute(
        "UPDATE markets SET payouts = ?, resolved_at = ? WHERE id = ?",
        (json.dumps({d.yes_tokens[0]: 1, d.no_tokens[0]: 0}), cut + 600, d.market_ids[0]),
    )
    conn.close()
    bt2, res2, _ = run_bt(
        d.path, get_strategy("correlation_pairs", params), start, end, record_decisions=True
    )

    def before(decisions):
        return [(t, it, dec.approved, dec.intent) for t, it, dec in decisions if t <= cut]

    def fills_before(res):
        return [f for f in res.ledger.fills if f.timestamp <= cut]

    assert len(before(bt1.decisions)) >= 5  # there were decisions to compare
    assert before(bt1.decisions) == before(bt2.decisions)
    assert fills_before(res1) == fills_before(res2)
    assert (
        res1.curve_equity[res1.curve_ts <= cut].tolist() == res2.curve_equity[res2.curve_ts <= cut].tolist()
    )
    # ... and the future did change
    assert [x for x in bt1.decisions if x[0] > cut] != [x for x in bt2.decisions if x[0] > cut]


# ------------------------------------------------------------------ edge vs noise
# A taker fee of 0.3 %: with books whose levels start at the best bid/ask (the synthetic
# books' deeper levels were rounded to 0.01 before issue 16, so with this 0.001 tick an order
# at the best price rested and filled later as a maker, without the fee), a 1 % fee eats
# the planted edge on about half of the seeds (seeds 1-8: +0.3, -1.5, +0.5, -2.7, -0.6,
# +0.3, +1.2, -3.3 %); at 0.3 % seeds 1-6 gain 0.3-3.4 %.
EDGE_DATA = dict(
    n_markets=10,
    days=20,
    tick=0.001,
    half_spread=0.002,
    fee_rate=0.003,
    common_vol=0.008,
    idio_vol=0.012,
    reversion=0.06,
)
EDGE_PARAMS = {"min_correlation": 0.4}


@pytest.mark.parametrize("seed", [1, 2])
def test_planted_edge_is_found_after_fees(tmp_path, seed):
    # pairs share a random walk; each market's own deviation REVERTS (Ornstein-Uhlenbeck):
    # the spread of a pair is mean-reverting — the edge correlation_pairs is built for
    d = generate(tmp_path / "edge.db", seed=seed, model="pairs_edge", **EDGE_DATA)
    _, res, m = run_bt(d.path, get_strategy("correlation_pairs", EDGE_PARAMS), d.start_ts, d.end_ts)
    assert m["total_trades"] >= 15
    assert m["fees_paid"] > 0
    assert m["total_return"] > 0, m["total_return"]


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_pure_noise_gives_no_profit_after_fees(tmp_path):
    # the same correlated pairs, but the deviations are random walks (martingales): no edge.
    # The strategy's mean-reversion test would refuse these pairs; switched off here so that it
    # trades the noise, which must not make money after fees (nor PASS)
    returns = []
    for seed in (1, 2, 3):
        d = generate(tmp_path / f"noise{seed}.db", seed=seed, model="pairs_noise", **EDGE_DATA)
        _, res, m = run_bt(
            d.path,
            get_strategy(
                "correlation_pairs", {**EDGE_PARAMS, "min_correlation": 0.2, "require_mean_reversion": False}
            ),
            d.start_ts,
            d.end_ts,
        )
        assert m["total_trades"] >= 30
        assert m["verdict"] != "PASS", m["reasons"]
        returns.append(m["total_return"])
    # one seed may be lucky (+4%), which is why a single run proves nothing; together they lose
    assert sum(returns) < 0, returns


def test_empty_range_is_one_clear_error(tmp_path):
    db = tmp_path / "e.db"
    new_db(db).close()
    with pytest.raises(BacktestDataError, match=r"No market snapshots between 2026-01-01 and 2026-01-30"):
        run_bt(db, get_strategy("mean_reversion"), T0, T0 + 30 * DAY - 1)


# ------------------------------------------------------------------ the command
CHECKLIST_LINES = [
    r"Total trades: \d+",
    r"Win rate: \d+\.\d%",
    r"Sharpe ratio: -?\d+\.\d\d",
    r"Max drawdown: \d+\.\d%",
    r"Final capital: \$[\d,]+\.\d\d",
]


def test_backtest_command_prints_the_checklist_lines(workspace):
    generate(
        workspace / "data" / "polymarket.db",
        n_markets=8,
        days=6,
        seed=4,
        tick=0.001,
        half_spread=0.002,
        common_vol=0.012,
        idio_vol=0.008,
        reversion=0.04,
    )
    p = run_cli(
        "backtest.py",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-06",
        "--capital",
        "500",
        cwd=workspace,
    )
    assert p.returncode in (0, 1, 6), p.stderr
    lines = p.stdout.splitlines()
    for pattern, line in zip(CHECKLIST_LINES, lines[:5], strict=True):  # all five lines printed
        assert re.fullmatch(pattern, line), (pattern, line)
    assert lines[-2] in VERDICTS and p.returncode == EXIT_CODES[lines[-2]]
    assert "Sharpe formula: mean(daily return) / stdev(daily return, ddof=1) × √365" in p.stdout
    assert "Traceback" not in p.stderr
    report = json.loads((workspace / "reports" / "backtest_6day.json").read_text())
    assert report["metrics"]["verdict"] == lines[-2]
    assert report["start_date"] == "2026-01-01" and report["end_date"] == "2026-01-06"
    assert report["metrics"]["total_trades"] == int(lines[0].split(": ")[1])
    png = (workspace / "reports" / "backtest_6day.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_command_with_strategy_and_output(workspace):
    generate(workspace / "data" / "polymarket.db", n_markets=4, days=3, seed=4)
    out = workspace / "custom" / "bt.json"
    p = run_cli(
        "backtest.py",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-03",
        "--capital",
        "1000",
        "--strategy",
        "mean_reversion",
        "--output",
        str(out),
        "--no-progress",
        cwd=workspace,
    )
    assert p.returncode in (0, 1, 6), p.stderr
    data = json.loads(out.read_text())
    assert data["strategy"]["name"] == "mean_reversion" and data["capital"] == 1000
    assert (workspace / "custom" / "bt.png").exists()


def test_backtest_command_errors_are_one_sentence(workspace):
    # no database at all
    p = run_cli(
        "backtest.py",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-30",
        "--capital",
        "500",
        cwd=workspace,
    )
    assert p.returncode == 3 and "initialize_db.py" in p.stderr and "Traceback" not in p.stderr
    # an empty database
    assert run_cli("initialize_db.py", cwd=workspace).returncode == 0
    p = run_cli(
        "backtest.py",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-30",
        "--capital",
        "500",
        cwd=workspace,
    )
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == "" and "Traceback" not in p.stderr
    err = [ln for ln in p.stderr.splitlines() if ln.strip() and "backtest:" not in ln]
    assert err == [
        "Error: No market snapshots between 2026-01-01 and 2026-01-30 in "
        f"{workspace / 'data' / 'polymarket.db'}; collect data first (python collect_market_data.py) "
        "or choose dates that have data."
    ]
    # bad arguments
    p = run_cli("backtest.py", "--start-date", "2026-02-30", "--end-date", "2026-03-01", cwd=workspace)
    assert p.returncode == 2 and "not a date in YYYY-MM-DD form" in p.stderr
    p = run_cli("backtest.py", "--start-date", "2026-03-02", "--end-date", "2026-03-01", cwd=workspace)
    assert p.returncode == 2 and "--end-date is before --start-date" in p.stderr
    write_config(workspace, {"strategy": {"name": "correlation_pairs", "params": {"entry_zz": 2}}})
    p = run_cli("backtest.py", "--start-date", "2026-01-01", "--end-date", "2026-01-02", cwd=workspace)
    assert p.returncode == 2 and "strategy.params.entry_zz" in p.stderr and "entry_z" in p.stderr


def test_reader_process_gives_the_same_replay(tmp_path):
    """Long replays read snapshots in a separate process; the result must be identical."""
    d = generate(
        tmp_path / "p.db",
        n_markets=6,
        days=4,
        seed=9,
        tick=0.001,
        half_spread=0.002,
        common_vol=0.012,
        idio_vol=0.008,
        reversion=0.04,
        fee_rate=0.01,
    )
    params = {"lookback_hours": 24, "reselect_hours": 3, "z_window_hours": 12, "entry_z": 1.5}
    runs = [
        run_bt(
            d.path,
            get_strategy("correlation_pairs", params),
            d.start_ts,
            d.end_ts,
            parallel_load=par,
            chunk_seconds=3 * 3600,
        )
        for par in (False, True)
    ]
    (_, r1, m1), (_, r2, m2) = runs
    assert r1.ledger.fills and r1.ledger.fills == r2.ledger.fills
    assert r1.curve_equity.tolist() == r2.curve_equity.tolist()
    assert m1["final_capital"] == m2["final_capital"] and m1["data"] == m2["data"]


# ------------------------------------------------------------------ order types and fill latency (issue 14 #4)
def _resting_db(tmp_path):
    db = tmp_path / "gtc.db"
    conn = new_db(db)
    add_market(conn, "B")
    snap(conn, T0, "B-yes", "B", 0.29, 0.30, asks="0.30:60,0.31:100")
    snap(conn, T0 + 300, "B-yes", "B", 0.29, 0.30, asks="0.30:60,0.31:100")
    snap(conn, T0 + 600, "B-yes", "B", 0.28, 0.29, asks="0.29:25")  # the ask comes down to 0.29
    snap(conn, T0 + 900, "B-yes", "B", 0.27, 0.28, asks="0.28:500")
    conn.close()
    return db


@pytest.mark.parametrize(
    "order_type, expected",
    [
        # FAK: the 60 at 0.30 fill, the other 40 are cancelled
        ("FAK", [(T0 + 300, "BUY", 60_000_000, 18_000_000)]),
        # GTC (as the paper exchange models it): 60 fill as taker, 40 rest at 0.30 and fill as maker
        # (at 0.30, no fee) against the next book: 25 at T0+600; the last 15 are cancelled there, the
        # order being trading.stale_order_seconds (300) old — the ask of 0.28 at T0+900 comes too late
        ("GTC", [(T0 + 300, "BUY", 60_000_000, 18_000_000), (T0 + 600, "BUY", 25_000_000, 7_500_000)]),
    ],
)
def test_gtc_orders_rest_in_the_replay_like_on_paper(tmp_path, order_type, expected):
    script = {T0: [(ENTER, "B-yes", "B", {"size_micro": 100 * M, "limit_price_micro": 300_000})]}
    cfg_over = {"order_type": order_type}
    bt, res, _ = run_bt(_resting_db(tmp_path), Scripted(script), T0, T0 + DAY - 1, **cfg_over)
    assert [
        (f.timestamp, f.side, f.size_micro, f.notional_micro)
        for f in res.ledger.fills
        if not f.reason.startswith("end of backtest")
    ] == expected
    assert all(f.fee_micro == 0 for f in res.ledger.fills)
    assert res.unfilled.get("stale_cancelled", 0) == (1 if order_type == "GTC" else 0)


@pytest.mark.parametrize("latency, fill_ts", [(0, T0), (1, T0 + 300), (300, T0 + 300), (301, T0 + 600)])
def test_an_order_fills_on_the_first_recorded_book_at_or_after_its_latency(tmp_path, latency, fill_ts):
    script = {T0: [(ENTER, "B-yes", "B", {"size_micro": 10 * M, "limit_price_micro": 310_000})]}
    _, res, _ = run_bt(
        _resting_db(tmp_path), Scripted(script), T0, T0 + DAY - 1, fill_latency_seconds=latency
    )
    assert res.ledger.fills[0].timestamp == fill_ts


def test_a_dollar_buy_is_sized_at_its_limit_like_the_order_live_sends(tmp_path):
    # $30 at limit 0.31: 96.77 shares (30 / 0.31 rounded down), filled 60 @ 0.30 + 36.77 @ 0.31 —
    # $29.3987 spent, never more than the $30 approved (a depth walk would spend all $30)
    script = {T0: [(ENTER, "B-yes", "B", {"notional_micro": 30 * M, "limit_price_micro": 310_000})]}
    bt, res, _ = run_bt(_resting_db(tmp_path), Scripted(script), T0, T0 + DAY - 1)
    buy = res.ledger.fills[0]
    assert (buy.size_micro, buy.notional_micro) == (96_770_000, 18_000_000 + 11_398_700)
    assert [(t, s.side, s.price_micro, s.size_micro) for t, s in bt.orders][:1] == [
        (T0 + 300, "BUY", 310_000, 96_770_000)
    ]
