"""``audit_backups.py``: the checklist's monthly backup audit.

1. list every backup; 2. check each one (``integrity_check`` and its recorded sha256);
3. test-restore the newest into a temporary directory through the backup API and count its
tables and rows; 4. compare the number of backups with the retention policy; 5. check the
off-site copy when one is configured. Everything printed is also written to
``reports/backup_audit_YYYYMM.txt``. Exit code 1 when any backup is damaged, the test restore
fails, there is no recent backup, or the off-site copy is missing or differs.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .. import db
from ..config import Config
from ..errors import PolybotError
from ..timefmt import utc_text
from .backup import (
    BackupFile,
    checksum_path,
    copy_database,
    list_backups,
    offsite_dir,
    read_checksum,
    stale_temp_files,
    verify_file,
)
from .common import FAIL, OK, WARN, fmt_ago, fmt_bytes, send_alert, sha256_file

log = logging.getLogger("polybot.audit")
RECENT_HOURS = 26


@dataclass
class AuditReport:
    lines: list[str] = field(default_factory=list)
    failures: int = 0
    warnings: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"{OK} {text}")

    def warn(self, text: str) -> None:
        self.warnings += 1
        self.lines.append(f"{WARN} {text}")

    def fail(self, text: str) -> None:
        self.failures += 1
        self.lines.append(f"{FAIL} {text}")

    def info(self, text: str) -> None:
        self.lines.append(text)


def _recorded_sums(cfg: Config) -> dict[str, str]:
    try:
        conn = db.connect(cfg.database_path, readonly=True)
    except PolybotError:
        return {}
    try:
        return {Path(p).name: s for p, s in conn.execute("SELECT path, sha256 FROM backups")}
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def test_restore(backup: Path) -> tuple[str, dict[str, int]]:
    """Restore ``backup`` into a temporary directory; return (integrity, rows per table)."""
    with tempfile.TemporaryDirectory(prefix="polybot-audit-") as tmp:
        target = Path(tmp) / "restore_test.db"
        src = sqlite3.connect(backup.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            copy_database(src, target)
        finally:
            src.close()
        conn = sqlite3.connect(str(target))
        try:
            integrity = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()[:5])
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            counts = {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}
        finally:
            conn.close()
    return integrity, counts


def audit(cfg: Config, *, now: float | None = None) -> AuditReport:
    now = time.time() if now is None else now
    rep = AuditReport()
    rep.info(f"Backup audit {utc_text(now)} — {cfg.backup_dir}")
    backups = list_backups(cfg.backup_dir)
    if not backups:
        rep.fail(
            f"No backups in {cfg.backup_dir}; run python backup_database.py and schedule it daily "
            f"(python run_scheduler.py --print-crontab)."
        )
        return rep
    _audit_each_backup(rep, cfg, backups, now)
    _audit_test_restore(rep, backups[-1])
    _audit_retention(rep, cfg, backups, now)
    _audit_offsite(rep, cfg, backups[-1])
    return rep


def _audit_each_backup(rep: AuditReport, cfg: Config, backups: list[BackupFile], now: float) -> None:
    """1. Every backup: integrity_check and its recorded sha256; unfinished temporary files."""
    recorded = _recorded_sums(cfg)
    rep.info(f"1. Backups ({len(backups)}, newest last):")
    good: list[BackupFile] = []
    for b in backups:
        v = verify_file(b.path)
        expected = read_checksum(b.path) or recorded.get(b.name)
        line = f"{b.name}  {fmt_bytes(b.size)}  ({fmt_ago(now - b.timestamp)})"
        if not v.ok:
            rep.fail(f"{line}: CORRUPT — integrity_check: {v.integrity}; delete it (it cannot be restored).")
            continue
        if expected and sha256_file(b.path) != expected:
            rep.fail(
                f"{line}: sha256 differs from the one recorded at backup time (the file changed); "
                f"do not rely on it."
            )
            continue
        good.append(b)
        if expected:
            rep.ok(f"{line}: integrity ok, {v.tables} tables, sha256 matches")
        else:
            # The run that made it was interrupted between the rename and recording the checksum:
            # the copy passed integrity_check, but nothing proves it has not changed since.
            rep.warn(
                f"{line}: integrity ok, {v.tables} tables, but no sha256 was recorded (its backup run "
                f"was interrupted); run python backup_database.py to make a fully recorded backup."
            )
    for stale in stale_temp_files(cfg.backup_dir):
        rep.warn(
            f"{stale.name}  {fmt_bytes(stale.stat().st_size)}: an unfinished temporary backup left by an "
            f"interrupted run ({fmt_ago(now - stale.stat().st_mtime)}); it is not a backup — the next "
            f"python backup_database.py removes it, or delete it now."
        )


def _audit_test_restore(rep: AuditReport, newest: BackupFile) -> None:
    """2. Restore the newest backup into a temporary directory and count its rows."""
    rep.info("2. Test restore of the newest backup:")
    try:
        integrity, counts = test_restore(newest.path)
        if integrity == "ok":
            total = sum(counts.values())
            rep.ok(
                f"{newest.name} restored into a temporary directory: integrity ok, {len(counts)} tables, "
                f"{total} rows"
            )
            for name, n in counts.items():
                rep.info(f"     {name}: {n}")
        else:
            rep.fail(f"Test restore of {newest.name}: integrity_check {integrity}")
    except (sqlite3.Error, OSError) as exc:
        rep.fail(
            f"Test restore of {newest.name} failed ({exc}); make a new backup with python backup_database.py."
        )


def _audit_retention(rep: AuditReport, cfg: Config, backups: list[BackupFile], now: float) -> None:
    """3. A recent backup, and the number of backups against the retention policy."""
    rep.info("3. Retention and schedule:")
    days = cfg.backup.retention_days
    age_h = (now - backups[-1].timestamp) / 3600
    if age_h > RECENT_HOURS:
        rep.fail(
            f"Newest backup is {age_h:.0f} hours old (more than {RECENT_HOURS} h): the daily backup is not "
            f"running — check cron (crontab -l | grep backup) or run_scheduler.py."
        )
    else:
        rep.ok(f"Newest backup is {age_h:.1f} hours old")
    if days > 0:
        span_days = (now - backups[0].timestamp) / 86400
        expected = min(days, int(span_days) + 1)
        too_old = [b for b in backups if b.timestamp < now - days * 86400]
        if too_old:
            rep.warn(
                f"{len(too_old)} backup(s) older than the {days}-day retention policy are still there; "
                f"the next python backup_database.py deletes them."
            )
        days_with = {datetime.fromtimestamp(b.timestamp, UTC).date() for b in backups}
        window = [
            datetime.fromtimestamp(now - i * 86400, UTC).date()
            for i in range(1, min(days, int(span_days)) + 1)
        ]
        missing = [d for d in window if d not in days_with]
        if missing:
            rep.warn(
                f"{len(backups)} backups for a {days}-day retention policy (about {expected} expected); "
                f"days without a backup: {', '.join(str(d) for d in missing[:10])}"
                + (" …" if len(missing) > 10 else "")
            )
        else:
            rep.ok(f"{len(backups)} backups for a {days}-day retention policy (about {expected} expected)")
    else:
        rep.ok(f"{len(backups)} backups (retention_days is 0: backups are never deleted)")


def _audit_offsite(rep: AuditReport, cfg: Config, newest: BackupFile) -> None:
    """4. The off-site copy (directory or command) of the newest backup; orphan checksums."""
    rep.info("4. Off-site copy:")
    target = offsite_dir(cfg)
    if target is None and not cfg.backup.offsite_command:
        rep.warn(
            "No off-site copy configured (backup.offsite_dir or backup.offsite_command); "
            "the checklist recommends one."
        )
    if target is not None:
        remote = target / newest.name
        if not remote.exists():
            rep.fail(
                f"Off-site directory {target} has no copy of {newest.name}; check it is mounted and run "
                f"python backup_database.py."
            )
        elif sha256_file(remote) != sha256_file(newest.path):
            rep.fail(
                f"Off-site copy {remote} differs from {newest.name}; run python backup_database.py again."
            )
        else:
            n_remote = len(list_backups(target))
            rep.ok(
                f"Off-site directory {target}: newest backup present and identical ({n_remote} backups there)"
            )
    if cfg.backup.offsite_command:
        status = _last_offsite_status(cfg)
        if status is None:
            rep.warn("backup.offsite_command is configured but no run of it is recorded yet.")
        elif "failed" in status:
            rep.fail(f"Last off-site command run: {status}")
        else:
            rep.ok(f"Last off-site command run: {status} (verify the remote copy with your storage's tools)")
    sums = checksum_path(newest.path).parent
    orphans = (
        [p for p in sums.glob("*.sha256") if not (Path(cfg.backup_dir) / p.name[: -len(".sha256")]).exists()]
        if sums.is_dir()
        else []
    )
    if orphans:
        rep.warn(f"{len(orphans)} checksum file(s) without a backup (cleaned by the next backup)")


def _last_offsite_status(cfg: Config) -> str | None:
    try:
        conn = db.connect(cfg.database_path, readonly=True)
    except PolybotError:
        return None
    try:
        row = conn.execute(
            "SELECT offsite, timestamp FROM backups WHERE offsite IS NOT NULL ORDER BY timestamp DESC LIMIT 1"
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return f"{row[0]} ({utc_text(row[1])})" if row else None


def report_path(cfg: Config, now: float) -> Path:
    return Path(cfg.report_dir) / f"backup_audit_{datetime.fromtimestamp(now, UTC).strftime('%Y%m')}.txt"


def main(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .common import configure_quiet

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)
    now = time.time()
    rep = audit(cfg, now=now)
    verdict = (
        f"FAIL: {rep.failures} problem(s) found"
        if rep.failures
        else "PASS: backups verified" + (f" ({rep.warnings} warning(s))" if rep.warnings else "")
    )
    rep.lines.append(verdict)
    for line in rep.lines:
        print(line)
    path = report_path(cfg, now)
    db.ensure_private_dir(path.parent)
    path.write_text("\n".join(rep.lines) + "\n", encoding="utf-8")
    print(f"Report written: {path}")
    (log.error if rep.failures else log.info)("Backup audit: %s", verdict)
    if rep.failures:
        send_alert(cfg, "critical", "backup_audit", f"Backup audit {verdict}; see {path}")
        return 1
    return 0
