#!/usr/bin/env python3
"""Send a Telegram notification now (the checklist's test):

    python -c "from telegram_notifier import send_notification; send_notification('🚀 Production deployment test - ignore')"

``send_notification(text, level="info")`` is :func:`polybot.notify.telegram.send_notification`.
As a script, ``python telegram_notifier.py "text" [--level warning]`` runs ``polybot notify ARGS``.
"""

from polybot.notify.telegram import send_notification

__all__ = ["send_notification"]

if __name__ == "__main__":
    from polybot.commands import run_script

    run_script("telegram_notifier.py")
