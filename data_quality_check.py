#!/usr/bin/env python3
"""Data quality check of the collected data: ``python data_quality_check.py ARGS`` runs ``polybot data-quality ARGS``.

The parser, its help text and the code live in the package (``polybot data-quality --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("data_quality_check.py")
