#!/usr/bin/env python3
"""Print the Telegram chat id(s) to put in config.yaml (telegram.chat_id).

First send any message to your bot in Telegram, then run this. It reads the bot's
pending updates (getUpdates) with TELEGRAM_BOT_TOKEN and prints each chat's id and name.
Example: python get_telegram_chat_id.py
"""

import argparse

from polybot.alerts.cli import chat_id_main
from polybot.cli import add_config_arg, run_script

if __name__ == "__main__":
    run_script(
        chat_id_main,
        add_config_arg(
            argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ),
    )
