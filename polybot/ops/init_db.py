"""``initialize_db.py``: create data/ (700) and the database (600), migrate, report."""

from __future__ import annotations

import argparse
import logging
import os
import stat

from ..config import load_config
from ..db import initialize
from ..logs import configure_from

log = logging.getLogger("polybot.init_db")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg)
    result = initialize(cfg.database_path)
    path = result["path"]
    if result["created"]:
        print(f"✓ Database created: {path}")
    else:
        print(f"✓ Database exists: {path}")
    if result["applied"]:
        print(
            f"✓ Schema migrated from version {result['before']} to {result['version']} "
            f"(applied: {', '.join(map(str, result['applied']))})"
        )
    else:
        print(f"✓ Schema version {result['version']} (up to date, nothing changed)")
    print(f"✓ Tables: {', '.join(result['tables'])}")
    if result["check"] != "ok":
        print(f"✗ quick_check: {result['check']}")
        return 1
    print("✓ quick_check: ok")
    _print_pending_migration(path)
    if os.name == "posix":
        fmode = stat.filemode(path.stat().st_mode)
        dmode = stat.filemode(path.parent.stat().st_mode)
        print(f"✓ Permissions: {fmode} {path.name}, {dmode} {path.parent.name}/")
    log.info(
        "Database %s initialized: schema version %s, migrations applied %s",
        path,
        result["version"],
        result["applied"] or "none",
    )
    return 0


def _print_pending_migration(path) -> None:
    """Say so when market data still waits in the old layout (schema 6, issue 16)."""
    from ..db import connect
    from .snapshot_migration import pending_rows

    conn = connect(path, readonly=True)
    try:
        rows = pending_rows(conn)
    finally:
        conn.close()
    if rows:
        print(
            f"⚠ {rows} market snapshot rows are in the old layout (readable as before); move them to "
            f"the compact layout with python maintain_database.py --migrate (stop the bot first; "
            f"it takes a backup, shows its progress and can be resumed; see RUNBOOK.md)"
        )
