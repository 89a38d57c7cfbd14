"""health_check.py and run_health_checks(): the checklist's six lines, thresholds, exit codes
0/1/2, and the critical alert on FAIL."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

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
