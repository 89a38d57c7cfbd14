#!/usr/bin/env python3
"""Operator checklist §4 — API connectivity test.

    python test_api_connectivity.py [--config PATH]

Checks authentication (skipped in paper mode without credentials), market data,
the account balance (paper: the configured capital) and rate limits, printing
✓ / ⚠ / ✗ lines; exits 0 only when every check passed.
"""
import argparse

from polybot.cli import add_config_arg, run_script


def main(args: argparse.Namespace) -> int:
    from polybot.config import load_config
    from polybot.exchange.connectivity import run_checks
    from polybot.logs import configure_from

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg)
    return run_checks(cfg)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Test the connection to the Polymarket APIs.")
    add_config_arg(parser)
    run_script(main, parser)
