"""What the bot persists about itself: heartbeat, PID file, the single-instance lock,
and the latched halt (circuit breakers / emergency stop).

bot_state keys (the shared contract, read by health_check.py and the dashboard):
``heartbeat`` (epoch s), ``pid``, ``mode`` (paper|live), ``started_at``, ``halted``
("1"/"0"), ``halt_reason``, ``halt_breaker``. PID file: ``<database dir>/trading_bot.pid``.

A halt is written to ``bot_state`` AND as a ``halts`` row in one transaction. If the
database cannot be written (the database breaker), the halt goes to the fallback file
``<database dir>/trading_bot.halted`` so that a restart still refuses to trade.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from polybot import db
from polybot.config import Config
from polybot.errors import PolybotError

log = logging.getLogger("polybot.engine")

PID_FILE = "trading_bot.pid"
LOCK_FILE = "trading_bot.lock"
HALT_FILE = "trading_bot.halted"


def pid_path(cfg: Config) -> Path:
    return Path(cfg.database_path).parent / PID_FILE


def halt_file_path(cfg: Config) -> Path:
    return Path(cfg.database_path).parent / HALT_FILE


# ----------------------------------------------------------------------------- instance lock
class InstanceLock:
    """An OS lock on ``<database dir>/trading_bot.lock``: one bot per database.

    The OS releases it when the process dies (even on kill -9), so a stale lock
    never blocks a restart."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 — the open file IS the lock; release() closes it
        try:
            if sys.platform == "win32":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            pid = _read_pid(self.path.parent / PID_FILE)
            who = f" (PID {pid})" if pid else ""
            raise PolybotError(
                f"Another trading bot is already running on this database{who}; "
                f"stop it with touch EMERGENCY_STOP or check python health_check.py."
            ) from None
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            finally:
                self._fh = None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid_file(path: Path, pid: int) -> None:
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, path)


def remove_pid_file(path: Path, pid: int) -> None:
    if _read_pid(path) == pid:
        with contextlib.suppress(OSError):
            path.unlink()


def write_heartbeat(conn: sqlite3.Connection, *, mode: str, pid: int, started_at: int, now: int) -> None:
    with db.atomic(conn):
        db.set_state(conn, "heartbeat", str(int(now)), now=now)
        db.set_state(conn, "pid", str(pid), now=now)
        db.set_state(conn, "mode", mode, now=now)
        db.set_state(conn, "started_at", str(int(started_at)), now=now)


# ----------------------------------------------------------------------------- halts
@dataclass(frozen=True)
class Halt:
    breaker: str
    reason: str
    since: int | None = None
    source: str = "database"  # "database" | "file"


def current_halt(conn: sqlite3.Connection | None, cfg: Config) -> Halt | None:
    """The active halt, from the database or (if it could not be written) the fallback file."""
    path = halt_file_path(cfg)
    if path.exists():
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return Halt(
                str(d.get("breaker", "database")), str(d.get("reason", "unknown")), d.get("ts"), source="file"
            )
        except (OSError, ValueError):
            return Halt("database", f"unreadable halt file {path}", None, source="file")
    if conn is None:
        return None
    if db.get_state(conn, "halted") == "1":
        row = conn.execute(
            "SELECT timestamp FROM halts WHERE cleared_at IS NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return Halt(
            db.get_state(conn, "halt_breaker") or "unknown",
            db.get_state(conn, "halt_reason") or "",
            int(row[0]) if row else None,
        )
    return None


def persist_halt(
    conn: sqlite3.Connection | None,
    cfg: Config,
    *,
    mode: str,
    breaker: str,
    reason: str,
    details: str = "",
    now: int,
) -> str:
    """Latch the halt. Returns where it was stored ("database" and/or the fallback file).
    Never raises: a halt that cannot be written anywhere is returned as "nowhere (…)"
    so that the caller still alerts and stops (issue 15 #1: a full disk raised here and
    the Telegram alert was never sent).

    The database breaker always writes the fallback file too: the operator's fix is to
    restore a backup, which would otherwise bring back a database without the halt."""
    stored: list[str] = []
    problems: list[str] = []

    def to_file() -> None:
        try:
            stored.append(
                _write_halt_file(cfg, mode=mode, breaker=breaker, reason=reason, details=details, now=now)
            )
        except OSError as exc:
            problems.append(f"{halt_file_path(cfg)}: {exc.strerror or exc}")

    if breaker == "database":
        to_file()
    if conn is not None:
        try:
            with db.atomic(conn):
                conn.execute(
                    "INSERT INTO halts(timestamp, mode, breaker, reason, details) VALUES (?,?,?,?,?)",
                    (int(now), mode, breaker, reason, details or None),
                )
                db.set_state(conn, "halted", "1", now=now)
                db.set_state(conn, "halt_reason", reason, now=now)
                db.set_state(conn, "halt_breaker", breaker, now=now)
            stored.insert(0, "database")
            return " and ".join(stored)
        except (sqlite3.Error, PolybotError) as exc:
            problems.append(f"database: {exc}")
            log.error("could not write the halt to the database (%s); using %s", exc, halt_file_path(cfg))
    if not stored:
        to_file()
    if stored:
        return " and ".join(stored)
    log.critical("the halt could not be recorded anywhere (%s)", "; ".join(problems))
    return f"nowhere ({'; '.join(problems)})"


def reserve_halt_file(cfg: Config) -> None:
    """Pre-allocate the space a halt needs, at start-up while the disk has room: on a full
    disk ``_write_halt_file`` rewrites this file in place (no new blocks) and renames it,
    so the halt is latched even then. Best effort: a failure here is only logged."""
    path = _reserve_path(cfg)
    try:
        if path.exists() and path.stat().st_size >= RESERVE_BYTES:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b" " * RESERVE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("could not reserve space for a halt record at %s (%s)", path, exc.strerror or exc)


RESERVE_BYTES = 8192


def _reserve_path(cfg: Config) -> Path:
    return halt_file_path(cfg).with_name(HALT_FILE + ".reserve")


def _write_halt_file(cfg: Config, *, mode: str, breaker: str, reason: str, details: str, now: int) -> str:
    path = halt_file_path(cfg)
    record = json.dumps(
        {"breaker": breaker, "reason": reason, "details": details, "ts": int(now), "mode": mode}
    ).encode("utf-8")
    tmp = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(record)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return f"file {path}"
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # never leave a 0-byte trading_bot.tmp behind
        reserve = _reserve_path(cfg)
        if not reserve.exists():
            raise
    # The disk is full: overwrite the reserved blocks in place and rename them into place.
    compact = json.dumps(
        {"breaker": breaker, "reason": reason[:2000], "details": details[:2000], "ts": int(now), "mode": mode}
    ).encode("utf-8")[:RESERVE_BYTES]
    fd = os.open(reserve, os.O_WRONLY)
    try:
        os.write(fd, compact.ljust(os.fstat(fd).st_size, b" "))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(reserve, path)
    return f"file {path}"


def clear_halt(
    conn: sqlite3.Connection, cfg: Config, *, by: str, now: int, exchange_now: int | None = None
) -> int:
    """Clear the latched halt (operator restart). Returns how many halts rows were cleared.

    Clearing a daily-loss halt acknowledges that day's loss (bot_state ``daily_loss_ack_day``):
    the breaker does not trip again that UTC day, while the risk manager still blocks new
    entries until 00:00 UTC (exits and stop losses go on)."""
    breaker = db.get_state(conn, "halt_breaker")
    with db.atomic(conn):
        if breaker == "daily_loss" and exchange_now is not None:
            db.set_state(
                conn, "daily_loss_ack_day", str(int(exchange_now) - int(exchange_now) % 86_400), now=now
            )
        n = conn.execute(
            "UPDATE halts SET cleared_at=?, cleared_by=? WHERE cleared_at IS NULL", (int(now), by)
        ).rowcount
        db.set_state(conn, "halted", "0", now=now)
        db.set_state(conn, "halt_reason", "", now=now)
        db.set_state(conn, "halt_breaker", "", now=now)
    path = halt_file_path(cfg)
    if path.exists():
        path.unlink()
    return n
