"""backtest.py --walk-forward and --sweep: rolling in-sample / out-of-sample segments, every parameter set
reported, the verdict on out-of-sample trades only and deflated for the number of sets tried."""

import json
import re

import pytest

from polybot.backtest.synthetic import DEFAULT_START, generate
from polybot.backtest.verdict import EXIT_CODES, VERDICTS
from polybot.backtest.walkforward import parse_sweep, segments
from polybot.errors import ConfigError
from tests.conftest import run_cli, write_config

DAY = 86_400
DATA = dict(tick=0.001, half_spread=0.002, common_vol=0.008, idio_vol=0.012, reversion=0.06)
CHECKLIST_LINES = [
    r"Total trades: \d+",
    r"Win rate: \d+\.\d%",
    r"Sharpe ratio: -?\d+\.\d\d",
    r"Max drawdown: \d+\.\d%",
    r"Final capital: \$[\d,]+\.\d\d",
]


def test_segments_roll_by_the_out_of_sample_length():
    start = DEFAULT_START
    segs = segments(start, start + 30 * DAY - 1, 14, 7)
    got = [
        (
            (s.in_start - start) // DAY,
            (s.in_end - start) // DAY,
            (s.out_start - start) // DAY,
            (s.out_end - start) // DAY,
        )
        for s in segs
    ]
    # out-of-sample parts tile days 14..29 without overlap; the last one is shorter
    assert got == [(0, 14, 14, 21), (7, 21, 21, 28), (14, 28, 28, 30)]
    with pytest.raises(ConfigError, match=r"--walk-forward needs at least 15 days .* the window has 10"):
        segments(start, start + 10 * DAY - 1, 14, 7)


def test_parse_sweep_every_combination_validated():
    sets = parse_sweep(["entry_z=1.5,2.5", "exit_z=0.3,0.5"], "correlation_pairs", {"max_pairs": 5})
    assert [(s["entry_z"], s["exit_z"], s["max_pairs"]) for s in sets] == [
        (1.5, 0.3, 5),
        (1.5, 0.5, 5),
        (2.5, 0.3, 5),
        (2.5, 0.5, 5),
    ]
    with pytest.raises(ConfigError, match=r"--sweep: Unknown config key 'strategy.params.entry_zz'.*entry_z"):
        parse_sweep(["entry_zz=1,2"], "correlation_pairs", {})
    with pytest.raises(ConfigError, match=r"--sweep 'entry_z' is not key=v1,v2"):
        parse_sweep(["entry_z"], "correlation_pairs", {})
    with pytest.raises(ConfigError, match=r"lists entry_z twice"):
        parse_sweep(["entry_z=1", "entry_z=2"], "correlation_pairs", {})
    with pytest.raises(ConfigError, match=r"exit_z.*below entry_z"):
        parse_sweep(["exit_z=3"], "correlation_pairs", {})


def _workspace(tmp_path, days=10, in_days=3, out_days=2):
    write_config(
        tmp_path,
        {
            "walk_forward": {"in_sample_days": in_days, "out_of_sample_days": out_days},
            "strategy": {
                "name": "correlation_pairs",
                "params": {
                    "min_correlation": 0.4,
                    "lookback_hours": 24,
                    "z_window_hours": 12,
                    "reselect_hours": 2,
                },
            },
        },
    )
    generate(tmp_path / "data" / "polymarket.db", n_markets=6, days=days, seed=3, **DATA)
    return tmp_path


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_walk_forward_judges_out_of_sample_trades_only(tmp_path):
    ws = _workspace(tmp_path)
    p = run_cli(
        "backtest.py",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-10",
        "--capital",
        "500",
        "--walk-forward",
        "--sweep",
        "entry_z=1.5,2.5",
        cwd=ws,
        timeout=600,
    )
    assert p.returncode in (0, 1, 6), p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stdout.splitlines()
    for pattern, line in zip(CHECKLIST_LINES, lines[:5], strict=True):  # all five lines printed
        assert re.fullmatch(pattern, line), (pattern, line)
    assert "[12/12] segment 4/4 OUT OF SAMPLE" in p.stderr  # progress, one line per run
    rep = json.loads((ws / "reports" / "backtest_10day.json").read_text())
    assert rep["verdict"] in VERDICTS and p.returncode == EXIT_CODES[rep["verdict"]]
    oos = rep["out_of_sample"]
    # 3 in + 2 out, rolling by 2: out of sample 01-04..05, 06..07, 08..09, 10
    assert [(s["out_of_sample"]["start"], s["out_of_sample"]["end"]) for s in oos["segments"]] == [
        ("2026-01-04", "2026-01-05"),
        ("2026-01-06", "2026-01-07"),
        ("2026-01-08", "2026-01-09"),
        ("2026-01-10", "2026-01-10"),
    ]
    for s in oos["segments"]:
        assert set(s["chosen_params"]) == {"entry_z"} and len(s["in_sample_trials"]) == 2
        best = max(s["in_sample_trials"], key=lambda t: t["sharpe_ratio"])
        assert s["chosen_params"] == best["params"]
    # the verdict's numbers are the out-of-sample segments' numbers, nothing from in sample
    seg_trades = sum(s["out_of_sample_metrics"]["trades"] for s in oos["segments"])
    assert rep["total_trades"] == oos["metrics"]["total_trades"] == seg_trades == int(lines[0].split(": ")[1])
    assert len(oos["daily_returns"]) == 7  # 2026-01-04 .. 2026-01-10
    growth = 1.0
    for s in oos["segments"]:
        growth *= 1 + s["out_of_sample_metrics"]["total_return"]
    # (each segment's return is reported rounded to 6 decimals: the product is within ~1e-6)
    assert oos["metrics"]["total_return"] == pytest.approx(growth - 1, abs=2e-6)
    # two sets tried in sample: the Sharpe ratio is deflated for them
    assert rep["n_trials"] == 2 and "dsr" in rep and rep["sweep"]["sets"] == 2
    assert rep["strategy"]["params"]["entry_z"] == oos["segments"][-1]["chosen_params"]["entry_z"]
    assert isinstance(rep["reasons"], list) and rep["reasons"]


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_sweep_reports_every_set_and_deflates(tmp_path):
    ws = _workspace(tmp_path, days=5)
    p = run_cli(
        "backtest.py",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-05",
        "--capital",
        "500",
        "--sweep",
        "entry_z=1.5,2,2.5",
        "--no-progress",
        cwd=ws,
        timeout=600,
    )
    assert p.returncode in (0, 1, 6), p.stderr
    lines = p.stdout.splitlines()
    for pattern, line in zip(CHECKLIST_LINES, lines[:5], strict=True):  # all five lines printed
        assert re.fullmatch(pattern, line), (pattern, line)
    assert "Parameter sweep: 3 sets tried" in p.stdout
    assert all(f"set {i}: entry_z=" in p.stdout for i in (1, 2, 3))
    rep = json.loads((ws / "reports" / "backtest_5day.json").read_text())
    assert rep["n_trials"] == 3 and rep["dsr"] is not None
    assert len(rep["sweep"]["trials"]) == 3 and rep["sweep"]["trials_sharpe_variance"] is not None
    chosen = rep["sweep"]["trials"][rep["sweep"]["chosen"] - 1]
    assert rep["strategy"]["params"]["entry_z"] == chosen["params"]["entry_z"]
    assert rep["total_trades"] == chosen["trades"]


def test_walk_forward_bad_input_is_one_sentence(tmp_path):
    ws = _workspace(tmp_path, days=3)
    p = run_cli(
        "backtest.py", "--start-date", "2026-01-01", "--end-date", "2026-01-03", "--walk-forward", cwd=ws
    )
    assert (
        p.returncode == 2 and "walk-forward needs at least 4 days" in p.stderr and "Traceback" not in p.stderr
    )
    p = run_cli(
        "backtest.py", "--start-date", "2026-01-01", "--end-date", "2026-01-03", "--sweep", "nope=1", cwd=ws
    )
    assert p.returncode == 2 and "--sweep: Unknown config key" in p.stderr and "Traceback" not in p.stderr
    assert not (ws / "reports" / "backtest_3day.json").exists()


def test_walk_forward_with_days_missing_is_insufficient_not_a_crash(tmp_path):
    """Data for the first 6 days of a 10-day window: the later segments have no snapshot at all.
    The walk-forward still runs, and the out-of-sample coverage makes it INSUFFICIENT_DATA."""
    ws = _workspace(tmp_path, days=6)
    p = run_cli(
        "backtest.py",
        "--start-date",
        "2026-01-01",
        "--end-date",
        "2026-01-10",
        "--walk-forward",
        "--no-progress",
        cwd=ws,
        timeout=600,
    )
    assert p.returncode == EXIT_CODES["INSUFFICIENT_DATA"], p.stderr
    rep = json.loads((ws / "reports" / "backtest_10day.json").read_text())
    assert rep["verdict"] == "INSUFFICIENT_DATA" and rep["coverage"] < 0.5
    assert any("covers only" in r for r in rep["reasons"])
    assert rep["out_of_sample"]["segments"][-1]["out_of_sample_metrics"]["trades"] == 0


def test_out_of_sample_run_starts_with_pairs_selected_on_in_sample_data(tmp_path):
    """The out-of-sample backtest's feed is warmed with the in-sample snapshots: at its very first step
    the strategy already trades pairs chosen on in-sample data (a cold start would have none)."""
    import numpy as np

    from polybot.backtest.engine import Backtester
    from polybot.backtest.walkforward import _warm
    from polybot.config import default_config
    from polybot.db import connect
    from polybot.strategy import get_strategy

    d = generate(tmp_path / "w.db", n_markets=6, days=6, seed=3, **DATA)
    cfg = default_config(tmp_path)
    conn = connect(d.path, readonly=True)
    start = d.start_ts + 3 * DAY
    first = {}
    for warm in (False, True):
        s = get_strategy(
            "correlation_pairs", {"lookback_hours": 24, "z_window_hours": 12, "min_correlation": 0.4}
        )
        bt = Backtester(conn, cfg, s, start_ts=start, end_ts=start + DAY, capital_micro=500_000_000)
        if warm:
            _warm(bt, start - s.history_seconds, start)
            _, hist = bt.feed.view(start - 1).history_by_index(np.arange(2), 10)
            assert not np.isnan(hist).all()  # in-sample rows, all before the start
        orig, seen = s._select_pairs, []

        def spy(view, orig=orig, s=s, seen=seen):
            orig(view)
            seen.append((view.now, len(s.pairs)))

        s._select_pairs = spy
        bt.run()
        first[warm] = seen[0]
    conn.close()
    assert first[True][0] == first[False][0] == start
    assert first[False][1] == 0 and first[True][1] >= 1
