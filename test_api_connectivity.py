#!/usr/bin/env python3
"""Operator checklist §4 — API connectivity test.

    python test_api_connectivity.py [--config PATH]
    python test_api_connectivity.py --live-order-check [--yes] [--config PATH]

Without options: checks authentication (skipped in paper mode without credentials), market
data, the account balance (paper: the configured capital) and rate limits, printing
✓ / ⚠ / ✗ lines; exits 0 only when every check passed.

``--live-order-check``: the zero-risk proof that live signing works before real trading. It
signs a post-only BUY of the minimum size at the lowest tick in a liquid market (it cannot
fill), confirms the exchange lists it as open, cancels it and confirms it is gone. It needs
the live credentials whatever paper_trading says, asks before placing the order unless
``--yes``, records the result in the database for pre_launch_check.py, and exits non-zero on
any ✗.
"""

import argparse
import sys

from polybot.cli import add_config_arg, run_script


def main(args: argparse.Namespace) -> int:
    if args.yes and not args.live_order_check:
        parser.error("--yes only applies to --live-order-check")
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


parser = argparse.ArgumentParser(description="Test the connection to the Polymarket APIs.")
add_config_arg(parser)
parser.add_argument(
    "--live-order-check",
    action="store_true",
    help="place a post-only BUY at the lowest tick that cannot fill, confirm it is "
    "listed, cancel it and confirm it is gone (needs live credentials; "
    "recorded for pre_launch_check.py)",
)
parser.add_argument(
    "--yes", action="store_true", help="with --live-order-check: do not ask before placing the order"
)

if __name__ == "__main__":
    run_script(main, parser)
