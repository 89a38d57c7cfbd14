"""Telegram's tables, charts and menu (polybot/notify/tables.py, menu.py) through the real
listener thread and python-telegram-bot against the fake Bot API, on a ledger written by the
real write side (polybot.engine.ledger, engine.state). Every figure is worked out by hand below.

Paper mode, capital $500. D0 = 2026-12-06 00:00 UTC (a Sunday: its ISO week 2026-W49 began on
Monday 11-30); NOW = D0 + 10 h. Y = D0 - 1 day. Trades (cost basis includes fees):

  p1 D0-9d+1h (11-27)  A BUY  100 @ 0.40 fee 0.20   cost A 40.20                 cash -40.20
  p2 D0-8d+1h (11-28)  A SELL  50 @ 0.50 fee 0.10   removes 20.10; +24.90-20.10 = +4.80  cash +24.90
  p3 Y+2h              B BUY  200 @ 0.25 fee 0.05   cost B 50.05                 cash -50.05
  p4 Y+3h              B SELL 100 @ 0.20 fee 0.02   removes 25.025; 19.98-25.025 = -5.045 cash +19.98
  p5 D0+1h             A SELL  20 @ 0.60 fee 0.03   removes 20.10*20/50 = 8.04; 11.97-8.04 = +3.93  cash +11.97
  p6 D0+2h             C BUY   10 @ 0.60            cost C 6.00 (no market row)   cash -6.00

Open at NOW: A 30 sh cost 12.06 (group negrisk:n1), B 100 sh cost 25.025 (event:e1),
C 10 sh cost 6.00 (event:e1|corr:7). Exposure 43.085. Cash 500 - 38.40 - 1.00 = 460.60.
Marks (mid): A 0.55 → 16.50, B 0.22 → 22.00, C none → at cost 6.00: value 44.50, unrealised
+1.415, equity 505.10 (+1.02% on capital).
Performance rows (equity): D0-10d 500, D0-8d+2h 504, Y+80000 498, D0+30min 490, D0+8h20 495.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from polybot import db
from polybot.db import atomic, connect
from polybot.engine import ledger
from polybot.engine.state import clear_halt, persist_halt
from polybot.exchange import live as _live_exchange  # noqa: F401 - imported cold it takes seconds of /balance's budget
from polybot.notify import menu, tables
from polybot.notify.commands import CommandHandler
from polybot.schema import LATEST_VERSION
from tests.alerts.helpers import CHAT_ID, free_port, make_workspace, wait_until
from tests.notify.helpers import offline_workspace

M = 1_000_000
DAY = 86_400
D0 = 1_796_515_200  # 2026-12-06 00:00:00 UTC, a Sunday
Y = D0 - DAY
NOW = D0 + 36_000  # 10:00 UTC
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MARKETS = {
    "A": ("mA", "Will it rain in Paris on Friday?", "Yes", "negrisk:n1"),
    "B": ("mB", "Will BTC close above 100k?", "No", "event:e1"),
}


def _cfg(tmp_path, fake):
    return offline_workspace(tmp_path, fake)


def _trade(conn, tid, token, side, price, size, fee, ts, group=None):
    market = MARKETS.get(token, (f"m{token}",))[0]
    with db.atomic(conn):
        assert ledger.record_trade(
            conn,
            mode="paper",
            trade_id=tid,
            token_id=token,
            market_id=market,
            side=side,
            price_micro=price,
            size_micro=size,
            fee_micro=fee,
            ts=ts,
            group_key=group,
        )


def _build(cfg) -> None:
    conn = connect(cfg.database_path)
    with atomic(conn):
        for token, (mid, question, outcome, _) in MARKETS.items():
            conn.execute(
                "INSERT INTO markets(id, condition_id, question, token_ids, outcomes, first_seen, updated_at) "
                "VALUES (?, ?, ?, ?, ?, 0, 0)",
                (mid, "0x" + mid, question, f'["{token}"]', f'["{outcome}"]'),
            )
            conn.execute(
                "INSERT INTO market_tokens(token_id, market_id, outcome, outcome_index) VALUES (?, ?, ?, 0)",
                (token, mid, outcome),
            )
    _trade(conn, "p1", "A", "BUY", 400_000, 100 * M, 200_000, D0 - 9 * DAY + 3600, "negrisk:n1")
    _trade(conn, "p2", "A", "SELL", 500_000, 50 * M, 100_000, D0 - 8 * DAY + 3600)
    _trade(conn, "p3", "B", "BUY", 250_000, 200 * M, 50_000, Y + 7200, "event:e1")
    _trade(conn, "p4", "B", "SELL", 200_000, 100 * M, 20_000, Y + 10_800)
    _trade(conn, "p5", "A", "SELL", 600_000, 20 * M, 30_000, D0 + 3600)
    _trade(conn, "p6", "C", "BUY", 600_000, 10 * M, 0, D0 + 7200, "event:e1|corr:7")
    with atomic(conn):
        for token, mid in (("A", 0.55), ("B", 0.22)):
            conn.execute(
                "INSERT INTO snapshot_values(timestamp, token_id, market_id, mid) VALUES (?, ?, ?, ?)",
                (NOW - 600, token, MARKETS[token][0], mid),
            )
        for ts, equity in (
            (D0 - 10 * DAY, 500 * M),
            (D0 - 8 * DAY + 7200, 504 * M),
            (Y + 80_000, 498 * M),
            (D0 + 1800, 490 * M),
            (D0 + 30_000, 495 * M),
        ):
            conn.execute(
                "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
                "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
                "VALUES (?, 'paper', ?, 460600000, 43085000, 0, 0, 0, 3)",
                (ts, equity),
            )
    assert persist_halt(
        conn,
        cfg,
        mode="paper",
        breaker="daily_loss",
        reason="daily loss -$104.20 over the limit",
        now=D0 - 3 * DAY,
    ).startswith("database")
    assert clear_halt(conn, cfg, by="operator", now=D0 - 3 * DAY + 3600) == 1
    assert persist_halt(
        conn, cfg, mode="paper", breaker="api_errors", reason="5 API errors in 10 minutes", now=D0 + 9000
    ).startswith("database")
    conn.close()


@pytest.fixture
def listen(start_listener):
    return lambda cfg: start_listener(cfg, clock=lambda: NOW)[1]


def _ask(fake, commands: list[str], *, timeout: float = 30) -> list[str]:
    """Send the commands one after the other; the text answers in order (one each)."""
    before = len(fake.messages(CHAT_ID))
    for c in commands:
        fake.add_message(int(CHAT_ID), c)
    assert wait_until(lambda: len(fake.messages(CHAT_ID)) >= before + len(commands), timeout)
    return fake.messages(CHAT_ID)[before:]


def test_table_commands_answer_with_the_right_figures(tmp_path, fake_tg, listen):
    cfg = _cfg(tmp_path, fake_tg)
    _build(cfg)
    listen(cfg)
    trades, daily, weekly, balance, limits, halts = _ask(
        fake_tg, ["/trades 3", "/daily 3", "/weekly 2", "/balance", "/limits", "/halts"]
    )
    assert trades.splitlines() == [
        "🧾 Latest 3 trades (PAPER), newest first",
        "1. 2026-12-06 02:00 UTC BUY 10.00 sh @ 0.600 = $6.00",
        "   C…",
        "2. 2026-12-06 01:00 UTC SELL 20.00 sh @ 0.600 = $12.00, fee $0.03, P&L +$3.93",
        "   Will it rain in Paris on Friday? — Yes",
        "3. 2026-12-05 03:00 UTC SELL 100.00 sh @ 0.200 = $20.00, fee $0.02, P&L -$5.05",
        "   Will BTC close above 100k? — No",
    ]
    # % of the equity before the day: D0 → 498 (3.93/498 = 0.79%), Y and Y-1 → 504 (-5.045/504)
    assert daily.splitlines()[1:5] == [
        "2026-12-06  +$3.93  (+0.8%)  2 trades, 1 closing",
        "2026-12-05  -$5.05  (-1.0%)  2 trades, 1 closing",
        "2026-12-04  $0.00  (+0.0%)  0 trades, 0 closing",
        "Total: -$1.12, 4 trades, 2 closing",
    ]
    assert daily.startswith("📅 Daily P&L (PAPER), last 3 days (UTC)")
    # W49 (from 11-30): p3..p6, -1.115 on 504; W48 (from 11-23): p1, p2, +4.80 on the capital 500
    assert weekly.splitlines()[1:4] == [
        "2026-W49 (from 11-30)  -$1.12  (-0.2%)  4 trades, 2 closing",
        "2026-W48 (from 11-23)  +$4.80  (+1.0%)  2 trades, 1 closing",
        "Total: +$3.69, 6 trades, 3 closing",
    ]
    assert balance.splitlines()[:6] == [
        "💵 Balance (PAPER), from the ledger",
        "Cash: $460.60 (capital + trade cash flows)",
        "Exposure: $43.09 (cost of 3 open positions)",
        "Value at the latest mid: $44.50 (+$1.42 unrealised; 1 without a price, at cost)",
        "Equity: $505.10 (+1.0% on capital $500.00)",
        "Bot's last record (2026-12-06 08:20 UTC): equity $495.00, cash $460.60",
    ]
    assert "Exchange balance" not in balance  # paper: no exchange to ask
    # daily loss: 495 - 498 = -3.00 now, the day's low 490 - 498 = -8.00 → 8% of $100 used
    assert limits.splitlines()[:9] == [
        "🛡 Risk limits (PAPER), used now — capital $500.00",
        "Position size: largest $25.03 of $100.00 (25%) — Will BTC close above 100k? — No",
        "Total exposure: $43.09 of $400.00 (11%; limit 80% of capital)",
        "Daily loss: today -$3.00, lowest today -$8.00; $8.00 of $100.00 used (8%)",
        "Open positions: 3 of 4",
        "Per-group exposure (limit $200.00 each, 40% of capital):",
        "  event:e1: $31.03 (16%)",
        "  negrisk:n1: $12.06 (6%)",
        "  corr:7: $6.00 (3%)",
    ]
    assert halts.splitlines() == [
        "🛑 Halts (PAPER): latest 2 of 2, newest first",
        "1. 2026-12-06 02:30 UTC api_errors: 5 API errors in 10 minutes",
        "   NOT cleared",
        "2. 2026-12-03 00:00 UTC daily_loss: daily loss -$104.20 over the limit",
        "   cleared 2026-12-03 01:00 UTC by operator",
    ]


def test_version_and_bad_counts(tmp_path, fake_tg, listen):
    cfg = _cfg(tmp_path, fake_tg)
    listen(cfg)
    version, bad, zero = _ask(fake_tg, ["/version", "/trades lots", "/daily 0"])
    lines = version.splitlines()
    assert lines[0] == "🏷 polybot 0.1.0"
    assert lines[1] == f"Database schema: version {LATEST_VERSION}"
    root = Path(__file__).resolve().parents[2]
    git = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    if git.returncode == 0:
        assert lines[2].startswith(f"Git commit: {git.stdout.strip()}")
    else:
        assert lines[2] == "Git commit: unknown (not a git checkout)"
    assert bad == "Usage: /trades [n], n a whole number from 1 to 50 (default 10)."
    assert zero == "Usage: /daily [n], n a whole number from 1 to 90 (default 7)."


def test_empty_ledger_says_so(tmp_path):
    cfg = make_workspace(tmp_path, {})
    h = CommandHandler(cfg, clock=lambda: NOW)
    assert h.handle("/trades", chat_id=CHAT_ID) == "🧾 No trades recorded yet (PAPER)."
    assert h.handle("/halts", chat_id=CHAT_ID) == "✅ No halts recorded (PAPER)."
    limits = h.handle("/limits", chat_id=CHAT_ID)
    assert "Position size: no open position (limit $100.00 each)" in limits
    assert "Daily loss: no equity recorded yet (limit $100.00)" in limits
    assert "Per-group exposure (limit $200.00 each, 40% of capital): no group held" in limits
    assert "Total: $0.00, 0 trades, 0 closing" in h.handle("/weekly", chat_id=CHAT_ID)


def test_report_delivers_a_png_photo(tmp_path, fake_tg, listen):
    cfg = _cfg(tmp_path, fake_tg)
    _build(cfg)
    listen(cfg)
    fake_tg.add_message(int(CHAT_ID), "/report")
    assert wait_until(lambda: len(fake_tg.photos(CHAT_ID)) == 1, 60)
    (photo, caption), *_ = fake_tg.photos(CHAT_ID)
    assert photo.startswith(PNG_MAGIC) and len(photo) > 5000
    call = fake_tg.calls("sendPhoto")[0]
    assert call.content_type == "multipart/form-data"
    texts = fake_tg.messages(CHAT_ID)
    report = caption if caption.startswith("Daily report") else texts[-1]  # a long report goes first
    assert report.startswith("Daily report — 2026-12-06 10:00:00 UTC — PAPER mode")
    assert "Open positions: 3" in report


def test_report_text_still_arrives_when_telegram_refuses_the_chart(tmp_path, fake_tg, listen):
    cfg = _cfg(tmp_path, fake_tg)
    _build(cfg)
    fake_tg.fail_next("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    listen(cfg)
    fake_tg.add_message(int(CHAT_ID), "/report")
    assert wait_until(lambda: any("refused the chart" in t for t in fake_tg.messages(CHAT_ID)), 60)
    assert fake_tg.photos() == []
    texts = fake_tg.messages(CHAT_ID)
    assert any(t.startswith("Daily report — 2026-12-06 10:00:00 UTC") for t in texts)
    assert texts[-1] == "(Telegram refused the chart: Photo_invalid_dimensions)"


def test_a_command_that_fails_still_gets_a_sentence(tmp_path, fake_tg, listen):
    cfg = _cfg(tmp_path, fake_tg)
    conn = connect(cfg.database_path)
    with atomic(conn):  # a damaged row: SQLite keeps text in an INTEGER column
        conn.execute(
            "INSERT INTO halts(timestamp, mode, breaker, reason) VALUES ('garbage', 'paper', 'x', 'y')"
        )
    conn.close()
    listen(cfg)
    (text,) = _ask(fake_tg, ["/halts"])
    assert text == (
        "⚠️ /halts failed (ValueError: invalid literal for int() with base 10: 'garbage'); "
        "the log has the details."
    )


def test_menu_is_set_once_when_the_listener_starts(tmp_path, fake_tg, listen):
    cfg = _cfg(tmp_path, fake_tg)
    listen(cfg)
    assert wait_until(lambda: fake_tg.menu() is not None)
    names = [c for c, _ in fake_tg.menu()]
    assert fake_tg.menu() == list(menu.COMMANDS)
    for cmd in ("trades", "daily", "weekly", "balance", "limits", "halts", "version", "report"):
        assert cmd in names
    for cmd in ("pause", "resume", "close", "confirm_close", "status", "stop", "help"):
        assert cmd in names
    (help_text,) = _ask(fake_tg, ["/help"])
    assert help_text.splitlines()[1:] == [f"/{c} — {d}" for c, d in menu.COMMANDS]
    assert len(fake_tg.calls("setMyCommands")) == 1
    assert menu.menu_problems() == []


def test_busy_and_missing_database_get_a_sentence(tmp_path, fake_tg, listen, monkeypatch):
    monkeypatch.setattr(tables, "BUSY_SECONDS", 1)  # how long a command waits for a lock
    cfg = _cfg(tmp_path, fake_tg)
    _build(cfg)
    listen(cfg)
    assert fake_tg.wait_for("getUpdates")  # the listener has read its offset
    holder = sqlite3.connect(cfg.database_path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE bot_state SET value = value")  # takes the exclusive lock now
    try:
        busy = _ask(fake_tg, ["/daily", "/status", "/report"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for cmd, text in zip(("/daily", "/status", "/report"), busy, strict=True):
        assert text.startswith(f"⚠️ {cmd}: the database is busy (locked by another process for more than 1 s)")
    assert fake_tg.photos() == []

    for suffix in ("", "-wal", "-shm"):
        Path(str(cfg.database_path) + suffix).unlink(missing_ok=True)
    missing = _ask(fake_tg, ["/trades", "/balance", "/positions", "/version"])
    for cmd, text in zip(("/trades", "/balance", "/positions"), missing, strict=False):
        assert text.startswith(
            f"⚠️ {cmd}: the database {cfg.database_path} does not exist; run python initialize_db.py"
        )
    assert missing[3].startswith("🏷 polybot 0.1.0\nDatabase schema: unknown — the database")


def _live_cfg(tmp_path, clob_url: str):
    from tests.exchange.test_live_exchange import PRIVATE_KEY

    return make_workspace(
        tmp_path,
        {
            "paper_trading": False,
            "polymarket": {
                "base_url": clob_url,
                "private_key": "${PK}",
                "signature_type": 0,
                "timeout_seconds": 2,
                "max_retries": 1,
            },
        },
        env={"PK": PRIVATE_KEY},
    )


def test_live_balance_shows_the_exchange_beside_the_ledger(tmp_path, sim):
    cfg = _live_cfg(tmp_path, sim.clob_url)
    conn = connect(cfg.database_path)
    with atomic(conn):
        conn.execute(
            "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
            "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
            "VALUES (?, 'live', 512300000, 512300000, 0, 0, 0, 0, 0)",
            (NOW - 60,),
        )
    conn.close()
    text = CommandHandler(cfg, clock=lambda: NOW).handle("/balance", chat_id=CHAT_ID)
    lines = text.splitlines()
    assert lines[0] == "💵 Balance (LIVE), from the ledger"
    assert lines[1] == "Cash: $512.30 (the bot's last reading, 2026-12-06 09:59 UTC)"
    assert lines[4] == "Equity: $512.30 (+2.5% on capital $500.00)"  # 12.30 / 500
    assert "Exchange balance (read now): $10,000.00 USDC" in lines  # the simulator's starting balance


def test_live_balance_says_why_the_exchange_is_unavailable(tmp_path):
    cfg = _live_cfg(tmp_path, f"http://127.0.0.1:{free_port()}/clob")
    text = CommandHandler(cfg, clock=lambda: NOW).handle("/balance", chat_id=CHAT_ID)
    assert "Cash: $500.00 (configured capital: the bot has recorded no balance yet)" in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("Exchange balance")]
    assert line.startswith("Exchange balance unavailable: Polymarket CLOB unreachable"), line


def test_the_docs_list_every_command():
    root = Path(__file__).resolve().parents[2]
    for doc in ("RUNBOOK.md", "docs/DEPLOYMENT_CHECKLIST.md"):
        text = (root / doc).read_text(encoding="utf-8")
        missing = [c for c, _ in menu.COMMANDS if f"/{c}" not in text]
        assert missing == [], f"{doc} does not list {missing}"


def test_chart_points_keep_every_peak_and_trough():
    import numpy as np

    from polybot.analysis.equity_chart import extremes

    values = np.sin(np.arange(10_000) / 50.0) * 10  # a wave: lows of -10 and highs of +10
    values[7_777] = -99.0  # one deep trough in the middle of a bucket
    idx = extremes(values, buckets=100)
    assert len(idx) <= 201 and list(idx) == sorted(set(idx))
    assert 7_777 in idx and 9_999 in idx and 0 in idx  # the trough, the last point, the first low/high
    assert values[idx].min() == -99.0 and values[idx].max() == values.max()
    assert list(extremes(values[:150], buckets=100)) == list(range(150))  # short: every point


def test_long_tables_fit_one_message(tmp_path):
    cfg = make_workspace(tmp_path, {})
    conn = connect(cfg.database_path)
    with atomic(conn):
        conn.execute(
            "INSERT INTO markets(id, condition_id, question, token_ids, outcomes, first_seen, updated_at) "
            "VALUES ('mL', '0xL', ?, '[\"L\"]', '[\"Yes\"]', 0, 0)",
            ("Will the longest question anyone has ever asked on a prediction market resolve yes? " * 3,),
        )
        conn.execute("INSERT INTO market_tokens VALUES ('L', 'mL', 'Yes', 0)")
        for i in range(50):  # one SELL a day for 50 days, +$1.00 each
            conn.execute(
                "INSERT INTO trades(trade_id, timestamp, mode, token_id, market_id, side, price_micro, "
                "size_micro, notional_micro, fee_micro, realized_pnl_micro) "
                "VALUES (?, ?, 'paper', 'L', 'mL', 'SELL', 500000, 2000000, 1000000, 0, 1000000)",
                (f"s{i}", D0 - i * DAY + 60),
            )
    conn.close()
    h = CommandHandler(cfg, clock=lambda: NOW)
    trades = h.handle("/trades 50", chat_id=CHAT_ID)
    daily = h.handle("/daily 90", chat_id=CHAT_ID)
    for text in (trades, daily):
        assert len(text.encode("utf-16-le")) // 2 <= 4096
    shown = trades.count("\n   Will the longest")
    assert 10 < shown < 50 and trades.endswith(
        f"… {50 - shown} more not shown (too long for one message; ask /trades {shown})"
    )
    days = [ln for ln in daily.splitlines() if ln[:4] == "2026"]
    assert 40 < len(days) < 90 and f"… {90 - len(days)} more not shown" in daily
    assert "Total: +$50.00, 50 trades, 50 closing" in daily  # the total still covers every day
