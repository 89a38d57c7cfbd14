#!/usr/bin/env python3
"""Daily performance report: P&L (24 h / 7 days / total, realised and unrealised), open positions,
trades, win rate, unusual trades (loss > 10%), alerts and errors of the day, last backup, data
freshness. Printed, appended to reports/daily_review_log.md and sent as the daily summary alert.
  python daily_report.py
  python daily_report.py --weekly     # the weekly P&L report
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.reports import main

if __name__ == "__main__":
    parser = add_config_arg(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument(
        "--weekly", action="store_true", help="the weekly P&L report instead of the daily one"
    )
    run_script(main, parser)
