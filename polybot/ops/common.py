"""Helpers shared by the operations scripts (backup, restore, maintenance, health, reports,
scheduler, pre-launch): the ops lock, the trading bot's liveness, disk space, formatting.

The bot's liveness follows the shared contract (docs/dev/CONVENTIONS.md): the bot writes
``<database dir>/trading_bot.pid`` and the ``bot_state`` keys ``heartbeat`` (epoch s), ``pid``,
``mode``, ``halted``, ``halt_reason``. "Running" means the PID file names a live process;
"healthy" additionally needs a heartbeat younger than ``health.heartbeat_max_age_seconds``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..checks import free_bytes
from ..config import Config
from ..errors import PolybotError
from ..timefmt import file_stamp

OK, FAIL, WARN = "✓", "✗", "⚠"
PID_FILE_NAME = "trading_bot.pid"
HALT_FILE_NAME = "trading_bot.halted"
GB = 1024**3


class OpsLocked(PolybotError):
    """Another backup, restore or maintenance run holds the ops lock."""


def quiet_console() -> None:
    """Keep log records off the console: the ops scripts print their own lines (and
    ``run_script`` its one-sentence error); the log file still gets everything."""
    for h in logging.getLogger().handlers:
        if getattr(h, "_polybot", False) and type(h) is logging.StreamHandler:
            h.setLevel(logging.CRITICAL + 1)


def configure_quiet(cfg: Config) -> None:
    from ..logs import configure_from

    configure_from(cfg)
    quiet_console()


def send_alerts(
    cfg: Config,
    alerts: list[tuple[str, str, str]],
    *,
    conn: sqlite3.Connection | None = None,
    timeout: float = 10.0,
) -> None:
    """Send (level, key, message) alerts and wait up to ``timeout`` s for them to be stored and
    delivered (the Alerter works in the background; what is still undelivered is stored as
    pending for the next process). Never raises."""
    if not alerts:
        return
    try:
        from ..alerts import Alerter

        alerter = Alerter(cfg, conn)
    except Exception:  # alerts must never break an ops script
        logging.getLogger("polybot.ops").exception("could not create the alerter")
        return
    try:
        for level, key, message in alerts:
            alerter.send(level, key, message)
    finally:
        with contextlib.suppress(Exception):  # alerts must never break an ops script
            alerter.close(timeout)


def send_alert(
    cfg: Config,
    level: str,
    key: str,
    message: str,
    *,
    conn: sqlite3.Connection | None = None,
    timeout: float = 10.0,
) -> None:
    send_alerts(cfg, [(level, key, message)], conn=conn, timeout=timeout)


# --------------------------------------------------------------------------- lock
def lock_path(cfg: Config) -> Path:
    return cfg.database_path.with_name(cfg.database_path.name + ".ops.lock")


@contextlib.contextmanager
def ops_lock(cfg: Config, timeout: float, command: str) -> Iterator[Path]:
    """Hold the lock that serialises backup, restore and maintenance (filelock).

    Waits up to ``timeout`` seconds, then raises :class:`OpsLocked` with one sentence.
    """
    from filelock import FileLock, Timeout

    from ..db import ensure_private_dir

    path = lock_path(cfg)
    ensure_private_dir(path.parent)
    lock = FileLock(str(path), timeout=timeout, mode=0o600)
    try:
        lock.acquire()
    except Timeout:
        raise OpsLocked(
            f"Another backup, restore or maintenance run holds {path} (waited {timeout:g} s); "
            f"wait for it to finish, then run {command} again."
        ) from None
    try:
        yield path
    finally:
        lock.release()


# --------------------------------------------------------------------------- the bot
def pid_file_path(cfg: Config) -> Path:
    return cfg.database_path.parent / PID_FILE_NAME


def read_pid(path: Path) -> int | None:
    """The first integer in the PID file, or None if it is missing or unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return None
    if not text:
        return None
    try:
        pid = int(text[0])
    except ValueError:
        return None
    return pid if pid > 0 else None


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists and is not a zombie (never signals it)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except (OSError, IndexError):
            pass
    return True


@dataclass
class BotStatus:
    pid_file: Path
    pid: int | None  # from the PID file
    alive: bool  # that process exists
    heartbeat: int | None  # bot_state heartbeat (epoch s)
    heartbeat_age: float | None
    max_age: float
    halted: bool
    halt_reason: str | None
    mode: str | None
    db_error: str | None = None  # why bot_state could not be read
    state_pid: int | None = None  # bot_state pid: the process that wrote the heartbeat

    @property
    def fresh(self) -> bool:
        return self.heartbeat_age is not None and self.heartbeat_age <= self.max_age

    @property
    def heartbeat_writer_gone(self) -> bool:
        """The heartbeat's own process (bot_state pid) no longer exists: a bot that just stopped."""
        return self.state_pid is not None and not pid_alive(self.state_pid)

    @property
    def maybe_running(self) -> bool:
        """What restore must respect: a live PID, or a fresh heartbeat whose writer may still live."""
        return self.alive or (self.fresh and not self.heartbeat_writer_gone)


def open_readonly(cfg: Config) -> sqlite3.Connection:
    from ..db import connect

    return connect(cfg.database_path, readonly=True)


def bot_status(cfg: Config, conn: sqlite3.Connection | None = None, *, now: float | None = None) -> BotStatus:
    """Read the PID file and bot_state (read-only); never raises."""
    now = time.time() if now is None else now
    pf = pid_file_path(cfg)
    pid = read_pid(pf)
    alive = pid_alive(pid) if pid else False
    hb = halted = reason = mode = err = state_pid = None
    own = None
    try:
        if conn is None:
            own = conn = open_readonly(cfg)
        rows = dict(
            conn.execute(
                "SELECT key, value FROM bot_state WHERE key IN "
                "('heartbeat','halted','halt_reason','mode','pid')"
            ).fetchall()
        )
        try:
            state_pid = int(rows["pid"]) if rows.get("pid") else None
        except ValueError:
            state_pid = None
        if rows.get("heartbeat"):
            try:
                hb = int(float(rows["heartbeat"]))
            except ValueError:
                hb = None
        halted = rows.get("halted") == "1"
        reason, mode = rows.get("halt_reason"), rows.get("mode")
    except (PolybotError, sqlite3.Error) as exc:
        err = str(exc)
    finally:
        if own is not None:
            own.close()
    halt_file = pf.with_name(HALT_FILE_NAME)  # the bot's fallback when the database is unwritable
    if halt_file.exists():
        halted = True
        reason = reason or f"halt recorded in {halt_file.name}"
    return BotStatus(
        pf,
        pid,
        alive,
        hb,
        (now - hb) if hb is not None else None,
        float(cfg.health.heartbeat_max_age_seconds),
        bool(halted),
        reason,
        mode,
        err,
        state_pid,
    )


# --------------------------------------------------------------------------- files & disk
def disk_free(path: Path) -> int:
    """Free bytes on the filesystem holding ``path`` (or its nearest existing ancestor)."""
    return free_bytes(path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def db_size(path: Path) -> int:
    """Size of the database file plus its -wal (what a copy must hold)."""
    total = 0
    for suffix in ("", "-wal"):
        p = Path(str(path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total


# --------------------------------------------------------------------------- formatting
def fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def fmt_gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


def fmt_ago(seconds: float) -> str:
    """'23 minutes ago', '5 hours ago', '3 days ago' (seconds ≥ 0)."""
    seconds = max(0.0, float(seconds))
    minutes = seconds / 60
    if minutes < 120:
        m = int(minutes)
        return f"{m} minute{'s' if m != 1 else ''} ago"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.0f} hours ago"
    return f"{hours / 24:.0f} days ago"


def utc_stamp(now: float | None = None) -> str:
    """YYYYMMDD_HHMMSS in UTC (backup and restore names): :func:`polybot.timefmt.file_stamp` of
    ``now`` (default: the wall clock)."""
    return file_stamp(time.time() if now is None else now)


def display_path(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (or the current directory) when it is inside it."""
    path = Path(path)
    for b in ([Path(base)] if base else []) + [Path.cwd()]:
        try:
            return str(path.resolve().relative_to(b.resolve()))
        except (ValueError, OSError):
            continue
    return str(path)
