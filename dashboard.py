#!/usr/bin/env python3
"""The dashboard: P&L, positions, trades, win rate, Sharpe, markets and system health in a browser.

Serves http://127.0.0.1:5000 by default (waitress, read-only database access). Log in with
dashboard.password (export DASHBOARD_PASSWORD), or with the one-time token printed at start when
no password is configured. A non-loopback --host is refused without a password; for access from
other machines put it behind HTTPS (nginx/Caddy): see docs/dashboard.md.
Examples:
  python dashboard.py
  python dashboard.py --port 5000
  python dashboard.py --host 127.0.0.1 --port 8080 --config config.yaml
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.dashboard.server import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=None, help="TCP port (default: dashboard.port, 5000)")
    p.add_argument(
        "--host",
        default=None,
        help="address to bind (default: dashboard.host, 127.0.0.1); others need a password",
    )
    run_script(main, add_config_arg(p))
