#!/usr/bin/env python3
"""The trading bot: paper or live trading loop with circuit breakers and crash-safe orders.

Paper mode when config says paper_trading: true or with --paper-trading; live only when
config says paper_trading: false, the credentials are set and the config validates for
live. Stop it with: touch EMERGENCY_STOP (cancels orders, closes positions, exits).
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
    p.add_argument("--restart", action="store_true",
                   help="clear a circuit-breaker halt after reconciliation (logs who and when)")
    p.add_argument("--verbose", action="store_true", help="DEBUG output on the console")
    p.add_argument("--once", action="store_true", help="run one loop iteration, then exit")
    p.add_argument("--max-runtime", type=float, metavar="SECONDS", default=None,
                   help="exit cleanly after this many seconds")
    run_script(main, add_config_arg(p))
