"""backup_database.py: online backups under a concurrent writer, verification, permissions,
retention, off-site copy, failure handling; --list."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polybot.ops.backup import (
    apply_retention,
    backup_name,
    checksum_path,
    list_backups,
    name_timestamp,
    read_checksum,
    verify_file,
)
from polybot.ops.common import sha256_file
from tests.conftest import ROOT, run_cli
from tests.ops.helpers import backups_in, connect, init_workspace

WRITER = r"""
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("PRAGMA busy_timeout = 30000")
payload = "w" * 2000
while True:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO writer_rows(payload) VALUES (?)", (payload,))
    conn.execute("COMMIT")
"""


def _make_writer_table(cfg, rows: int) -> None:
    conn = sqlite3.connect(cfg.database_path, isolation_level=None)
    conn.execute("CREATE TABLE writer_rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO writer_rows(payload) VALUES (?)", [("p" * 2000,)] * rows)
    conn.execute("COMMIT")
    conn.close()


def _max_id(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COALESCE(MAX(id), 0) FROM writer_rows").fetchone()[0]
    finally:
        conn.close()


def test_backup_under_continuous_writer_restores_every_committed_row(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    _make_writer_table(cfg, 10_000)  # ~20 MB: the copy takes a moment
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(cfg.database_path)])
    try:
        start = _max_id(cfg.database_path)
        deadline = time.monotonic() + 30
        while _max_id(cfg.database_path) < start + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        committed_before = _max_id(cfg.database_path)  # committed before the backup started
        assert committed_before >= start + 50, "the writer is not committing"
        res = cli("backup_database.py")
        assert res.returncode == 0, res.stdout + res.stderr
        after_backup = _max_id(cfg.database_path)
        # Poll (never sleep-and-hope) until the writer has committed again after the backup:
        # terminating it earlier made `final > after_backup` a race (issue 15, item 11).
        deadline = time.monotonic() + 30
        while _max_id(cfg.database_path) <= after_backup and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.terminate()
        writer.wait()
    final = _max_id(cfg.database_path)
    assert final > after_backup >= committed_before  # it kept writing through the backup

    (backup,) = backups_in(cfg)
    assert verify_file(backup).ok
    conn = sqlite3.connect(backup)
    b_max, b_count = conn.execute("SELECT MAX(id), COUNT(*) FROM writer_rows").fetchone()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    conn.close()
    assert b_max >= committed_before
    assert b_count == b_max  # no gaps

    res = cli("backup_database.py", "--restore", str(backup))
    assert res.returncode == 0, res.stdout + res.stderr
    conn = sqlite3.connect(cfg.database_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    r_max, r_count = conn.execute("SELECT MAX(id), COUNT(*) FROM writer_rows").fetchone()
    conn.close()
    assert r_max == b_max and r_count == r_max and r_max >= committed_before
    (aside,) = tmp_path.glob("data/polymarket.db.before-restore-*")
    assert _max_id(aside) == final  # the database as it was, WAL content included


def test_backup_output_permissions_checksum_and_row(tmp_path, cli):
    cfg = init_workspace(tmp_path)
    res = cli("backup_database.py")
    assert res.returncode == 0, res.stderr
    (backup,) = backups_in(cfg)
    assert name_timestamp(backup.name) is not None and abs(name_timestamp(backup.name) - time.time()) < 120
    out = res.stdout
    assert f"Backup created: {backup}" in out
    assert "Size: " in out and "duration: " in out and "integrity_check: ok" in out
    assert "Traceback" not in res.stderr and res.stderr == ""
    if os.name == "posix":
        assert stat.S_IMODE(cfg.backup_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    digest = sha256_file(backup)
    assert read_checksum(backup) == digest
    assert checksum_path(backup).read_text() == f"{digest}  {backup.name}\n"
    conn = connect(cfg)
    row = conn.execute("SELECT path, size_bytes, sha256, integrity FROM backups").fetchone()
    conn.close()
    assert tuple(row) == (str(backup), backup.stat().st_size, digest, "ok")
    # the checklist's "ls -lh backups/" shows only backup files
    assert [p.name for p in cfg.backup_dir.iterdir() if not p.name.startswith(".")] == [backup.name]

    listing = cli("backup_database.py", "--list")
    assert listing.returncode == 0 and backup.name in listing.stdout and "sha256 recorded" in listing.stdout


def _fake_backups(cfg, source: Path, ages_days: list[float], now: float) -> dict[float, Path]:
    cfg.backup_dir.mkdir(exist_ok=True)
    made = {}
    for age in ages_days:
        ts = now - age * 86400
        p = cfg.backup_dir / backup_name(ts)
        p.write_bytes(source.read_bytes())
        os.utime(p, (ts, ts))
        made[age] = p
    return made


def test_retention_keeps_exactly_the_configured_window(tmp_path, cli):
    cfg = init_workspace(tmp_path, {"backup": {"retention_days": 30}})
    assert cli("backup_database.py").returncode == 0
    (seed,) = backups_in(cfg)
    seed.rename(tmp_path / "seed.db")
    now = time.time()
    ages = [d + 1 / 24 for d in range(0, 41)]  # 1 h, 1 d 1 h, …, 40 d 1 h old
    made = _fake_backups(cfg, tmp_path / "seed.db", ages, now)
    (cfg.backup_dir / "notes.txt").write_text("not a backup")
    (cfg.backup_dir / "other.db").write_bytes(b"x")
    res = cli("backup_database.py")
    assert res.returncode == 0, res.stderr
    kept = set(backups_in(cfg))
    expected = {p for age, p in made.items() if age <= 30}
    assert len(expected) == 30
    assert kept - expected == {max(kept, key=lambda p: p.name)}  # + the new backup
    assert expected <= kept
    assert not any(p in kept for age, p in made.items() if age > 30)
    assert (cfg.backup_dir / "notes.txt").exists() and (cfg.backup_dir / "other.db").exists()
    assert "11 old backup(s) deleted, 31 kept" in res.stdout


def test_apply_retention_boundaries_and_zero(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    now = 1_800_000_000.0
    for age_h in (0, 7 * 24 - 1, 7 * 24 + 1, 100 * 24):
        (d / backup_name(now - age_h * 3600)).write_bytes(b"SQLite format 3\x00")
    assert apply_retention(d, 0, now) == []  # 0 = keep everything
    removed = apply_retention(d, 7, now)
    assert sorted(name_timestamp(p.name) for p in removed) == [
        int(now - 100 * 24 * 3600),
        int(now - (7 * 24 + 1) * 3600),
    ]
    assert len(list_backups(d)) == 2


def test_unwritable_backup_dir_is_one_sentence(tmp_path, cli):
    (tmp_path / "afile").write_text("x")
    init_workspace(tmp_path, {"backup_dir": "afile/backups"})
    res = cli("backup_database.py")
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: Backup failed") and "Traceback" not in res.stderr


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX")
def test_write_failure_mid_copy_leaves_no_partial_file(tmp_path):
    import resource

    cfg = init_workspace(tmp_path)
    _make_writer_table(cfg, 2000)  # ~4 MB database
    cfg.backup_dir.mkdir(mode=0o700)
    limit = 1024 * 1024

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past 1 MB fail (EFBIG)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLY", "TELEGRAM", "SMTP", "DASHBOARD"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    res = subprocess.run(
        [sys.executable, str(ROOT / "backup_database.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Backup failed" in lines[0] and "no partial backup was left" in lines[0]
    assert [p.name for p in cfg.backup_dir.iterdir() if p.is_file()] == []
    assert backups_in(cfg) == []


def test_missing_database_is_one_sentence(workspace):
    res = run_cli("backup_database.py", cwd=workspace)
    assert res.returncode == 3
    assert res.stderr.strip().splitlines() == [
        f"Error: Database {workspace / 'data' / 'polymarket.db'} does not exist; run python initialize_db.py first."
    ]


def test_offsite_dir_copy(tmp_path, cli):
    cfg = init_workspace(tmp_path, {"backup": {"offsite_dir": "offsite"}})
    res = cli("backup_database.py")
    assert res.returncode == 0, res.stderr
    (backup,) = backups_in(cfg)
    remote = tmp_path / "offsite" / backup.name
    assert remote.read_bytes() == backup.read_bytes()
    assert "Off-site copy:" in res.stdout and "FAILED" not in res.stdout
    conn = connect(cfg)
    assert conn.execute("SELECT offsite FROM backups").fetchone()[0].startswith("ok: ")
    conn.close()


def test_offsite_command_placeholders_and_failure_is_reported(tmp_path, cli):
    dest = tmp_path / "remote"
    dest.mkdir()
    copy = (
        f'"{sys.executable}" -c "import shutil,sys; shutil.copy(sys.argv[1], sys.argv[2])" {{file}} "{dest}"'
    )
    cfg = init_workspace(tmp_path, {"backup": {"offsite_command": copy}})
    res = cli("backup_database.py")
    assert res.returncode == 0, res.stdout + res.stderr
    (backup,) = backups_in(cfg)
    assert (dest / backup.name).exists()

    failing = f'"{sys.executable}" -c "import sys; print(sys.argv[1]); sys.exit(3)" {{backup_dir}}'
    init_workspace(tmp_path, {"backup": {"offsite_command": failing}})
    res = cli("backup_database.py")
    assert res.returncode == 1
    assert "Off-site copy FAILED" in res.stdout and "exit code 3" in res.stdout
    assert len(backups_in(cfg)) == 2  # the local backup still counts
    conn = connect(cfg)
    assert conn.execute("SELECT COUNT(*) FROM alerts WHERE key = 'backup_offsite'").fetchone()[0] == 1
    conn.close()
