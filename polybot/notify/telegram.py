"""Telegram through python-telegram-bot v22, called from synchronous code.

PTB is asyncio. Every synchronous entry point here runs its coroutine with
``asyncio.run`` in the calling thread (the alerter's worker thread, a script's main
thread), or in a short-lived helper thread when the caller already runs an event loop.
A hard overall timeout (``asyncio.wait_for``) bounds every call on top of PTB's own
connect/read/write timeouts (``telegram.timeout_seconds``).

``Bot(token, base_url=cfg.telegram.base_url)``: the token is appended to the base URL,
so tests point ``base_url`` at a local fake Bot API (tests/fake_telegram.py).

Errors (PTB's ``BadRequest`` and ``TimedOut`` are subclasses of ``NetworkError``, so the
order of the checks matters): ``RetryAfter`` → transient with ``retry_after``;
``InvalidToken``/``Forbidden``/``BadRequest``/``ChatMigrated`` → permanent (a retry cannot
fix a wrong token or chat id); ``TimedOut``/``NetworkError`` → transient. Every
sentence is passed through :func:`polybot.logs.redact` and the token is removed by
value: PTB's ``InvalidToken`` message and httpx's request URLs contain it.

Public: :class:`TelegramChannel`, :func:`send_report` (a text with a PNG chart, ``sendPhoto``),
:func:`send_notification` (the checklist one-liner),
:func:`get_chats` (behind get_telegram_chat_id.py), :func:`make_bot`, :func:`run_sync`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..config import Config, TelegramConfig
from ..logs import REDACTOR, redact
from . import DeliveryResult
from .formatting import format_alert, truncate

log = logging.getLogger("polybot.notify.telegram")

DISABLED_SENTENCE = "Telegram is disabled in config.yaml (telegram.enabled: false); nothing was sent."


def run_sync(factory: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    """Run the coroutine made by ``factory()`` to completion from synchronous code.

    Raises ``TimeoutError`` after ``timeout`` seconds. Safe to call from a thread that
    already runs an event loop (the work then happens in a helper thread).
    """

    async def main() -> Any:
        return await asyncio.wait_for(factory(), timeout)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(main())
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    t = threading.Thread(target=target, name="telegram-sync", daemon=True)
    t.start()
    t.join(timeout + 5)
    if t.is_alive():
        raise TimeoutError("Telegram call did not finish")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def make_bot(tcfg: TelegramConfig) -> Any:
    """A PTB ``Bot`` for ``tcfg`` (TelegramConfig) with the configured timeouts.

    (``get_updates(timeout=N)`` adds N to the read timeout by itself.)
    """
    from telegram import Bot
    from telegram.request import HTTPXRequest

    t = float(tcfg.timeout_seconds)
    request = HTTPXRequest(
        connect_timeout=t, read_timeout=t, write_timeout=t, pool_timeout=t, connection_pool_size=4
    )
    updates_request = HTTPXRequest(
        connect_timeout=t, read_timeout=t, write_timeout=t, pool_timeout=t, connection_pool_size=2
    )
    token = tcfg.bot_token or ""  # unset: Bot() refuses it with InvalidToken, as it would None
    REDACTOR.add([token])
    return Bot(token, base_url=tcfg.base_url, request=request, get_updates_request=updates_request)


def _clean(text: object, token: str | None) -> str:
    out = str(text)
    if token:
        out = out.replace(token, "****")
    return redact(out)


def classify(exc: BaseException, token: str | None = None) -> DeliveryResult:
    """Turn an exception from PTB/httpx into a DeliveryResult (no secret in ``detail``)."""
    from telegram.error import (
        BadRequest,
        ChatMigrated,
        Conflict,
        Forbidden,
        InvalidToken,
        NetworkError,
        RetryAfter,
        TelegramError,
        TimedOut,
    )

    what = _clean(exc, token)
    if isinstance(exc, RetryAfter):
        raw = getattr(exc, "_retry_after", None)
        if raw is None:
            with warnings.catch_warnings():  # int vs timedelta deprecation in PTB 22
                warnings.simplefilter("ignore")
                raw = exc.retry_after
        wait = raw.total_seconds() if isinstance(raw, dt.timedelta) else float(raw)
        return DeliveryResult(
            "telegram", False, f"Telegram flood control: retry in {wait:g} s", retry_after=wait
        )
    if isinstance(exc, InvalidToken):
        return DeliveryResult(
            "telegram",
            False,
            "Telegram rejected the bot token (Unauthorized); check TELEGRAM_BOT_TOKEN (from @BotFather)",
            permanent=True,
        )
    if isinstance(exc, Forbidden):
        return DeliveryResult(
            "telegram",
            False,
            f"Telegram refused to deliver ({what}); open the chat "
            f"with the bot and press Start, or check telegram.chat_id",
            permanent=True,
        )
    if isinstance(exc, ChatMigrated):
        return DeliveryResult(
            "telegram",
            False,
            f"the group moved to chat id {exc.new_chat_id}; put that in telegram.chat_id",
            permanent=True,
        )
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is a subclass
        return DeliveryResult(
            "telegram",
            False,
            f"Telegram rejected the message ({what}); check telegram.chat_id",
            permanent=True,
        )
    if isinstance(exc, Conflict):
        return DeliveryResult("telegram", False, f"Telegram conflict ({what})")
    if isinstance(exc, (TimedOut, TimeoutError, asyncio.TimeoutError)):
        return DeliveryResult("telegram", False, "Telegram did not answer in time (timed out)")
    if isinstance(exc, NetworkError):
        return DeliveryResult("telegram", False, f"network error talking to Telegram ({what})")
    if isinstance(exc, TelegramError):
        return DeliveryResult("telegram", False, f"Telegram error ({what})")
    return DeliveryResult("telegram", False, f"{type(exc).__name__}: {what}")


def config_problem(tcfg: TelegramConfig, unset_env: Iterable[tuple[str, str]] = ()) -> str | None:
    """Why Telegram cannot be used with this config (one sentence), or None."""
    if not tcfg.enabled:
        return "disabled in config.yaml (telegram.enabled: false)"
    if not tcfg.bot_token:
        var = dict(unset_env).get("telegram.bot_token", "TELEGRAM_BOT_TOKEN")
        return f"telegram.bot_token is not set; export {var} (the token from @BotFather)"
    if not tcfg.chat_id:
        return "telegram.chat_id is empty; run python get_telegram_chat_id.py and put the id in config.yaml"
    return None


class TelegramChannel:
    """Sends one text to the configured chat; ``send`` never raises."""

    name = "telegram"

    def __init__(self, tcfg: TelegramConfig, unset_env: Iterable[tuple[str, str]] = ()):
        self.cfg = tcfg
        self.unset_env = unset_env
        if tcfg.bot_token:
            REDACTOR.add([tcfg.bot_token])

    def problem(self) -> str | None:
        return config_problem(self.cfg, self.unset_env)

    def send(self, text: str, *, chat_id: str | None = None) -> DeliveryResult:
        problem = self.problem()
        if problem:
            return DeliveryResult(self.name, False, problem, permanent=True)
        target = chat_id or self.cfg.chat_id
        text = truncate(text)
        token = self.cfg.bot_token

        async def go() -> Any:
            from telegram import LinkPreviewOptions

            async with make_bot(self.cfg) as bot:  # initialize() calls getMe
                return await bot.send_message(
                    chat_id=target, text=text, link_preview_options=LinkPreviewOptions(is_disabled=True)
                )

        try:
            msg = run_sync(go, timeout=3 * float(self.cfg.timeout_seconds) + 2)
        except BaseException as exc:  # noqa: BLE001 - classified, never propagated
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            result = classify(exc, token)
            log.warning("Telegram delivery failed: %s", result.detail)
            return result
        return DeliveryResult(self.name, True, f"message {getattr(msg, 'message_id', '?')} to chat {target}")

    def send_report(self, text: str, png: bytes | None, *, filename: str = "chart.png") -> DeliveryResult:
        """Send a report with its chart (:func:`send_report`); never raises."""
        problem = self.problem()
        if problem:
            return DeliveryResult(self.name, False, problem, permanent=True)
        target = self.cfg.chat_id

        async def go() -> int:
            async with make_bot(self.cfg) as bot:
                return await send_report(bot, target, text, png, filename=filename)

        try:  # a photo upload takes longer than a text: twice the text's budget
            n = run_sync(go, timeout=6 * float(self.cfg.timeout_seconds) + 4)
        except BaseException as exc:  # noqa: BLE001 - classified, never propagated
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            result = classify(exc, self.cfg.bot_token)
            log.warning("Telegram report delivery failed: %s", result.detail)
            return result
        what = "report and chart" if png is not None else "report (no chart)"
        return DeliveryResult(self.name, True, f"{what} to chat {target} in {n} message(s)")


CAPTION_LIMIT = 1024  # Telegram: a photo caption is at most 1024 characters (after entities parsing)
CHART_CAPTION = "📈 Equity and drawdown"


async def send_report(
    bot: Any, chat_id: Any, text: str, png: bytes | None, *, filename: str = "chart.png"
) -> int:
    """Send ``text`` with the chart ``png`` (``sendPhoto``, multipart upload) through a PTB ``bot``;
    returns the number of messages sent. One photo with ``text`` as its caption when it fits;
    else ``text`` as a message, then the photo; without a chart, ``text`` alone. Raises what
    PTB raises."""
    if png is None:
        await bot.send_message(chat_id=chat_id, text=truncate(text))
        return 1
    from telegram.error import BadRequest

    together = truncate(text, CAPTION_LIMIT) == text
    if not together:
        await bot.send_message(chat_id=chat_id, text=truncate(text))
    try:
        await bot.send_photo(
            chat_id=chat_id, photo=png, caption=text if together else CHART_CAPTION, filename=filename
        )
    except BadRequest as exc:  # Telegram refused the picture itself: the text must still arrive
        log.warning("Telegram refused the chart (%s); sending the text alone", _clean(exc, None))
        note = f"(Telegram refused the chart: {_clean(exc, None)})"
        await bot.send_message(chat_id=chat_id, text=truncate(f"{text}\n{note}" if together else note))
    return 1 if together else 2


# ---------------------------------------------------------------- checklist helpers
def _load(config_path: str | None = None) -> Config:
    from ..config import load_config

    return load_config(config_path, require_mode_secrets=False)


def _ensure_logging(cfg: Config) -> None:
    """Scripts importing this directly get the redacting log handlers too."""
    from .. import logs

    if not logs._CONFIGURED:
        logs.configure_from(cfg, console_level="WARNING")
    else:
        REDACTOR.add(cfg.secret_values())


def send_notification(text: str, level: str = "info", *, config_path: str | None = None) -> bool:
    """Send ``text`` to the configured Telegram chat now; print one sentence; True if delivered.

    Loads config.yaml from the current directory (or $POLYBOT_CONFIG / ``config_path``).
    The message carries the level emoji and a UTC timestamp.
    """
    from ..errors import PolybotError

    try:
        cfg = _load(config_path)
    except PolybotError as exc:
        print(redact(f"✗ Not sent: {exc}"))
        return False
    _ensure_logging(cfg)
    channel = TelegramChannel(cfg.telegram, cfg.unset_env)
    if not cfg.telegram.enabled:
        print(DISABLED_SENTENCE)
        return False
    problem = channel.problem()
    if problem:
        print(f"✗ Not sent: {problem}.")
        return False
    result = channel.send(format_alert(level, None, text, time.time(), mode=cfg.mode))
    if result.ok:
        log.info("Telegram notification sent (%s)", result.detail)
        print(f"✓ Sent to Telegram chat {cfg.telegram.chat_id}.")
        return True
    print(f"✗ Not sent: {result.detail}.")
    return False


def get_chats(tcfg: TelegramConfig) -> tuple[str, list[dict[str, Any]]]:
    """(bot username, chats seen in getUpdates) — each chat: id, type, name.

    Does not confirm the updates (no offset), so the command listener still sees them.
    Raises the PTB exception on failure (callers classify it).
    """

    async def go():
        async with make_bot(tcfg) as bot:
            me = bot.bot
            updates = await bot.get_updates(
                timeout=0, allowed_updates=["message", "channel_post", "my_chat_member"]
            )
            return me.username, updates

    username, updates = run_sync(go, timeout=3 * float(tcfg.timeout_seconds) + 2)
    chats: dict[int, dict] = {}
    for u in updates:
        chat = u.effective_chat
        if chat is None:
            continue
        user = u.effective_user
        if chat.type == "private":
            name = " ".join(p for p in (chat.first_name, chat.last_name) if p) or (
                user.full_name if user else ""
            )
            if chat.username:
                name += f" (@{chat.username})"
        else:
            name = chat.title or ""
        chats[chat.id] = {"id": chat.id, "type": chat.type, "name": name.strip()}
    return username, list(chats.values())
