#!/usr/bin/env python3
"""Final go-live verification (the checklist's "Final Go-Live Checklist" as code): config valid for
live, no hardcoded secrets, permissions, database integrity, a recent verified backup, 7+ days of
fresh data with quality PASS, correlation report, 30-day backtest PASS, 7+ days of clean paper
trading, risk limits, risk-limit and circuit-breaker scenarios, alert channels, monitoring, disk
space, no emergency stop. Prints one ✓/✗ line each, then GO or a NO-GO list with the fixes.
  python pre_launch_check.py
  python pre_launch_check.py --send-test    # also send a test critical alert
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.prelaunch import main

if __name__ == "__main__":
    parser = add_config_arg(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument(
        "--send-test",
        action="store_true",
        help="send a test critical alert through the configured channels and check its delivery",
    )
    run_script(main, parser)
