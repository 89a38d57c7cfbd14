"""What a backup file is: its name, where its checksum lives, how to list, verify and copy one.

The ground both :mod:`polybot.ops.backup` (making backups) and :mod:`polybot.ops.restore`
(putting one back) stand on; it imports neither of them.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import db
from .common import utc_stamp

log = logging.getLogger("polybot.backup")

PREFIX = "polymarket_backup_"
BACKUP_RE = re.compile(r"^polymarket_backup_(\d{8})_(\d{6})\.db$")
CHECKSUM_DIR = ".checksums"


@dataclass
class BackupFile:
    path: Path
    timestamp: int  # from the name (UTC)
    size: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Verification:
    integrity: str  # 'ok' or the problem
    tables: int = 0
    version: int = 0

    @property
    def ok(self) -> bool:
        return self.integrity == "ok"


# --------------------------------------------------------------------------- names & listing
def backup_name(now: float) -> str:
    return f"{PREFIX}{utc_stamp(now)}.db"


def name_timestamp(name: str) -> int | None:
    m = BACKUP_RE.match(name)
    if not m:
        return None
    try:
        dt = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(dt.timestamp())


def list_backups(backup_dir: Path) -> list[BackupFile]:
    """Every ``polymarket_backup_YYYYMMDD_HHMMSS.db`` in ``backup_dir``, oldest first."""
    out: list[BackupFile] = []
    d = Path(backup_dir)
    if not d.is_dir():
        return out
    for p in d.iterdir():
        ts = name_timestamp(p.name)
        if ts is not None and p.is_file():
            out.append(BackupFile(p, ts, p.stat().st_size))
    return sorted(out, key=lambda b: (b.timestamp, b.name))


def checksum_path(backup: Path) -> Path:
    return Path(backup).parent / CHECKSUM_DIR / (Path(backup).name + ".sha256")


def read_checksum(backup: Path) -> str | None:
    try:
        text = checksum_path(backup).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return text[0] if text else None


def write_checksum(backup: Path, digest: str) -> Path:
    path = checksum_path(backup)
    db.ensure_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{digest}  {Path(backup).name}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def verify_file(path: Path, *, mmap: bool = False) -> Verification:
    """``integrity_check`` of a backup (opened read-only); never raises. ``mmap`` reads the
    file memory-mapped: ~2.5x less CPU on a large database (7 s instead of 19 s for the
    1.4 GB migration benchmark), for a file nothing else truncates meanwhile (a fresh copy)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        return Verification(f"cannot read file ({exc.strerror})")
    if header != db.SQLITE_HEADER:
        return Verification("not a SQLite database (wrong file header)")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return Verification(f"cannot open ({exc})")
    try:
        if mmap:
            conn.execute("PRAGMA mmap_size = 2147418112")  # SQLite's default ceiling (~2 GB)
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        result = "; ".join(str(r[0]) for r in rows[:5])
        tables = conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        return Verification(result, int(tables), int(version))
    except sqlite3.Error as exc:
        return Verification(str(exc))
    finally:
        conn.close()


# --------------------------------------------------------------------------- the copy
def copy_database(src: sqlite3.Connection, target: Path, *, journal_mode: str = "DELETE") -> None:
    """Copy ``src`` into the new file ``target`` through the backup API, in one step."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    dest = sqlite3.connect(str(target), isolation_level=None)
    try:
        src.backup(dest, pages=-1)
        dest.execute(f"PRAGMA journal_mode = {journal_mode}")
    finally:
        dest.close()


def remove_quietly(*paths: Path) -> None:
    for p in paths:
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                Path(str(p) + suffix).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", p, exc)
