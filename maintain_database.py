#!/usr/bin/env python3
"""Weekly database maintenance: integrity check (critical alert and stop if it fails), WAL
checkpoint, VACUUM (only with 2x the database size free), ANALYZE, PRAGMA optimize, optional
pruning of old market snapshots, deletion of logs older than 90 days. Never runs at the same
time as a backup (shared lock).
  python maintain_database.py
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.maintenance import main

if __name__ == "__main__":
    parser = add_config_arg(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=600,
        metavar="SECONDS",
        help="wait this long for a running backup to finish (default 600)",
    )
    run_script(main, parser)
