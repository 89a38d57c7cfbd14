#!/usr/bin/env python3
"""Validate config.yaml: ``python validate_config.py ARGS`` runs ``polybot validate-config ARGS``.

The parser, its help text and the code live in the package (``polybot validate-config --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("validate_config.py")
