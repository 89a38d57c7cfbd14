#!/usr/bin/env python3
"""Trip each of the five circuit breakers and check that the bot STOPS.

Runs trading_bot.py (paper mode) in temporary workspaces against the bundled simulator
— never your database, EMERGENCY_STOP file or Polymarket; no alert is sent. Scenarios:
1. API failure (3 consecutive errors)  2. daily loss limit  3. position size anomaly
4. database corruption  5. manual emergency stop (touch EMERGENCY_STOP).
Prints one ✓/✗ line per breaker; exits 0 only if all five stop the bot.
Example: python test_circuit_breakers.py
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.engine.scenarios_breakers import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", action="store_true", help="keep the temporary workspaces (logs, databases)")
    run_script(main, add_config_arg(p))
