"""The checklist's alert triggers (pure helpers) and message formatting."""

from __future__ import annotations

from polybot.alerts import (
    KEYS,
    api_auth_failure,
    check_api_latency,
    check_daily_loss,
    check_database,
    check_disk,
    check_drawdown,
    check_no_trades,
    check_position_sizes,
    check_win_rate,
    daily_summary,
    emergency_stop,
    new_markets,
    weekly_report,
)
from polybot.config import AlertsConfig, AlertThresholds, HealthConfig
from polybot.money import to_micro
from polybot.notify.formatting import email_subject, format_alert, truncate

GB = 1024**3


def test_every_helper_uses_a_documented_key_and_level():
    findings = [
        check_daily_loss(to_micro(-150), 100),
        api_auth_failure("401"),
        check_database("bad page"),
        emergency_stop(),
        check_position_sizes([{"token_id": "t", "cost_micro": to_micro(150)}], 100),
        check_win_rate([-1] * 20),
        check_drawdown([100, 80]),
        check_api_latency(5),
        check_no_trades(0, 5 * 3600, True),
        check_disk("/", free_bytes=GB),
        daily_summary("2026-11-24", equity_micro=1, daily_pnl_micro=1, trades=1, open_positions=0),
        weekly_report("2026-W48", pnl_micro=1, equity_micro=1, trades=1),
        new_markets([{"question": "Q?"}]),
    ]
    for f in findings:
        assert f is not None
        assert KEYS[f.key][0] == f.level
        assert f.message and len(f.message) < 600


def test_daily_loss():
    assert check_daily_loss(to_micro(-99.99), 100) is None
    assert check_daily_loss(to_micro(50), 100) is None
    f = check_daily_loss(to_micro(-104.2), 100)
    assert f.level == "critical" and f.key == "daily_loss_limit"
    assert "Daily loss -$104.20 reached the limit of $100.00" in f.message
    assert "--restart" in f.message
    assert check_daily_loss(to_micro(-100), 100) is not None


def test_position_sizes():
    rows = [{"token_id": "a", "cost_micro": to_micro(100)}, {"token_id": "b", "value_micro": to_micro(101)}]
    f = check_position_sizes(rows, 100)
    assert f.key == "position_over_limit" and "1 position(s) above max_position_size $100.00" in f.message
    assert "$101.00" in f.message
    assert check_position_sizes(rows[:1], 100) is None


def test_win_rate_over_the_last_n_trades():
    t = AlertThresholds(win_rate=0.5, win_rate_trades=20)
    assert check_win_rate([1] * 19, t) is None  # not enough trades yet
    assert check_win_rate([1] * 10 + [-1] * 10, t) is None  # exactly 50%
    trades = [1] * 30 + [-1] * 11 + [1] * 9  # last 20: 9 wins
    f = check_win_rate(trades, t)
    assert f.key == "win_rate_low" and "Win rate 45.0% over the last 20 trades (9 won)" in f.message
    rows = [{"realized_pnl_micro": None}] * 5 + [{"realized_pnl_micro": -5}] * 20
    assert check_win_rate(rows, AlertsConfig()) is not None  # accepts cfg.alerts too


def test_drawdown_from_the_running_peak():
    assert check_drawdown([500, 600, 520], AlertThresholds(drawdown=0.15)) is None  # 13.3%
    f = check_drawdown([500, 600, 500])
    assert f.key == "drawdown" and "Drawdown 16.7% from the equity peak (limit 15.0%)" in f.message
    assert check_drawdown([500]) is None


def test_api_latency_no_trades_disk():
    assert check_api_latency(3.0) is None
    assert "answered in 3.2 s (threshold 3 s)" in check_api_latency(3.2, endpoint="CLOB /book").message
    now = 1_800_000_000
    assert check_no_trades(now - 3 * 3600, now, True) is None
    assert check_no_trades(now - 5 * 3600, now, False) is None
    assert "No trades for 5.0 h since the last trade" in check_no_trades(now - 5 * 3600, now, True).message
    assert "since the bot started" in check_no_trades(None, now, True, since=now - 6 * 3600).message
    assert check_no_trades(None, now, True) is None
    assert check_disk("/", free_bytes=3 * GB) is None
    assert "1.50 GB free" in check_disk("/data", free_bytes=int(1.5 * GB)).message
    # the threshold is health.disk_fail_gb (the one set of disk thresholds), not a 5 GB warn level
    assert (
        check_disk("/data", HealthConfig(disk_warn_gb=50, disk_fail_gb=1), free_bytes=int(1.5 * GB)) is None
    )
    assert "(threshold 3 GB)" in check_disk("/", HealthConfig(disk_fail_gb=3), free_bytes=2 * GB).message
    no_disk = HealthConfig(disk_warn_gb=0.0, disk_fail_gb=0.0)
    assert check_disk("/nonexistent/dir/x", no_disk) is None  # reads the real disk


def test_database_and_info_builders():
    assert check_database("ok") is None
    assert "restore" in check_database("*** in database main *** Page 3 is never used").message
    f = new_markets([{"question": f"Q{i}?"} for i in range(13)])
    assert f.message.startswith("13 new market(s) detected:\n• Q0?") and "… and 3 more" in f.message
    assert new_markets([]) is None
    assert (
        "P&L +$3.20"
        in daily_summary(
            "2026-11-24",
            equity_micro=to_micro(503.2),
            daily_pnl_micro=to_micro(3.2),
            trades=4,
            open_positions=1,
        ).message
    )


def test_formatting():
    text = format_alert("critical", "emergency_stop", "Stopped.", 1_795_550_000, mode="live")
    assert text == "🚨 CRITICAL · emergency_stop\nStopped.\n🕒 2026-11-24 19:53:20 UTC · polybot live"
    assert (
        email_subject("warning", "drawdown", "Drawdown 16%\nmore")
        == "[polybot] ⚠️ WARNING drawdown: Drawdown 16%"
    )
    assert truncate("a" * 10) == "a" * 10
    cut = truncate("😀" * 3000)
    assert len(cut.encode("utf-16-le")) // 2 <= 4096 and cut.endswith("(truncated)")
