#!/usr/bin/env python3
"""Send a Telegram notification now (the checklist's test):

    python -c "from telegram_notifier import send_notification; send_notification('🚀 Production deployment test - ignore')"

``send_notification(text, level="info")`` loads config.yaml from the current directory
(or $POLYBOT_CONFIG), sends the text with the level emoji and a UTC timestamp to
telegram.chat_id, prints one sentence and returns True if Telegram accepted it.
As a script: python telegram_notifier.py "text" [--level warning]
"""

import argparse

from polybot.notify.telegram import send_notification

__all__ = ["send_notification"]

if __name__ == "__main__":
    from polybot.alerts.cli import notifier_main
    from polybot.cli import add_config_arg, run_script

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("text", help="the message")
    parser.add_argument("--level", choices=("critical", "warning", "info"), default="info")
    run_script(notifier_main, add_config_arg(parser))
