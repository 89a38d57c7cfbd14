#!/usr/bin/env python3
"""Trip each circuit breaker, check the bot stops: ``python test_circuit_breakers.py ARGS`` runs ``polybot test-breakers ARGS``.

The parser, its help text and the code live in the package (``polybot test-breakers --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("test_circuit_breakers.py")
