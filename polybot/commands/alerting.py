"""Parsers of the alert commands: test-alerts, telegram-chat-id, notify. The descriptions are
what ``--help`` prints (they were the top-level scripts' docstrings)."""

from __future__ import annotations

import argparse

from polybot.cli import add_config_arg

TEST_ALERTS = """Send a clearly marked test alert ("[TEST] …") through every channel configured for a level.

Prints ✓/✗ per channel (log, telegram, email) and exits 0 only if every channel delivered.
Example: python test_alerts.py --level critical
"""

CHAT_ID = """Print the Telegram chat id(s) to put in config.yaml (telegram.chat_id).

First send any message to your bot in Telegram, then run this. It reads the bot's
pending updates (getUpdates) with TELEGRAM_BOT_TOKEN and prints each chat's id and name.
Example: python get_telegram_chat_id.py
"""

NOTIFIER = """Send a Telegram notification now (the checklist's test):

    python -c "from telegram_notifier import send_notification; send_notification('🚀 Production deployment test - ignore')"

``send_notification(text, level="info")`` loads config.yaml from the current directory
(or $POLYBOT_CONFIG), sends the text with the level emoji and a UTC timestamp to
telegram.chat_id, prints one sentence and returns True if Telegram accepted it.
As a script: python telegram_notifier.py "text" [--level warning]
"""


def _raw(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def test_alerts_parser() -> argparse.ArgumentParser:
    p = _raw(TEST_ALERTS)
    p.add_argument(
        "--level",
        choices=("critical", "warning", "info"),
        default="critical",
        help="which routing to test (alerts.<level> in config.yaml); default critical",
    )
    return add_config_arg(p)


def chat_id_parser() -> argparse.ArgumentParser:
    return add_config_arg(_raw(CHAT_ID))


def notifier_parser() -> argparse.ArgumentParser:
    p = _raw(NOTIFIER)
    p.add_argument("text", help="the message")
    p.add_argument("--level", choices=("critical", "warning", "info"), default="info")
    return add_config_arg(p)
