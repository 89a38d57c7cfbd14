#!/usr/bin/env python3
"""Final go-live verification (GO / NO-GO): ``python pre_launch_check.py ARGS`` runs ``polybot pre-launch ARGS``.

The parser, its help text and the code live in the package (``polybot pre-launch --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("pre_launch_check.py")
