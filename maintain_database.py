#!/usr/bin/env python3
"""Weekly database maintenance: ``python maintain_database.py ARGS`` runs ``polybot maintain-db ARGS``.

The parser, its help text and the code live in the package (``polybot maintain-db --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("maintain_database.py")
