#!/usr/bin/env python3
"""Health check (cron every 5 minutes): ``python health_check.py ARGS`` runs ``polybot health ARGS``.

The parser, its help text and the code live in the package (``polybot health --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("health_check.py")
