"""Helpers for the collection tests (owned by the collection issue)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import run_cli, sim_urls, write_config

# Collect every open market of the 60-market test world.
OPEN_FILTERS = {"min_volume_24h": 0, "min_liquidity": 0}


def setup_workspace(ws: Path, handle, **collection) -> Path:
    """Config pointing at ``handle`` (with ``collection`` overrides) and an initialized DB."""
    write_config(ws, {**sim_urls(handle), "collection": {**OPEN_FILTERS, **collection}})
    r = run_cli("initialize_db.py", cwd=ws)
    assert r.returncode == 0, r.stderr
    return ws / "data" / "polymarket.db"


def query(db: Path, sql: str, *args):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def scalar(db: Path, sql: str, *args):
    return query(db, sql, *args)[0][0]


def collect(ws: Path, *args: str, timeout: float = 120):
    return run_cli("collect_market_data.py", *args, cwd=ws, timeout=timeout)


def checklist_counts(ws: Path) -> tuple[int, int]:
    """The checklist's verification one-liner, run exactly as written (in ``ws``)."""
    import subprocess
    import sys

    code = (
        "import sqlite3; conn = sqlite3.connect('data/polymarket.db'); "
        "print('Markets:', conn.execute('SELECT COUNT(*) FROM markets').fetchone()[0]); "
        "print('Snapshots:', conn.execute('SELECT COUNT(*) FROM snapshot_values').fetchone()[0]); "
        "conn.close()"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ws, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ") for line in r.stdout.strip().splitlines())
    return int(lines["Markets"]), int(lines["Snapshots"])
