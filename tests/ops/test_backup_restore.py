"""backup_database.py --restore: refuses while the bot runs, never restores a damaged backup,
keeps the current database (and its -wal) aside, restores through the backup API."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from polybot import db
from polybot.schema import LATEST_VERSION
from tests.conftest import ROOT
from tests.ops.helpers import Sleeper, add_trade, backups_in, connect, init_workspace, simulate_running_bot


def _trade_ids(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT trade_id FROM trades ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def backed_up(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    conn = connect(cfg)
    add_trade(conn, ts=1000, trade_id="before-1")
    add_trade(conn, ts=1001, trade_id="before-2")
    conn.close()
    res = cli("backup_database.py")
    assert res.returncode == 0, res.stderr
    (backup,) = backups_in(cfg)
    return cfg, backup


def test_restore_keeps_the_live_database_and_its_wal_aside(backed_up, tmp_path, cli):
    cfg, backup = backed_up
    held = db.connect(cfg.database_path)  # a connection with uncheckpointed WAL content
    held.execute("PRAGMA wal_autocheckpoint = 0")
    add_trade(held, ts=2000, trade_id="after-1")
    assert (tmp_path / "data" / "polymarket.db-wal").stat().st_size > 0

    res = cli("backup_database.py", "--restore", str(backup.relative_to(tmp_path)))
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "Backup verified" in out and "Previous database kept as data/polymarket.db.before-restore-" in out
    assert (
        "python initialize_db.py" in out
        and "rm EMERGENCY_STOP" in out
        and "python trading_bot.py --restart" in out
    )
    # other connections see the restored content at once (restored through SQLite, not by file copy)
    assert [r[0] for r in held.execute("SELECT trade_id FROM trades ORDER BY id")] == ["before-1", "before-2"]
    held.close()
    assert _trade_ids(cfg.database_path) == ["before-1", "before-2"]
    (aside,) = tmp_path.glob("data/polymarket.db.before-restore-*")
    assert _trade_ids(aside) == ["before-1", "before-2", "after-1"]
    conn = sqlite3.connect(cfg.database_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_restore_replaces_a_damaged_database(backed_up, tmp_path, cli):
    cfg, backup = backed_up
    live = cfg.database_path
    for suffix in ("-wal", "-shm"):
        p = live.with_name(live.name + suffix)
        if p.exists():
            p.unlink()
    live.write_bytes(b"garbage, not a database" * 500)
    live.with_name(live.name + "-wal").write_bytes(b"stale wal")
    res = cli("backup_database.py", "--restore", backup.name)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "moved aside with its -wal/-shm files" in res.stdout
    assert _trade_ids(live) == ["before-1", "before-2"]
    assert (
        not live.with_name(live.name + "-wal").exists()
        or live.with_name(live.name + "-wal").read_bytes() != b"stale wal"
    )
    (aside,) = [
        p for p in tmp_path.glob("data/polymarket.db.before-restore-*") if not p.name.endswith("-wal")
    ]
    assert aside.read_bytes().startswith(b"garbage")
    assert aside.with_name(aside.name + "-wal").read_bytes() == b"stale wal"  # kept paired


def test_restore_refuses_while_the_bot_runs(backed_up, tmp_path, cli):
    cfg, backup = backed_up
    conn = connect(cfg)
    add_trade(conn, ts=3000, trade_id="live-1")
    conn.close()
    bot = Sleeper()
    try:
        simulate_running_bot(cfg, bot.pid)
        res = cli("backup_database.py", "--restore", str(backup))
    finally:
        bot.stop()
    assert res.returncode == 1
    assert f"The trading bot is running (PID {bot.pid}" in res.stderr and "Traceback" not in res.stderr
    assert "live-1" in _trade_ids(cfg.database_path)

    # no PID file, but a fresh heartbeat written by a process that still exists: refused
    writer = Sleeper()
    try:
        simulate_running_bot(cfg, writer.pid)
        (cfg.database_path.parent / "trading_bot.pid").unlink()
        res = cli("backup_database.py", "--restore", str(backup))
    finally:
        writer.stop()
    assert res.returncode == 1 and "heartbeat is only" in res.stderr
    # an old heartbeat: allowed
    simulate_running_bot(cfg, 999_999_99, heartbeat=int(time.time()) - 3600)
    (cfg.database_path.parent / "trading_bot.pid").unlink()
    res = cli("backup_database.py", "--restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "live-1" not in _trade_ids(cfg.database_path)


def test_restore_refuses_a_damaged_or_missing_backup(backed_up, tmp_path, cli):
    cfg, backup = backed_up
    data = bytearray(backup.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # garble a page
    bad = cfg.backup_dir / "polymarket_backup_20200101_000000.db"
    bad.write_bytes(bytes(data))
    res = cli("backup_database.py", "--restore", str(bad))
    assert (
        res.returncode == 1 and "fails integrity_check" in res.stderr and "nothing was changed" in res.stderr
    )
    assert _trade_ids(cfg.database_path) == ["before-1", "before-2"]
    assert not list(tmp_path.glob("data/*before-restore*"))
    res = cli("backup_database.py", "--restore", "nope.db")
    assert res.returncode == 1 and "not found" in res.stderr and "--list" in res.stderr


def test_restore_of_an_older_schema_says_to_migrate(tmp_path, cli):
    init_workspace(tmp_path)
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    for statement in db._split_sql(db.MIGRATIONS[0][2]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    res = cli("backup_database.py", "--restore", str(old))
    assert res.returncode == 0, res.stderr
    assert f"REQUIRED: migrates the restored database (schema 1 -> {LATEST_VERSION})" in res.stdout
    assert cli("initialize_db.py").returncode == 0


def test_restore_right_after_a_clean_stop_and_while_the_instance_lock_is_held(backed_up, tmp_path, cli):
    cfg, backup = backed_up
    gone = Sleeper()
    gone.stop()  # the bot that wrote the heartbeat has exited
    simulate_running_bot(cfg, gone.pid)  # fresh heartbeat, bot_state pid = that process
    (cfg.database_path.parent / "trading_bot.pid").unlink()  # a clean exit removes the PID file
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(cfg.database_path.parent / "trading_bot.lock")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        res = cli("backup_database.py", "--restore", str(backup))
        assert res.returncode == 1 and "holds trading_bot.lock" in res.stderr
    finally:
        holder.kill()
        holder.wait()
    res = cli("backup_database.py", "--restore", str(backup))
    assert res.returncode == 0, res.stderr


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from polybot.engine.state import InstanceLock
lock = InstanceLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""
