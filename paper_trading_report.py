#!/usr/bin/env python3
"""Paper trading results: ``python paper_trading_report.py ARGS`` runs ``polybot paper-report ARGS``.

The parser, its help text and the code live in the package (``polybot paper-report --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("paper_trading_report.py")
