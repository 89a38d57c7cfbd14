#!/usr/bin/env python3
"""Collect Polymarket market data: one 5-minute cycle (run it from cron every 5 minutes).

Selects the tracked markets from config.yaml (collection:), stores markets, tokens and one
snapshot per outcome token (best bid/ask, mid, spread, last trade, top book levels, depth,
volume, liquidity) in data/polymarket.db. See the modes and exit codes below.
"""

from polybot.cli import run_script
from polybot.collect.main import collect_main, collect_parser

if __name__ == "__main__":
    run_script(collect_main, collect_parser(__doc__))
