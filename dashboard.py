#!/usr/bin/env python3
"""The web dashboard: ``python dashboard.py ARGS`` runs ``polybot dashboard ARGS``.

The parser, its help text and the code live in the package (``polybot dashboard --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("dashboard.py")
