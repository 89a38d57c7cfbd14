#!/usr/bin/env python3
"""Health check (cron every 5 minutes): bot process + heartbeat, API connectivity, database,
last trade, critical errors, disk space — one [OK]/[WARN]/[FAIL] line each.
Exit code 0 = all OK, 1 = a warning, 2 = a failure (a FAIL also sends a critical alert).
  python health_check.py
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.health import main

if __name__ == "__main__":
    parser = add_config_arg(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--no-alert", action="store_true", help="print only; send no alert on FAIL")
    run_script(main, parser)
