#!/usr/bin/env python3
"""Verify data collection (cycles, gaps): ``python verify_data_collection.py ARGS`` runs ``polybot verify-collection ARGS``.

The parser, its help text and the code live in the package (``polybot verify-collection --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("verify_data_collection.py")
