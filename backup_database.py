#!/usr/bin/env python3
"""Back up the database safely while the bot and the collector keep writing.

Default: a verified copy in backups/polymarket_backup_YYYYMMDD_HHMMSS.db (UTC), made with SQLite's
backup API (never cp), checked with integrity_check, 600, sha256 recorded; old backups beyond
backup.retention_days are deleted; the off-site copy runs if configured.
  python backup_database.py
  python backup_database.py --list
  python backup_database.py --restore backups/polymarket_backup_20260206_020000.db
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.backup import add_arguments, main

if __name__ == "__main__":
    parser = add_config_arg(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    add_arguments(parser)
    run_script(main, parser)
