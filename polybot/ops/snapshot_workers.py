"""What runs beside the writer of ``maintain_database.py --migrate``.

- :class:`Prefetcher`: a process that reads and prepares the next batch
  (:func:`polybot.ops.snapshot_batches.read_batch` + ``prepare_batch``) on its own read-only
  connection while the writer moves the current one;
- :class:`Checkpointer`: a thread that copies the WAL into the database file meanwhile, so
  the writer's commits do not wait for the disk.
"""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .. import db
from ..errors import PolybotError
from .snapshot_batches import Ready, prepare_batch, read_batch

log = logging.getLogger("polybot.snapshot_migration")


class ReadAheadFailed(PolybotError):
    """The read-ahead process ended without its last message (nothing of the batch committed)."""


@dataclass
class Finished:
    """The read-ahead process's last message: no more rows; the CPU seconds it used."""

    cpu_seconds: float


def _read_ahead(path: str, n: int, out: Connection) -> None:
    """The read-ahead process: every batch after the last one sent, prepared, then
    :class:`Finished` (or the exception that stopped it). Sending blocks until the writer
    takes the batch, so at most one batch waits; when the writer is gone (killed, or done)
    the pipe breaks and this process ends."""
    try:
        try:
            conn = db.connect(path, readonly=True)
        except BaseException as exc:  # handed to the writer, raised there
            out.send(exc)
            return
        try:
            after: tuple[int, str] | None = None
            while True:
                rows = read_batch(conn, n, after)
                if rows:
                    out.send(prepare_batch(rows).ready())
                if len(rows) < n:
                    out.send(Finished(time.process_time()))
                    return
                after = (rows[-1][0], rows[-1][1])
        except (BrokenPipeError, ConnectionResetError, EOFError):
            return  # the writer is gone
        except BaseException as exc:
            out.send(exc)
        finally:
            conn.close()
    except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
        return
    finally:
        out.close()


class Prefetcher:
    """Reads and prepares the batches one ahead in a process of its own, on its own
    read-only connection, while the caller writes the current one. A process, not a thread:
    both sides are mostly Python, and two threads handing the GIL to each other at every
    row SQLite steps through cost more CPU than the read-ahead saved. What crosses the pipe
    is the small :class:`Ready` part (~40 bytes a row).

    It only reads rows AFTER the last key it handed out, which no batch in flight touches;
    :func:`apply_batch` proves that a batch is the table's first rows when it moves it (the
    rows it deletes and the rows it reads back must be exactly those). Killing the writer
    breaks the pipe, which ends this process."""

    def __init__(self, path: str, n: int):
        self.cpu_seconds = 0.0  # the process's CPU time, once it has finished
        # spawn, not fork: a forked child would inherit the open files — the bot's and the
        # collector's locks among them — and hold them for a moment after the writer is killed
        ctx: Any = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_read_ahead, args=(path, n, child), name="migration-read-ahead", daemon=True
        )
        self._proc.start()
        child.close()  # the child's end: only the child holds it now

    def next(self) -> Ready | None:
        """The next prepared batch; None when the table has no more rows."""
        try:
            item = self._pipe.recv()
        except (EOFError, OSError):  # OSError: the pipe ended inside a message
            self._proc.join(timeout=5)
            raise ReadAheadFailed(
                "The migration's read-ahead process stopped unexpectedly (exit code "
                f"{self._proc.exitcode}); nothing of the next batch was committed — run python "
                "maintain_database.py --migrate again to resume (check free memory if it repeats)."
            ) from None
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Finished):
            self.cpu_seconds = item.cpu_seconds
            return None
        return item

    def close(self) -> None:
        self._pipe.close()  # a child blocked sending gets a broken pipe and ends
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)


class Checkpointer:
    """Copies the WAL's committed pages into the database file on a connection of its own,
    every ``every`` seconds, while the batches are written: the writer's own checkpoints
    (``wal_autocheckpoint``, at a commit) found them already copied and synced, so the
    committing thread no longer waits for the disk (~2 µs a row, ~10 s for the benchmark).
    A PASSIVE checkpoint never waits for or blocks the writer or a reader; SQLite keeps a
    checkpoint safe against a kill at any point. A failure is logged and ends the thread
    (the writer's own checkpoints go on)."""

    def __init__(self, path: str, every: float = 0.25):
        self._path, self._every = path, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="migration-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = db.connect(self._path, synchronous="NORMAL")
        except (PolybotError, sqlite3.Error) as exc:
            log.warning("background WAL checkpoints not started: %s", exc)
            return
        try:
            while not self._stop.wait(self._every):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("background WAL checkpoints stopped: %s", exc)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
