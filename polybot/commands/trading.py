"""Parsers of the trading commands: trade, paper-report, dashboard, test-api (and its ``main``),
test-risk-limits, test-breakers, demo. The descriptions are what ``--help`` prints (they were the
top-level scripts' docstrings)."""

from __future__ import annotations

import argparse
import sys

from polybot.cli import add_config_arg

TRADE = """The trading bot: paper or live trading loop with circuit breakers and crash-safe orders.

Paper mode when config says paper_trading: true or with --paper-trading; live only when
config says paper_trading: false, the credentials are set and the config validates for
live. Stop it with: touch EMERGENCY_STOP (cancels orders, closes the bot's positions, exits).
Live: what the account held or traded before the bot's first live order (and fills of
orders placed by hand) is "external": stop loss and the emergency close-out never sell
it, unless this run was started with --close-external.
After any circuit breaker it refuses to start until: python trading_bot.py --restart.
--pause stops new entries (stored in the database: it survives a restart) while the bot keeps
managing what it holds (stop losses, exits, settlement); --resume lifts it. Both work whether the
bot runs or not (Telegram: /pause, /resume).
Examples:
  python trading_bot.py --paper-trading
  python trading_bot.py --restart --verbose
  python trading_bot.py --pause --reason "election night"
  python trading_bot.py --resume
"""

PAPER_REPORT = """Paper trading results: days running, simulated trades and P&L, win rate, errors and
alerts in the period, and a backtest of the same strategy over the same window.
Example: python paper_trading_report.py --days 7
"""

DASHBOARD = """The dashboard: P&L, positions, trades, win rate, Sharpe, markets and system health in a browser.

Serves http://127.0.0.1:5000 by default (waitress, read-only database access). Log in with
dashboard.password (export DASHBOARD_PASSWORD), or with the one-time token printed at start when
no password is configured. A non-loopback --host is refused without a password; for access from
other machines put it behind HTTPS (nginx/Caddy): see docs/dashboard.md.
Examples:
  python dashboard.py
  python dashboard.py --port 5000
  python dashboard.py --host 127.0.0.1 --port 8080 --config config.yaml
"""

RISK_LIMITS = """Simulate risky scenarios and check that every risk limit is enforced.

Runs the real engine and risk manager in a temporary workspace against the bundled
simulator (never your database, never Polymarket, no alerts sent), with the risk limits
from config.yaml. Prints one ✓/✗ line per limit; exits 0 only if all are enforced.
Example: python test_risk_limits.py
"""

BREAKERS = """Trip each of the five circuit breakers and check that the bot STOPS.

Runs trading_bot.py (paper mode) in temporary workspaces against the bundled simulator
— never your database, EMERGENCY_STOP file or Polymarket; no alert is sent. Scenarios:
1. API failure (3 consecutive errors)  2. daily loss limit  3. position size anomaly
4. database corruption  5. manual emergency stop (touch EMERGENCY_STOP).
Prints one ✓/✗ line per breaker; exits 0 only if all five stop the bot.
Example: python test_circuit_breakers.py
"""

DEMO = """Run the whole system on the bundled simulator, in demo_workspace/ (never your real data/).

Starts the local Polymarket simulator with an accelerated clock and walks the deployment
checklist: config, database, backfill, collection, data quality, correlation, backtest,
paper trading, emergency-stop drill, health check, reports, backup. Prints each command an
operator would type. Stops every process it started, even on Ctrl-C or failure.
Example: python demo.py
"""


def _raw(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def trade_parser() -> argparse.ArgumentParser:
    p = _raw(TRADE)
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
    control = p.add_mutually_exclusive_group()
    control.add_argument(
        "--pause",
        action="store_true",
        help="pause new entries (stored; the bot keeps managing its positions), print one line, exit",
    )
    control.add_argument(
        "--resume", action="store_true", help="lift a pause (new entries again), print one line, exit"
    )
    p.add_argument("--reason", metavar="TEXT", default=None, help="with --pause: why (shown by /status)")
    p.add_argument("--verbose", action="store_true", help="DEBUG output on the console")
    p.add_argument("--once", action="store_true", help="run one loop iteration, then exit")
    p.add_argument(
        "--max-runtime",
        type=float,
        metavar="SECONDS",
        default=None,
        help="exit cleanly after this many seconds",
    )
    return add_config_arg(p)


def paper_report_parser() -> argparse.ArgumentParser:
    p = _raw(PAPER_REPORT)
    p.add_argument("--days", type=float, default=7, help="period to report (default: 7 days)")
    p.add_argument("--no-backtest", action="store_true", help="skip the backtest comparison")
    return add_config_arg(p)


def dashboard_parser() -> argparse.ArgumentParser:
    p = _raw(DASHBOARD)
    p.add_argument("--port", type=int, default=None, help="TCP port (default: dashboard.port, 5000)")
    p.add_argument(
        "--host",
        default=None,
        help="address to bind (default: dashboard.host, 127.0.0.1); others need a password",
    )
    return add_config_arg(p)


def risk_limits_parser() -> argparse.ArgumentParser:
    p = _raw(RISK_LIMITS)
    p.add_argument("--keep", action="store_true", help="keep the temporary workspaces (logs, databases)")
    return add_config_arg(p)


def breakers_parser() -> argparse.ArgumentParser:
    p = _raw(BREAKERS)
    p.add_argument("--keep", action="store_true", help="keep the temporary workspaces (logs, databases)")
    return add_config_arg(p)


def demo_parser() -> argparse.ArgumentParser:
    p = _raw(DEMO)
    p.add_argument(
        "--workspace", default="demo_workspace", help="where the demo works (default: demo_workspace)"
    )
    p.add_argument(
        "--speed", type=float, default=600.0, help="simulator clock speed (sim seconds per real second)"
    )
    p.add_argument("--markets", type=int, default=60, help="synthetic markets in the simulator")
    p.add_argument("--paper-seconds", type=float, default=60.0, help="how long to paper-trade (real seconds)")
    return p


# --------------------------------------------------------------------------- test-api
API_CONNECTIVITY = "Test the connection to the Polymarket APIs."


class _ApiConnectivityParser(argparse.ArgumentParser):
    """Refuses ``--yes`` without ``--live-order-check`` as a usage error (exit 2)."""

    def parse_known_args(self, args=None, namespace=None):
        ns, rest = super().parse_known_args(args, namespace)
        if ns.yes and not ns.live_order_check:
            self.error("--yes only applies to --live-order-check")
        return ns, rest


def api_connectivity_parser() -> argparse.ArgumentParser:
    """Operator checklist §4. Without options: authentication (skipped in paper mode without
    credentials), market data, the account balance (paper: the configured capital) and rate
    limits. ``--live-order-check``: the zero-risk proof that live signing works (a post-only BUY
    at the lowest tick that cannot fill, listed, cancelled, confirmed gone; recorded for
    pre_launch_check.py)."""
    p = _ApiConnectivityParser(description=API_CONNECTIVITY)
    add_config_arg(p)
    p.add_argument(
        "--live-order-check",
        action="store_true",
        help="place a post-only BUY at the lowest tick that cannot fill, confirm it is "
        "listed, cancel it and confirm it is gone (needs live credentials; "
        "recorded for pre_launch_check.py)",
    )
    p.add_argument(
        "--yes", action="store_true", help="with --live-order-check: do not ask before placing the order"
    )
    return p


def api_connectivity_main(args: argparse.Namespace) -> int:
    from polybot.config import load_config
    from polybot.logs import configure_from

    if args.live_order_check:
        from polybot.errors import ConfigError

        try:
            cfg = load_config(args.config, require_mode_secrets=False)
        except ConfigError as exc:  # every failure of the check is one ✗ line, exit 1
            print(f"✗ Config: {str(exc).rstrip('.')}.")
            return 1
    else:
        cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg)
    if args.live_order_check:
        from polybot.exchange.live_order_check import run_live_order_check

        return run_live_order_check(cfg, assume_yes=args.yes, stdin=sys.stdin)
    from polybot.exchange.connectivity import run_checks

    return run_checks(cfg)
