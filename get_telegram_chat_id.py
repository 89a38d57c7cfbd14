#!/usr/bin/env python3
"""Print the Telegram chat id(s) for config.yaml: ``python get_telegram_chat_id.py ARGS`` runs ``polybot telegram-chat-id ARGS``.

The parser, its help text and the code live in the package (``polybot telegram-chat-id --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("get_telegram_chat_id.py")
