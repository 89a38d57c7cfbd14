"""audit_backups.py: integrity of every backup, test restore, retention count, off-site copy,
the monthly report file, and the exit code."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from polybot.ops.backup import backup_name
from tests.ops.helpers import add_trade, backups_in, connect, init_workspace


def _report(cfg):
    return cfg.report_dir / f"backup_audit_{datetime.now(UTC):%Y%m}.txt"


def test_audit_of_good_backups_passes_and_writes_the_report(tmp_path, cli):
    cfg = init_workspace(tmp_path, {"backup": {"offsite_dir": "offsite"}})
    conn = connect(cfg)
    for i in range(3):
        add_trade(conn, ts=1000 + i)
    conn.close()
    assert cli("backup_database.py").returncode == 0
    res = cli("audit_backups.py")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    (backup,) = backups_in(cfg)
    assert f"✓ {backup.name}" in out and "integrity ok" in out and "sha256 matches" in out
    assert "restored into a temporary directory: integrity ok" in out and "trades: 3" in out
    assert "Off-site directory" in out and "identical" in out
    assert "PASS: backups verified" in out
    report = _report(cfg)
    assert report.read_text().splitlines()[-1].startswith("PASS")
    assert "trades: 3" in report.read_text()


def test_audit_reports_a_corrupt_backup_and_exits_1(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    assert cli("backup_database.py").returncode == 0
    (good,) = backups_in(cfg)
    now = time.time()
    bad = cfg.backup_dir / backup_name(now - 86400)
    data = bytearray(good.read_bytes())
    data[4096:12288] = b"\xff" * 8192
    bad.write_bytes(bytes(data))
    trunc = cfg.backup_dir / backup_name(now - 2 * 86400)
    trunc.write_bytes(b"not sqlite")
    res = cli("audit_backups.py")
    assert res.returncode == 1
    assert f"✗ {bad.name}" in res.stdout and "CORRUPT" in res.stdout
    assert f"✗ {trunc.name}" in res.stdout and "not a SQLite database" in res.stdout
    assert f"✓ {good.name}" in res.stdout
    assert "FAIL: 2 problem(s) found" in res.stdout
    assert "FAIL" in _report(cfg).read_text()
    conn = connect(cfg)
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE key = 'backup_audit' AND level = 'critical'"
        ).fetchone()[0]
        == 1
    )
    conn.close()


def test_audit_flags_a_changed_backup_and_missing_backups(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    res = cli("audit_backups.py")
    assert res.returncode == 1 and "No backups in" in res.stdout
    assert cli("backup_database.py").returncode == 0
    (backup,) = backups_in(cfg)
    conn = __import__("sqlite3").connect(backup)  # a valid database, changed after the backup
    conn.execute("CREATE TABLE tampered (x)")
    conn.commit()
    conn.close()
    res = cli("audit_backups.py")
    assert res.returncode == 1 and "sha256 differs" in res.stdout


def test_audit_counts_against_retention(tmp_path, cli):
    cfg = init_workspace(tmp_path, {"backup": {"retention_days": 5}})
    assert cli("backup_database.py").returncode == 0
    (seed,) = backups_in(cfg)
    now = time.time()
    for age in (1, 2, 4):  # day 3 is missing
        p = cfg.backup_dir / backup_name(now - age * 86400)
        p.write_bytes(seed.read_bytes())
    res = cli("audit_backups.py")
    assert res.returncode == 0, res.stdout
    assert "⚠ 4 backups for a 5-day retention policy" in res.stdout and "days without a backup" in res.stdout


def test_interrupted_backup_without_checksum_and_stale_temp_are_reported(tmp_path, cli):
    """Issue 15 #10: a backup whose run died after the rename (no sha256 recorded) was shown ✓,
    and a stale `.tmp-` file of an interrupted run was invisible to --list and the audit."""
    from polybot.ops.backup import checksum_path

    cfg = init_workspace(tmp_path)
    assert cli("backup_database.py").returncode == 0
    (backup,) = backups_in(cfg)
    checksum_path(backup).unlink()  # the run died before recording it
    conn = connect(cfg)
    conn.execute("DELETE FROM backups")
    conn.commit()
    conn.close()
    stale = cfg.backup_dir / f".tmp-{backup.name}.12345"
    stale.write_bytes(b"\0" * 4096)
    res = cli("audit_backups.py")
    out = res.stdout
    listing = [ln for ln in out.splitlines() if backup.name in ln and "tables" in ln and "restored" not in ln]
    assert len(listing) == 1 and listing[0].startswith(f"⚠ {backup.name}") and "no sha256 was recorded" in out
    assert f"⚠ {stale.name}" in out and "not a backup" in out
    listed = cli("backup_database.py", "--list")
    assert listed.returncode == 0 and stale.name in listed.stdout and "not a backup" in listed.stdout
