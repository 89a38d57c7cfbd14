#!/usr/bin/env python3
"""Simulate risky scenarios and check that every risk limit is enforced.

Runs the real engine and risk manager in a temporary workspace against the bundled
simulator (never your database, never Polymarket, no alerts sent), with the risk limits
from config.yaml. Prints one ✓/✗ line per limit; exits 0 only if all are enforced.
Example: python test_risk_limits.py
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.engine.scenarios_risk import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", action="store_true", help="keep the temporary workspaces (logs, databases)")
    run_script(main, add_config_arg(p))
