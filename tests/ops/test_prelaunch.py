"""pre_launch_check.py: NO-GO with one reason per missing step on a fresh workspace; GO on a
workspace prepared to satisfy every item; each item can turn the decision to NO-GO."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import pytest

from polybot import db
from tests.conftest import run_cli
from tests.ops.helpers import add_alert, add_trade, connect, init_workspace

LIVE_ENV = {
    "POLYMARKET_API_KEY": "k" * 36,
    "POLYMARKET_API_SECRET": "s" * 44,
    "POLYMARKET_API_PASSPHRASE": "p" * 64,
    "POLYMARKET_PRIVATE_KEY": "0x" + "1" * 64,
    "TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35,
}
LIVE_CONFIG = {
    "polymarket": {
        "api_key": "${POLYMARKET_API_KEY}",
        "api_secret": "${POLYMARKET_API_SECRET}",
        "api_passphrase": "${POLYMARKET_API_PASSPHRASE}",
        "private_key": "${POLYMARKET_PRIVATE_KEY}",
    },
    "telegram": {
        "enabled": True,
        "bot_token": "${TELEGRAM_BOT_TOKEN}",
        "chat_id": "424242",
        "base_url": "http://127.0.0.1:9/bot",
    },  # never reaches the real Telegram
    "alerts": {"critical": ["telegram"], "warning": ["telegram"], "info": ["telegram"]},
    "health": {"disk_warn_gb": 0.001, "disk_fail_gb": 0.0005},
}
PASSING_SCRIPT = 'print("✓ scenario 1 passed")\nprint("✓ scenario 2 passed")\n'


def _backtest(verdict: str, cfg=None, *, age_days: float = 0.5, **top) -> dict:
    """The shape backtest.py writes (polybot/backtest/report.py write_json), made ``age_days`` ago
    for ``cfg``'s strategy and settings (config_hash as backtest.py computes it)."""
    from datetime import datetime

    from polybot.backtest.verdict import config_fingerprint, config_hash
    from polybot.strategy.registry import from_config

    made = datetime.fromtimestamp(time.time() - age_days * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = {
        "generated_at": made,
        "start_date": "2026-01-01",
        "end_date": "2026-01-30",
        "strategy": {"name": "correlation_pairs"},
        "verdict": verdict,
        "reasons": ["The Sharpe ratio 0.41 is not above the checklist's 0.5."]
        if verdict == "FAIL"
        else ["Every checklist criterion passes."],
        "coverage": 1.0,
        "recorded_share": 0.9,
        "recorded_days": 27.0,
        "total_trades": 40,
        "psr": 0.97,
        "n_trials": 1,
        "confidence_intervals": {
            "total_return": [0.01, 0.09],
            "sharpe": [0.8, 5.1],
            "win_rate": [0.5, 0.62],
            "mean_daily_return": [-0.0005, 0.003],
        },
        "metrics": {
            "total_trades": 40,
            "win_rate": 0.56,
            "verdict": verdict,
            "criteria": [
                {"name": "Win rate > 52%", "passed": True, "value": "56.0%"},
                {"name": "Sharpe ratio > 0.5", "passed": verdict == "PASS", "value": "0.41"},
            ],
        },
    }
    if cfg is not None:
        s = from_config(cfg)
        report["config_hash"] = config_hash(cfg, s.name, s.params)
        report["config_fingerprint"] = config_fingerprint(cfg, s.name, s.params)
    report.update(top)
    return report


PAPER_ITEM = "Paper results within the backtest's 95% range"
BACKTEST_ITEM = "30-day backtest PASSED"


def _items(stdout: str) -> dict[str, str]:
    """{item name: '✓' | '✗'} from the check lines."""
    out = {}
    for line in stdout.splitlines():
        if line[:2] in ("✓ ", "✗ ") and ": " in line and not line.startswith("✗ NO-GO"):
            out[line[2:].split(": ", 1)[0]] = line[0]
    return out


def _prepare_go(root):
    cfg = init_workspace(root, LIVE_CONFIG)
    os.chmod(root / "config.yaml", 0o600)
    now = int(time.time())
    conn = connect(cfg)
    with db.atomic(conn):
        for ts in range(now - 8 * 86400, now, 6 * 3600):
            conn.execute(
                "INSERT INTO snapshot_values(timestamp, token_id, market_id, mid) VALUES (?, 'tok', 'm', 0.5)",
                (ts,),
            )
        conn.execute(
            "INSERT INTO snapshot_values(timestamp, token_id, market_id, mid) VALUES (?, 'tok', 'm', 0.5)",
            (now - 120,),
        )
    for i, ts in enumerate(range(now - 8 * 86400, now - 3600, 12 * 3600)):
        add_trade(conn, ts=ts, side="SELL" if i % 2 else "BUY", pnl=(100_000 if i % 2 else None))
    conn.close()
    reports = cfg.report_dir
    reports.mkdir(exist_ok=True)
    (reports / "data_quality_20260101_000000.txt").write_text("✓ No NULL values\nFAIL: old run\n")
    quality = reports / "data_quality_20260201_000000.txt"
    quality.write_text("✓ No NULL values in critical fields\n✓ Data fresh\nPASS: Data quality check passed\n")
    os.utime(reports / "data_quality_20260101_000000.txt", (now - 86400, now - 86400))
    (reports / "correlation_7day.csv").write_text("market_a,market_b,r\nm1,m2,0.82\n")
    (reports / "backtest_30day.json").write_text(json.dumps(_backtest("PASS", cfg)))
    for name in ("test_risk_limits.py", "test_circuit_breakers.py"):
        (root / name).write_text(PASSING_SCRIPT)
    cfg.log_dir.mkdir(exist_ok=True, mode=0o700)
    (cfg.log_dir / "health.log").write_text("[OK] Bot process running (PID: 1)\n")
    os.chmod(cfg.log_dir / "health.log", 0o640)
    add_live_order_check(cfg, started=now - 3600)
    res = run_cli("backup_database.py", cwd=root)
    assert res.returncode == 0, res.stderr
    return cfg


LIVE_ADDRESS = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"  # the address of LIVE_ENV's private key


def add_live_order_check(
    cfg,
    *,
    started: int,
    passed: bool = True,
    clob_url: str = "https://clob.polymarket.com",
    signature_type: int | None = None,
    address: str = LIVE_ADDRESS,
    message: str = "ok",
) -> None:
    """A job_runs row as test_api_connectivity.py --live-order-check records it (the contract in
    polybot/exchange/live_order_check.py's docstring)."""
    if signature_type is None:  # the configured one (config.py's default)
        signature_type = cfg.polymarket.signature_type
    detail = {
        "result": "pass" if passed else "fail",
        "order_id": "0xabc",
        "clob_url": clob_url,
        "address": address.lower(),
        "signature_type": signature_type,
        "funder": address.lower(),
        "token_id": "123",
        "message": message,
    }
    conn = connect(cfg)
    with db.atomic(conn):
        conn.execute(
            "INSERT INTO job_runs(job, started_at, finished_at, exit_code, duration, detail) "
            "VALUES ('live_order_check', ?, ?, ?, 3.2, ?)",
            (started, started + 3, 0 if passed else 1, json.dumps(detail)),
        )
    conn.close()


def test_fresh_workspace_is_no_go_with_one_reason_per_missing_step(workspace):
    # The scenario scripts are found in the workspace before the checkout (prelaunch._scenario):
    # two that pass stand in for test_risk_limits.py / test_circuit_breakers.py, whose own runs are
    # tested in tests/engine/test_operator_scenarios.py and by the end-to-end journey's pre-launch check.
    for script in ("test_risk_limits.py", "test_circuit_breakers.py"):
        (workspace / script).write_text(PASSING_SCRIPT)
    res = run_cli("pre_launch_check.py", cwd=workspace)
    assert res.returncode == 1, res.stdout + res.stderr
    items = _items(res.stdout)
    failed = {k for k, v in items.items() if v == "✗"}
    expected = {
        "Config valid for live trading",
        "File permissions",
        "Database integrity",
        "Recent verified backup",
        "Data collection running (7+ days, fresh, quality PASS)",
        "7-day correlation report",
        "30-day backtest PASSED",
        "Paper trading PASSED (7+ days, no critical errors)",
        "Alert channels configured",
        "Health checks running",
        "Live order check passed (last 24 h)",
        PAPER_ITEM,
    }
    assert items["Risk limits enforced"] == items["Circuit breakers tested"] == "✓"
    assert "test_circuit_breakers.py passed (2 scenarios)" in res.stdout
    assert expected <= failed and failed - expected <= {"Disk space"}
    assert items["No hardcoded secrets"] == "✓" and items["Emergency stop absent"] == "✓"
    assert items["Risk limits within the checklist's bounds"] == "✓"
    out = res.stdout
    assert f"✗ NO-GO: {len(failed)} item(s) to fix before live trading:" in out
    fixes = [ln for ln in out.splitlines() if ln.startswith("  ") and ". " in ln]
    assert len(fixes) == len(failed)  # one reason, with its fix, per missing step
    assert "no 30-day backtest report (reports/backtest_30day.json)" in out
    assert "run python backtest.py --start-date YYYY-MM-DD --end-date YYYY-MM-DD --capital 500" in out
    assert "Ready for live trading" not in out
    assert list((workspace / "reports").glob("pre_launch_check_*.txt"))


def test_prepared_workspace_is_go(tmp_path):
    _prepare_go(tmp_path)
    res = run_cli("pre_launch_check.py", cwd=tmp_path, env=LIVE_ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    items = _items(res.stdout)
    assert len(items) == 18 and set(items.values()) == {"✓"}
    assert (
        "✓ Live order check passed (last 24 h): passed 60 minutes ago, order 0xabc placed and cancelled"
        in res.stdout
    )
    assert res.stdout.rstrip().splitlines()[-3:-1] == [
        "✓ All systems operational",
        "✓ Ready for live trading",
    ]
    assert "data_quality_20260201_000000.txt: PASS" in res.stdout
    assert "test_circuit_breakers.py passed (2 scenarios)" in res.stdout
    assert "backtest_30day.json: verdict PASS (2026-01-01 to 2026-01-30)" in res.stdout
    assert "config_hash matches config.yaml" in res.stdout
    assert "vs the backtest's lower 95% bound -0.050%/day" in res.stdout


def _break_backtest(tmp_path, cfg, env, now):
    (cfg.report_dir / "backtest_30day.json").write_text(json.dumps(_backtest("FAIL", cfg)))


def _break_critical_alert(tmp_path, cfg, env, now):
    conn = connect(cfg)
    add_alert(conn, ts=now - 86400, key="api_errors", message="3 consecutive API errors")
    conn.close()


def _break_emergency_stop(tmp_path, cfg, env, now):
    (tmp_path / "EMERGENCY_STOP").write_text("")


def _break_scenario(tmp_path, cfg, env, now):
    (tmp_path / "test_circuit_breakers.py").write_text(
        'print("✗ Daily loss limit -> STOP")\nraise SystemExit(1)\n'
    )


def _break_data_freshness(tmp_path, cfg, env, now):
    conn = connect(cfg)
    with db.atomic(conn):
        conn.execute("DELETE FROM snapshot_values WHERE timestamp > ?", (now - 3600,))
    conn.close()


def _break_quality(tmp_path, cfg, env, now):
    (cfg.report_dir / "data_quality_20260301_000000.txt").write_text("FAIL: 3 duplicate snapshots\n")


def _break_backup_age(tmp_path, cfg, env, now):
    for p in cfg.backup_dir.glob("polymarket_backup_*.db"):
        p.rename(p.with_name("polymarket_backup_20200101_000000.db"))


def _break_secret(tmp_path, cfg, env, now):
    (tmp_path / "helper.py").write_text('api_key = "a1b2c3d4e5f6g7h8i9"\n')


def _break_risk(tmp_path, cfg, env, now):
    init_workspace(tmp_path, {**LIVE_CONFIG, "risk_limits": {"max_position_size": 250}})
    os.chmod(tmp_path / "config.yaml", 0o600)


def _break_env(tmp_path, cfg, env, now):
    env.pop("POLYMARKET_PRIVATE_KEY")


def _break_permissions(tmp_path, cfg, env, now):
    os.chmod(cfg.database_path, 0o644)


def _break_live_check_age(tmp_path, cfg, env, now):
    conn = connect(cfg)
    with db.atomic(conn):
        conn.execute("UPDATE job_runs SET started_at = started_at - 86400 WHERE job = 'live_order_check'")
    conn.close()


def _break_live_check(tmp_path, cfg, env, now):  # a newer failing run outweighs the older pass
    add_live_order_check(
        cfg,
        started=now - 60,
        passed=False,
        message="Placing the order: the exchange rejected it (invalid signature)",
    )


# breakage → what it does to a workspace that is otherwise GO
BREAKAGES = {
    "backtest_fail": _break_backtest,
    "critical_alert": _break_critical_alert,
    "emergency_stop": _break_emergency_stop,
    "scenario_fails": _break_scenario,
    "stale_data": _break_data_freshness,
    "quality_fail": _break_quality,
    "old_backup": _break_backup_age,
    "secret": _break_secret,
    "risk": _break_risk,
    "no_env": _break_env,
    "open_perms": _break_permissions,
    "stale_live_check": _break_live_check_age,
    "failed_live_check": _break_live_check,
}


@pytest.mark.parametrize(
    "breakage, item",
    [
        ("backtest_fail", "30-day backtest PASSED"),
        ("critical_alert", "Paper trading PASSED (7+ days, no critical errors)"),
        ("emergency_stop", "Emergency stop absent"),
        ("scenario_fails", "Circuit breakers tested"),
        ("stale_data", "Data collection running (7+ days, fresh, quality PASS)"),
        ("quality_fail", "Data collection running (7+ days, fresh, quality PASS)"),
        ("old_backup", "Recent verified backup"),
        ("secret", "No hardcoded secrets"),
        ("risk", "Risk limits within the checklist's bounds"),
        ("no_env", "Config valid for live trading"),
        ("open_perms", "File permissions"),
        ("stale_live_check", "Live order check passed (last 24 h)"),
        ("failed_live_check", "Live order check passed (last 24 h)"),
    ],
)
def test_each_item_can_block_go(tmp_path, breakage, item):
    cfg = _prepare_go(tmp_path)
    env = dict(LIVE_ENV)
    BREAKAGES[breakage](tmp_path, cfg, env, int(time.time()))
    res = run_cli("pre_launch_check.py", cwd=tmp_path, env=env)
    assert res.returncode == 1, res.stdout
    items = _items(res.stdout)
    failed = {k for k, v in items.items() if v == "✗"}
    if breakage == "risk":  # live mode refuses the bound too, so the config item fails as well;
        # and the backtest was made with other risk limits, so it no longer speaks for this config
        assert failed == {item, "Config valid for live trading", BACKTEST_ITEM}
        assert "risk_limits.max_position_size 100 in the report, 250 in config.yaml" in res.stdout
    else:
        assert failed == {item}, res.stdout
    assert "Ready for live trading" not in res.stdout and "NO-GO" in res.stdout
    if breakage == "backtest_fail":
        assert "verdict FAIL (failed: Sharpe ratio > 0.5)" in res.stdout
    if breakage == "stale_live_check":
        assert "the last passing run is 25 h old (max 24 h)" in res.stdout
    if breakage.endswith("live_check"):
        assert "run python test_api_connectivity.py --live-order-check" in res.stdout


@pytest.mark.parametrize("mode", ["ok", "down"])
def test_send_test_alert_goes_through_the_configured_channel(tmp_path, mode):
    from tests.fake_telegram import FakeTelegram

    with FakeTelegram(LIVE_ENV["TELEGRAM_BOT_TOKEN"]) as fake:
        _prepare_go(tmp_path)
        init_workspace(
            tmp_path,
            {
                **LIVE_CONFIG,
                "telegram": {**LIVE_CONFIG["telegram"], "base_url": fake.base_url, "timeout_seconds": 3},
            },
        )
        os.chmod(tmp_path / "config.yaml", 0o600)
        fake.mode = mode
        res = run_cli("pre_launch_check.py", "--send-test", cwd=tmp_path, env=LIVE_ENV, timeout=180)
        items = _items(res.stdout)
        if mode == "ok":
            assert res.returncode == 0, res.stdout + res.stderr
            assert "critical → telegram; test alert sent" in res.stdout
            assert any("Pre-launch test alert" in m for m in fake.messages())
        else:
            assert res.returncode == 1
            assert {k for k, v in items.items() if v == "✗"} == {"Alert channels configured"}
            assert "test alert not delivered" in res.stdout


def test_a_missing_scenario_script_is_no_go(tmp_path):
    from polybot.config import load_config
    from polybot.ops.prelaunch import _scenario

    init_workspace(tmp_path)
    item = _scenario(load_config(tmp_path / "config.yaml"), "Circuit breakers tested", "no_such_scenarios.py")
    assert not item.ok and item.detail == "no_such_scenarios.py not available"
    assert item.fix == "no_such_scenarios.py must exist and pass before going live"


def test_live_order_check_must_match_the_configured_exchange_key_and_wallet(tmp_path, monkeypatch):
    """A pass recorded against the simulator, another key or another signature type is not a
    pass for this config; the newest matching run decides."""
    from polybot.config import load_config
    from polybot.ops.prelaunch import check_live_order

    init_workspace(tmp_path, LIVE_CONFIG)
    for k, v in LIVE_ENV.items():
        monkeypatch.setenv(k, v)
    now = int(time.time())
    cfg = load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    conn = connect(cfg)
    try:
        item = check_live_order(cfg, conn, now)
        st = cfg.polymarket.signature_type
        assert not item.ok and item.detail == (
            f"no live order check recorded for https://clob.polymarket.com with signature type {st}"
        )
        assert item.fix.startswith("run python test_api_connectivity.py --live-order-check")
        add_live_order_check(cfg, started=now - 60, clob_url="http://127.0.0.1:8080/clob")
        add_live_order_check(cfg, started=now - 60, signature_type=(st + 1) % 4)
        add_live_order_check(cfg, started=now - 60, address="0x" + "d4" * 20)  # another key
        assert not check_live_order(cfg, conn, now).ok
        add_live_order_check(cfg, started=now - 120)
        item = check_live_order(cfg, conn, now)
        assert item.ok and item.detail.startswith("passed 2 minutes ago"), item.detail
        add_live_order_check(cfg, started=now - 30, passed=False, message="Authentication: HTTP 401")
        item = check_live_order(cfg, conn, now)
        assert not item.ok and "failed: Authentication: HTTP 401" in item.detail
    finally:
        conn.close()


# --------------------------------------------------------------------------- the backtest report (issue 14)
def _check(cfg):
    from polybot.ops.prelaunch import check_backtest

    return check_backtest(cfg, time.time())


def _write_report(cfg, report: dict) -> None:
    cfg.report_dir.mkdir(exist_ok=True)
    (cfg.report_dir / "backtest_30day.json").write_text(json.dumps(report))


def test_a_fresh_pass_for_the_configured_strategy_is_accepted(tmp_path):
    cfg = init_workspace(tmp_path)
    _write_report(cfg, _backtest("PASS", cfg, age_days=6.9))
    item = _check(cfg)
    assert item.ok, item.detail
    assert (
        "40 trades, PSR 0.97, coverage 100%, 27.0 recorded days, config_hash matches config.yaml"
        in item.detail
    )


def test_a_stale_report_is_no_go(tmp_path):
    cfg = init_workspace(tmp_path)
    _write_report(cfg, _backtest("PASS", cfg, age_days=9))
    item = _check(cfg)
    assert not item.ok
    assert "the report is 9.0 days old (at most 7, backtest.max_report_age_days)" in item.detail
    assert item.fix.startswith("re-run python backtest.py --start-date YYYY-MM-DD")
    _write_report(cfg, _backtest("PASS", cfg, age_days=-2))
    item = _check(cfg)
    assert not item.ok and "the report is dated 48 h in the future" in item.detail
    # the age limit is configurable, and changing it does not invalidate the report
    _write_report(cfg, _backtest("PASS", cfg, age_days=9))
    cfg = init_workspace(tmp_path, {"backtest": {"max_report_age_days": 10}})
    assert _check(cfg).ok


def test_a_report_for_other_parameters_or_another_strategy_is_no_go(tmp_path):
    cfg = init_workspace(tmp_path)
    _write_report(cfg, _backtest("PASS", cfg))
    cfg = init_workspace(tmp_path, {"strategy": {"name": "correlation_pairs", "params": {"entry_z": 2.5}}})
    item = _check(cfg)
    assert not item.ok
    assert "the report was made for other settings than config.yaml" in item.detail
    assert "params.entry_z 2 in the report, 2.5 in config.yaml" in item.detail
    cfg = init_workspace(tmp_path, {"strategy": {"name": "mean_reversion"}})
    item = _check(cfg)
    assert (
        not item.ok
        and 'strategy "correlation_pairs" in the report, "mean_reversion" in config.yaml' in item.detail
    )


def test_a_pass_report_without_the_evidence_is_no_go(tmp_path):
    """What backtest.py wrote at 15cb2c7: a verdict and criteria, no hash, coverage or PSR."""
    cfg = init_workspace(tmp_path)
    old = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_date": "2026-01-01",
        "end_date": "2026-01-30",
        "strategy": {"name": "correlation_pairs", "params": {}},
        "metrics": {"total_trades": 3, "sharpe_ratio": 4.93, "verdict": "PASS", "criteria": []},
    }
    _write_report(cfg, old)
    item = _check(cfg)
    assert not item.ok
    for text in (
        "the report has no config_hash",
        "does not state its data coverage",
        "does not state how many days of recorded books",
        "it has 3 closed trades (at least 30",
        "its probabilistic Sharpe ratio is missing",
    ):
        assert text in item.detail, (text, item.detail)


def test_too_few_recorded_days_or_a_weak_pass_is_no_go(tmp_path):
    cfg = init_workspace(tmp_path)
    _write_report(cfg, _backtest("PASS", cfg, recorded_days=3.2, coverage=0.9, psr=0.9))
    item = _check(cfg)
    assert not item.ok
    assert "only 3.2 days of its window are recorded order books" in item.detail
    assert "its data covers 90% of the window (at least 95%" in item.detail
    assert "its probabilistic Sharpe ratio is 0.9 (at least 0.95" in item.detail
    assert "keep python collect_market_data.py running until 7 days are recorded" in item.fix


def test_paper_trading_worse_than_the_backtests_lower_bound_is_no_go(tmp_path):
    from polybot.ops.prelaunch import check_paper_vs_backtest

    cfg = init_workspace(tmp_path)
    _write_report(cfg, _backtest("PASS", cfg))  # lower bound of the mean daily return: −0.05 %/day
    now = int(time.time())
    conn = connect(cfg)
    with db.atomic(conn):
        for k in range(8):  # equity falls 1 % a day
            eq = int(500_000_000 * 0.99**k)
            conn.execute(
                "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
                "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
                "VALUES (?, 'paper', ?, ?, 0, 0, 0, 0, 0)",
                (now - (7 - k) * 86400, eq, eq),
            )
    item = check_paper_vs_backtest(cfg, conn, now)
    assert not item.ok
    assert (
        "paper mean daily return -0.875% over 8 days vs the backtest's lower 95% bound -0.050%/day"
        in item.detail
    )
    assert "do NOT go live" in item.fix
    # the same paper run against a backtest whose lower bound is below it passes
    _write_report(cfg, _backtest("PASS", cfg, confidence_intervals={"mean_daily_return": [-0.02, 0.01]}))
    assert check_paper_vs_backtest(cfg, conn, now).ok
    conn.close()
