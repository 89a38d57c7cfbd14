#!/usr/bin/env python3
"""Create or upgrade the database: ``python initialize_db.py ARGS`` runs ``polybot init-db ARGS``.

The parser, its help text and the code live in the package (``polybot init-db --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("initialize_db.py")
