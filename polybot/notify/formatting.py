"""Alert text for phones and mail clients: short, level emoji first, UTC timestamp last.

    🚨 CRITICAL · daily_loss_limit
    Daily loss -$104.20 is over the limit of $100.00; trading is halted.
    What to do: review open positions, then restart with --restart.
    🕒 2026-11-24 18:00:03 UTC · polybot paper

Telegram limits a message to 4096 characters (counted in UTF-16 code units), so
:func:`truncate` cuts longer texts and marks the cut.
"""

from __future__ import annotations

from ..timefmt import utc_text

EMOJI = {"critical": "🚨", "warning": "⚠️", "info": "ℹ️"}
TELEGRAM_LIMIT = 4096
TEST_PREFIX = "[TEST] "


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def truncate(text: str, limit: int = TELEGRAM_LIMIT) -> str:
    """``text`` cut to ``limit`` UTF-16 code units (Telegram's count), ending with '…'."""
    if _utf16_len(text) <= limit:
        return text
    marker = "\n… (truncated)"
    budget = limit - _utf16_len(marker)
    out, used = [], 0
    for ch in text:
        n = 2 if ord(ch) > 0xFFFF else 1
        if used + n > budget:
            break
        out.append(ch)
        used += n
    return "".join(out) + marker


def format_alert(level: str, key: str | None, message: str, ts: float, *, mode: str | None = None) -> str:
    """The text sent to Telegram and used as the email body."""
    level = level.lower()
    head = f"{EMOJI.get(level, 'ℹ️')} {level.upper()}"
    if key:
        head += f" · {key}"
    foot = f"🕒 {utc_text(ts)}" + (f" · polybot {mode}" if mode else " · polybot")
    body = message.strip() or "(no details)"
    return truncate(f"{head}\n{body}\n{foot}")


def email_subject(level: str, key: str | None, message: str) -> str:
    first = (message.strip().splitlines() or [""])[0]
    if len(first) > 90:
        first = first[:89] + "…"
    label = f"{level.upper()}" + (f" {key}" if key else "")
    return f"[polybot] {EMOJI.get(level.lower(), '')} {label}: {first}".replace("  ", " ")
