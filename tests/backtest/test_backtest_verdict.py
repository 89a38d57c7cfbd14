"""The backtest verdict (issue 14): statistics checked against independent computations and
Monte Carlo, judge()'s three answers and their reasons, config_hash, and the CLI end to end."""

from __future__ import annotations

import json
import math
import statistics
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from polybot.backtest.stats import (
    block_bootstrap_ci,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    mean_of,
    probabilistic_sharpe_ratio,
    sharpe_of,
    win_rate_of,
)
from polybot.backtest.verdict import EXIT_CODES, FAIL, INSUFFICIENT, PASS, config_hash, judge
from polybot.config import default_config
from tests.conftest import run_cli, write_config

DAY = 86_400
T = default_config(".").backtest


# --------------------------------------------------------------------------- PSR / DSR
def test_psr_matches_the_papers_formula_computed_independently():
    r = [0.012, -0.004, 0.021, 0.003, -0.011, 0.017, 0.008, -0.002, 0.030, 0.001]
    n = len(r)
    mean = sum(r) / n
    sd = statistics.stdev(r)  # ddof = 1
    m2 = sum((x - mean) ** 2 for x in r) / n
    skew = sum((x - mean) ** 3 for x in r) / n / m2**1.5
    kurt = sum((x - mean) ** 4 for x in r) / n / m2**2  # not excess
    sr = mean / sd
    z = sr * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert probabilistic_sharpe_ratio(r) == pytest.approx(expected, rel=1e-12)
    # against a benchmark Sharpe ratio (per day)
    z_b = (sr - 0.1) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert probabilistic_sharpe_ratio(r, 0.1) == pytest.approx(
        0.5 * (1 + math.erf(z_b / math.sqrt(2))), rel=1e-12
    )


def test_psr_is_symmetric_and_grows_with_evidence():
    rng = np.random.default_rng(3)
    r = rng.normal(0.002, 0.01, 40)
    assert probabilistic_sharpe_ratio(-r) == pytest.approx(1 - probabilistic_sharpe_ratio(r), abs=1e-12)
    same_sr = [probabilistic_sharpe_ratio(np.tile(r[:10], k)) for k in (1, 3, 9)]
    assert same_sr[0] < same_sr[1] < same_sr[2]


def test_psr_has_the_promised_false_positive_rate_on_no_edge_returns():
    """PSR ≥ 0.95 on zero-mean daily returns should happen about 5% of the time."""
    rng = np.random.default_rng(2024)
    hits = sum(probabilistic_sharpe_ratio(rng.normal(0, 0.01, 30)) >= 0.95 for _ in range(2000))
    assert 0.03 <= hits / 2000 <= 0.075, hits


def test_psr_degenerate_inputs_are_no_evidence():
    assert probabilistic_sharpe_ratio([]) == 0.0
    assert probabilistic_sharpe_ratio([0.05]) == 0.0
    assert probabilistic_sharpe_ratio([0.01] * 30) == 0.0  # no variation: not "certain"


def test_expected_max_sharpe_matches_monte_carlo():
    rng = np.random.default_rng(7)
    for n_trials, var in ((10, 0.04), (100, 0.01)):
        sims = rng.normal(0, math.sqrt(var), (20_000, n_trials)).max(axis=1).mean()
        assert expected_max_sharpe(n_trials, var) == pytest.approx(sims, rel=0.05)
    assert expected_max_sharpe(1, 0.04) == 0.0


def test_deflated_sharpe_is_psr_for_one_trial_and_lower_for_many():
    rng = np.random.default_rng(5)
    r = rng.normal(0.004, 0.01, 60)
    psr = probabilistic_sharpe_ratio(r)
    assert deflated_sharpe_ratio(r, 1, 0.01) == pytest.approx(psr)
    dsr = [deflated_sharpe_ratio(r, n, 0.01) for n in (2, 10, 100)]
    assert psr > dsr[0] > dsr[1] > dsr[2]


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    inside = 0
    for k in range(150):
        x = rng.normal(0.001, 0.01, 40)
        lo, hi = block_bootstrap_ci(x, mean_of, n_boot=500, seed=k)
        inside += lo <= 0.001 <= hi
    assert 0.86 <= inside / 150 <= 0.99, inside


def test_bootstrap_resamples_whole_days_and_blocks_of_days():
    seen = []

    def record(rows):
        seen.append(rows.copy())
        return float(rows[:, 0].sum())

    days = np.array([[i, 10 * i] for i in range(10)], dtype=float)  # a day's columns stay together
    block_bootstrap_ci(days, record, n_boot=50, seed=1)
    assert all(len(s) == 10 and np.array_equal(s[:, 1], 10 * s[:, 0]) for s in seen)
    seen.clear()
    block_bootstrap_ci(np.arange(10, dtype=float)[:, None], record, n_boot=50, block_days=5, seed=2)
    for s in seen:
        idx = s[:, 0].astype(int)
        for a in (0, 5):  # two blocks of 5 consecutive days (circular)
            assert all((idx[a + j] - idx[a]) % 10 == j for j in range(5))


def test_bootstrap_is_seeded_and_degenerate_input_gives_no_interval():
    x = np.random.default_rng(1).normal(0, 0.01, 20)
    assert block_bootstrap_ci(x, sharpe_of, seed=4) == block_bootstrap_ci(x, sharpe_of, seed=4)
    assert all(math.isnan(v) for v in block_bootstrap_ci([0.01], mean_of))
    wins = np.array([[1, 2], [0, 0], [3, 4]], dtype=float)
    assert win_rate_of(wins) == pytest.approx(4 / 6)


# --------------------------------------------------------------------------- judge
def _metrics(r, n_trades, win_rate=0.6, mdd=0.05):
    r = np.asarray(r)
    return {
        "total_trades": n_trades,
        "win_rate": win_rate,
        "sharpe_ratio": sharpe_of(r),
        "max_drawdown": mdd,
        "total_return": float(np.prod(1 + r) - 1),
    }


def _trades(n, first_day=20_000, win_share=0.6):
    wins = int(round(n * win_share))
    return [((first_day + i % 30) * DAY + 3600, 2.0 if i < wins else -1.0) for i in range(n)]


STRONG = np.random.default_rng(9).normal(0.006, 0.01, 30)  # ~9.5 annual Sharpe over 30 days


def _judge(r, n_trades, **kw):
    args = dict(thresholds=T, coverage=1.0, recorded_share=1.0, recorded_days=30.0)
    args.update(kw)
    return judge(_metrics(r, n_trades), r, _trades(n_trades), **args)


def test_strong_evidence_passes_with_intervals_and_psr():
    v = _judge(STRONG, 45)
    assert v["verdict"] == PASS and v["psr"] >= 0.95, v
    ci = v["confidence_intervals"]
    assert ci["total_return"][0] < float(np.prod(1 + STRONG) - 1) < ci["total_return"][1]
    assert ci["sharpe"][0] < sharpe_of(STRONG) < ci["sharpe"][1]
    assert 0 <= ci["win_rate"][0] <= 0.6 <= ci["win_rate"][1] <= 1
    assert set(ci) >= {"total_return", "sharpe", "win_rate", "mean_daily_return"}
    assert "dsr" not in v and v["n_trials"] == 1
    assert len(v["reasons"]) == 1 and "probabilistic Sharpe ratio" in v["reasons"][0]


def test_too_few_trades_is_insufficient_data_however_good_they_look():
    # the finding: 2 trades over 2 days PASSed; 29 trades of a strong run are still no verdict
    assert _judge(STRONG[:2], 2)["verdict"] == INSUFFICIENT
    v = _judge(STRONG, 29)
    assert v["verdict"] == INSUFFICIENT
    assert v["reasons"] == [
        "Only 29 closed trades — at least 30 (backtest.min_trades) are needed to tell skill "
        "from luck; backtest a longer window or collect more data."
    ]
    assert _judge(STRONG, 30)["verdict"] == PASS


def test_six_days_of_data_in_a_thirty_day_window_is_insufficient_data():
    r = np.zeros(30)
    r[-6:] = STRONG[:6]
    v = _judge(r, 35, coverage=0.2, recorded_days=6.0)
    assert v["verdict"] == INSUFFICIENT
    assert any("covers only 20% of the window" in s and "backtest.min_coverage" in s for s in v["reasons"])
    assert v["coverage"] == 0.2
    # unknown coverage is never assumed complete
    v = _judge(STRONG, 45, coverage=None)
    assert v["verdict"] == INSUFFICIENT and "not measured" in v["reasons"][0]


def test_recorded_days_floor_applies_to_the_go_live_check():
    assert _judge(STRONG, 45, recorded_days=3.0)["verdict"] == PASS
    v = _judge(STRONG, 45, recorded_days=3.0, for_go_live=True)
    assert (
        v["verdict"] == INSUFFICIENT
        and "Only 3.0 days of the window are recorded order books" in v["reasons"][0]
    )


def test_luck_fails_on_the_psr_although_every_checklist_criterion_passes():
    # the finding's lucky seed: Sharpe 3.58 over 30 days — daily SR 0.187, PSR ≈ 0.84
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, 30)
    r = (r - r.mean()) / r.std(ddof=1) * 0.01 + 3.58 / math.sqrt(365) * 0.01
    assert sharpe_of(r) == pytest.approx(3.58, rel=1e-6)
    v = _judge(r, 40)
    assert all(c["passed"] for c in v["criteria"])
    assert v["verdict"] == FAIL and v["psr"] < 0.95
    assert v["reasons"][0].startswith("The probabilistic Sharpe ratio is 0.")


def test_one_lucky_day_does_not_pass_on_skewness():
    """Found by the calibration benchmark: one winning day among 29 flat ones (Sharpe 3.49) has
    skewness 5.2, and the paper's PSR credits it with 0.97. The verdict gives no skew credit."""
    r = np.zeros(30)
    r[10] = 0.0123
    assert probabilistic_sharpe_ratio(r) > 0.95  # the paper's formula
    assert probabilistic_sharpe_ratio(r, skew_credit=False) == pytest.approx(0.8128, abs=1e-4)
    v = judge(
        _metrics(r, 30, win_rate=0.9, mdd=0.0),
        r,
        [(20_010 * DAY, 1.0)] * 27 + [(20_010 * DAY, -1.0)] * 3,
        thresholds=T,
        coverage=1.0,
        recorded_share=1.0,
        recorded_days=30,
    )
    assert all(c["passed"] for c in v["criteria"])
    assert v["verdict"] == FAIL and v["psr"] < 0.95
    # skewness still widens the uncertainty when it hurts: negative skew with a positive Sharpe
    neg = np.array([0.004] * 28 + [-0.03, 0.002])
    assert probabilistic_sharpe_ratio(neg, skew_credit=False) == pytest.approx(
        probabilistic_sharpe_ratio(neg)
    )


def test_many_trials_are_deflated():
    v = _judge(STRONG[:20], 40, n_trials=200, trials_sharpe_variance=0.25)
    assert v["psr"] >= 0.95 and v["dsr"] < 0.95 and v["verdict"] == FAIL
    assert any("200 parameter sets were tried" in s for s in v["reasons"])
    with pytest.raises(ValueError, match="trials_sharpe_variance"):
        _judge(STRONG, 40, n_trials=5)


def test_failed_criteria_are_one_operator_sentence_each():
    r = -np.abs(STRONG)
    v = judge(
        _metrics(r, 40, win_rate=0.4, mdd=0.3),
        r,
        _trades(40, win_share=0.4),
        thresholds=T,
        coverage=1.0,
        recorded_share=1.0,
        recorded_days=30,
    )
    assert v["verdict"] == FAIL and len(v["reasons"]) == 5
    for s in v["reasons"]:
        assert s.endswith(".") and "\n" not in s and s[0].isupper()
    assert "The win rate 40.0% is not above the checklist's 52% (backtest.min_win_rate)." in v["reasons"]


# --------------------------------------------------------------------------- config hash
def test_config_hash_follows_what_changes_results():
    import dataclasses

    cfg = default_config(".")
    base = config_hash(cfg)
    assert base == config_hash(cfg) and len(base) == 16
    explicit = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, params={"entry_z": 2.0}))
    assert config_hash(explicit) == base  # a default written out is the same strategy
    other = dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, params={"entry_z": 2.5}))
    assert config_hash(other) != base
    assert (
        config_hash(
            dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, name="mean_reversion"))
        )
        != base
    )
    assert (
        config_hash(
            dataclasses.replace(cfg, risk_limits=dataclasses.replace(cfg.risk_limits, stop_loss_percent=0.1))
        )
        != base
    )
    assert (
        config_hash(dataclasses.replace(cfg, backtest=dataclasses.replace(cfg.backtest, min_psr=0.9))) != base
    )
    assert (
        config_hash(dataclasses.replace(cfg, trading=dataclasses.replace(cfg.trading, order_type="FOK")))
        != base
    )
    # settings that only pace the live loop, or only decide whether a report is fresh enough, do not
    assert (
        config_hash(
            dataclasses.replace(cfg, trading=dataclasses.replace(cfg.trading, loop_interval_seconds=5))
        )
        == base
    )
    # go-live-only settings do not invalidate a report
    assert (
        config_hash(
            dataclasses.replace(cfg, backtest=dataclasses.replace(cfg.backtest, max_report_age_days=3))
        )
        == base
    )


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_backtest_py_on_six_days_of_a_thirty_day_window_is_insufficient_data(workspace):
    from polybot.backtest.synthetic import generate

    today = int(time.time()) // DAY * DAY
    generate(
        workspace / "data" / "polymarket.db",
        n_markets=6,
        days=6,
        seed=3,
        start_ts=today - 5 * DAY,
        tick=0.001,
        half_spread=0.002,
        common_vol=0.012,
        idio_vol=0.008,
        reversion=0.04,
    )

    def day(ts):
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")

    p = run_cli(
        "backtest.py",
        "--start-date",
        day(today - 29 * DAY),
        "--end-date",
        day(today),
        "--capital",
        "500",
        "--no-progress",
        cwd=workspace,
    )
    assert p.returncode == EXIT_CODES[INSUFFICIENT] == 6, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[-2] == "INSUFFICIENT_DATA"
    report = json.loads((workspace / "reports" / "backtest_30day.json").read_text())
    assert report["verdict"] == report["metrics"]["verdict"] == "INSUFFICIENT_DATA"
    assert 0.19 <= report["coverage"] <= 0.21, report["coverage"]
    assert any("covers only 20% of the window" in r for r in report["reasons"])
    assert report["recorded_share"] == 1.0 and report["fills_on_backfilled_books"] == 0.0
    assert (
        len(report["config_hash"]) == 16 and report["config_fingerprint"]["strategy"] == "correlation_pairs"
    )
    assert "psr" in report and set(report["confidence_intervals"]) >= {"total_return", "sharpe", "win_rate"}
    assert any(ln.startswith("  - The data covers only 20%") for ln in lines)
    # ... and pre_launch_check.py says NO-GO with that reason
    p = run_cli("pre_launch_check.py", cwd=workspace)
    assert p.returncode == 1
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("✗ 30-day backtest PASSED"))
    assert "verdict INSUFFICIENT_DATA" in line and "covers only 20% of the window" in line
    assert "30-day backtest PASSED: collect (or backfill) the missing data" in p.stdout


def test_sweeping_thresholds_in_config_is_validated(workspace):
    write_config(workspace, {"backtest": {"min_psr": 1.5}})
    p = run_cli("backtest.py", "--start-date", "2026-01-01", "--end-date", "2026-01-30", cwd=workspace)
    assert p.returncode == 2 and "backtest.min_psr" in p.stderr and "Traceback" not in p.stderr
