#!/usr/bin/env python3
"""Run every periodic job in one process: ``python run_scheduler.py ARGS`` runs ``polybot scheduler ARGS``.

The parser, its help text and the code live in the package (``polybot scheduler --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("run_scheduler.py")
