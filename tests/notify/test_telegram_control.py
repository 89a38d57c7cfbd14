"""Telegram /pause, /resume, /close + confirmation (button or /confirm_close) through the real
listener thread and the fake Bot API, with a paper engine in process against the simulator on
the same database (issue 18, "Done when")."""

from __future__ import annotations

import logging
import threading

import pytest

from polybot import control_state as cs
from polybot import db
from polybot.notify.commands import CommandHandler
from tests.alerts.helpers import CHAT_ID, telegram_section, wait_until
from tests.engine.controls_helpers import (
    close_engine,
    fills,
    hair_trigger_stops,
    next_step,
    paper_engine,
    workspace,
)
from tests.engine.helpers import connect, load

STRANGER = 99887766


@pytest.fixture
def listener(start_listener):
    return lambda cfg: start_listener(cfg)[1]


def _root(tmp_path, sim, fake, **overrides):
    return workspace(tmp_path, sim, telegram=telegram_section(fake), **overrides)


def _say(fake, text: str, count: int, chat=CHAT_ID) -> str:
    """Send ``text`` from the operator's chat; return the reply number ``count`` (1-based)."""
    fake.add_message(int(chat), text)
    assert wait_until(lambda: len(fake.messages(CHAT_ID)) >= count, 20), fake.messages(CHAT_ID)
    return fake.messages(CHAT_ID)[count - 1]


def _state(root, key):
    conn = connect(root)
    try:
        return db.get_state(conn, key)
    finally:
        conn.close()


def test_pause_blocks_entries_while_a_stop_loss_fires_and_resume_restores_them(
    tmp_path, sim, fake_tg, listener
):
    root = _root(tmp_path, sim, fake_tg, risk_limits={"stop_loss_cooldown_hours": 0})
    listener(load(root))
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        bought = fills(eng, "BUY")
        assert len(bought) == 1

        reply = _say(fake_tg, "/pause news at 14:00", 1)
        assert reply.startswith("⏸ New entries paused. Reason: news at 14:00")
        assert "stop losses, exits, settlement" in reply
        assert _state(root, "paused_by") == "Telegram @alice"

        configured = hair_trigger_stops(eng)
        next_step(eng, sim)
        assert fills(eng, "SELL") == [(bought[0][0], "stop_loss")]  # the stop loss still fired
        assert fills(eng, "BUY") == bought  # the drill's new entry was refused
        status = _say(fake_tg, "/status", 2)
        assert "Entries: ⏸ PAUSED since " in status
        assert "by Telegram @alice: news at 14:00 (1 skipped)" in status

        eng.risk = configured
        reply = _say(fake_tg, "/resume", 3)
        assert reply.startswith("▶️ Entries resumed (entries paused since ")
        assert "1 entry skipped meanwhile" in reply
        next_step(eng, sim)
        assert len(fills(eng, "BUY")) == 2
        assert "PAUSED" not in _say(fake_tg, "/status", 4)
    finally:
        close_engine(eng)


def test_close_1_with_the_button_sells_and_the_reply_reports_the_fill(tmp_path, sim, fake_tg, listener):
    root = _root(tmp_path, sim, fake_tg)
    listener(load(root))
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        token = fills(eng, "BUY")[0][0]
        ask = _say(fake_tg, "/close 1", 1)
        assert ask.startswith("⚠️ Sell at the best available price (PAPER):\n1. ")
        assert "Press Confirm, or reply /confirm_close within 60 s." in ask
        (confirm, confirm_data), (cancel, _) = fake_tg.buttons(CHAT_ID)[0]
        assert confirm == "✅ Confirm close" and cancel == "✖ Cancel"
        assert confirm_data.startswith("confirm_close:")

        fake_tg.add_callback(int(CHAT_ID), confirm_data)
        assert wait_until(lambda: len(fake_tg.messages(CHAT_ID)) >= 2, 20)
        assert fake_tg.messages(CHAT_ID)[1].startswith("⏳ Close #1 requested (#1 ")
        assert [a.get("text") for a in fake_tg.callback_answers()] == ["Close requested"]
        assert fills(eng, "SELL") == []  # the listener never trades: the engine does

        eng.guarded(eng.iteration)  # the engine's next loop picks the request up
        assert fills(eng, "SELL") == [(token, "telegram_close")]
        assert wait_until(lambda: len(fake_tg.messages(CHAT_ID)) >= 3, 20)
        result = fake_tg.messages(CHAT_ID)[2]
        sold = eng.conn.execute(
            "SELECT size_micro, notional_micro FROM trades WHERE side='SELL' AND mode='paper'"
        ).fetchone()
        assert result.startswith("✅ Close #1 (#1 ")
        assert (
            f"sold {sold['size_micro'] / 1e6:,.2f} sh at {sold['notional_micro'] / sold['size_micro']:.3f} avg"
            in result
        )
        assert eng.conn.execute("SELECT COUNT(*) FROM positions WHERE status='open'").fetchone()[0] == 0
        # the same button again: nothing pending any more
        fake_tg.add_callback(int(CHAT_ID), confirm_data)
        assert wait_until(lambda: len(fake_tg.messages(CHAT_ID)) >= 4, 20)
        assert "No /close pending" in fake_tg.messages(CHAT_ID)[3]
    finally:
        close_engine(eng)


def test_close_all_with_confirm_close(tmp_path, sim, fake_tg, listener):
    root = _root(tmp_path, sim, fake_tg)
    listener(load(root))
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        next_step(eng, sim)
        assert len(fills(eng, "BUY")) == 2
        ask = _say(fake_tg, "/close all", 1)
        assert "\n1. " in ask and "\n2. " in ask
        assert _say(fake_tg, "/confirm_close", 2).startswith("⏳ Close #1 requested (all 2 open positions)")
        eng.guarded(eng.iteration)
        assert sorted(s for _, s in fills(eng, "SELL")) == ["telegram_close", "telegram_close"]
        assert wait_until(lambda: len(fake_tg.messages(CHAT_ID)) >= 3, 20)
        result = fake_tg.messages(CHAT_ID)[2]
        assert (
            result.startswith("✅ Close #1 (all 2 open positions), paper mode:") and result.count("• ") == 2
        )
    finally:
        close_engine(eng)


def test_close_from_a_foreign_chat_does_nothing(tmp_path, sim, fake_tg, listener, caplog):
    caplog.set_level(logging.INFO, logger="polybot.telegram.commands")
    root = _root(tmp_path, sim, fake_tg)
    listener(load(root))
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        fake_tg.add_message(STRANGER, "/close 1", first_name="Mallory", username="mallory")
        fake_tg.add_message(STRANGER, "/confirm_close", first_name="Mallory", username="mallory")
        fake_tg.add_message(STRANGER, "/pause", first_name="Mallory", username="mallory")
        # the operator asks, the stranger presses a button with the same data in their own chat
        ask = _say(fake_tg, "/close 1", 1)
        assert ask.startswith("⚠️ Sell")
        data = fake_tg.buttons(CHAT_ID)[0][0][1]
        fake_tg.add_callback(STRANGER, data, first_name="Mallory", username="mallory")
        assert wait_until(lambda: "Ignored Telegram button" in caplog.text, 20)
        assert _say(fake_tg, "/help", 2).startswith("🤖")  # everything before it was processed
        assert fake_tg.messages(STRANGER) == [] and fake_tg.callback_answers() == []
        assert caplog.text.count("unauthorised chat 99887766") == 4  # three messages and the button
        assert "@mallory" in caplog.text
        conn = connect(root)
        try:
            assert cs.pending_close_requests(conn) == [] and cs.read_pause(conn) is None
        finally:
            conn.close()
        eng.guarded(eng.iteration)
        assert fills(eng, "SELL") == []
    finally:
        close_engine(eng)


def test_close_answers_in_one_sentence(tmp_path, sim):
    root = workspace(tmp_path, sim)
    cfg = load(root)
    clock = [1_800_000_000.0]
    h = CommandHandler(cfg, clock=lambda: clock[0])
    assert h.handle("/close", chat_id=CHAT_ID).text.startswith("Usage: /close N")
    assert h.handle("/close 1", chat_id=CHAT_ID).text == "📂 No open positions (PAPER); nothing to close."
    assert "No /close pending" in h.handle("/confirm_close", chat_id=CHAT_ID).text
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        token = fills(eng, "BUY")[0][0]
        market = eng.conn.execute("SELECT market_id FROM positions WHERE token_id=?", (token,)).fetchone()[0]
    finally:
        close_engine(eng)
    assert h.handle("/close 7", chat_id=CHAT_ID).text == "There is no position 7: /positions lists 1 (1–1)."
    assert "No open position with token or market id nope" in h.handle("/close nope", chat_id=CHAT_ID).text
    for target in (token, market):  # a token id or a market id (a long number) is accepted
        by_id = h.handle(f"/close {target}", chat_id=CHAT_ID)
        assert by_id.text.startswith("⚠️ Sell at the best available price (PAPER):\n1. ") and by_id.buttons
    # confirmation too late, and a /close sent while the bot was down
    clock[0] += 61
    assert "No /close pending" in h.handle("/confirm_close", chat_id=CHAT_ID).text
    stale = h.handle("/close 1", chat_id=CHAT_ID, sent_at=clock[0] - 600)
    assert stale.text.startswith("Ignored /close sent at ") and not stale.buttons
    h.handle("/close 1", chat_id=CHAT_ID)
    assert "belongs to an earlier /close" in h.control.confirm(CHAT_ID, "@alice", nonce="00000000").text
    assert h.control.cancel(CHAT_ID, nonce="00000000").text.startswith("Nothing to cancel")
    conn = connect(root)
    try:
        assert cs.pending_close_requests(conn) == []
    finally:
        conn.close()


def test_cancel_button_drops_the_close(tmp_path, sim, fake_tg, listener):
    root = _root(tmp_path, sim, fake_tg)
    listener(load(root))
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        _say(fake_tg, "/close 1", 1)
        cancel_data = fake_tg.buttons(CHAT_ID)[0][1][1]
        assert cancel_data.startswith("cancel_close:")
        fake_tg.add_callback(int(CHAT_ID), cancel_data)
        assert wait_until(lambda: len(fake_tg.messages(CHAT_ID)) >= 2, 20)
        assert fake_tg.messages(CHAT_ID)[1].startswith("✖ Close cancelled (#1 ")
        assert [a.get("text") for a in fake_tg.callback_answers()] == ["Cancelled"]
        assert "No /close pending" in _say(fake_tg, "/confirm_close", 3)
        eng.guarded(eng.iteration)
        assert fills(eng, "SELL") == []
    finally:
        close_engine(eng)


def test_control_commands_without_a_database_answer_in_one_sentence(tmp_path, sim):
    root = workspace(tmp_path, sim)
    cfg = load(root)
    cfg.database_path.unlink()
    h = CommandHandler(cfg)
    for cmd in ("/pause", "/resume", "/close 1"):
        text = h.handle(cmd, chat_id=CHAT_ID).text
        assert (
            text.startswith(f"⚠️ {cmd.split()[0]} could not use the database (")
            and "nothing was changed" in text
        )
        assert "Traceback" not in text


def test_a_close_the_bot_never_picks_up_expires_and_is_reported(tmp_path, sim, fake_tg):
    import asyncio
    import time

    from polybot.notify.control import follow_close
    from polybot.notify.telegram import make_bot

    root = _root(tmp_path, sim, fake_tg)
    cfg = load(root)
    conn = connect(root)
    try:
        rid = cs.add_close_request(conn, target="all", label="all 1", by="@alice", now=int(time.time()))
    finally:
        conn.close()

    async def follow():  # no engine runs: the listener gives up after its wait
        bot = make_bot(cfg.telegram)
        try:
            await follow_close(bot, cfg, int(CHAT_ID), rid, threading.Event(), wait_seconds=1)
        finally:
            await bot.shutdown()

    asyncio.run(follow())
    assert fake_tg.messages(CHAT_ID) == [
        "Close #1 (all 1) expired because the bot did not pick it up in time; nothing was sold. "
        "Send /close again if you still mean it."
    ]
    conn = connect(root)
    try:
        assert cs.pending_close_requests(conn) == []  # it can never fire later
        assert cs.read_close_result(conn, rid).status == cs.EXPIRED
    finally:
        conn.close()
