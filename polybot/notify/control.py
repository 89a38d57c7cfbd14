"""Telegram control commands: ``/pause [reason]``, ``/resume``, ``/close <n|token|market|all>`` with
its confirmation (an inline button, or ``/confirm_close`` within 60 s), and the button presses
(callback queries). :class:`polybot.notify.commands.CommandListener` dispatches to this module;
the chat-id lock and the "logged with who asked" rule are the listener's, and apply to buttons too.

- ``/pause`` and ``/resume`` write ``bot_state`` (polybot/control_state.py): the bot reads it at its
  next iteration, and a bot started later still finds it. A ``/resume``, ``/close`` or
  ``/confirm_close`` sent more than 2 minutes before it is read (the bot was down) is ignored; a
  late ``/pause`` is applied (it only makes the bot more careful).
- ``/close`` resolves its target when it is asked (``n`` as ``/positions`` numbers them — up to
  4 digits — or a token id, or a market id: every position in it; ``all``: whatever is open when
  the bot acts)
  and asks for confirmation. The listener never trades: the confirmation writes a close request
  that the engine claims at its next iteration and sells through its exit path
  (polybot/engine/controls.py); a request it has not picked up within 2 minutes never fires.
- The reply to the confirmation says the request was taken; the outcome (fills, average price,
  P&L, or why nothing was sold) follows in a second message: :func:`follow_close` polls the
  request's result in the database with a deadline (CLOSE_TTL + a margin) and, if the engine never
  answered, expires the request itself so that it cannot fire later.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import control_state as cs
from .. import ledger_queries as lq
from ..config import Config
from ..errors import PolybotError
from ..logs import redact
from ..money import MICRO, fmt_usd
from ..timefmt import utc_hhmm
from . import reports
from .formatting import truncate

log = logging.getLogger("polybot.telegram.commands")

COMMANDS = ("pause", "resume", "close", "confirm_close")
CONFIRM_WINDOW = 60  # seconds between /close and its confirmation
STALE_SECONDS = 120  # a control message older than this (by its Telegram date) is ignored
FOLLOW_MARGIN = 15  # seconds the listener waits for the engine's answer beyond CLOSE_TTL
FOLLOW_POLL = 0.5  # seconds between two reads of the close result
CONFIRM = "confirm_close"  # callback data: "confirm_close:<nonce>"
CANCEL = "cancel_close"
MAX_NUMBER_DIGITS = 4  # "/close 12" is a /positions number; token and market ids are longer


@dataclass(frozen=True)
class Reply:
    """A command's answer: text, optional inline buttons (label, callback data), and the id of a
    close request whose outcome the listener reports when the engine has written it."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()
    follow_close: int | None = None


@dataclass(frozen=True)
class PendingClose:
    nonce: str
    asked_at: int
    target: str | list[str]
    label: str


class ControlCommands:
    """Pause, resume, close and confirm (synchronous; run in a worker thread by the listener)."""

    def __init__(self, cfg: Config, *, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self._pending: dict[str, PendingClose] = {}  # chat id → the /close awaiting confirmation
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ dispatch
    def handle(self, command: str, *, chat_id: str, sent_at: float | None = None, who: str = "") -> Reply:
        now = int(self.clock())
        words = command.strip().split()
        cmd = words[0].lstrip("/").split("@")[0].lower() if words else ""
        args = words[1:]
        if cmd != "pause" and sent_at is not None and now - sent_at > STALE_SECONDS:
            return Reply(
                f"Ignored /{cmd} sent at {utc_hhmm(sent_at)} (more than {STALE_SECONDS // 60} min ago). "
                f"Send it again if you still mean it."
            )
        try:
            if cmd == "pause":
                return self._pause(" ".join(args), chat_id, who, now)
            if cmd == "resume":
                return self._resume(chat_id, who, now)
            if cmd == "close":
                return self._close(args, chat_id, now)
            if cmd == "confirm_close":
                return self.confirm(chat_id, who, nonce=None)
        except (sqlite3.Error, PolybotError) as exc:
            log.warning("Telegram /%s failed: %s", cmd, redact(str(exc)))
            return Reply(
                f"⚠️ /{cmd} could not use the database ({exc}); nothing was changed. Try again, or on the "
                f"machine: python trading_bot.py --pause / --resume."
            )
        return Reply(f"Unknown command /{cmd}. /help lists the commands.")

    # ------------------------------------------------------------------ pause / resume
    def _write(self) -> sqlite3.Connection:
        from ..db import connect

        return connect(self.cfg.database_path)

    def _pause(self, reason: str, chat_id: str, who: str, now: int) -> Reply:
        conn = self._write()
        try:
            before = cs.set_pause(
                conn, reason=reason, by=f"Telegram {who or 'chat ' + chat_id}".strip(), now=now
            )
        finally:
            conn.close()
        log.warning(
            "Entries paused from Telegram (chat %s %s): %s", chat_id, who, reason or "no reason given"
        )
        head = "⏸ Entries were already paused; reason updated." if before else "⏸ New entries paused."
        return Reply(
            f"{head}{' Reason: ' + reason if reason else ''}\nThe bot keeps managing what it holds (stop "
            f"losses, exits, settlement) but opens nothing new until /resume."
        )

    def _resume(self, chat_id: str, who: str, now: int) -> Reply:
        conn = self._write()
        try:
            lifted = cs.clear_pause(conn, now=now)
        finally:
            conn.close()
        if lifted is None:
            return Reply("▶️ Entries were not paused; nothing changed.")
        log.warning("Entries resumed from Telegram (chat %s %s; %s)", chat_id, who, cs.pause_sentence(lifted))
        return Reply(
            f"▶️ Entries resumed ({cs.pause_sentence(lifted)}; {lifted.skipped} entr"
            f"{'y' if lifted.skipped == 1 else 'ies'} skipped meanwhile). The bot opens positions again "
            f"at its next decision."
        )

    # ------------------------------------------------------------------ close
    def _close(self, args: list[str], chat_id: str, now: int) -> Reply:
        usage = (
            "Usage: /close N (the number /positions shows), /close TOKEN_ID, /close MARKET_ID or /close all."
        )
        if len(args) != 1:
            return Reply(usage)
        arg = args[0].strip()
        from ..db import connect

        conn = connect(self.cfg.database_path, readonly=True)
        try:
            mode = reports.mode_of(conn, self.cfg)
            rows = lq.open_positions_named(conn, mode)
        finally:
            conn.close()
        if not rows:
            return Reply(f"📂 No open positions ({mode.upper()}); nothing to close.")
        picked: list[tuple[int, lq.NamedPosition]]
        if arg.lower() == "all":
            target: str | list[str] = "all"
            picked = list(enumerate(rows, 1))
            label = f"all {len(rows)} open position{'s' if len(rows) != 1 else ''}"
        else:
            if arg.isdigit() and len(arg) <= MAX_NUMBER_DIGITS:  # longer numbers are token/market ids
                n = int(arg)
                if not 1 <= n <= len(rows):
                    return Reply(f"There is no position {n}: /positions lists {len(rows)} (1–{len(rows)}).")
                picked = [(n, rows[n - 1])]
            else:
                picked = [
                    (i, r)
                    for i, r in enumerate(rows, 1)
                    if arg in (r.position.token_id, r.position.market_id)
                ]
                if not picked:
                    return Reply(
                        f"No open position with token or market id {arg[:80]}; /positions lists them."
                    )
            target = [r.position.token_id for _, r in picked]
            label = ", ".join(f"#{i} {_name(r)}" for i, r in picked)
        nonce = secrets.token_hex(4)
        with self._lock:
            self._pending[chat_id] = PendingClose(nonce, now, target, label[:300])
        lines = [f"⚠️ Sell at the best available price ({mode.upper()}):"]
        for i, r in picked[:20]:
            p = r.position
            lines.append(f"{i}. {_name(r)} — {p.size_micro / MICRO:,.2f} sh, cost {fmt_usd(p.cost_micro)}")
        if len(picked) > 20:
            lines.append(f"… and {len(picked) - 20} more")
        lines.append(f"Press Confirm, or reply /confirm_close within {CONFIRM_WINDOW} s.")
        return Reply(
            "\n".join(lines),
            buttons=(("✅ Confirm close", f"{CONFIRM}:{nonce}"), ("✖ Cancel", f"{CANCEL}:{nonce}")),
        )

    def confirm(self, chat_id: str, who: str, *, nonce: str | None) -> Reply:
        """``/confirm_close`` (``nonce`` None) or the Confirm button (its nonce must match the
        latest /close of this chat: an older button confirms nothing)."""
        now = int(self.clock())
        with self._lock:
            pending = self._pending.get(chat_id)
            if pending is not None and nonce is not None and nonce != pending.nonce:
                return Reply(
                    "That button belongs to an earlier /close; use the latest one, or send /close again."
                )
            self._pending.pop(chat_id, None)
        if pending is None or now - pending.asked_at > CONFIRM_WINDOW:
            return Reply(f"No /close pending (it expires after {CONFIRM_WINDOW} s); send /close first.")
        conn = self._write()
        try:
            rid = cs.add_close_request(
                conn,
                target=pending.target,
                label=pending.label,
                by=f"Telegram {who or 'chat ' + chat_id}".strip(),
                now=now,
            )
        finally:
            conn.close()
        log.warning("Close #%d requested from Telegram (chat %s %s): %s", rid, chat_id, who, pending.label)
        return Reply(
            f"⏳ Close #{rid} requested ({pending.label}). The bot sells at its next loop (every "
            f"{self.cfg.trading.loop_interval_seconds:g} s) and reports the fill here; if it has not "
            f"within {cs.CLOSE_TTL // 60} min, the request expires and nothing is sold.",
            follow_close=rid,
        )

    def cancel(self, chat_id: str, *, nonce: str) -> Reply:
        with self._lock:
            pending = self._pending.get(chat_id)
            if pending is None or pending.nonce != nonce:
                return Reply("Nothing to cancel: that /close is no longer pending.")
            self._pending.pop(chat_id, None)
        return Reply(f"✖ Close cancelled ({pending.label}); nothing was sold.")


def _name(r: lq.NamedPosition) -> str:
    p = r.position
    name = (r.question or p.token_id[:16] + "…")[:60]
    return name + (f" — {r.outcome}" if r.outcome else "")


# ----------------------------------------------------------------------------- listener glue
def reply_parts(reply: str | Reply) -> tuple[str, Any, int | None]:
    """(text, PTB reply_markup or None, close request id to follow or None)."""
    if isinstance(reply, str):
        return reply, None, None
    markup = None
    if reply.buttons:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton(label, callback_data=data) for label, data in reply.buttons]]
        )
    return reply.text, markup, reply.follow_close


async def handle_callback(listener: Any, bot: Any, update: Any) -> None:
    """A button press: only from the configured chat (others are logged and ignored, not
    answered); answered with ``answerCallbackQuery`` (so the client stops its spinner) and the
    reply as a message."""
    query = update.callback_query
    message = query.message
    chat_id = message.chat.id if message is not None and message.chat is not None else None
    user = query.from_user
    who = f"@{user.username}" if user and user.username else (user.full_name if user else "")
    data = str(query.data or "")
    if chat_id is None or str(chat_id) != str(listener.cfg.telegram.chat_id).strip():
        log.warning("Ignored Telegram button %r from unauthorised chat %s (%s)", data[:40], chat_id, who)
        return
    log.info("Telegram button %s from chat %s %s", data.split(":")[0], chat_id, who)
    action, _, nonce = data.partition(":")
    handler: ControlCommands = listener.handler.control
    if action == CONFIRM:
        reply = await asyncio.to_thread(handler.confirm, str(chat_id), who, nonce=nonce)
        toast = "Close requested" if reply.follow_close else "Not confirmed"
    elif action == CANCEL:
        reply = await asyncio.to_thread(handler.cancel, str(chat_id), nonce=nonce)
        toast = "Cancelled"
    else:
        reply, toast = Reply("That button is not one this bot knows."), "Unknown button"
    try:
        await bot.answer_callback_query(query.id, text=toast)
    except Exception as exc:  # noqa: BLE001 — the reply message below still goes out
        log.warning("Could not answer a Telegram button press: %s", redact(str(exc)))
    await send_reply(listener, bot, chat_id, reply, data.split(":")[0])


async def send_reply(listener: Any, bot: Any, chat_id: Any, reply: str | Reply, what: str) -> None:
    """Send ``reply``; start following a close request if it names one."""
    from .telegram import classify

    text, markup, follow = reply_parts(reply)
    try:
        await bot.send_message(chat_id=chat_id, text=truncate(text), reply_markup=markup)
    except Exception as exc:  # noqa: BLE001
        log.warning(
            "Could not answer %s on Telegram: %s", what, classify(exc, listener.cfg.telegram.bot_token).detail
        )
    if follow is not None:
        listener.spawn(follow_close(bot, listener.cfg, chat_id, follow, listener.stop_event))


def _result(cfg: Config, rid: int) -> cs.CloseResult | None:
    from ..db import connect

    try:
        conn = connect(cfg.database_path, readonly=True)
    except Exception:  # noqa: BLE001 — read again at the next poll
        return None
    try:
        return cs.read_close_result(conn, rid)
    finally:
        conn.close()


def _expire(cfg: Config, rid: int, now: int) -> cs.CloseResult | None:
    """The engine never answered: expire the request so that it cannot fire later."""
    from ..db import connect

    conn = connect(cfg.database_path)
    try:
        for req in cs.pending_close_requests(conn):
            if req.id == rid:
                cs.expire_close_request(conn, req, now=now, why="because the bot did not pick it up in time")
        return cs.read_close_result(conn, rid)
    finally:
        conn.close()


async def follow_close(
    bot: Any, cfg: Config, chat_id: Any, rid: int, stop: threading.Event, *, wait_seconds: float | None = None
) -> None:
    """Wait for the engine's result of close request ``rid`` and send it (one message); after
    ``wait_seconds`` (default CLOSE_TTL + FOLLOW_MARGIN) expire the request and say so."""
    deadline = time.monotonic() + (cs.CLOSE_TTL + FOLLOW_MARGIN if wait_seconds is None else wait_seconds)
    result = None
    while not stop.is_set():
        result = await asyncio.to_thread(_result, cfg, rid)
        if result is not None:
            break
        if time.monotonic() > deadline:
            try:
                result = await asyncio.to_thread(_expire, cfg, rid, int(time.time()))
            except Exception as exc:  # noqa: BLE001
                log.error("Could not expire close request #%d: %s", rid, redact(str(exc)))
            if result is None:
                result = cs.CloseResult(
                    rid, cs.EXPIRED, f"Close #{rid}: no answer from the bot; check /status.", 0
                )
            break
        await asyncio.sleep(FOLLOW_POLL)
    if result is None:
        return
    try:
        await bot.send_message(chat_id=chat_id, text=truncate(result.text))
    except Exception as exc:  # noqa: BLE001
        log.warning("Could not send the result of close #%d: %s", rid, redact(str(exc)))
