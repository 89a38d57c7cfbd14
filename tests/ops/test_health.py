"""health_check.py and run_health_checks(): the checklist's six lines, thresholds, exit codes
0/1/2, and the critical alert on FAIL."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from polybot import db
from polybot.config import load_config
from polybot.ops.health import HealthLine, exit_code, run_health_checks
from tests.conftest import run_cli
from tests.ops.helpers import (
    LocalClob,
    Sleeper,
    add_alert,
    add_trade,
    connect,
    init_workspace,
    simulate_running_bot,
)

SMALL_DISK = {"disk_warn_gb": 0.001, "disk_fail_gb": 0.0005}


@pytest.fixture
def clob_url():
    """The bundled simulator's CLOB when it exists, else a tiny local HTTP server."""
    try:
        from polybot.sim.server import start_simulator
    except ImportError:
        server = LocalClob()
        yield server.url
        server.stop()
        return
    handle = start_simulator(port=0, seed=42, n_markets=5, speed=0.0)
    try:
        yield handle.clob_url
    finally:
        handle.stop()


@pytest.fixture
def bot():
    s = Sleeper()
    yield s
    s.stop()


def _workspace(tmp_path, clob_url, **health):
    return init_workspace(
        tmp_path,
        {"polymarket": {"base_url": clob_url, "timeout_seconds": 3}, "health": {**SMALL_DISK, **health}},
    )


def test_bot_stopped_is_a_failure_with_exit_2_and_an_alert(tmp_path, clob_url):
    cfg = _workspace(tmp_path, clob_url)
    res = run_cli("health_check.py", cwd=tmp_path)  # never started yet: FAIL, but no alert
    assert res.returncode == 2 and res.stdout.startswith("[FAIL] Bot process not running")
    conn = connect(cfg)
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0
    conn.close()
    simulate_running_bot(cfg, 99_999_999, heartbeat=int(time.time()) - 3600)  # it ran, then stopped
    (cfg.database_path.parent / "trading_bot.pid").unlink()
    res = run_cli("health_check.py", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("[FAIL] Bot process not running (no PID file data/trading_bot.pid")
    assert len(lines) == 7 and all(re.match(r"^\[(OK|WARN|FAIL)\] ", ln) for ln in lines[:6])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ Health: ERROR \(bot FAIL, .*\)", lines[6])
    conn = connect(cfg)
    assert conn.execute("SELECT level FROM alerts WHERE key = 'health_bot'").fetchone()[0] == "critical"
    conn.close()
    # the health check's own alert is not counted as a new critical error on the next run
    res = run_cli("health_check.py", "--no-alert", cwd=tmp_path)
    assert "[OK] No critical errors" in res.stdout


def test_running_bot_all_ok(tmp_path, clob_url, bot):
    cfg = _workspace(tmp_path, clob_url)
    simulate_running_bot(cfg, bot.pid)
    conn = connect(cfg)
    add_trade(conn, ts=int(time.time()) - 23 * 60 - 5)
    conn.close()
    res = run_cli("health_check.py", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"[OK] Bot process running (PID: {bot.pid})"
    assert re.fullmatch(r"\[OK\] API connectivity \(response time: \d+ms\)", lines[1])
    assert lines[2] == "[OK] Database accessible"
    assert lines[3] == "[OK] Last trade: 23 minutes ago"
    assert lines[4] == "[OK] No critical errors"
    assert re.fullmatch(r"\[OK\] Disk space: \d+\.\d GB free", lines[5])
    assert lines[6].endswith("Health: OK (6/6 checks OK)") and len(lines) == 7
    conn = sqlite3.connect(cfg.database_path)
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0  # read-only when healthy
    conn.close()


def test_warnings_exit_1(tmp_path, clob_url, bot):
    cfg = _workspace(tmp_path, clob_url)
    simulate_running_bot(cfg, bot.pid, halted=True)
    conn = connect(cfg)
    add_trade(conn, ts=int(time.time()) - 3 * 3600)
    conn.close()
    today = time.strftime("%Y%m%d", time.gmtime())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cfg.log_dir.mkdir(exist_ok=True)
    (cfg.log_dir / f"trading_system_{today}.log").write_text(
        f"{stamp} [ERROR] polybot.engine: order failed\n"
    )
    res = run_cli("health_check.py", cwd=tmp_path)
    assert res.returncode == 1, res.stdout
    assert f"[WARN] Bot process running (PID: {bot.pid}) but HALTED" in res.stdout
    assert "[WARN] Last trade: 3 hours ago (over 60 minutes" in res.stdout
    assert (
        "[WARN] 1 ERROR line(s) in today's log in the last hour (latest: polybot.engine: order failed)"
        in res.stdout
    )


def test_failures_stale_heartbeat_dead_pid_api_down_critical_alert(tmp_path, bot):
    dead = LocalClob()
    url = dead.url
    dead.stop()  # nothing listens there any more
    cfg = _workspace(tmp_path, url)
    simulate_running_bot(cfg, bot.pid, heartbeat=int(time.time()) - 600)
    conn = connect(cfg)
    add_alert(conn, ts=int(time.time()) - 60, key="daily_loss_limit", message="Daily loss limit hit")
    conn.close()
    lines = {h.name: h for h in run_health_checks(load_config(tmp_path / "config.yaml"))}
    assert lines["bot"].status == "FAIL" and re.search(
        r"heartbeat is 6\d\d s old \(limit 180 s\)", lines["bot"].text
    )
    assert lines["api"].status == "FAIL" and lines["api"].text.startswith(
        f"API connectivity: cannot reach {url}"
    )
    assert lines["errors"].status == "FAIL"
    assert lines["errors"].text.startswith("1 critical alert(s) in the last hour (latest: daily_loss_limit")
    assert exit_code(list(lines.values())) == 2

    (cfg.database_path.parent / "trading_bot.pid").write_text("99999999\n")
    res = run_cli("health_check.py", cwd=tmp_path)
    assert res.returncode == 2
    assert "[FAIL] Bot process not running (PID 99999999 in data/trading_bot.pid is gone" in res.stdout


def test_run_health_checks_api_for_telegram_and_dashboard(tmp_path, clob_url):
    init_workspace(tmp_path, {"polymarket": {"base_url": clob_url}})
    cfg = load_config(tmp_path / "config.yaml")
    lines = run_health_checks(cfg)
    assert [h.name for h in lines] == ["bot", "api", "database", "last_trade", "errors", "disk"]
    assert all(isinstance(h, HealthLine) and h.status in ("OK", "WARN", "FAIL") for h in lines)
    assert lines[0].line().startswith("[FAIL] Bot process")
    assert [h.name for h in run_health_checks(cfg, check_api_connectivity=False)] == [
        "bot",
        "database",
        "last_trade",
        "errors",
        "disk",
    ]


def test_missing_database_fails_cleanly(workspace):
    res = run_cli("health_check.py", "--no-alert", cwd=workspace)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "[FAIL] Database not accessible: Database" in res.stdout


def test_the_checklists_warning_alerts_are_sent_by_the_health_job(tmp_path, clob_url, bot):
    """Win rate < 50 % over the last 20 trades, drawdown > the limit and no trade for hours while the
    bot runs on fresh data are warnings the operator's phone gets from the 5-minute health job."""
    cfg = _workspace(tmp_path, clob_url)
    simulate_running_bot(cfg, bot.pid)
    now = int(time.time())
    conn = connect(cfg)
    with db.atomic(conn):
        db.set_state(conn, "started_at", str(now - 10 * 3600))
        conn.execute(
            "INSERT INTO snapshot_values(timestamp, token_id, market_id, best_bid, best_ask, mid) "
            "VALUES (?, 'tok1', 'm1', 0.49, 0.51, 0.5)",
            (now - 60,),
        )
        for i, equity in enumerate((500, 520, 430)):  # 17.3 % below the peak of $520
            conn.execute(
                "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
                "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
                "VALUES (?, 'paper', ?, ?, 0, 0, 0, 0, 0)",
                (now - 7 * 3600 + i * 60, equity * 1_000_000, equity * 1_000_000),
            )
    conn.close()
    conn = connect(cfg)
    for i in range(20):  # 8 won, 12 lost: 40 %, the last one 5 hours ago
        add_trade(conn, ts=now - 6 * 3600 + i * 60, side="SELL", pnl=1_000_000 if i % 5 < 2 else -1_000_000)
    conn.close()

    res = run_cli("health_check.py", cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr  # last trade 5 h ago: a WARN line
    conn = connect(cfg)
    sent = dict(conn.execute("SELECT key, level FROM alerts").fetchall())
    conn.close()
    assert sent == {"win_rate_low": "warning", "drawdown": "warning", "no_trades": "warning"}

    # a winning record with a recent trade and no equity history sends nothing
    (tmp_path / "healthy").mkdir()
    cfg2 = _workspace(tmp_path / "healthy", clob_url)
    simulate_running_bot(cfg2, bot.pid)
    conn = connect(cfg2)
    for i in range(20):
        add_trade(conn, ts=now - 600 + i, side="SELL", pnl=1_000_000)
    conn.close()
    run_cli("health_check.py", cwd=tmp_path / "healthy")
    conn = connect(cfg2)
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0
    conn.close()
