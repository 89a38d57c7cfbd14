#!/usr/bin/env python3
"""Collect market data (one 5-minute cycle): ``python collect_market_data.py ARGS`` runs ``polybot collect ARGS``.

The parser, its help text and the code live in the package (``polybot collect --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("collect_market_data.py")
