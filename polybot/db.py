"""The one SQLite helper every script uses.

Settings (see docs/dev/api_notes.md §13): WAL journal,
``busy_timeout`` 30 s (cron overlap), ``foreign_keys`` ON, ``synchronous`` FULL
for anything that writes money records (NORMAL is allowed for bulk market data),
autocommit mode with explicit ``BEGIN IMMEDIATE`` transactions through
:func:`atomic`. Schema versions live in ``PRAGMA user_version`` (polybot/schema.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from . import checks
from .errors import DatabaseError
from .schema import LATEST_VERSION, MIGRATIONS
from .snapshots.store import register_functions as register_snapshot_functions

if TYPE_CHECKING:
    from .config import Config

BUSY_TIMEOUT_MS = 30_000
# Header of a SQLite file; only for files no connection of this process has open (backups).
SQLITE_HEADER = b"SQLite format 3\x00"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only (700); tighten an existing one we own."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"Cannot create directory {path} ({exc.strerror}); check that its parent exists and is writable."
        ) from exc
    if os.name == "posix":
        try:
            if path.stat().st_uid == os.getuid():
                os.chmod(path, 0o700)
        except OSError:
            pass
    return path


class Connection(sqlite3.Connection):
    """sqlite3.Connection that this module can track (plain ones take no weak references)."""


_OPEN: dict[str, weakref.WeakSet[Connection]] = {}


def _open_here(path: Path) -> bool:
    """True if this process already holds an open connection to ``path``."""
    for conn in list(_OPEN.get(str(path.resolve()), ())):
        try:
            _ = conn.total_changes  # raises ProgrammingError once the connection is closed
            return True
        except sqlite3.ProgrammingError:  # closed
            continue
    return False


def _check_header(path: Path) -> None:
    """Refuse a file that is not SQLite before SQLite touches it (it could discard the
    file's -wal on close). Only done while no connection of this process has the file
    open: closing any descriptor on a database drops every POSIX lock SQLite holds on it
    in this process, which can corrupt it under concurrent writers."""
    if not path.exists() or path.stat().st_size == 0 or _open_here(path):
        return
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise DatabaseError(f"Cannot read database {path} ({exc.strerror}); check its permissions.") from exc
    if header != SQLITE_HEADER:
        raise _not_sqlite_error(path, "wrong file header")


def _empty_file(path: Path) -> bool:
    """A 0-byte database file with no WAL content beside it (in WAL mode a fresh database's
    pages may live only in ``-wal`` until the first checkpoint, so that case is not empty)."""
    try:
        if not path.exists() or path.stat().st_size > 0:
            return False
        wal = path.with_name(path.name + "-wal")
        return not (wal.exists() and wal.stat().st_size > 0)
    except OSError:
        return False


def _not_sqlite_error(path: Path, exc: Exception | str) -> DatabaseError:
    return DatabaseError(
        f"{path} is not a SQLite database ({exc}); point database_path at the right "
        f"file or restore it with python backup_database.py --restore FILE."
    )


def _refuse_missing_or_empty(path: Path, *, readonly: bool, create: bool) -> None:
    """Refuse a missing file (unless creating) and a 0-byte one, with the command that fixes it."""
    if not readonly and not create and not path.exists():
        raise DatabaseError(f"Database {path} does not exist; run python initialize_db.py first.")
    if readonly and not path.exists():
        raise DatabaseError(f"Database {path} does not exist; run python initialize_db.py first.")
    if not create and _empty_file(path):
        raise DatabaseError(
            f"Database {path} exists but is empty (0 bytes); if it held your history "
            f"restore it with python backup_database.py --restore FILE, if this is a new "
            f"install delete it and run python initialize_db.py."
        )


def _create_private_file(path: Path) -> None:
    """Create ``path`` (mode 0600, in a private folder) if it does not exist yet."""
    ensure_private_dir(path.parent)
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise DatabaseError(
                f"Cannot create database {path} ({exc.strerror}); check that {path.parent} is writable."
            ) from exc


def _open_sqlite(
    path: Path, *, readonly: bool, check_same_thread: bool, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> Connection:
    """The raw sqlite3 connection (read-only through a ``mode=ro`` URI), no settings applied."""
    if readonly:
        uri = path.resolve().as_uri() + "?mode=ro"
        return sqlite3.connect(
            uri,
            uri=True,
            timeout=busy_timeout_ms / 1000,
            factory=Connection,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )
    return sqlite3.connect(
        str(path),
        timeout=busy_timeout_ms / 1000,
        factory=Connection,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )


def connect(
    path: Path | str,
    *,
    readonly: bool = False,
    create: bool = False,
    synchronous: str = "FULL",
    check_same_thread: bool = True,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> sqlite3.Connection:
    """Open the database with the project's settings.

    ``create``: allow creating a new file (only initialize_db and tests do);
    otherwise a missing file is an error that tells the operator what to run.
    ``busy_timeout_ms``: how long a statement waits for another connection's lock (a
    Telegram command answers "busy" after a few seconds instead of the scripts' 30 s).
    """
    path = Path(path)
    _refuse_missing_or_empty(path, readonly=readonly, create=create)
    _check_header(path)
    if create:
        _create_private_file(path)
    try:
        conn = _open_sqlite(
            path, readonly=readonly, check_same_thread=check_same_thread, busy_timeout_ms=busy_timeout_ms
        )
        _OPEN.setdefault(str(path.resolve()), weakref.WeakSet()).add(conn)
        conn.row_factory = sqlite3.Row
        register_snapshot_functions(conn)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "encrypted" in str(exc):
                raise _not_sqlite_error(path, exc) from exc
            raise
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
    except sqlite3.DatabaseError as exc:
        raise explain_sqlite_error(path, exc, "Cannot open database") from exc
    return conn


def filesystem_problem(folder: Path | str) -> str | None:
    """ "read-only" or "full" when the filesystem holding ``folder`` is, else None. SQLite
    reports both as a bare "disk I/O error" or "unable to open database file" when it
    cannot create its -wal/-shm files, so the cause is read from the filesystem itself."""
    if not hasattr(os, "statvfs"):
        try:
            return "full" if shutil.disk_usage(folder).free < 64 * 1024 else None
        except OSError:
            return None
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & getattr(os, "ST_RDONLY", 1):
        return "read-only"
    if st.f_bavail * st.f_frsize < 64 * 1024:
        return "full"
    return None


def explain_sqlite_error(path: Path | str, exc: BaseException, doing: str = "Database") -> DatabaseError:
    """One sentence that names the real cause of a SQLite failure and its fix.

    A read-only filesystem, a full disk and a damaged file all surface as
    ``sqlite3.DatabaseError``; advising a restore for the first two would overwrite a
    healthy database, so only a damaged file gets the restore advice. The returned
    error's ``cause`` is one of full | read-only | permissions | locked | damaged | other.
    """
    path = Path(path)
    folder = path.parent
    text = str(exc)
    low = text.lower()
    damaged = any(w in low for w in ("malformed", "not a database", "encrypted", "corrupt"))
    fs = None if damaged else filesystem_problem(folder)
    if fs == "read-only":
        cause, msg = (
            fs,
            (
                f"the filesystem holding {folder} is mounted read-only ({text}); remount it "
                f"read-write — the database itself is not damaged"
            ),
        )
    elif fs == "full" or "full" in low:
        cause, msg = (
            "full",
            (
                f"the disk holding {folder} is full ({text}); free disk space and run again — "
                f"nothing committed is lost"
            ),
        )
    elif any(w in low for w in ("readonly", "read-only", "unable to open", "permission")):
        writable = os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))
        cause, msg = (
            (
                "permissions",
                f"{folder} or the file is not writable by this user ({text}); fix the "
                f"permissions (the owner needs read and write, e.g. chmod 700 {folder}) "
                f"— the database itself is not damaged",
            )
            if not writable
            else (
                "read-only",
                f"SQLite cannot open or write it ({text}); check that the disk is mounted "
                f"read-write and the file is not held by another user",
            )
        )
    elif "locked" in low or "busy" in low:
        cause, msg = (
            "locked",
            (
                f"the database stayed locked for 30 s by another process ({text}); check for "
                f"a stuck job (python health_check.py) and run again"
            ),
        )
    elif damaged:
        cause, msg = (
            "damaged",
            (
                f"the file is damaged ({text}); stop the bot and the collector, check it with "
                f"python maintain_database.py and restore the newest good backup with "
                f"python backup_database.py --restore FILE"
            ),
        )
    else:
        cause, msg = (
            "other",
            (
                f"SQLite failed ({text}); run python maintain_database.py to check its "
                f"integrity before anything else"
            ),
        )
    err = DatabaseError(f"{doing} {path}: {msg}.")
    err.cause = cause
    return err


@contextlib.contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; roll back on any exception.

    Nested use becomes a SAVEPOINT, so helpers can be composed.
    """
    if conn.in_transaction:
        name = f"sp_{id(conn)}_{time.monotonic_ns()}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, *, now: int | None = None) -> list[int]:
    """Apply every pending migration in order; return the versions applied.

    Each migration runs in the same transaction as its record, so a failed one
    leaves the database at the previous version.
    """
    current = schema_version(conn)
    if current > LATEST_VERSION:
        raise DatabaseError(
            f"Database schema version {current} is newer than this code supports "
            f"({LATEST_VERSION}); update polybot (git pull) before using it."
        )
    applied = []
    now = int(time.time()) if now is None else now
    for version, name, sql in MIGRATIONS:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            if callable(sql):
                sql(conn)
            else:
                for statement in _split_sql(sql):
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?,?,?)",
                (version, name, now),
            )
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _split_sql(sql: str) -> list[str]:
    """Split a schema script into statements (no triggers or string literals with ';')."""
    lines = [ln.split("--", 1)[0] for ln in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def quick_check(conn: sqlite3.Connection, *, full: bool = False) -> str:
    """``PRAGMA quick_check`` (or ``integrity_check``): 'ok' or the first problems
    (:func:`polybot.checks.database`, the one implementation of this check)."""
    result = checks.database(conn, full=full)
    return "ok" if result.ok else str(result.value)


def open_database(
    cfg: Config, *, readonly: bool = False, synchronous: str = "FULL", check_same_thread: bool = True
) -> sqlite3.Connection:
    """Open the configured database and make sure its schema is current."""
    conn = connect(
        cfg.database_path, readonly=readonly, synchronous=synchronous, check_same_thread=check_same_thread
    )
    try:
        version = schema_version(conn)
        empty = version == 0 and not tables(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise explain_sqlite_error(cfg.database_path, exc, "Reading database") from exc
    if empty:
        # A 0-byte or table-less file is NOT a new database: a crash, a full disk or a bad
        # copy can leave one where the history was. Never migrate it silently (issue 15 #6).
        conn.close()
        raise DatabaseError(
            f"Database {cfg.database_path} exists but is empty (no tables); if it held "
            f"your history restore it with python backup_database.py --restore FILE, "
            f"if this is a new install run python initialize_db.py."
        )
    if version < LATEST_VERSION:
        if readonly:
            conn.close()
            raise DatabaseError(
                f"Database schema is at version {version}, expected {LATEST_VERSION}; "
                f"run python initialize_db.py to migrate it."
            )
        try:
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise explain_sqlite_error(cfg.database_path, exc, "Migrating database") from exc
    return conn


def tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


# ------------------------------------------------------------------ bot_state helpers
def get_state(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM bot_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def set_state(conn: sqlite3.Connection, key: str, value: str | None, *, now: int | None = None) -> None:
    now = int(time.time()) if now is None else now
    conn.execute(
        "INSERT INTO bot_state(key, value, updated_at) VALUES (?,?,?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, now),
    )


class InitResult(TypedDict):
    """What :func:`initialize` did, for the operator's summary."""

    path: Path
    created: bool
    before: int  # schema version before (0: new file)
    version: int  # schema version now
    applied: list[int]  # migrations run
    tables: list[str]
    check: str  # quick_check: 'ok' or the first problems


def initialize(path: Path) -> InitResult:
    """Create (or open) the database at ``path`` and migrate it to the latest schema.

    Safe to run twice: existing data is never touched, only missing migrations run.
    Returns what happened, for the operator's summary.
    """
    path = Path(path)
    if _empty_file(path):
        raise DatabaseError(
            f"Database {path} exists but is 0 bytes; if it held your history restore "
            f"it with python backup_database.py --restore FILE, if you want a new "
            f"database delete the file and run python initialize_db.py again."
        )
    existed = path.exists()
    conn = connect(path, create=True)
    try:
        before = schema_version(conn)
        applied = migrate(conn)
        result: InitResult = {
            "path": path,
            "created": not existed,
            "before": before,
            "version": schema_version(conn),
            "applied": applied,
            "tables": tables(conn),
            "check": quick_check(conn),
        }
    except sqlite3.DatabaseError as exc:
        raise explain_sqlite_error(path, exc, "Initializing database") from exc
    finally:
        conn.close()
    if os.name == "posix":
        os.chmod(path, 0o600)
    return result
