"""``python maintain_database.py --migrate``: move market data to the compact layout (schema 6).

Schema version 6 (:mod:`polybot.snapshots.store`) keeps a database's old snapshot rows in
``market_snapshots_legacy`` and shows them through the ``snapshot_values`` view until this
command moves them. What it does:

1. **refuses while the trading bot runs** (its PID file names a live process, its heartbeat
   is fresh, or it holds ``trading_bot.lock``) and then holds the bot's lock itself, so no bot
   starts half-way; the caller holds the ops lock (no backup, restore or maintenance at the
   same time); it waits for a running collection and holds the collector's lock
   (``collect_market_data.lock``) to the end: a cron collection meanwhile exits with
   "another collection is running" and the next one after the migration collects again;
2. takes a **verified backup** (:func:`polybot.ops.backup.create_backup`) before changing
   anything — and upgrades the schema to version 6 after it when needed;
3. drops the old table's (token_id, timestamp) index (deleting the moved rows from it would
   cost more than it serves; the old table goes at the end anyway), then
   moves the rows in batches (``--batch-rows``, 50,000) in primary-key order, ONE
   transaction each (:func:`polybot.ops.snapshot_batches.apply_batch`): insert compact, compare
   every value read through the view's SQL with the legacy row (in SQL) and the checksums,
   delete exactly those legacy rows,
   and record the progress in ``bot_state`` (``snapshot_migration.*``: the legacy row count
   at the start, rows moved, the running checksums); the next batch is read and packed
   meanwhile in a read-ahead process on a read-only connection
   (:class:`~polybot.ops.snapshot_workers.Prefetcher`); WAL checkpoints run on a thread of
   their own (:class:`~polybot.ops.snapshot_workers.Checkpointer`). A kill at any moment loses at most the
   batch in flight; the next run resumes where the last commit left off;
4. at the end checks rows moved == the count at the start and the two checksums, drops the
   old table (its index goes with it), recreates the view without the old table, records
   the outcome (``bot_state`` ``snapshot_migration.done`` and a ``job_runs`` row) and prints
   a summary;
5. VACUUM gives the old table's pages back to the disk. It rewrites only the live data, so it
   is quick after the migration (3.8 s for the 4.32 M-row benchmark: 1.49 GB → 0.29 GB);
   ``--no-vacuum`` leaves the pages free inside the file (new rows reuse them; the weekly
   ``python maintain_database.py`` VACUUMs). Skipped with a warning when the disk has less
   than twice the live data free.

Run on a database with nothing to move it says so and exits 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import db
from ..config import Config
from ..errors import PolybotError
from ..schema import LATEST_VERSION
from ..snapshots import store
from .common import FAIL, OK, WARN, bot_status, db_size, disk_free, display_path, fmt_bytes
from .snapshot_batches import MASK64, MigrationMismatch, apply_batch, prepare
from .snapshot_workers import Checkpointer, Prefetcher

log = logging.getLogger("polybot.snapshot_migration")

DEFAULT_BATCH = 50_000
STATE = "snapshot_migration"
K_TOTAL = f"{STATE}.total"  # legacy rows when the migration started
K_MOVED = f"{STATE}.moved"
K_CHECKSUM = f"{STATE}.checksum"  # running checksum of the moved rows as read through the view
K_LEGACY_CHECKSUM = f"{STATE}.legacy_checksum"  # … and of the legacy rows they replaced
K_STARTED = f"{STATE}.started_at"
K_BACKUP = f"{STATE}.backup"
K_DONE = f"{STATE}.done"  # JSON summary of the finished migration
LEGACY_INDEX = "idx_snapshots_token_time"  # schema 1's index on the old table
PROGRESS_KEYS = (K_TOTAL, K_MOVED, K_CHECKSUM, K_LEGACY_CHECKSUM, K_STARTED, K_BACKUP)


class MigrationRefused(PolybotError):
    """The migration was not started or could not go on (nothing half-done is committed)."""


@dataclass
class MigrationResult:
    status: str  # 'nothing' | 'done'
    moved: int = 0  # rows moved by this run
    total: int = 0  # legacy rows at the start of the migration (all runs)
    checksum: int = 0
    seconds: float = 0.0  # the whole run (backup and VACUUM included)
    move_seconds: float = 0.0  # moving and verifying the rows
    backup_seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of this process and its read-ahead over the whole run
    move_cpu: float = 0.0  # … moving and verifying the rows (the read-ahead process included)
    read_ahead_cpu: float = 0.0  # the read-ahead process (reading, parsing, packing, hashing)
    backup_cpu: float = 0.0
    vacuum_cpu: float = 0.0
    size_before: int = 0
    size_after: int = 0
    free_bytes: int = 0  # free pages left in the file (given back by VACUUM)
    vacuumed: bool = False
    vacuum_seconds: float = 0.0
    backup: str | None = None
    resumed: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.moved / self.move_seconds if self.move_seconds > 0 else 0.0


def pending(conn: sqlite3.Connection) -> bool:
    """True when the database still has old-layout snapshot rows (or is below schema 6)."""
    if db.schema_version(conn) < LATEST_VERSION:
        return True
    return store.has_legacy(conn)


def pending_rows(conn: sqlite3.Connection) -> int | None:
    """Old-layout rows waiting for the migration (None when there is no old table)."""
    if store.has_legacy(conn):
        return int(conn.execute(f"SELECT COUNT(*) FROM {store.LEGACY_TABLE}").fetchone()[0])
    if db.schema_version(conn) < LATEST_VERSION:
        row = conn.execute(
            "SELECT 1 FROM pragma_table_info('market_snapshots') WHERE name = 'token_id'"
        ).fetchone()  # the table of schemas 1-5 (schema 6 reuses the name for the compact table)
        if row:
            return int(conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0])
    return None


# --------------------------------------------------------------------------- locks
@contextlib.contextmanager
def _exclusive(cfg: Config, lock_timeout: float, emit: Callable[[str], object]) -> Iterator[None]:
    """Hold the trading bot's single-instance lock and the collector's lock."""
    from filelock import FileLock, Timeout

    from ..collect.common import COLLECT_LOCK, data_dir
    from ..engine.state import LOCK_FILE, InstanceLock

    folder = Path(cfg.database_path).parent
    bot = InstanceLock(folder / LOCK_FILE)
    try:
        bot.acquire()
    except PolybotError:
        raise MigrationRefused(
            f"A trading bot holds {LOCK_FILE} in {folder}, so it is running; stop it first "
            f"(touch EMERGENCY_STOP and wait), then run python maintain_database.py --migrate again."
        ) from None
    try:
        collector = FileLock(str(data_dir(cfg) / COLLECT_LOCK), timeout=0)
        try:
            collector.acquire()
        except Timeout:
            emit(f"Waiting up to {lock_timeout:g} s for the running collection to finish...")
            try:
                collector.acquire(timeout=lock_timeout)
            except Timeout:
                raise MigrationRefused(
                    f"A collection still holds {COLLECT_LOCK} after {lock_timeout:g} s; check "
                    f"python health_check.py, then run python maintain_database.py --migrate again."
                ) from None
        try:
            yield
        finally:
            collector.release()
    finally:
        bot.release()


def _refuse_if_bot_runs(cfg: Config) -> None:
    status = bot_status(cfg)
    if status.alive:
        raise MigrationRefused(
            f"The trading bot is running (PID {status.pid} in {display_path(status.pid_file, cfg.root)}); "
            f"stop it first (touch EMERGENCY_STOP, then stop the process), then run "
            f"python maintain_database.py --migrate again."
        )
    if status.maybe_running:
        raise MigrationRefused(
            f"The trading bot's heartbeat is only {status.heartbeat_age:.0f} s old (limit "
            f"{status.max_age:g} s), so it may still be running; stop it and run "
            f"python maintain_database.py --migrate again once the heartbeat is older."
        )


# --------------------------------------------------------------------------- state
def _state(conn: sqlite3.Connection) -> dict[str, str]:
    marks = ",".join("?" * len(PROGRESS_KEYS))
    rows = conn.execute(f"SELECT key, value FROM bot_state WHERE key IN ({marks})", PROGRESS_KEYS)
    return {k: v for k, v in rows if v is not None}


def _set(conn: sqlite3.Connection, values: dict[str, object]) -> None:
    for k, v in values.items():
        db.set_state(conn, k, str(v))


# --------------------------------------------------------------------------- the command
def migrate_snapshots(
    cfg: Config,
    *,
    batch_rows: int = DEFAULT_BATCH,
    vacuum: bool = True,
    lock_timeout: float = 600,
    emit: Callable[[str], object] = print,
    progress: bool = True,
) -> MigrationResult:
    """The whole migration (the caller holds the ops lock). Raises :class:`MigrationRefused`
    or :class:`MigrationMismatch` with one sentence; see the module docstring."""
    if batch_rows < 1:
        raise MigrationRefused(f"--batch-rows must be at least 1 (got {batch_rows}).")
    path = Path(cfg.database_path)
    conn = db.connect(path)
    try:
        if not pending(conn):
            emit(f"{OK} Nothing to migrate: the market data of {path} is already in the compact layout.")
            return MigrationResult("nothing")
    finally:
        conn.close()
    _refuse_if_bot_runs(cfg)
    with _exclusive(cfg, lock_timeout, emit):
        return _run(cfg, path, batch_rows, vacuum, emit, progress)


def _run(
    cfg: Config, path: Path, batch_rows: int, vacuum: bool, emit: Callable[[str], object], progress: bool
) -> MigrationResult:
    started, cpu0 = time.monotonic(), time.process_time()
    res = MigrationResult("done", size_before=db_size(path))
    conn = db.connect(path, synchronous="NORMAL")
    try:
        conn.execute("PRAGMA cache_size = -131072")  # 128 MB: the batches' pages stay hot
        conn.execute("PRAGMA wal_autocheckpoint = 16384")  # checkpoint every ~64 MB, not 4 MB
        # Debian's SQLite is built with secure_delete on: every page the batches' deletes free
        # would be overwritten with zeros (1.4 GB of extra writes for the benchmark). The moved
        # rows are verified and in the backup, and the closing VACUUM rewrites the file anyway.
        conn.execute("PRAGMA secure_delete = OFF")
        state = _state(conn) if db.schema_version(conn) >= LATEST_VERSION else {}
        backup = state.get(K_BACKUP)
        if state and backup and Path(backup).exists():
            res.resumed = True
            res.backup = backup
            emit(
                f"Resuming: {int(state.get(K_MOVED, 0)):,} of {int(state.get(K_TOTAL, 0)):,} rows were "
                f"moved before; backup taken at the start: {display_path(Path(backup), cfg.root)}"
            )
        else:
            t0, c0 = time.monotonic(), time.process_time()
            res.backup = _backup(cfg, emit)
            res.backup_seconds, res.backup_cpu = time.monotonic() - t0, time.process_time() - c0
        if db.schema_version(conn) < LATEST_VERSION:
            applied = db.migrate(conn)
            emit(
                f"{OK} Schema upgraded to version {LATEST_VERSION} (applied: {', '.join(map(str, applied))})"
            )
        if not store.has_legacy(conn):
            emit(f"{OK} Nothing to migrate: {path} holds no market data in the old layout.")
            res.status = "nothing"
            return res
        if not state:
            total = int(conn.execute(f"SELECT COUNT(*) FROM {store.LEGACY_TABLE}").fetchone()[0])
            with db.atomic(conn):
                _set(
                    conn,
                    {
                        K_TOTAL: total,
                        K_MOVED: 0,
                        K_CHECKSUM: 0,
                        K_LEGACY_CHECKSUM: 0,
                        K_STARTED: int(time.time()),
                        K_BACKUP: res.backup or "",
                    },
                )
            state = _state(conn)
        elif not res.resumed:  # resuming, but the first backup is gone: record the new one
            with db.atomic(conn):
                _set(conn, {K_BACKUP: res.backup or ""})
        t0, c0 = time.monotonic(), time.process_time()
        _move_all(conn, state, batch_rows, emit, progress, res)
        _finish(conn, res, started)
        res.move_seconds = time.monotonic() - t0
        res.move_cpu = time.process_time() - c0 + res.read_ahead_cpu
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        res.free_bytes = _free_bytes(conn)
        if vacuum:
            _vacuum(conn, path, res, emit)
    finally:
        conn.close()
    res.size_after = db_size(path)
    res.seconds = time.monotonic() - started
    res.cpu_seconds = time.process_time() - cpu0 + res.read_ahead_cpu
    _summary(res, emit)
    return res


def _backup(cfg: Config, emit: Callable[[str], object]) -> str:
    from .backup import BackupError, create_backup

    emit("Taking a verified backup first (python backup_database.py)...")
    try:
        b = create_backup(cfg)
    except BackupError as exc:
        raise MigrationRefused(f"{exc} The migration did not start.") from None
    emit(
        f"{OK} Backup: {display_path(b.path, cfg.root)} ({fmt_bytes(b.size)}, integrity_check "
        f"{b.verification.integrity}, {b.seconds:.1f} s)"
    )
    return str(b.path)


def _move_all(
    conn: sqlite3.Connection,
    state: dict[str, str],
    batch_rows: int,
    emit: Callable[[str], object],
    progress: bool,
    res: MigrationResult,
) -> None:
    from tqdm import tqdm

    total = int(state[K_TOTAL])
    moved = int(state[K_MOVED])
    checksum = int(state[K_CHECKSUM])
    legacy_sum = int(state[K_LEGACY_CHECKSUM])
    left = int(conn.execute(f"SELECT COUNT(*) FROM {store.LEGACY_TABLE}").fetchone()[0])
    if moved + left != total:
        raise MigrationRefused(
            f"The old snapshot table holds {left:,} rows but {total - moved:,} were expected "
            f"({total:,} at the start, {moved:,} moved): something changed it during the migration, "
            f"so it cannot be verified; restore the backup {state.get(K_BACKUP) or '(none recorded)'} "
            f"with python backup_database.py --restore FILE and run the migration again."
        )
    res.total = total
    with db.atomic(conn):  # the old (token_id, timestamp) index: deleting the moved rows from it
        conn.execute(f"DROP INDEX IF EXISTS {LEGACY_INDEX}")  # costs more than it serves now
    emit(f"Moving {left:,} of {total:,} snapshot rows to the compact layout in batches of {batch_rows:,}...")
    prepare(conn)
    known = {t for (t,) in conn.execute("SELECT token_id FROM snapshot_tokens")}
    ahead = Prefetcher(conn_path(conn), batch_rows)
    bar = tqdm(
        total=total,
        initial=moved,
        unit="rows",
        unit_scale=True,
        file=sys.stderr,
        disable=not progress,
        desc="Migrating",
        mininterval=0.5,
    )
    checkpoints = Checkpointer(conn_path(conn))
    try:
        while True:
            batch = ahead.next()
            if batch is None:
                break
            with db.atomic(conn):
                b = apply_batch(conn, batch, known)
                if b.rows:
                    moved += b.rows
                    checksum = (checksum + b.checksum) & MASK64
                    legacy_sum = (legacy_sum + b.legacy_checksum) & MASK64
                    _set(conn, {K_MOVED: moved, K_CHECKSUM: checksum, K_LEGACY_CHECKSUM: legacy_sum})
            if not b.rows:
                break
            res.moved += b.rows
            bar.update(b.rows)
            log.debug("migrated %d rows (%d of %d)", b.rows, moved, total)
    finally:
        ahead.close()
        checkpoints.close()
        bar.close()
    res.checksum = checksum
    res.read_ahead_cpu = ahead.cpu_seconds


def conn_path(conn: sqlite3.Connection) -> str:
    """The file of the connection's main database."""
    return str(conn.execute("PRAGMA database_list").fetchone()[2])


def _finish(conn: sqlite3.Connection, res: MigrationResult, started: float) -> None:
    """Verify the totals, then drop the old table and record the outcome — one transaction."""
    with db.atomic(conn):
        state = _state(conn)
        total, moved = int(state[K_TOTAL]), int(state[K_MOVED])
        left = int(conn.execute(f"SELECT COUNT(*) FROM {store.LEGACY_TABLE}").fetchone()[0])
        if left or moved != total or state[K_CHECKSUM] != state[K_LEGACY_CHECKSUM]:
            raise MigrationMismatch(
                f"The migration's totals do not add up ({moved:,} rows moved of {total:,}, {left:,} "
                f"left, checksums {int(state[K_CHECKSUM]):#018x} and "
                f"{int(state[K_LEGACY_CHECKSUM]):#018x}); the old table was kept — run "
                f"python maintain_database.py --migrate again, and report it if it repeats."
            )
        conn.execute(f"DROP TABLE {store.LEGACY_TABLE}")  # its index goes with it
        store.install_view(conn)
        now = int(time.time())
        checksum = int(state[K_CHECKSUM])
        summary = {
            "rows": total,
            "checksum": f"{checksum:016x}",
            "started_at": int(state.get(K_STARTED, now)),
            "finished_at": now,
            "backup": state.get(K_BACKUP) or None,
        }
        db.set_state(conn, K_DONE, json.dumps(summary))
        conn.execute(
            f"DELETE FROM bot_state WHERE key IN ({','.join('?' * len(PROGRESS_KEYS))})", PROGRESS_KEYS
        )
        conn.execute(
            "INSERT INTO job_runs(job, started_at, finished_at, exit_code, duration, detail) "
            "VALUES ('snapshot_migration', ?, ?, 0, ?, ?)",
            (summary["started_at"], now, round(time.monotonic() - started, 3), json.dumps(summary)),
        )
    res.total = total
    res.checksum = checksum


def _free_bytes(conn: sqlite3.Connection) -> int:
    pages = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return pages * int(conn.execute("PRAGMA page_size").fetchone()[0])


def _vacuum(
    conn: sqlite3.Connection, path: Path, res: MigrationResult, emit: Callable[[str], object]
) -> None:
    live = max(path.stat().st_size - res.free_bytes, 0)
    free = disk_free(path.parent)
    if free < 2 * live:
        emit(
            f"{WARN} VACUUM skipped: it needs about twice the live data free ({fmt_bytes(2 * live)}) "
            f"but only {fmt_bytes(free)} is free; free disk space and run python maintain_database.py."
        )
        return
    emit(f"VACUUM: giving {fmt_bytes(res.free_bytes)} of free pages back to the disk...")
    t0, c0 = time.monotonic(), time.process_time()
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    res.vacuumed = True
    res.vacuum_seconds, res.vacuum_cpu = time.monotonic() - t0, time.process_time() - c0
    res.free_bytes = _free_bytes(conn)


def _summary(res: MigrationResult, emit: Callable[[str], object]) -> None:
    if res.status != "done":
        return
    emit(
        f"{OK} Migrated {res.total:,} snapshot rows to the compact layout and verified them "
        f"(row count and checksum {res.checksum:#018x} of the decoded values)"
    )
    emit(
        f"  This run: {res.moved:,} rows moved in {res.move_seconds:.1f} s ({res.rows_per_second:,.0f} rows/s); "
        f"backup {res.backup_seconds:.1f} s; {res.seconds:.1f} s in all"
    )
    emit(
        f"  CPU: moving {res.move_cpu:.1f} s (writing {res.move_cpu - res.read_ahead_cpu:.1f} s, read-ahead "
        f"process {res.read_ahead_cpu:.1f} s), backup {res.backup_cpu:.1f} s, VACUUM {res.vacuum_cpu:.1f} s; "
        f"{res.cpu_seconds:.1f} s in all"
    )
    emit(f"  Database: {fmt_bytes(res.size_before)} before, {fmt_bytes(res.size_after)} after")
    if res.vacuumed:
        emit(f"  VACUUM: {res.vacuum_seconds:.1f} s")
    elif res.free_bytes:
        emit(
            f"  {fmt_bytes(res.free_bytes)} of the old table's pages are free inside the file (new rows "
            f"reuse them); python maintain_database.py gives them back to the disk (VACUUM)"
        )


def main_migrate(cfg: Config, args) -> int:
    """``maintain_database.py --migrate`` (the caller holds the ops lock)."""
    try:
        migrate_snapshots(
            cfg,
            batch_rows=args.batch_rows,
            vacuum=not args.no_vacuum,
            lock_timeout=args.lock_timeout,
        )
    except MigrationMismatch as exc:
        log.critical("snapshot migration stopped: %s", exc)
        print(f"{FAIL} {exc}")
        return exc.exit_code
    return 0
