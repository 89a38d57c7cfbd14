"""``maintain_database.py``: the checklist's weekly maintenance.

Under the ops lock (so it never overlaps a backup or a restore):

1. ``PRAGMA integrity_check`` (+ ``foreign_key_check``) — on failure: stop, critical alert;
2. optional pruning of ``snapshot_values`` older than ``maintenance.snapshot_retention_days``
   (never trades, positions, performance, orders or alerts);
3. ``PRAGMA wal_checkpoint(TRUNCATE)``;
4. ``VACUUM`` — only with at least 2× the database size free on disk;
5. ``ANALYZE`` and ``PRAGMA optimize``;
6. deletion of log files older than ``maintenance.log_retention_days`` (90).

VACUUM takes the write lock: the bot's writes wait (busy timeout 30 s) while it runs, which is
why it is scheduled for Sunday 03:00.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import db
from ..config import Config
from ..logs import prune_logs
from ..timefmt import utc_text
from .common import FAIL, OK, WARN, db_size, disk_free, fmt_bytes, send_alert

log = logging.getLogger("polybot.maintenance")
PRUNE_BATCH = 50_000


@dataclass
class MaintenanceResult:
    integrity: str = "not run"
    foreign_key_problems: int = 0
    size_before: int = 0
    size_after: int = 0
    pruned_snapshots: int = 0
    checkpoint: tuple[int, int, int] | None = None  # PRAGMA wal_checkpoint: busy, log, checkpointed
    vacuumed: bool = False
    vacuum_skipped: str | None = None
    logs_deleted: int = 0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and self.vacuum_skipped is None


def prune_snapshots(conn: sqlite3.Connection, retention_days: int, now: float) -> int:
    """Delete snapshot_values older than ``retention_days`` in batches; 0 days = keep all."""
    if retention_days <= 0:
        return 0
    cutoff = int(now - retention_days * 86400)
    total = 0
    while True:
        with db.atomic(conn):
            n = conn.execute(
                "DELETE FROM snapshot_values WHERE (timestamp, token_id) IN (SELECT timestamp, token_id "
                "FROM snapshot_values WHERE timestamp < ? LIMIT ?)",
                (cutoff, PRUNE_BATCH),
            ).rowcount
        total += n
        if n < PRUNE_BATCH:
            return total


def run_maintenance(
    cfg: Config, *, now: float | None = None, emit: Callable[[str], object] = print
) -> MaintenanceResult:
    """Run every step, printing as it goes through ``emit``. Caller holds the ops lock."""
    started = time.monotonic()
    now = time.time() if now is None else now
    res = MaintenanceResult()
    path = cfg.database_path
    res.size_before = db_size(path)
    emit(f"Database: {path} ({fmt_bytes(res.size_before)} including WAL) — {utc_text(now)}")
    from ..errors import DatabaseError

    conn: sqlite3.Connection | None
    try:
        conn = db.connect(path)
    except DatabaseError as exc:
        conn = None
        res.integrity = str(exc)
        if getattr(exc, "cause", "damaged") in ("full", "read-only", "permissions", "locked"):
            # A resource problem, not damage: restoring a backup would overwrite a healthy file.
            log.critical("maintenance cannot open %s: %s", path, res.integrity)
            send_alert(cfg, "critical", "maintenance_failed", f"Maintenance stopped: {res.integrity}")
            emit(f"{FAIL} Maintenance stopped: {res.integrity}")
            return res
    try:
        if conn is not None:
            # PRAGMA integrity_check through polybot.checks.database: "ok", the first problems
            # joined with "; ", or SQLite's error text
            res.integrity = db.quick_check(conn, full=True)
        emit(f"Integrity check: {res.integrity}")
        # conn is None only when opening failed, and then res.integrity is that error (not "ok")
        if conn is None or res.integrity != "ok":
            from ..alerts import check_database

            finding = check_database(res.integrity, path)
            log.critical("integrity_check failed on %s: %s", path, res.integrity)
            if finding is not None:  # always: an integrity text other than "ok" is a finding
                send_alert(cfg, finding.level, finding.key, finding.message)
            emit(
                f"{FAIL} Maintenance stopped: the database is damaged; restore it with "
                f"python backup_database.py --restore FILE (see RUNBOOK.md, Database errors)."
            )
            return res
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        res.foreign_key_problems = len(fk)
        if fk:
            emit(
                f"{WARN} Foreign key check: {len(fk)} row(s) reference missing parents "
                f"(first: table {fk[0][0]}, rowid {fk[0][1]})"
            )
        else:
            emit("Foreign key check: ok")

        days = cfg.maintenance.snapshot_retention_days
        if days > 0:
            res.pruned_snapshots = prune_snapshots(conn, days, now)
            emit(
                f"Pruned {res.pruned_snapshots} market snapshot(s) older than {days} days "
                f"(trades, positions, performance and alerts are never pruned)"
            )
        else:
            emit("Snapshot pruning: off (maintenance.snapshot_retention_days is 0)")

        res.checkpoint = tuple(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
        busy = res.checkpoint[0]
        emit(
            "WAL checkpoint (TRUNCATE): "
            + ("done" if not busy else "partial — a reader was active; the next run finishes it")
        )

        size = path.stat().st_size
        free = disk_free(path.parent)
        if free < 2 * size:
            res.vacuum_skipped = (
                f"VACUUM skipped: it needs up to 2× the database size free "
                f"({fmt_bytes(2 * size)}) but only {fmt_bytes(free)} is free; free disk space "
                f"and run python maintain_database.py again."
            )
            emit(f"{WARN} {res.vacuum_skipped}")
        else:
            emit("Starting VACUUM...")
            t0 = time.monotonic()
            conn.execute("VACUUM")
            res.vacuumed = True
            emit(f"VACUUM complete ({time.monotonic() - t0:.1f} s)")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA optimize")
        emit("ANALYZE and PRAGMA optimize: done")
    finally:
        if conn is not None:
            conn.close()
    removed = prune_logs(cfg.log_dir, cfg.maintenance.log_retention_days, now=now)
    res.logs_deleted = len(removed)
    emit(f"Log files older than {cfg.maintenance.log_retention_days} days deleted: {len(removed)}")
    res.size_after = db_size(path)
    res.seconds = time.monotonic() - started
    delta = res.size_before - res.size_after
    change = f"{fmt_bytes(delta)} reclaimed" if delta >= 0 else f"{fmt_bytes(-delta)} larger: new statistics"
    emit(
        f"Size: {fmt_bytes(res.size_before)} before, {fmt_bytes(res.size_after)} after ({change}); "
        f"took {res.seconds:.1f} s"
    )
    log.info(
        "Maintenance: integrity %s, %d snapshots pruned, vacuum %s, %s -> %s in %.1f s",
        res.integrity,
        res.pruned_snapshots,
        "done" if res.vacuumed else "skipped",
        res.size_before,
        res.size_after,
        res.seconds,
    )
    return res


def main(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .common import configure_quiet, ops_lock

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)
    with ops_lock(cfg, args.lock_timeout, "python maintain_database.py"):
        res = run_maintenance(cfg)
    if res.integrity != "ok":
        return 3
    if res.vacuum_skipped:
        return 1
    print(f"{OK} Maintenance complete")
    return 0
