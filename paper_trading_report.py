#!/usr/bin/env python3
"""Paper trading results: days running, simulated trades and P&L, win rate, errors and
alerts in the period, and a backtest of the same strategy over the same window.
Example: python paper_trading_report.py --days 7
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.engine.paper_report import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=float, default=7, help="period to report (default: 7 days)")
    p.add_argument("--no-backtest", action="store_true", help="skip the backtest comparison")
    run_script(main, add_config_arg(p))
