"""daily_report.py: the daily review (printed, appended to reports/daily_review_log.md in the
checklist's format, sent as the daily_summary info alert), the weekly P&L report, and an empty
database."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

from polybot import db
from tests.conftest import run_cli
from tests.ops.helpers import add_alert, add_trade, connect, init_workspace

M = 1_000_000


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _alerts(cfg, key: str) -> list:
    conn = sqlite3.connect(cfg.database_path)
    try:
        return conn.execute("SELECT level, message FROM alerts WHERE key = ?", (key,)).fetchall()
    finally:
        conn.close()


def test_empty_database_says_so(tmp_path):
    cfg = init_workspace(tmp_path)
    res = run_cli("daily_report.py", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No trading activity recorded yet (paper mode)" in res.stdout
    assert "Win rate: n/a" in res.stdout and "Open positions: 0" in res.stdout
    log = (cfg.report_dir / "daily_review_log.md").read_text()
    assert log.startswith("# Daily Review Log\n\n")
    assert f"## {_today()}\n- P&L: $0.00\n- Open positions: 0\n- Win rate: n/a\n- Issues: " in log
    assert "no backup in the last 26 hours" in log
    assert [lvl for lvl, _ in _alerts(cfg, "daily_summary")] == ["info"]


def _populate(cfg, now: int) -> None:
    conn = connect(cfg)
    perf = [(now - 8 * 86400, 500 * M), (now - 25 * 3600, 505 * M), (now - 3600, 517_500_000)]
    with db.atomic(conn):
        for ts, eq in perf:
            conn.execute(
                "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
                "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
                "VALUES (?, 'paper', ?, ?, 0, 0, 0, 0, 3)",
                (ts, eq, eq),
            )
        for i in range(3):
            tok = f"tok{i}"
            conn.execute(
                "INSERT INTO positions(mode, token_id, market_id, size_micro, cost_micro, opened_at, "
                "updated_at) VALUES ('paper', ?, 'm1', ?, ?, ?, ?)",
                (tok, 20 * M, 10 * M, now - 5000, now),
            )
            conn.execute(
                "INSERT INTO snapshot_values(timestamp, token_id, market_id, mid) VALUES (?, ?, 'm1', 0.55)",
                (now - 60, tok),
            )
        conn.execute(
            "INSERT INTO positions(mode, token_id, market_id, size_micro, cost_micro, opened_at, updated_at, "
            "closed_at, status) VALUES ('paper', 'old', 'm1', 0, 0, 1, 1, 1, 'closed')"
        )
    for i in range(10):  # 7 wins, 3 losses three days ago
        add_trade(conn, ts=now - 3 * 86400 + i, side="SELL", pnl=(2 * M if i < 7 else -M // 10))
    add_trade(
        conn, ts=now - 7200, side="SELL", price=400_000, size=10 * M, pnl=-M, trade_id="big-loss"
    )  # 20%
    add_trade(
        conn, ts=now - 3600, side="SELL", price=950_000, size=10 * M, pnl=-M // 2, trade_id="small"
    )  # 5%
    add_trade(conn, ts=now - 1800, side="BUY", trade_id="entry")
    add_trade(conn, ts=now - 1800, mode="live", side="SELL", pnl=-50 * M, trade_id="other-mode")  # ignored
    conn.close()


def test_daily_report_numbers_and_review_log(tmp_path):
    cfg = init_workspace(tmp_path)
    now = int(time.time())
    _populate(cfg, now)
    assert run_cli("backup_database.py", cwd=tmp_path).returncode == 0
    cfg.report_dir.mkdir(exist_ok=True)
    (cfg.report_dir / "daily_review_log.md").write_text(
        "# Daily Review Log\n\n## 2026-01-01\n- P&L: +$1.00\n"
        "- Open positions: 1\n- Win rate: 50%\n- Issues: None\n"
        "- Action items: None\n"
    )
    res = run_cli("daily_report.py", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    today = "+$12.50" if now % 86400 >= 3600 else "$0.00"  # the 517.50 row is 1 h old
    assert (
        f"P&L: today (UTC) {today}, last 24 h +$12.50, 7 days +$17.50, total +$17.50; equity $517.50" in out
    )
    assert "Realised: last 24 h -$1.50, 7 days +$12.20, total +$12.20; unrealised +$3.00" in out
    assert "Open positions: 3" in out and "Trades (last 24 h): 3" in out
    assert "Win rate: 58% (7 of 12 closing trades)" in out
    assert "Unusual trades (loss > 10%, last 24 h): 1" in out and "[big-loss]" in out and "[small]" not in out
    assert "Last backup: polymarket_backup_" in out and "Data freshness: last snapshot 1 minute ago" in out
    section = (
        f"## {_today()}\n- P&L: +$12.50\n- Open positions: 3\n- Win rate: 58%\n"
        f"- Issues: 1 trade(s) lost more than 10%\n- Action items: review the unusual trades listed in the report\n"
    )
    log = (cfg.report_dir / "daily_review_log.md").read_text()
    assert section in log and "## 2026-01-01\n- P&L: +$1.00" in log

    conn = connect(cfg)
    add_alert(conn, ts=now, level="critical", key="daily_loss_limit", message="limit hit")
    conn.close()
    res = run_cli("daily_report.py", cwd=tmp_path)  # same day: the section is replaced
    assert res.returncode == 0
    log = (cfg.report_dir / "daily_review_log.md").read_text()
    assert log.count(f"## {_today()}") == 1 and log.count("## 2026-01-01") == 1
    assert "- Issues: 1 critical alert(s) today; 1 trade(s) lost more than 10%" in log
    summaries = _alerts(cfg, "daily_summary")
    assert len(summaries) == 2 and "P&L 24h +$12.50" in summaries[-1][1]


def test_weekly_report(tmp_path):
    cfg = init_workspace(tmp_path)
    now = int(time.time())
    _populate(cfg, now)
    res = run_cli("daily_report.py", "--weekly", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Week P&L: +$17.50" in res.stdout
    assert "Closing trades: 12, win rate: 58%, best +$2.00, worst -$1.00" in res.stdout
    assert "Max drawdown this week: 0.0%" in res.stdout
    assert list(cfg.report_dir.glob("weekly_pnl_*.txt"))
    ((level, message),) = _alerts(cfg, "weekly_pnl")
    assert level == "info" and "Week P&L: +$17.50" in message
