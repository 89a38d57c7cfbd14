#!/usr/bin/env python3
"""Correlation matrix of the tracked markets: ``python correlation_analysis.py ARGS`` runs ``polybot correlation ARGS``.

The parser, its help text and the code live in the package (``polybot correlation --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("correlation_analysis.py")
