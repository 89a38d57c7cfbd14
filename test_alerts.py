#!/usr/bin/env python3
"""Send a test alert through every channel: ``python test_alerts.py ARGS`` runs ``polybot test-alerts ARGS``.

The parser, its help text and the code live in the package (``polybot test-alerts --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("test_alerts.py")
