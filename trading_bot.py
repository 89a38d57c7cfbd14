#!/usr/bin/env python3
"""The trading bot: paper or live trading loop with circuit breakers and crash-safe orders.

Paper mode when config says paper_trading: true or with --paper-trading; live only when
config says paper_trading: false, the credentials are set and the config validates for
live. Stop it with: touch EMERGENCY_STOP (cancels orders, closes the bot's positions, exits).
Live: what the account held or traded before the bot's first live order (and fills of
orders placed by hand) is "external": stop loss and the emergency close-out never sell
it, unless this run was started with --close-external.
After any circuit breaker it refuses to start until: python trading_bot.py --restart.
Examples:
  python trading_bot.py --paper-trading
  python trading_bot.py --restart --verbose
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.engine.bot import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paper-trading", action="store_true", help="simulate fills; never send a real order")
    p.add_argument(
        "--restart",
        action="store_true",
        help="clear a circuit-breaker halt after reconciliation (logs who and when)",
    )
    p.add_argument(
        "--close-external",
        action="store_true",
        help="live: the emergency close-out of this run also sells the external holdings (held "
        "before the bot's first live order or bought by hand); by default it sells only "
        "the bot's own positions",
    )
    p.add_argument("--verbose", action="store_true", help="DEBUG output on the console")
    p.add_argument("--once", action="store_true", help="run one loop iteration, then exit")
    p.add_argument(
        "--max-runtime",
        type=float,
        metavar="SECONDS",
        default=None,
        help="exit cleanly after this many seconds",
    )
    run_script(main, add_config_arg(p))
