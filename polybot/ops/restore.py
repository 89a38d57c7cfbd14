"""``backup_database.py --restore FILE``: put a backup back, safely.

Never ``cp`` over a WAL database (a leftover ``-wal`` would be replayed onto the wrong file:
"How To Corrupt An SQLite Database File" §2). The procedure:

1. refuse while the trading bot may be running: its PID file names a live process, or its
   heartbeat is younger than ``health.heartbeat_max_age_seconds`` while the process that wrote
   it (``bot_state`` pid) still exists, or it holds its single-instance lock — which the restore
   then holds itself, so no bot can start half-way;
2. ``integrity_check`` the backup and refuse a damaged one or one newer than this code;
3. under the ops lock, keep the current database aside as
   ``data/polymarket.db.before-restore-YYYYMMDD_HHMMSS``: a healthy database is copied through
   the backup API (one self-contained file, WAL content included); a damaged one is renamed
   together with its ``-wal``/``-shm`` so the pair stays matched;
4. restore through the backup API — into the open live database when it is healthy (other
   connections, e.g. the collector, see the change atomically), else into a temporary file that
   is checked, fsynced and renamed into place;
5. ``integrity_check`` the result and print the next steps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import db
from ..config import Config
from ..engine.state import LOCK_FILE, InstanceLock
from ..errors import PolybotError
from ..schema import LATEST_VERSION
from .backup_files import copy_database, list_backups, remove_quietly, verify_file
from .common import OK, bot_status, display_path, fsync_dir, fsync_file, ops_lock, send_alert, utc_stamp

log = logging.getLogger("polybot.restore")


class RestoreRefused(PolybotError):
    """The restore was not started (nothing was changed)."""


@dataclass
class RestoreResult:
    source: Path
    target: Path
    aside: Path | None
    aside_kind: str  # 'copy' | 'moved' | 'none'
    version: int
    tables: int


@contextlib.contextmanager
def _bot_instance_lock(cfg: Config) -> Iterator[None]:
    """Hold the trading bot's own single-instance lock (``<database dir>/trading_bot.lock``)
    for the whole restore: it proves no bot runs now, and no bot can start half-way."""
    lock = InstanceLock(Path(cfg.database_path).parent / LOCK_FILE)
    try:
        lock.acquire()
    except PolybotError:
        raise RestoreRefused(
            f"A trading bot holds {LOCK_FILE} in {Path(cfg.database_path).parent}, so it is "
            f"running; stop it first (touch EMERGENCY_STOP and wait), then restore."
        ) from None
    try:
        yield
    finally:
        lock.release()


def resolve_backup(cfg: Config, arg: str) -> Path:
    p = Path(arg).expanduser()
    candidates = (
        [p] if p.is_absolute() else [Path.cwd() / p, Path(cfg.root) / p, Path(cfg.backup_dir) / p.name]
    )
    for c in candidates:
        if c.is_file():
            return c
    hint = ""
    backups = list_backups(cfg.backup_dir)
    if backups:
        hint = f" (newest: {display_path(backups[-1].path, cfg.root)})"
    raise RestoreRefused(
        f"Backup file {arg} not found; list the backups with python backup_database.py --list{hint}."
    )


def _live_healthy(path: Path) -> bool:
    try:
        conn = db.connect(path)
    except PolybotError:
        return False
    try:
        return db.quick_check(conn) == "ok"
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _keep_aside_copy(live: Path, aside: Path) -> None:
    src = db.connect(live)
    try:
        copy_database(src, aside)
    finally:
        src.close()
    fsync_file(aside)


def _move_aside(live: Path, aside: Path) -> None:
    """Rename the damaged database with its -wal/-shm/-journal, keeping them paired."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        src = Path(str(live) + suffix)
        if src.exists():
            os.replace(src, Path(str(aside) + suffix))


def _restore_into_live(source: Path, live: Path) -> None:
    src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
    dest = db.connect(live)
    try:
        src.backup(dest, pages=-1)
        dest.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        dest.close()
        src.close()


def _build_fresh(source: Path, live: Path) -> None:
    tmp = live.with_name(f".{live.name}.restore-{os.getpid()}")
    remove_quietly(tmp)
    src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        copy_database(src, tmp, journal_mode="WAL")
    except BaseException:
        remove_quietly(tmp)
        raise
    finally:
        src.close()
    check = verify_file(tmp)
    if not check.ok:
        remove_quietly(tmp)
        raise RestoreRefused(
            f"The restored copy fails integrity_check ({check.integrity}); the current "
            f"database was kept aside and nothing was put in its place — try another backup."
        )
    fsync_file(tmp)
    remove_quietly(Path(str(tmp) + "-wal"))  # journal_mode switch leaves none, but be sure
    os.replace(tmp, live)
    fsync_dir(live.parent)


def restore_backup(
    cfg: Config, backup_arg: str, *, now: float | None = None, lock_timeout: float = 600
) -> RestoreResult:
    now = time.time() if now is None else now
    source = resolve_backup(cfg, backup_arg)
    live = Path(cfg.database_path)
    status = bot_status(cfg, now=now)
    if status.alive:
        raise RestoreRefused(
            f"The trading bot is running (PID {status.pid} in {display_path(status.pid_file, cfg.root)}); stop it "
            f"first (touch EMERGENCY_STOP, then stop the process), or delete the PID file if PID {status.pid} "
            f"is not the bot."
        )
    if status.maybe_running:
        raise RestoreRefused(
            f"The trading bot's heartbeat is only {status.heartbeat_age:.0f} s old (limit "
            f"{status.max_age:g} s), so it may still be running; stop it and retry once the heartbeat is older."
        )
    check = verify_file(source)
    if not check.ok:
        raise RestoreRefused(
            f"Backup {source.name} fails integrity_check ({check.integrity}); nothing was "
            f"changed — pick another one from python backup_database.py --list."
        )
    if check.version > LATEST_VERSION:
        raise RestoreRefused(
            f"Backup {source.name} has schema version {check.version}, newer than this code "
            f"({LATEST_VERSION}); update polybot (git pull) before restoring it."
        )
    with ops_lock(cfg, lock_timeout, "python backup_database.py --restore"), _bot_instance_lock(cfg):
        db.ensure_private_dir(live.parent)
        aside_path = live.with_name(f"{live.name}.before-restore-{utc_stamp(now)}")
        aside: Path | None = aside_path  # None when there was nothing to keep
        exists = live.exists()
        healthy = exists and _live_healthy(live)
        kind = "none"
        if healthy:
            _keep_aside_copy(live, aside_path)
            kind = "copy"
            try:
                _restore_into_live(source, live)
            except sqlite3.Error as exc:
                raise RestoreRefused(
                    f"Restoring into {live} failed ({exc}); the database is unchanged and a "
                    f"copy is at {aside}."
                ) from None
        else:
            leftovers = [s for s in ("", "-wal", "-shm", "-journal") if Path(str(live) + s).exists()]
            if leftovers:
                _move_aside(live, aside_path)
                kind = "moved"
            else:
                aside = None
            _build_fresh(source, live)
        if os.name == "posix":
            os.chmod(live, 0o600)
    conn = db.connect(live)
    try:
        result = db.quick_check(conn, full=True)
        version = db.schema_version(conn)
        tables = len(db.tables(conn))
    finally:
        conn.close()
    if result != "ok":
        raise RestoreRefused(
            f"The restored database fails integrity_check ({result}); the previous one is "
            f"at {aside} — try another backup."
        )
    log.warning("Database %s restored from %s (previous database kept as %s)", live, source, aside)
    send_alert(
        cfg,
        "info",
        "database_restored",
        f"Database restored from {source.name}; previous copy: {aside.name if aside else 'none'}.",
    )
    return RestoreResult(source, live, aside, kind, version, tables)


def restore_main(cfg: Config, backup_arg: str, *, lock_timeout: float = 600) -> int:
    r = restore_backup(cfg, backup_arg, lock_timeout=lock_timeout)
    check = verify_file(r.source)
    print(
        f"{OK} Backup verified: {display_path(r.source, cfg.root)} (integrity_check ok, "
        f"schema version {check.version}, {check.tables} tables)"
    )
    if r.aside is not None:
        how = (
            "copied through the backup API"
            if r.aside_kind == "copy"
            else "moved aside with its -wal/-shm files (it was damaged)"
        )
        print(f"{OK} Previous database kept as {display_path(r.aside, cfg.root)} ({how})")
    else:
        print(f"{OK} There was no database at {display_path(r.target, cfg.root)} to keep aside")
    print(
        f"{OK} Restored {display_path(r.target, cfg.root)} through SQLite's backup API "
        f"(integrity_check ok, {r.tables} tables)"
    )
    print()
    print("Next steps:")
    if r.version < LATEST_VERSION:
        print(
            f"  1. python initialize_db.py          # REQUIRED: migrates the restored database "
            f"(schema {r.version} -> {LATEST_VERSION})"
        )
    else:
        print("  1. python initialize_db.py          # checks the schema (nothing to migrate; safe to run)")
    print("  2. rm EMERGENCY_STOP                 # if you created it to stop the bot")
    print("  3. python trading_bot.py --restart")
    return 0
