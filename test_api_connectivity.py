#!/usr/bin/env python3
"""Test the connection to the Polymarket APIs: ``python test_api_connectivity.py ARGS`` runs ``polybot test-api ARGS``.

The parser, its help text and the code live in the package (``polybot test-api --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("test_api_connectivity.py")
