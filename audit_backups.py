#!/usr/bin/env python3
"""Monthly backup audit: ``python audit_backups.py ARGS`` runs ``polybot audit-backups ARGS``.

The parser, its help text and the code live in the package (``polybot audit-backups --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("audit_backups.py")
