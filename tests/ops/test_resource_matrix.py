"""Issue 15: the resource-exhaustion matrix, on real filesystems (no mocks).

Each cell runs one operator script, exactly as cron would, in a workspace where one
resource is exhausted or one file is damaged:

- ``data_full`` / ``logs_full`` / ``backups_full``: a 8 MiB tmpfs mounted on that
  directory and filled to the last byte (root only, as in CI; skipped otherwise);
- ``data_ro``: the tmpfs holding data/ remounted read-only;
- ``zero`` / ``truncated`` / ``garbage``: the database emptied, cut in half, or with
  random bytes written into its middle.

Every cell asserts: no traceback; the documented exit code; one sentence naming the
resource (or damage) and the fix; no advice to restore a backup over a healthy database;
and, where the database is healthy, every committed row still there afterwards. The
RUNBOOK's "Resource exhaustion and damaged files" table is this matrix.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess

import pytest

from tests.alerts.helpers import make_workspace, telegram_section
from tests.conftest import run_cli, sim_urls
from tests.resources import fill, tmpfs

ROWS = 3000
MOUNTED = {"data_full": "data", "logs_full": "logs", "backups_full": "backups", "data_ro": "data"}
LOG_SENTENCE = "cannot be written (the disk is full)"

# (script, condition) -> (exit code, a phrase of the one sentence)
MATRIX = {
    ("backup_database.py", "data_full"): (3, "is full"),
    ("backup_database.py", "logs_full"): (0, LOG_SENTENCE),
    ("backup_database.py", "backups_full"): (1, "free some space"),
    ("backup_database.py", "data_ro"): (1, "mounted read-only"),
    ("backup_database.py", "zero"): (3, "exists but is empty"),
    ("backup_database.py", "truncated"): (3, "is damaged"),
    ("backup_database.py", "garbage"): (1, "may be damaged"),
    ("maintain_database.py", "data_full"): (3, "is full"),
    ("maintain_database.py", "logs_full"): (0, LOG_SENTENCE),
    ("maintain_database.py", "data_ro"): (1, "mounted read-only"),
    ("maintain_database.py", "zero"): (3, "exists but is empty"),
    ("maintain_database.py", "truncated"): (3, "is damaged"),
    ("maintain_database.py", "garbage"): (3, "the database is damaged"),
    ("health_check.py", "data_full"): (2, "[FAIL] Disk space"),
    ("health_check.py", "zero"): (2, "[FAIL] Database"),
    ("health_check.py", "truncated"): (2, "[FAIL] Database"),
    ("health_check.py", "garbage"): (2, "[FAIL] Database"),
    ("daily_report.py", "data_full"): (3, "is full"),
    ("daily_report.py", "logs_full"): (0, LOG_SENTENCE),
    ("daily_report.py", "data_ro"): (3, "mounted read-only"),
    ("daily_report.py", "zero"): (3, "exists but is empty"),
    ("daily_report.py", "truncated"): (3, "is damaged"),
    ("verify_data_collection.py", "data_full"): (3, "is full"),
    ("verify_data_collection.py", "zero"): (3, "exists but is empty"),
    ("verify_data_collection.py", "truncated"): (3, "is damaged"),
    ("collect_market_data.py", "data_full"): (3, "is full"),
    ("collect_market_data.py", "logs_full"): (0, LOG_SENTENCE),
    ("collect_market_data.py", "data_ro"): (1, "mounted read-only"),
    ("collect_market_data.py", "zero"): (3, "exists but is empty"),
    ("collect_market_data.py", "truncated"): (3, "is damaged"),
    # garbage over the snapshot table itself: the collector's inserts and verify's reads hit it
    ("collect_market_data.py", "snapshots_damaged"): (3, "damaged"),
    ("verify_data_collection.py", "snapshots_damaged"): (3, "damaged"),
}
NEEDS_EXCHANGE = {"collect_market_data.py"}
HEALTHY_DB = {"data_full", "logs_full", "backups_full", "data_ro"}


def _count(path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM alerts WHERE key = 'k'").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def workspace_in(tmp_path, request):
    mounted = []
    stack = contextlib.ExitStack()

    def make(condition, overrides=None):
        target = MOUNTED.get(condition)
        if target:
            mounted.append(stack.enter_context(tmpfs(tmp_path / target, "8m")))
        cfg = make_workspace(tmp_path, overrides or {})
        conn = sqlite3.connect(cfg.database_path)
        conn.executemany(
            "INSERT INTO alerts(timestamp, level, key, message) VALUES (?,?,?,?)",
            [(1000 + i, "info", "k", "m" * 200) for i in range(ROWS)],
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        (tmp_path / "logs").mkdir(exist_ok=True)
        db_path = cfg.database_path
        if condition.endswith("_full"):
            fill(tmp_path / target)
        elif condition == "data_ro":
            subprocess.run(["mount", "-o", "remount,ro", str(tmp_path / "data")], check=True)
        elif condition == "zero":
            db_path.write_bytes(b"")
        elif condition == "truncated":
            with open(db_path, "r+b") as fh:
                fh.truncate(db_path.stat().st_size // 2)
        elif condition == "snapshots_damaged":
            raw = sqlite3.connect(db_path)
            page_size = raw.execute("PRAGMA page_size").fetchone()[0]
            root_page = raw.execute(
                "SELECT rootpage FROM sqlite_master WHERE name='market_snapshots'"
            ).fetchone()[0]
            raw.close()
            with open(db_path, "r+b") as fh:
                fh.seek((root_page - 1) * page_size)
                fh.write(b"\xde\xad\xbe\xef" * (page_size // 4))
        elif condition == "garbage":
            size = db_path.stat().st_size
            with open(db_path, "r+b") as fh:
                fh.seek(size // 2)
                fh.write(os.urandom(16384))
        return cfg

    def restore_space():
        for m in mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(m)], capture_output=True)
            (m / "ballast.bin").unlink(missing_ok=True)

    make.restore_space = restore_space
    with stack:
        yield make


@pytest.mark.parametrize("script, condition", sorted(MATRIX), ids=lambda v: str(v))
def test_matrix_cell(workspace_in, tmp_path, request, script, condition):
    code, phrase = MATRIX[(script, condition)]
    overrides = sim_urls(request.getfixturevalue("sim")) if script in NEEDS_EXCHANGE else None
    cfg = workspace_in(condition, overrides)
    res = run_cli(script, cwd=tmp_path, timeout=180)
    out = res.stdout + res.stderr
    assert "Traceback" not in out and "--- Logging error ---" not in out, out
    assert res.returncode == code, f"exit {res.returncode}, expected {code}:\n{out}"
    assert phrase in out, out
    if condition in HEALTHY_DB:
        assert "--restore" not in out.replace("backup_database.py --restore FILE` to restore", ""), out
        workspace_in.restore_space()
        assert _count(cfg.database_path) == ROWS  # every committed row still there
    if condition == "logs_full":
        assert sum(1 for ln in out.splitlines() if LOG_SENTENCE in ln) == 1


def test_full_data_disk_alerts_by_telegram(workspace_in, tmp_path, fake_tg):
    """Telegram needs no disk: maintenance on a full data disk still reaches the phone."""
    workspace_in("data_full", {"telegram": telegram_section(fake_tg)})
    res = run_cli("maintain_database.py", cwd=tmp_path, timeout=180)
    assert res.returncode == 3, res.stdout + res.stderr
    assert any("is full" in m for m in fake_tg.messages()), fake_tg.messages()
