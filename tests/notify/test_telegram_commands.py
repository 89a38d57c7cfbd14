"""Telegram commands through the real listener thread against the fake Bot API."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from polybot.db import atomic, connect, set_state
from polybot.money import to_micro
from polybot.notify.commands import CommandHandler, start_command_listener
from tests.alerts.helpers import (
    CHAT_ID,
    make_workspace,
    telegram_section,  # noqa: F401
    wait_until,
)
from tests.notify.helpers import offline_workspace

STRANGER = 99887766


@pytest.fixture
def listener(start_listener):
    return start_listener


def _cfg(tmp_path, fake):
    return offline_workspace(tmp_path, fake)


def _replies(fake, chat=CHAT_ID):
    return fake.messages(chat)


def test_stop_with_confirmation_creates_emergency_stop(tmp_path, fake_tg, listener):
    cfg = _cfg(tmp_path, fake_tg)
    listener(cfg)
    fake_tg.add_message(int(CHAT_ID), "/stop")
    assert wait_until(lambda: len(_replies(fake_tg)) >= 1)
    assert "Reply /confirm_stop within 60 s to create EMERGENCY_STOP" in _replies(fake_tg)[0]
    assert not cfg.emergency_stop_file.exists()

    fake_tg.add_message(int(CHAT_ID), "/confirm_stop")
    assert wait_until(lambda: len(_replies(fake_tg)) >= 2)
    assert "EMERGENCY_STOP created" in _replies(fake_tg)[1]
    assert cfg.emergency_stop_file.exists()
    assert f"chat {CHAT_ID}" in cfg.emergency_stop_file.read_text()
    conn = connect(cfg.database_path)
    keys = [r[0] for r in conn.execute("SELECT key FROM alerts")]
    conn.close()
    assert keys == ["emergency_stop_requested"]


def test_commands_from_another_chat_are_ignored_and_logged(tmp_path, fake_tg, listener, caplog):
    cfg = _cfg(tmp_path, fake_tg)
    caplog.set_level(logging.WARNING, logger="polybot.telegram.commands")
    listener(cfg)
    fake_tg.add_message(STRANGER, "/stop", first_name="Mallory", username="mallory")
    fake_tg.add_message(STRANGER, "/confirm_stop", first_name="Mallory", username="mallory")
    fake_tg.add_message(int(CHAT_ID), "/help")  # proves the two were processed
    assert wait_until(lambda: len(_replies(fake_tg)) >= 1)
    assert "/status" in _replies(fake_tg)[0]
    assert not cfg.emergency_stop_file.exists()
    assert fake_tg.messages(STRANGER) == []
    assert wait_until(lambda: caplog.text.count("unauthorised chat 99887766") == 2)
    assert "@mallory" in caplog.text


def test_stale_confirmation_and_missing_stop(tmp_path):
    cfg = make_workspace(tmp_path, {})
    clock = [1_800_000_000.0]
    h = CommandHandler(cfg, clock=lambda: clock[0])
    assert "send /stop first" in h.handle("/confirm_stop", chat_id="1")
    h.handle("/stop", chat_id="1", sent_at=clock[0])
    clock[0] += 61
    assert "send /stop first" in h.handle("/confirm_stop", chat_id="1", sent_at=clock[0])
    assert not cfg.emergency_stop_file.exists()
    h.handle("/stop", chat_id="1", sent_at=clock[0])
    assert "Ignored /confirm_stop" in h.handle("/confirm_stop", chat_id="1", sent_at=clock[0] - 600)
    assert not cfg.emergency_stop_file.exists()
    assert "Unknown command /frobnicate" in h.handle("/frobnicate", chat_id="1")
    assert "/positions" in h.handle("/help@polybot_test_bot", chat_id="1")


def _seed(cfg, now):
    conn = connect(cfg.database_path)
    with atomic(conn):
        for k, v in (("heartbeat", str(now - 5)), ("mode", "paper"), ("pid", "4242"), ("halted", "0")):
            set_state(conn, k, v, now=now)
        conn.execute(
            "INSERT INTO markets(id, condition_id, question, token_ids, outcomes, first_seen, updated_at) "
            "VALUES ('m1', '0xc1', 'Will it rain in Paris on Friday?', '[\"t1\",\"t2\"]', "
            '\'["Yes","No"]\', ?, ?)',
            (now, now),
        )
        conn.execute("INSERT INTO market_tokens VALUES ('t1', 'm1', 'Yes', 0)")
        conn.execute(
            "INSERT INTO snapshot_values(timestamp, token_id, market_id, mid) VALUES (?, 't1', 'm1', 0.55)",
            (now - 60,),
        )
        conn.execute(
            "INSERT INTO positions(mode, token_id, market_id, size_micro, cost_micro, opened_at, updated_at) "
            "VALUES ('paper', 't1', 'm1', ?, ?, ?, ?)",
            (to_micro(20), to_micro(10), now - 3600, now),
        )
        for ts, eq, daily in ((now - 8 * 86400, 500, 0), (now - 60, 512.30, 3.20)):
            conn.execute(
                "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
                "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
                "VALUES (?, 'paper', ?, ?, ?, 0, 0, ?, 1)",
                (ts, to_micro(eq), to_micro(eq - 11), to_micro(11), to_micro(daily)),
            )
        conn.execute(
            "INSERT INTO trades(trade_id, timestamp, mode, token_id, market_id, side, price_micro, "
            "size_micro, notional_micro, fee_micro, realized_pnl_micro) "
            "VALUES ('x1', ?, 'paper', 't1', 'm1', 'SELL', 600000, 5000000, 3000000, 10000, 1500000)",
            (now - 120,),
        )
    conn.close()


def test_status_positions_pnl_health_read_the_database(tmp_path, fake_tg, listener):
    cfg = _cfg(tmp_path, fake_tg)
    _seed(cfg, int(time.time()))
    listener(cfg)
    for cmd in ("/status", "/positions", "/pnl", "/health"):
        fake_tg.add_message(int(CHAT_ID), cmd)
    assert wait_until(lambda: len(_replies(fake_tg)) >= 4, 20)
    status, positions, pnl, health = _replies(fake_tg)
    assert status.startswith("📊 Status (PAPER)")
    assert "Bot: running" in status and "pid 4242" in status
    assert "Trading: active (not halted)" in status
    assert "Equity: $512.30 (cash $501.30, exposure $11.00)" in status
    assert "Open positions: 1" in status and "UTC" in status
    assert "Will it rain in Paris on Friday? — Yes" in positions
    assert "20.00 sh · cost $10.00 · mid 0.550 → $11.00 (+$1.00)" in positions
    assert "Today: +$3.20" in pnl and "7 days: +$12.30" in pnl and "Total: +$12.30" in pnl
    assert "today +$1.50" in pnl and "fees paid $0.01" in pnl
    assert health.startswith("🩺 Health: ")
    assert "[OK] Database accessible" in health and "[FAIL] API connectivity: cannot reach" in health


def test_status_shows_halt_and_emergency_stop(tmp_path):
    cfg = make_workspace(tmp_path, {})
    now = int(time.time())
    conn = connect(cfg.database_path)
    with atomic(conn):
        set_state(conn, "halted", "1", now=now)
        set_state(conn, "halt_reason", "daily loss limit", now=now)
    conn.close()
    h = CommandHandler(cfg)
    text = h.handle("/status", chat_id=CHAT_ID)
    assert "HALTED — daily loss limit" in text and "no heartbeat recorded" in text
    cfg.emergency_stop_file.write_text("x")
    assert "EMERGENCY_STOP file present" in h.handle("/status", chat_id=CHAT_ID)
    assert "already exists" in h.handle("/stop", chat_id=CHAT_ID)


def test_listener_stops_promptly_and_does_not_replay(tmp_path, fake_tg):
    cfg = _cfg(tmp_path, fake_tg)
    stop = threading.Event()
    t = start_command_listener(cfg, stop, poll_seconds=30)  # a long poll in flight
    fake_tg.add_message(int(CHAT_ID), "/help")
    assert wait_until(lambda: len(_replies(fake_tg)) == 1)
    assert fake_tg.wait_for("getUpdates", 2)
    stop.set()
    t.join(5)
    assert not t.is_alive()

    stop2 = threading.Event()
    t2 = start_command_listener(cfg, stop2, poll_seconds=1)  # a restart
    assert wait_until(lambda: len(fake_tg.calls("getUpdates")) >= 4)
    stop2.set()
    t2.join(5)
    assert len(_replies(fake_tg)) == 1  # /help was not answered twice
    offsets = {str(c.params.get("offset")) for c in fake_tg.calls("getUpdates")[2:]}
    assert offsets == {"101"}


def test_listener_is_off_when_telegram_disabled(tmp_path, fake_tg):
    cfg = make_workspace(tmp_path, {})
    t = start_command_listener(cfg, threading.Event())
    t.join(5)
    assert not t.is_alive()
    assert fake_tg.requests == []


def test_listener_survives_a_dead_server(tmp_path, fake_tg):
    fake_tg.mode = "down"
    cfg = _cfg(tmp_path, fake_tg)
    stop = threading.Event()
    t = start_command_listener(cfg, stop, poll_seconds=1)
    assert fake_tg.wait_for("getUpdates", 2, timeout=15)  # it keeps retrying
    fake_tg.mode = "ok"
    fake_tg.add_message(int(CHAT_ID), "/help")
    assert wait_until(lambda: len(_replies(fake_tg)) == 1, 30)
    stop.set()
    t.join(5)
    assert not t.is_alive()
