#!/usr/bin/env python3
"""The trading bot (paper or live): ``python trading_bot.py ARGS`` runs ``polybot trade ARGS``.

The parser, its help text and the code live in the package (``polybot trade --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("trading_bot.py")
