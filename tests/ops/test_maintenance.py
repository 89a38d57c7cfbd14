"""maintain_database.py: the checklist's lines, pruning that never touches money records, log
retention, stopping with a critical alert on a damaged database, and the shared ops lock."""

from __future__ import annotations

import sqlite3
import time

from filelock import FileLock

from polybot import db
from polybot.ops.common import lock_path
from tests.ops.helpers import add_trade, connect, init_workspace


def _snapshots(conn, ts: int, n: int) -> None:
    with db.atomic(conn):
        conn.executemany(
            "INSERT INTO snapshot_values(timestamp, token_id, market_id, mid, bids, asks) "
            "VALUES (?,?,?,?,?,?)",
            [(ts, f"tok{i}", "m1", 0.5, "0.49:100," * 20, "0.51:100," * 20) for i in range(n)],
        )


def test_maintenance_prints_the_checklist_lines_and_prunes_only_snapshots(tmp_path, cli):
    cfg = init_workspace(tmp_path, {"maintenance": {"snapshot_retention_days": 30}})
    now = int(time.time())
    conn = connect(cfg)
    _snapshots(conn, now - 40 * 86400, 3000)
    _snapshots(conn, now - 60, 10)
    add_trade(conn, ts=now - 400 * 86400, trade_id="ancient")  # money records are never pruned
    with db.atomic(conn):
        conn.execute(
            "INSERT INTO alerts(timestamp, level, key, message) VALUES (?, 'info', 'k', 'old')",
            (now - 400 * 86400,),
        )
    conn.close()
    old_log = cfg.log_dir / "trading_system_20000101.log"
    cfg.log_dir.mkdir(exist_ok=True)
    old_log.write_text("old\n")
    recent_log = cfg.log_dir / f"trading_system_{time.strftime('%Y%m%d', time.gmtime())}.log"
    recent_log.write_text("recent\n")

    res = cli("maintain_database.py")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout.splitlines()
    for line in ("Integrity check: ok", "Starting VACUUM..."):
        assert line in out
    assert any(ln.startswith("VACUUM complete") for ln in out)
    assert "Pruned 3000 market snapshot(s) older than 30 days" in res.stdout
    assert "Log files older than 90 days deleted: 1" in res.stdout
    assert "reclaimed" in res.stdout and "before" in res.stdout and "took" in res.stdout
    assert "✓ Maintenance complete" in res.stdout
    assert not old_log.exists() and recent_log.exists()
    conn = sqlite3.connect(cfg.database_path)
    assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == 10
    assert conn.execute("SELECT trade_id FROM trades").fetchall() == [("ancient",)]
    assert conn.execute("SELECT COUNT(*) FROM alerts WHERE message = 'old'").fetchone()[0] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_snapshot_pruning_is_off_by_default(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    conn = connect(cfg)
    _snapshots(conn, 1000, 5)
    conn.close()
    res = cli("maintain_database.py")
    assert res.returncode == 0 and "Snapshot pruning: off" in res.stdout
    conn = sqlite3.connect(cfg.database_path)
    assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == 5
    conn.close()


def _corrupt_index(cfg) -> None:
    """A real inconsistency integrity_check finds: index entries that do not match their rows."""
    conn = sqlite3.connect(cfg.database_path)
    conn.execute("CREATE TABLE junk (x TEXT, y TEXT)")
    conn.execute("CREATE INDEX junk_x ON junk(x)")
    conn.executemany(
        "INSERT INTO junk VALUES (?, ?)", [(f"a{i:06d}", f"b{3000 - i:06d}") for i in range(3000)]
    )
    conn.commit()
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX junk_x ON junk(y)' WHERE name = 'junk_x'")
    conn.commit()
    conn.close()


def test_damaged_database_stops_maintenance_with_a_critical_alert(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    _corrupt_index(cfg)
    res = cli("maintain_database.py")
    assert res.returncode == 3, res.stdout + res.stderr
    first = [ln for ln in res.stdout.splitlines() if ln.startswith("Integrity check:")]
    assert first and first[0] != "Integrity check: ok"
    assert "Starting VACUUM..." not in res.stdout
    assert "python backup_database.py --restore FILE" in res.stdout
    logs = "".join(p.read_text() for p in cfg.log_dir.glob("trading_system_*.log"))
    assert "ALERT CRITICAL [database_corruption]" in logs
    conn = sqlite3.connect(cfg.database_path)
    assert (
        conn.execute("SELECT level, message FROM alerts WHERE key = 'database_corruption'").fetchone()[0]
        == "critical"
    )
    conn.close()


def test_maintenance_and_backup_share_one_lock(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    with FileLock(str(lock_path(cfg))):
        res = cli("maintain_database.py", "--lock-timeout", "0.5")
        assert res.returncode == 1
        assert "Another backup, restore or maintenance run holds" in res.stderr
        res = cli("backup_database.py", "--lock-timeout", "0.5")
        assert res.returncode == 1 and "Another backup, restore or maintenance run holds" in res.stderr
    assert cli("maintain_database.py").returncode == 0
