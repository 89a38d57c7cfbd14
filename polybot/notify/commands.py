"""Telegram commands: the operator's remote surface (freqtrade-style).

``start_command_listener(cfg, stop_event) -> Thread`` starts a daemon thread that long-polls
``getUpdates`` (with ``offset``, kept in ``bot_state`` key ``telegram_offset`` so a restart
does not replay commands) on its own asyncio loop. It shares nothing with the trade loop
but the database (read connections, opened per command), so it cannot stall it; setting
``stop_event`` ends it within a fraction of a second.

Commands (only from ``telegram.chat_id``; any other chat is ignored, not answered, and
logged as a warning): ``/status``, ``/positions``, ``/pnl``, ``/health``, ``/stop`` (asks
for ``/confirm_stop`` within 60 s, then creates ``cfg.emergency_stop_file``), ``/help``; the
tables and charts of :mod:`polybot.notify.tables` (``/trades``, ``/daily``, ``/weekly``,
``/balance``, ``/limits``, ``/halts``, ``/version``, ``/report`` — a photo);
``/pause``, ``/resume``, ``/close`` + ``/confirm_close`` and the inline Confirm/Cancel buttons
(callback queries, locked to the same chat) are in :mod:`polybot.notify.control`. The command
list (``/help`` and Telegram's menu, sent with ``setMyCommands`` when the listener starts) is
:data:`polybot.notify.menu.COMMANDS`. A missing or locked database is answered with a sentence.
A ``/stop`` or ``/confirm_stop`` older than 2 minutes (sent while the bot was down) is
not acted on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Config
from ..logs import redact
from ..timefmt import iso_seconds, utc_hhmm, utc_text
from . import control, menu, reports, tables
from .telegram import config_problem, make_bot

log = logging.getLogger("polybot.telegram.commands")

CONFIRM_WINDOW = 60  # seconds between /stop and /confirm_stop
STALE_SECONDS = 120  # a stop command older than this (by its Telegram date) is ignored
OFFSET_KEY = "telegram_offset"
HANDLER_TIMEOUT = 60  # seconds a command may take (/health checks the API)


class CommandHandler:
    """Turns one command from the authorised chat into a reply (synchronous, testable)."""

    def __init__(self, cfg: Config, *, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self._stop_requested: dict[str, float] = {}  # chat id → when /stop was asked
        self.control = control.ControlCommands(cfg, clock=clock)
        self._db_problem = "the database is not available (run python initialize_db.py)"

    def _read_conn(self) -> sqlite3.Connection | None:
        try:  # waits a few seconds for a lock at most (tables.BUSY_SECONDS), then says why
            return tables.open_read(self.cfg)
        except Exception as exc:  # noqa: BLE001
            log.warning("Telegram command: database unavailable (%s)", redact(str(exc)))
            self._db_problem = redact(str(exc))
            return None

    def handle(
        self, command: str, *, chat_id: str, sent_at: float | None = None, who: str = ""
    ) -> str | control.Reply | tables.PhotoReply:
        now = int(self.clock())
        cmd = command.strip().split()[0].lstrip("/").split("@")[0].lower() if command.strip() else ""
        if cmd in ("help", "start"):
            return reports.HELP
        if cmd == "stop":
            return self._stop(chat_id, now, sent_at)
        if cmd == "confirm_stop":
            return self._confirm_stop(chat_id, now, sent_at, who)
        if cmd in control.COMMANDS:
            return self.control.handle(command, chat_id=chat_id, sent_at=sent_at, who=who)
        if cmd in tables.COMMANDS:
            return tables.answer(self.cfg, command, now)
        if cmd in ("status", "positions", "pnl", "health"):
            conn = self._read_conn()
            try:
                if cmd == "health":
                    return reports.health_text(self.cfg, conn, now)
                if conn is None:
                    return f"⚠️ /{cmd}: {self._db_problem} See /health."
                fn = {
                    "status": reports.status_text,
                    "positions": reports.positions_text,
                    "pnl": reports.pnl_text,
                }[cmd]
                return fn(conn, self.cfg, now)
            except sqlite3.Error as exc:
                log.warning("Telegram /%s failed: %s", cmd, exc)
                return (
                    f"⚠️ /{cmd} could not read the database ({exc}); try again or run python health_check.py."
                )
            finally:
                if conn is not None:
                    conn.close()
        return f"Unknown command /{cmd}. /help lists the commands."

    def _stale(self, now: int, sent_at: float | None) -> bool:
        """True when the message was sent more than STALE_SECONDS ago (``sent_at`` is then known)."""
        return sent_at is not None and now - sent_at > STALE_SECONDS

    def _stop(self, chat_id: str, now: int, sent_at: float | None) -> str:
        path = Path(self.cfg.emergency_stop_file)
        if sent_at is not None and self._stale(now, sent_at):
            return (
                f"Ignored /stop sent at {utc_hhmm(sent_at)} (more than {STALE_SECONDS // 60} min ago). "
                f"Send /stop again if you still mean it."
            )
        if path.exists():
            return f"🛑 EMERGENCY_STOP already exists ({path}); the bot stops at its next loop."
        self._stop_requested[chat_id] = now
        return (
            f"⚠️ Reply /confirm_stop within {CONFIRM_WINDOW} s to create EMERGENCY_STOP. "
            f"The bot then closes its positions and stops trading."
        )

    def _confirm_stop(self, chat_id: str, now: int, sent_at: float | None, who: str) -> str:
        asked = self._stop_requested.pop(chat_id, None)
        if sent_at is not None and self._stale(now, sent_at):
            return (
                f"Ignored /confirm_stop sent at {utc_hhmm(sent_at)} (more than {STALE_SECONDS // 60} min ago). "
                f"Send /stop again if you still mean it."
            )
        if asked is None or now - asked > CONFIRM_WINDOW:
            return f"No /stop pending (it expires after {CONFIRM_WINDOW} s); send /stop first."
        path = Path(self.cfg.emergency_stop_file)
        stamp = iso_seconds(now)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"Created by Telegram /stop from chat {chat_id} {who} at {stamp}\n")
        except FileExistsError:
            pass
        except OSError as exc:
            log.error("Could not create %s from Telegram: %s", path, exc)
            return (
                f"✗ Could not create {path} ({exc.strerror}). Stop the bot on the machine: "
                f"touch EMERGENCY_STOP"
            )
        log.critical("EMERGENCY_STOP created from Telegram (chat %s %s): %s", chat_id, who, path)
        try:
            from ..alerts import Alerter

            alerter = Alerter(self.cfg)
            alerter.info(
                "emergency_stop_requested",
                f"EMERGENCY_STOP was created from Telegram /stop (chat {chat_id} {who}).\n"
                f"To resume: rm EMERGENCY_STOP and python trading_bot.py --restart.",
            )
            alerter.close(timeout=15)
        except Exception:  # noqa: BLE001 - the stop itself has succeeded
            log.exception("Could not record the Telegram stop alert")
        return (
            f"🛑 EMERGENCY_STOP created at {utc_text(now)} ({path}). The bot closes positions and "
            f"stops at its next loop.\nTo resume: rm EMERGENCY_STOP and python trading_bot.py --restart."
        )


class CommandListener:
    """Long-polls getUpdates and answers commands; run it with :func:`start_command_listener`."""

    def __init__(self, cfg: Config, stop_event: threading.Event, *, poll_seconds: float = 20.0):
        self.cfg = cfg
        self.stop_event = stop_event
        self.poll_seconds = poll_seconds
        self.handler = CommandHandler(cfg)
        self.offset: int | None = None
        self._tasks: set[asyncio.Task] = set()  # close results being followed (notify/control.py)

    def spawn(self, coro) -> None:
        """Run ``coro`` beside the polling (cancelled when the listener stops)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # offset persistence (best effort)
    def _load_offset(self) -> int | None:
        from ..db import connect, get_state

        try:  # a locked database must not hold the listener for the scripts' 30 s
            conn = connect(self.cfg.database_path, readonly=True, busy_timeout_ms=tables.BUSY_SECONDS * 1000)
            try:
                value = get_state(conn, OFFSET_KEY)
            finally:
                conn.close()
            return int(value) if value else None
        except Exception:  # noqa: BLE001
            return None

    def _save_offset(self, offset: int) -> None:
        from ..db import atomic, connect, set_state

        try:
            conn = connect(self.cfg.database_path, busy_timeout_ms=tables.BUSY_SECONDS * 1000)
            try:
                with atomic(conn):
                    set_state(conn, OFFSET_KEY, str(offset))
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("Could not save the Telegram offset: %s", exc)

    def run(self) -> None:
        problem = config_problem(self.cfg.telegram, self.cfg.unset_env)
        if problem or not self.cfg.telegram.commands_enabled:
            log.info("Telegram commands are off (%s).", problem or "telegram.commands_enabled: false")
            return
        try:
            asyncio.run(self._main())
        except Exception:  # noqa: BLE001 - never take the process down
            log.exception("Telegram command listener stopped on an unexpected error")

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stop_event.is_set() and time.monotonic() < end:
            await asyncio.sleep(0.1)

    async def _wait_stop(self) -> None:
        while not self.stop_event.is_set():
            await asyncio.sleep(0.1)

    async def _main(self) -> None:
        from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError

        from .telegram import classify

        token = self.cfg.telegram.bot_token
        self.offset = await asyncio.to_thread(self._load_offset)
        bot = make_bot(self.cfg.telegram)
        failures = 0
        log.info("Telegram command listener started (chat %s).", self.cfg.telegram.chat_id)
        # the command menu beside the message box, set beside the first poll (never blocks it)
        menu_task = asyncio.ensure_future(
            menu.publish_logged(bot, 3 * float(self.cfg.telegram.timeout_seconds), token)
        )
        try:
            while not self.stop_event.is_set():
                poll = asyncio.ensure_future(
                    bot.get_updates(
                        offset=self.offset,
                        timeout=int(self.poll_seconds),
                        allowed_updates=["message", "callback_query"],
                    )
                )
                stopper = asyncio.ensure_future(self._wait_stop())
                done, _ = await asyncio.wait({poll, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    poll.cancel()
                    await asyncio.gather(poll, return_exceptions=True)
                    break
                stopper.cancel()
                try:
                    updates = poll.result()
                    failures = 0
                except RetryAfter as exc:
                    await self._sleep(classify(exc, token).retry_after or 30)
                    continue
                except InvalidToken:
                    log.error(
                        "Telegram rejected the bot token; commands are off until it is fixed "
                        "(check TELEGRAM_BOT_TOKEN). Retrying in 5 min."
                    )
                    await self._sleep(300)
                    continue
                except Conflict:
                    log.warning(
                        "Another process is reading this bot's updates (Telegram Conflict); "
                        "run only one trading_bot.py per bot. Retrying in 30 s."
                    )
                    await self._sleep(30)
                    continue
                except (TimeoutError, NetworkError, TelegramError, OSError) as exc:
                    failures += 1
                    wait = min(2**failures, 60)
                    log.warning(
                        "Telegram getUpdates failed (%s); retrying in %d s.",
                        classify(exc, token).detail,
                        wait,
                    )
                    await self._sleep(wait)
                    continue
                for update in updates:
                    self.offset = update.update_id + 1
                    try:
                        await self._handle(bot, update)
                    except Exception:  # noqa: BLE001 - one bad update must not stop the listener
                        log.exception("Telegram command handling failed")
                if updates and self.offset is not None:
                    await asyncio.to_thread(self._save_offset, self.offset)
        finally:
            menu_task.cancel()
            await asyncio.gather(menu_task, return_exceptions=True)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):  # shutting down: a failed close changes nothing
                await bot.shutdown()
            log.info("Telegram command listener stopped.")

    async def _handle(self, bot, update) -> None:
        if update.callback_query is not None:  # an inline button (notify/control.py)
            await control.handle_callback(self, bot, update)
            return
        from .telegram import classify, send_report

        msg = update.effective_message
        chat = update.effective_chat
        if msg is None or chat is None or not msg.text:
            return
        user = update.effective_user
        who = f"@{user.username}" if user and user.username else (user.full_name if user else "")
        text = msg.text.strip()
        if str(chat.id) != str(self.cfg.telegram.chat_id).strip():
            log.warning(
                "Ignored Telegram message from unauthorised chat %s (%s): %r",
                chat.id,
                who or chat.title or chat.type,
                text[:60],
            )
            return
        if not text.startswith("/"):
            return
        sent_at = msg.date.timestamp() if msg.date else None
        log.info("Telegram command %s from chat %s %s", text.split()[0], chat.id, who)
        try:
            reply = await asyncio.wait_for(
                asyncio.to_thread(self.handler.handle, text, chat_id=str(chat.id), sent_at=sent_at, who=who),
                HANDLER_TIMEOUT,
            )
        except TimeoutError:
            reply = f"⚠️ {text.split()[0]} took longer than {HANDLER_TIMEOUT} s; try python health_check.py on the machine."
        except Exception as exc:  # noqa: BLE001 - a sentence, never silence
            log.exception("Telegram %s failed", text.split()[0])
            reply = f"⚠️ {text.split()[0]} failed ({type(exc).__name__}: {redact(str(exc))[:200]}); the log has the details."
        if isinstance(reply, tables.PhotoReply):
            try:
                await send_report(bot, chat.id, reply.text, reply.png, filename=reply.name)
            except Exception as exc:  # noqa: BLE001
                log.warning(
                    "Could not answer %s on Telegram: %s",
                    text.split()[0],
                    classify(exc, self.cfg.telegram.bot_token).detail,
                )
            return
        await control.send_reply(self, bot, chat.id, reply, text.split()[0])


def start_command_listener(
    cfg: Config, stop_event: threading.Event, *, poll_seconds: float = 20.0
) -> threading.Thread:
    """Start the listener thread (daemon) beside the trade loop; set ``stop_event`` to end it.

    When Telegram or its commands are disabled the thread logs why and exits at once.
    """
    listener = CommandListener(cfg, stop_event, poll_seconds=poll_seconds)
    t = threading.Thread(target=listener.run, name="telegram-commands", daemon=True)
    t.listener = listener  # type: ignore[attr-defined]  # for tests and diagnostics
    t.start()
    return t
