#!/usr/bin/env python3
"""Daily (or weekly) performance report: ``python daily_report.py ARGS`` runs ``polybot daily-report ARGS``.

The parser, its help text and the code live in the package (``polybot daily-report --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("daily_report.py")
