#!/usr/bin/env python3
"""Back up (or list, restore) the database: ``python backup_database.py ARGS`` runs ``polybot backup ARGS``.

The parser, its help text and the code live in the package (``polybot backup --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("backup_database.py")
