#!/usr/bin/env python3
"""Run the whole system on the bundled simulator, in demo_workspace/ (never your real data/).

Starts the local Polymarket simulator with an accelerated clock and walks the deployment
checklist: config, database, backfill, collection, data quality, correlation, backtest,
paper trading, emergency-stop drill, health check, reports, backup. Prints each command an
operator would type. Stops every process it started, even on Ctrl-C or failure.
Example: python demo.py
"""

import argparse

from polybot.cli import run_script
from polybot.demo import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--workspace", default="demo_workspace", help="where the demo works (default: demo_workspace)"
    )
    p.add_argument(
        "--speed", type=float, default=600.0, help="simulator clock speed (sim seconds per real second)"
    )
    p.add_argument("--markets", type=int, default=60, help="synthetic markets in the simulator")
    p.add_argument("--paper-seconds", type=float, default=60.0, help="how long to paper-trade (real seconds)")
    run_script(main, p)
