"""The bot's command list: one table for ``/help`` and for Telegram's command menu.

:data:`COMMANDS` is (command, description) in the order the operator sees them. ``/help``
prints it (:func:`help_text`) and the command listener sends it to Telegram with
``setMyCommands`` when it starts (:func:`publish`), so the menu the phone shows next to the
message box and the help text cannot drift apart. Telegram's rules for the menu: a command is
1-32 characters of lower-case letters, digits and underscores, a description 1-256 characters,
at most 100 commands (``BotCommand`` in the Bot API).
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger("polybot.telegram.commands")

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "mode, paused or halted, equity, open positions"),
    ("positions", "open positions with value (numbered for /close)"),
    ("pnl", "P&L today, 7 days, total"),
    ("trades", "latest trades: /trades [n], default 10"),
    ("daily", "realised P&L per UTC day: /daily [n], default 7"),
    ("weekly", "realised P&L per ISO week: /weekly [n], default 4"),
    ("balance", "cash, exposure and equity (live: the exchange's balance too)"),
    ("limits", "each risk limit and how much of it is used now"),
    ("halts", "circuit-breaker halts with reasons: /halts [n], default 10"),
    ("report", "the daily report with the equity and drawdown chart"),
    ("health", "health check summary"),
    ("version", "polybot version, database schema, git commit"),
    ("pause", "stop new entries; stops, exits and settlements go on"),
    ("resume", "allow new entries again after /pause"),
    ("close", "sell a position: /close <n from /positions> or /close all"),
    ("confirm_close", "confirm a /close within 60 s"),
    ("stop", "create EMERGENCY_STOP (asks for /confirm_stop)"),
    ("confirm_stop", "confirm a /stop within 60 s"),
    ("help", "this list"),
)

_NAME = re.compile(r"^[a-z0-9_]{1,32}$")


def help_text() -> str:
    """The ``/help`` answer: one line per command of :data:`COMMANDS`."""
    return "\n".join(["🤖 polybot commands", *(f"/{c} — {d}" for c, d in COMMANDS)])


def menu_problems() -> list[str]:
    """Why Telegram would refuse :data:`COMMANDS` as a menu (empty: it accepts it)."""
    out = [f"/{c}: not 1-32 lower-case letters, digits or _" for c, _ in COMMANDS if not _NAME.match(c)]
    out += [f"/{c}: description must be 1-256 characters" for c, d in COMMANDS if not 1 <= len(d) <= 256]
    names = [c for c, _ in COMMANDS]
    out += [f"/{c} is listed twice" for c in sorted({c for c in names if names.count(c) > 1})]
    if len(COMMANDS) > 100:
        out.append(f"{len(COMMANDS)} commands; Telegram takes at most 100")
    return out


async def publish(bot: Any) -> bool:
    """Send :data:`COMMANDS` as the bot's menu (``setMyCommands``); raises what PTB raises."""
    return bool(await bot.set_my_commands(list(COMMANDS)))


async def publish_logged(bot: Any, timeout: float, token: str | None) -> bool:
    """:func:`publish` within ``timeout`` s; a failure is logged (the commands work without the
    menu), never raised. The listener runs it beside its first poll, so it delays nothing."""
    import asyncio

    from .telegram import classify

    try:
        await asyncio.wait_for(publish(bot), timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        log.warning("Could not set the Telegram command menu: %s", classify(exc, token).detail)
        return False
    log.info("Telegram command menu set (%d commands).", len(COMMANDS))
    return True
