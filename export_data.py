#!/usr/bin/env python3
"""Export market data: ``python export_data.py ARGS`` runs ``polybot export-data ARGS``.

The parser, its help text and the code live in the package (``polybot export-data --help``);
this file is the script form every operator command has (docs/dev/commands.md).
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("export_data.py")
