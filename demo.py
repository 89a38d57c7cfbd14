#!/usr/bin/env python3
"""The whole system on the bundled simulator: ``python demo.py ARGS`` runs ``polybot demo ARGS``.

The parser, its help text and the code live in the package (``polybot demo --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("demo.py")
