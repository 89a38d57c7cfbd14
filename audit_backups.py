#!/usr/bin/env python3
"""Monthly backup audit: list backups, check each one's integrity and sha256, test-restore the
newest into a temporary directory (tables and rows), compare the count with the retention policy,
check the off-site copy; writes reports/backup_audit_YYYYMM.txt. Exit code 1 if anything is wrong.
  python audit_backups.py
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.audit import main

if __name__ == "__main__":
    run_script(
        main,
        add_config_arg(
            argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ),
    )
