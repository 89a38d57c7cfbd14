#!/usr/bin/env python3
"""Backtest the strategy on stored snapshots: ``python backtest.py ARGS`` runs ``polybot backtest ARGS``.

The parser, its help text and the code live in the package (``polybot backtest --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("backtest.py")
