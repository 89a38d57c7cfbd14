#!/usr/bin/env python3
"""Check that every risk limit is enforced: ``python test_risk_limits.py ARGS`` runs ``polybot test-risk-limits ARGS``.

The parser, its help text and the code live in the package (``polybot test-risk-limits --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("test_risk_limits.py")
