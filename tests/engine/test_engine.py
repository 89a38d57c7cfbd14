"""The trading engine end to end: the bot as a real subprocess, paper trading against the
simulator over real HTTP with an accelerated clock, real SQLite in tmp_path."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import run_cli
from tests.engine.helpers import (
    M,
    assert_consistent,
    assert_limits_respected,
    load,
    make_workspace,
    query,
    run_bot,
    start_bot,
    wait_for,
)


def test_startup_lines_and_once(tmp_path, sim):
    root = make_workspace(tmp_path, sim)
    res = run_bot(root, "--once")
    assert res.returncode == 0, res.stderr
    for line in (
        "Trading bot started (PAPER MODE)",
        "Capital: $500.00",
        "Risk limits: max_position=$100, max_exposure=0.8",
        "Monitoring markets...",
    ):
        assert f"[INFO] polybot.engine: {line}" in res.stderr
    log = next((root / "logs").glob("trading_system_*.log")).read_text()
    assert "Trading bot started (PAPER MODE)" in log and "Monitoring markets..." in log
    state = dict(query(root, "SELECT key, value FROM bot_state"))
    assert state["mode"] == "paper" and int(state["pid"]) > 0 and int(state["heartbeat"]) > 0
    assert query(root, "SELECT COUNT(*) FROM performance")[0][0] == 1
    assert query(root, "SELECT COUNT(*) FROM snapshot_values")[0][0] > 0


def test_paper_flag_overrides_live_config(tmp_path, sim):
    root = make_workspace(tmp_path, sim, paper_trading=False)
    res = run_bot(root, "--once")
    assert res.returncode == 2 and "Live trading needs polymarket.private_key" in res.stderr
    res = run_bot(root, "--paper-trading", "--once")
    assert res.returncode == 0, res.stderr
    assert "Trading bot started (PAPER MODE)" in res.stderr


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_paper_run_opens_closes_settles_within_limits(tmp_path, fast_sim):
    root = make_workspace(
        tmp_path,
        fast_sim,
        strategy={
            "name": "drill",
            "params": {
                "size_usd": 150,
                "max_holdings": 6,
                "hold_seconds": 900,
                "max_spread": 0.1,
                "min_price": 0.1,
                "max_price": 0.9,
            },
        },
        risk_limits={"stop_loss_percent": 0.5, "daily_loss_limit": 400},
    )
    proc = start_bot(root)
    try:
        held = wait_for(
            lambda: query(
                root,
                "SELECT market_id, token_id FROM positions WHERE status='open' ORDER BY opened_at LIMIT 1",
            ),
            90,
            what="an open position",
        )
        pid_file = load(root).database_path.parent / "trading_bot.pid"
        assert int(pid_file.read_text()) == proc.pid
        market_id, token_id = held[0]
        index = query(root, "SELECT outcome_index FROM market_tokens WHERE token_id=?", token_id)[0][0]
        fast_sim.sim.resolve(market_id, "YES" if index == 0 else "NO")  # the held outcome wins
        wait_for(lambda: query(root, "SELECT 1 FROM trades WHERE kind='settlement'"), 60, what="a settlement")
        wait_for(
            lambda: query(root, "SELECT 1 FROM trades WHERE kind='fill' AND side='SELL'"), 90, what="an exit"
        )
        wait_for(
            lambda: query(root, "SELECT COUNT(*) FROM trades WHERE side='BUY'")[0][0] >= 6,
            90,
            what="six entries",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not pid_file.exists()
    settled = query(
        root, "SELECT token_id, price_micro, size_micro, notional_micro FROM trades WHERE kind='settlement'"
    )
    assert settled and all(p in (0, M) for _, p, _, _ in settled)
    assert [p for t, p, _, _ in settled if t == token_id] == [M]
    assert query(root, "SELECT status FROM positions WHERE token_id=?", held[0][1])[0][0] == "closed"
    inv = assert_consistent(root)
    stats = assert_limits_respected(root)
    assert stats["buys"] >= 6 and stats["sells"] >= 1 and stats["settlements"] >= 1
    # the limits were binding, not idle: the drill asked for $150 positions and 6 holdings
    assert stats["max_cost"] > 95 * M
    assert stats["max_positions"] == 4
    assert query(root, "SELECT COUNT(*) FROM performance")[0][0] > 5
    perf = query(root, "SELECT cash_micro FROM performance ORDER BY id DESC LIMIT 1")[0][0]
    assert perf == inv["cash"]

    # python paper_trading_report.py: the checklist's metrics, and the backtest of the same window
    res = run_cli("paper_trading_report.py", cwd=root)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    n_fills = query(root, "SELECT COUNT(*) FROM trades WHERE kind='fill'")[0][0]
    assert f"Simulated trades executed: {n_fills} " in out
    assert "Simulated P&L: " in out and "Win rate: " in out and "Days running: " in out
    assert "Backtest over the same window (drill)" in out and "Paper vs backtest:" in out
    assert "✓ No critical errors" in out


def test_paper_report_without_paper_trading(workspace):
    assert run_cli("initialize_db.py", cwd=workspace).returncode == 0
    res = run_cli("paper_trading_report.py", cwd=workspace)
    assert res.returncode == 1 and "No paper trading is recorded" in res.stderr
