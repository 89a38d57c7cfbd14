"""``backup_database.py``: consistent online backups of the SQLite database.

A WAL database is never copied with ``cp`` (the -wal file holds committed data; see
docs/dev/api_notes.md §13). The procedure:

1. ``Connection.backup()`` in ONE step into ``backups/.tmp-…`` — a consistent snapshot taken
   inside one read transaction; the bot and the collector keep writing (WAL readers never
   block writers);
2. the copy is switched to ``journal_mode=DELETE`` so it is one self-contained file;
3. ``PRAGMA integrity_check`` on the copy; fsync; ``os.replace`` to
   ``backups/polymarket_backup_YYYYMMDD_HHMMSS.db`` (UTC); fsync the directory;
4. sha256 in ``backups/.checksums/<name>.sha256`` (sha256sum format) and a row in ``backups``;
5. retention (``backup.retention_days``) — only after a verified backup exists;
6. optional off-site copy (``backup.offsite_dir`` and/or ``backup.offsite_command``); a failure
   is printed, alerted and makes the exit code 1.

``backups/`` is 700 and every backup 600. A failure at any step removes the temporary file.
Restore lives in :mod:`polybot.ops.restore`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import db
from ..config import Config
from ..errors import PolybotError
from ..timefmt import utc_text
from .backup_files import (
    CHECKSUM_DIR,
    PREFIX,
    BackupFile,
    Verification,
    backup_name,
    checksum_path,
    copy_database,
    list_backups,
    name_timestamp,
    read_checksum,
    remove_quietly,
    verify_file,
    write_checksum,
)
from .common import (
    FAIL,
    OK,
    db_size,
    disk_free,
    display_path,
    fmt_ago,
    fmt_bytes,
    fsync_dir,
    fsync_file,
    send_alert,
    sha256_file,
)
from .restore import restore_main

log = logging.getLogger("polybot.backup")

TMP_PREFIX = ".tmp-"
OFFSITE_TIMEOUT = 1800


class BackupError(PolybotError):
    """The backup could not be made (nothing partial is left behind)."""


@dataclass
class OffsiteResult:
    ok: bool
    target: str
    detail: str


@dataclass
class BackupResult:
    path: Path
    size: int
    seconds: float
    sha256: str
    verification: Verification
    removed: list[Path] = field(default_factory=list)
    kept: int = 0
    offsite: list[OffsiteResult] = field(default_factory=list)


def _failure_sentence(exc: BaseException, where: Path) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    err = getattr(exc, "errno", None)
    if err == errno.ENOSPC or name == "SQLITE_FULL" or "full" in str(exc).lower():
        return (
            f"Backup failed: the disk holding {where} is full; free some space and run "
            f"python backup_database.py again (no partial backup was left)."
        )
    if (
        err in (errno.EACCES, errno.EPERM, errno.EROFS)
        or name.startswith("SQLITE_READONLY")
        or name == "SQLITE_CANTOPEN"
    ):
        return (
            f"Backup failed: {where} is not writable ({getattr(exc, 'strerror', None) or exc}); "
            f"fix its owner and permissions (chmod 700) and run again (no partial backup was left)."
        )
    if name.startswith("SQLITE_IOERR") or err in (errno.EFBIG, errno.EIO):
        return (
            f"Backup failed: writing to {where} failed ({exc}) — the disk may be full or failing; "
            f"free space or check the disk, then run again (no partial backup was left)."
        )
    return f"Backup failed ({exc}); no partial backup was left — check the disk and run again."


def stale_temp_files(backup_dir: Path) -> list[Path]:
    return [p for p in Path(backup_dir).glob(f"{TMP_PREFIX}{PREFIX}*") if p.is_file()]


def create_backup(cfg: Config, *, now: float | None = None, alert: bool = True) -> BackupResult:
    """Make one verified backup, apply retention, copy off-site. Caller holds the ops lock."""
    started = time.monotonic()
    fixed_now = now is not None
    now = time.time() if now is None else now
    backup_dir = Path(cfg.backup_dir)
    conn = db.connect(cfg.database_path, synchronous="NORMAL")  # raises with one sentence
    try:
        try:
            db.ensure_private_dir(backup_dir)
        except PolybotError as exc:
            raise BackupError(f"Backup failed: {exc}") from None
        for stale in stale_temp_files(backup_dir):  # an interrupted earlier run (we hold the lock)
            log.warning("removing stale temporary backup %s", stale)
            remove_quietly(stale)
        need, free = db_size(cfg.database_path), disk_free(backup_dir)
        if free < need * 1.1 + 1024 * 1024:
            raise BackupError(
                f"Backup not started: {backup_dir} has {fmt_bytes(free)} free but the database "
                f"needs about {fmt_bytes(need)}; free some space and run again."
            )
        final = backup_dir / backup_name(now)
        while final.exists() and not fixed_now:  # two backups in one second: take the next second
            time.sleep(0.25)
            now = time.time()
            final = backup_dir / backup_name(now)
        check = _write_verified_copy(conn, backup_dir, final)
        size = final.stat().st_size
        digest = sha256_file(final)
        try:
            write_checksum(final, digest)
        except OSError as exc:
            log.warning("could not write the checksum file for %s: %s", final, exc)
        row_id = _record_backup(conn, final, now, size, digest, check.integrity)
        result = BackupResult(final, size, 0.0, digest, check)
        result.removed = apply_retention(backup_dir, cfg.backup.retention_days, now, keep=final)
        result.kept = len(list_backups(backup_dir))
        result.offsite = copy_offsite(cfg, final, now)
        if result.offsite and row_id is not None:
            summary = "; ".join(("ok: " if r.ok else "failed: ") + r.target for r in result.offsite)
            with contextlib.suppress(sqlite3.Error), db.atomic(conn):
                conn.execute("UPDATE backups SET offsite = ? WHERE id = ?", (summary, row_id))
        failed = [r for r in result.offsite if not r.ok]
        if failed and alert:
            send_alert(
                cfg,
                "warning",
                "backup_offsite",
                "Off-site backup copy failed: " + "; ".join(f"{r.target}: {r.detail}" for r in failed),
                conn=conn,
            )
        result.seconds = time.monotonic() - started
        log.info(
            "Backup %s: %s in %.2f s, integrity %s, sha256 %s, %d removed by retention",
            final,
            fmt_bytes(size),
            result.seconds,
            check.integrity,
            digest[:12],
            len(result.removed),
        )
        return result
    except BackupError as exc:
        log.error("%s", exc)
        if alert:
            send_alert(cfg, "critical", "backup_failed", str(exc), conn=conn)
        raise
    finally:
        conn.close()


def _write_verified_copy(conn: sqlite3.Connection, backup_dir: Path, final: Path) -> Verification:
    """Copy the database to a temporary file beside ``final``, verify it, make it private
    and durable, then rename it to ``final``; nothing is left behind on failure."""
    tmp = backup_dir / f"{TMP_PREFIX}{final.name}.{os.getpid()}"
    try:
        copy_database(conn, tmp)
        check = verify_file(tmp, mmap=True)  # our fresh copy: nothing truncates it meanwhile
        if not check.ok:
            raise BackupError(
                f"Backup failed: the copy fails integrity_check ({check.integrity}); the "
                f"database itself may be damaged — run python maintain_database.py."
            )
        fsync_file(tmp)
        if os.name == "posix":
            os.chmod(tmp, 0o600)
        os.replace(tmp, final)
        fsync_dir(backup_dir)
    except BackupError:
        remove_quietly(tmp)
        raise
    except (OSError, sqlite3.Error) as exc:
        remove_quietly(tmp)
        raise BackupError(_failure_sentence(exc, backup_dir)) from None
    return check


def _record_backup(
    conn: sqlite3.Connection, final: Path, now: float, size: int, digest: str, integrity: str
) -> int | None:
    """Record a backup just made in ``backups``: the row's id, None when the INSERT failed
    (logged; the backup itself stands)."""
    row_id = None
    try:
        with db.atomic(conn):
            row_id = conn.execute(
                "INSERT INTO backups(timestamp, path, size_bytes, sha256, integrity) VALUES (?,?,?,?,?)",
                (int(now), str(final), size, digest, integrity),
            ).lastrowid
    except sqlite3.Error as exc:
        log.warning("backup %s made, but its row could not be recorded: %s", final, exc)
    return row_id


# --------------------------------------------------------------------------- retention
def apply_retention(
    backup_dir: Path, retention_days: int, now: float, *, keep: Path | None = None
) -> list[Path]:
    """Delete backups whose name timestamp is more than ``retention_days`` × 24 h before
    ``now`` (never ``keep``, never files with other names); 0 or less keeps everything."""
    removed: list[Path] = []
    if retention_days <= 0:
        return removed
    cutoff = now - retention_days * 86400
    for b in list_backups(backup_dir):
        if b.timestamp < cutoff and (keep is None or b.path != Path(keep)):
            try:
                b.path.unlink()
                removed.append(b.path)
            except OSError as exc:
                log.warning("retention could not delete %s: %s", b.path, exc)
                continue
            with contextlib.suppress(OSError):
                checksum_path(b.path).unlink()
    sums = Path(backup_dir) / CHECKSUM_DIR
    if sums.is_dir():  # orphans (e.g. the checklist's find … -delete)
        for s in sums.glob(f"{PREFIX}*.db.sha256"):
            if not (Path(backup_dir) / s.name[: -len(".sha256")]).exists():
                with contextlib.suppress(OSError):
                    s.unlink()
    if removed:
        log.info("Retention (%d days): deleted %s", retention_days, ", ".join(p.name for p in removed))
    return removed


# --------------------------------------------------------------------------- off-site
def offsite_dir(cfg: Config) -> Path | None:
    if not cfg.backup.offsite_dir:
        return None
    p = Path(os.path.expanduser(cfg.backup.offsite_dir))
    return p if p.is_absolute() else Path(cfg.root) / p


def offsite_argv(command: str, backup_dir: Path, file: Path) -> list[str]:
    """Split ``backup.offsite_command`` (no shell) and fill ``{backup_dir}`` / ``{file}``."""
    parts = shlex.split(command, posix=(os.name != "nt"))
    return [p.replace("{backup_dir}", str(backup_dir)).replace("{file}", str(file)) for p in parts]


def copy_offsite(cfg: Config, backup: Path, now: float) -> list[OffsiteResult]:
    results: list[OffsiteResult] = []
    target = offsite_dir(cfg)
    if target is not None:
        results.append(_copy_to_dir(backup, target, cfg.backup.retention_days, now))
    if cfg.backup.offsite_command:
        results.append(_run_offsite_command(cfg.backup.offsite_command, Path(cfg.backup_dir), backup))
    return results


def _copy_to_dir(backup: Path, target: Path, retention_days: int, now: float) -> OffsiteResult:
    dest = target / backup.name
    tmp = target / f"{TMP_PREFIX}{backup.name}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(backup, tmp)  # safe: a finished backup is a closed, self-contained file
        fsync_file(tmp)
        if sha256_file(tmp) != sha256_file(backup):
            remove_quietly(tmp)
            return OffsiteResult(False, str(target), "the copy's sha256 differs from the backup")
        if os.name == "posix":
            os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
        digest = read_checksum(backup)
        if digest:
            write_checksum(dest, digest)
        apply_retention(target, retention_days, now, keep=dest)
        return OffsiteResult(True, str(target), f"copied {backup.name}")
    except OSError as exc:
        remove_quietly(tmp)
        return OffsiteResult(False, str(target), f"{exc.strerror or exc} ({exc.filename or target})")


def _run_offsite_command(command: str, backup_dir: Path, backup: Path) -> OffsiteResult:
    try:
        argv = offsite_argv(command, backup_dir, backup)
    except ValueError as exc:
        return OffsiteResult(False, command, f"backup.offsite_command cannot be parsed ({exc})")
    if not argv:
        return OffsiteResult(False, command, "backup.offsite_command is empty")
    shown = " ".join(argv)
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=OFFSITE_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return OffsiteResult(False, shown, f"command not found: {argv[0]}")
    except subprocess.TimeoutExpired:
        return OffsiteResult(False, shown, f"timed out after {OFFSITE_TIMEOUT} s")
    except OSError as exc:
        return OffsiteResult(False, shown, str(exc))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or [""]
        return OffsiteResult(False, shown, f"exit code {proc.returncode}: {tail[0][:200]}".rstrip(": "))
    return OffsiteResult(True, shown, "exit code 0")


# --------------------------------------------------------------------------- the script
def print_result(r: BackupResult, cfg: Config) -> int:
    print(f"{OK} Backup created: {r.path}")
    print(
        f"  Size: {fmt_bytes(r.size)}, duration: {r.seconds:.2f} s, integrity_check: {r.verification.integrity}, "
        f"{r.verification.tables} tables, schema version {r.verification.version}"
    )
    print(f"  sha256: {r.sha256} ({display_path(checksum_path(r.path), cfg.root)})")
    days = cfg.backup.retention_days
    policy = f"{days} days" if days > 0 else "keep everything"
    print(f"{OK} Retention ({policy}): {len(r.removed)} old backup(s) deleted, {r.kept} kept")
    code = 0
    for o in r.offsite:
        if o.ok:
            print(f"{OK} Off-site copy: {o.target} ({o.detail})")
        else:
            print(
                f"{FAIL} Off-site copy FAILED: {o.target}: {o.detail}; the local backup is fine — fix the "
                f"off-site target (backup.offsite_dir / backup.offsite_command) and run again."
            )
            code = 1
    return code


def print_list(cfg: Config, *, now: float | None = None) -> int:
    now = time.time() if now is None else now
    backups = list_backups(cfg.backup_dir)
    if not backups:
        print(f"No backups in {cfg.backup_dir}; make one with python backup_database.py")
        return 1
    recorded: dict[str, str] = {}
    try:
        conn = db.connect(cfg.database_path, readonly=True)
        try:
            recorded = {Path(p).name: s for p, s in conn.execute("SELECT path, sha256 FROM backups")}
        finally:
            conn.close()
    except (PolybotError, sqlite3.Error):
        pass
    print(f"Backups in {cfg.backup_dir} (newest last):")
    for b in backups:
        digest = read_checksum(b.path) or recorded.get(b.name)
        mark = "sha256 recorded" if digest else "no checksum"
        print(
            f"  {b.name}  {fmt_bytes(b.size):>10}  {utc_text(b.timestamp)}  ({fmt_ago(now - b.timestamp)}, {mark})"
        )
    print(
        f"{len(backups)} backup(s). Restore one with: python backup_database.py --restore "
        f"{display_path(backups[-1].path, cfg.root)}"
    )
    for stale in stale_temp_files(cfg.backup_dir):
        print(
            f"  ! {stale.name}  {fmt_bytes(stale.stat().st_size):>10}: unfinished temporary file of an "
            f"interrupted backup (not a backup); the next python backup_database.py removes it."
        )
    return 0


def main(args) -> int:
    from ..config import load_config
    from .common import configure_quiet, ops_lock

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)
    if args.list:
        return print_list(cfg)
    if args.restore:
        return restore_main(cfg, args.restore, lock_timeout=args.lock_timeout)
    with ops_lock(cfg, args.lock_timeout, "python backup_database.py"):
        result = create_backup(cfg)
    return print_result(result, cfg)


def add_arguments(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--restore", metavar="FILE", help="restore the database from this backup (the bot must be stopped)"
    )
    group.add_argument("--list", action="store_true", help="list the backups and exit")
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=600,
        metavar="SECONDS",
        help="wait this long for a running maintenance/backup to finish (default 600)",
    )


__all__ = [
    "BackupError",
    "BackupFile",
    "BackupResult",
    "OffsiteResult",
    "Verification",
    "apply_retention",
    "backup_name",
    "checksum_path",
    "copy_database",
    "create_backup",
    "list_backups",
    "name_timestamp",
    "read_checksum",
    "verify_file",
]
