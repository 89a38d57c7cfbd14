"""maintain_database.py --migrate (issue 16): a database made by commit 15cb2c7's schema moves to
the compact layout with every decoded value equal to the original; killing the migration at any
point and running it again always ends complete and verified; refused while the bot runs;
"nothing to migrate" on a new database; the bulk packer and decoder equal the codec."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polybot.config import load_config
from polybot.ops.snapshot_arrays import decode_blobs, pack_bulk, parse_texts
from polybot.ops.snapshot_batches import legacy_checksum, view_checksum
from polybot.ops.snapshot_migration import K_DONE, K_MOVED, K_TOTAL, PROGRESS_KEYS
from polybot.snapshots import codec
from tests.conftest import ROOT, SECRET_ENV_PREFIXES, write_config
from tests.ops.helpers import Sleeper, backups_in, simulate_running_bot
from tests.ops.legacy_snapshots import build

COLUMNS = codec.COLUMNS


def _old_workspace(root: Path, **kwargs) -> tuple:
    write_config(root)
    (root / "data").mkdir(mode=0o700)
    rows = build(root / "data" / "polymarket.db", **kwargs)
    cfg = load_config(root / "config.yaml", require_mode_secrets=False)
    return cfg, rows


def _levels(text: str | None) -> list[tuple[float, float]] | None:
    """The old text parsed here, independently of the codec."""
    if text is None:
        return None
    return [(float(p), float(s)) for p, s in (item.split(":") for item in text.split(","))] if text else []


def _plain(path: Path) -> sqlite3.Connection:
    """A connection without polybot's registered functions: the view must work in plain SQL."""
    return sqlite3.connect(path)


def _original_checksum(path: Path) -> tuple[int, int]:
    conn = _plain(path)
    try:
        return legacy_checksum(conn, "market_snapshots")
    finally:
        conn.close()


# --------------------------------------------------------------------------- (a)
def test_a_database_of_commit_15cb2c7_migrates_with_every_decoded_value_equal(tmp_path, cli):
    cfg, rows = _old_workspace(tmp_path)
    assert len(rows) == 240 and len({r[1] for r in rows}) == 8 and all(len(r[1]) == 77 for r in rows)
    original = tmp_path / "original.db"
    shutil.copy(cfg.database_path, original)

    res = cli("maintain_database.py", "--migrate", "--batch-rows", "37")

    assert res.returncode == 0, res.stdout + res.stderr
    assert "✓ Backup: " in res.stdout and "Schema upgraded to version 6" in res.stdout
    assert "✓ Migrated 240 snapshot rows to the compact layout and verified them" in res.stdout
    assert "This run: 240 rows moved in " in res.stdout and "rows/s); backup " in res.stdout
    assert re.search(r"CPU: moving [\d.]+ s \(writing [\d.]+ s, read-ahead process [\d.]+ s\)", res.stdout)
    assert "before" in res.stdout and "after" in res.stdout
    conn = _plain(cfg.database_path)
    got = conn.execute("SELECT * FROM snapshot_values ORDER BY timestamp, token_id").fetchall()
    assert len(got) == len(rows)
    for old, new in zip(rows, got, strict=True):
        for i, name in enumerate(COLUMNS):
            if name in ("bids", "asks"):
                want = _levels(old[i])
                assert (None if new[i] is None else codec.levels_of(new[i])) == want, (old[:2], name)
                assert new[i] is None or isinstance(new[i], bytes)
            else:
                assert new[i] == old[i], (old[:2], name, new[i], old[i])
                assert type(new[i]) is type(old[i]), (old[:2], name, new[i], old[i])
    # the old table and its index are gone; the view reads the compact rows only
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "market_snapshots_legacy" not in names and "idx_snapshots_token_time" not in names
    view_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'snapshot_values'").fetchone()[0]
    assert "UNION" not in view_sql
    # the outcome is recorded; the progress keys are gone
    state = dict(conn.execute("SELECT key, value FROM bot_state"))
    assert K_DONE in state and not set(PROGRESS_KEYS) & set(state)
    assert conn.execute("SELECT exit_code FROM job_runs WHERE job = 'snapshot_migration'").fetchall() == [
        (0,)
    ]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the VACUUM at the end gave the old table's pages back to the disk
    assert "  VACUUM: " in res.stdout and conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    conn.close()
    # the checksum of the decoded values equals the original database's
    assert view_checksum(_plain(cfg.database_path)) == _original_checksum(original)
    # the backup taken first is the database before the migration
    (backup,) = backups_in(cfg)
    assert _original_checksum(backup) == _original_checksum(original)

    again = cli("maintain_database.py", "--migrate")
    assert again.returncode == 0 and "Nothing to migrate" in again.stdout
    assert len(backups_in(cfg)) == 1


@pytest.mark.parametrize(
    "column,value,says",
    [
        ("market_id", "elsewhere", "reads market_id = '0xmarket1' instead of 'elsewhere'"),
        ("source", "imported", "has source 'imported', which the compact layout does not know"),
    ],
)
def test_a_row_that_cannot_move_unchanged_stops_the_batch_and_commits_nothing_of_it(
    tmp_path, cli, column, value, says
):
    cfg, rows = _old_workspace(tmp_path, steps=4, markets=2)
    conn = _plain(cfg.database_path)
    ts, tok = rows[-1][0], rows[-1][1]
    conn.execute(
        f"UPDATE market_snapshots SET {column} = ? WHERE timestamp = ? AND token_id = ?", (value, ts, tok)
    )
    conn.commit()
    conn.close()

    res = cli("maintain_database.py", "--migrate", "--batch-rows", "5")

    assert res.returncode == 3, res.stdout + res.stderr
    assert f"Snapshot (timestamp {ts}, token {tok}) {says}" in res.stdout
    assert "committed nothing of this batch" in res.stdout and "Traceback" not in res.stderr
    conn = _plain(cfg.database_path)
    state = dict(conn.execute("SELECT key, value FROM bot_state"))
    left = conn.execute("SELECT COUNT(*) FROM market_snapshots_legacy").fetchone()[0]
    # the batches before the bad row are committed, consistently with the progress record
    assert int(state[K_MOVED]) + left == int(state[K_TOTAL]) == len(rows)
    assert len(rows) == 16 and left == 1  # batches of 5: the three before the bad row are moved
    assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == len(rows)
    conn.close()


def test_no_vacuum_leaves_the_old_pages_free_inside_the_file_and_says_so(tmp_path, cli):
    cfg, rows = _old_workspace(tmp_path, steps=20, markets=4)
    res = cli("maintain_database.py", "--migrate", "--no-vacuum")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pages are free inside the file" in res.stdout and "  VACUUM: " not in res.stdout
    conn = _plain(cfg.database_path)
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 0
    assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == len(rows)
    conn.close()


def test_a_read_ahead_batch_that_is_not_the_first_rows_of_the_old_table_is_refused(tmp_path):
    from polybot import db
    from polybot.ops.snapshot_batches import (
        MigrationMismatch,
        apply_batch,
        prepare,
        prepare_batch,
        read_batch,
    )

    cfg, rows = _old_workspace(tmp_path, steps=4, markets=2)
    conn = db.open_database(cfg)  # schema 6: the rows wait in market_snapshots_legacy
    try:
        prepare(conn)
        batch = prepare_batch(read_batch(conn, 5, after=(rows[4][0], rows[4][1])))  # rows 5-9 of 16
        with pytest.raises(MigrationMismatch, match="holds 10 rows up to its last key"), db.atomic(conn):
            apply_batch(conn, batch, set())
        assert conn.execute("SELECT COUNT(*) FROM market_snapshots_legacy").fetchone()[0] == len(rows)
        assert conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.parametrize(
    "change,says",
    [
        ("bid = bid + 1", "reads best_bid = "),  # a value the view decodes differently
        ("bids = X''", "reads bids [] instead of "),  # a book side that is not the packed BLOB
        ("source = 1", "reads source = 'backfill' instead of 'collected'"),
    ],
)
def test_a_compact_row_that_reads_back_differently_through_the_view_stops_the_batch(tmp_path, change, says):
    """The batch check in SQL (snapshot_batches.VERIFY_SQL) sees a compact row changed after
    it was written (a temporary trigger changes it) and names the first differing value."""
    from polybot import db
    from polybot.ops.snapshot_batches import (
        MigrationMismatch,
        apply_batch,
        prepare,
        prepare_batch,
        read_batch,
    )

    cfg, rows = _old_workspace(tmp_path, steps=4, markets=2)
    conn = db.open_database(cfg)
    try:
        prepare(conn)
        batch = prepare_batch(read_batch(conn, 5))
        ts, key = batch.rows[3][0], batch.rows[3][1]
        conn.execute(
            "CREATE TEMP TRIGGER tamper AFTER INSERT ON main.market_snapshots WHEN NEW.timestamp = "
            f"{int(ts)} AND NEW.token_key = (SELECT token_key FROM snapshot_tokens WHERE token_id = '{key}') "
            f"BEGIN UPDATE market_snapshots SET {change} WHERE timestamp = NEW.timestamp AND "
            "token_key = NEW.token_key; END"
        )
        with pytest.raises(MigrationMismatch, match=re.escape(f"token {key}) {says}")), db.atomic(conn):
            apply_batch(conn, batch, set())
        assert conn.execute("SELECT COUNT(*) FROM market_snapshots_legacy").fetchone()[0] == len(rows)
        assert conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == 0
    finally:
        conn.close()


# --------------------------------------------------------------------------- (b)
def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIXES)}
    env.update(PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    return env


def _state(path: Path) -> dict:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return dict(conn.execute("SELECT key, value FROM bot_state"))
        finally:
            conn.close()
    except sqlite3.Error:  # the schema is not there yet, or a writer holds the file briefly
        return {}


def _kill_at(root: Path, db: Path, point: str, rng: random.Random, batch: int) -> None:
    """Start the migration as a real process and SIGKILL it at ``point``."""
    out = open(root / "child.out", "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "maintain_database.py"), "--migrate", "--batch-rows", str(batch)],
        cwd=root,
        env=_env(),
        stdout=out,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120

        def printed(text: str) -> bool:
            out.seek(0)
            return text.encode() in out.read()

        def moved() -> int:
            return int(_state(db).get(K_MOVED, 0))

        conditions = {
            "backup": lambda: printed("Taking a verified backup"),
            "after-backup": lambda: printed("Backup: "),
            "moving": lambda: printed("Moving "),
            "mid": lambda: moved() >= rng.randrange(1, 12) * batch,
            "end": lambda: (s := _state(db)) and s.get(K_MOVED) == s.get(K_TOTAL) or K_DONE in s,
        }
        while proc.poll() is None and not conditions[point]() and time.monotonic() < deadline:
            time.sleep(0.002)
        if point != "backup":  # "backup": at once, inside the backup; else anywhere in the next step
            time.sleep(rng.uniform(0, 0.03))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        out.close()


# Fixed kill sequences (deterministic list; where exactly the kill lands varies, the outcome may not).
KILL_PLANS = [
    ("backup", "mid"),
    ("after-backup", "mid", "mid"),
    ("moving", "end"),
    ("mid", "mid", "mid"),
    ("end",),
]


@pytest.mark.slow
def test_b_killing_the_migration_anywhere_then_running_it_again_ends_complete_and_verified(tmp_path, cli):
    cfg, rows = _old_workspace(tmp_path, steps=150, markets=8)  # 2,400 rows, 24 batches of 100
    pristine = tmp_path / "pristine.db"
    shutil.copy(cfg.database_path, pristine)
    want = _original_checksum(pristine)
    assert want[0] == len(rows) == 2400
    landed: list[tuple[int, int, bool]] = []  # after each kill: schema version, rows moved, done
    for plan_no, plan in enumerate(KILL_PLANS):
        rng = random.Random(1000 + plan_no)
        for name in ("polymarket.db", "polymarket.db-wal", "polymarket.db-shm"):
            (cfg.database_path.parent / name).unlink(missing_ok=True)
        shutil.copy(pristine, cfg.database_path)
        for point in plan:
            _kill_at(tmp_path, cfg.database_path, point, rng, 100)
            conn = _plain(cfg.database_path)
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            # every row is visible exactly once at every moment: legacy + compact through the view
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'snapshot_values'").fetchone():
                assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == len(rows)
            state = dict(conn.execute("SELECT key, value FROM bot_state"))
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            landed.append((version, int(state.get(K_MOVED, -1)), K_DONE in state))
            conn.close()
        res = cli("maintain_database.py", "--migrate", "--batch-rows", "100")
        assert res.returncode == 0, (plan, res.stdout, res.stderr)
        assert "Nothing to migrate" in res.stdout or "✓ Migrated 2,400 snapshot rows" in res.stdout, plan
        conn = _plain(cfg.database_path)
        assert view_checksum(conn) == want, plan
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'market_snapshots_legacy'"
        ).fetchone()
        state = dict(conn.execute("SELECT key, value FROM bot_state"))
        assert K_DONE in state and not set(PROGRESS_KEYS) & set(state), plan
        conn.close()
    # the kills did land before the schema upgrade, in the middle of the move, and after it
    assert any(v == 2 for v, _, _ in landed), landed
    assert any(0 < moved < len(rows) for _, moved, _ in landed), landed
    assert any(moved == len(rows) or done for _, moved, done in landed), landed


def _ended(pid: int) -> bool:
    """The process is gone (or a zombie nobody has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" in status.read_text()
    except OSError:
        return True


READ_AHEAD_WRITER = """
import sys, time
from polybot.ops.snapshot_workers import Prefetcher
ahead = Prefetcher(sys.argv[1], 5)
assert ahead.next() is not None
print(ahead._proc.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_read_ahead_process_ends_when_the_migration_is_killed(tmp_path):
    """A SIGKILLed migration leaves no read-ahead process behind: its pipe breaks."""
    from polybot import db

    cfg, _ = _old_workspace(tmp_path, steps=40, markets=4)  # 320 rows: 64 batches of 5
    db.open_database(cfg).close()  # schema 6: the rows wait in market_snapshots_legacy
    writer = subprocess.Popen(
        [sys.executable, "-c", READ_AHEAD_WRITER, str(cfg.database_path)],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        child = int(writer.stdout.readline())
        assert not _ended(child)  # blocked sending the next batch
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        deadline = time.monotonic() + 30
        while not _ended(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _ended(child)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_the_read_ahead_process_ends_when_the_writer_stops_early(tmp_path):
    from polybot import db
    from polybot.ops.snapshot_workers import Prefetcher

    cfg, _ = _old_workspace(tmp_path, steps=40, markets=4)
    db.open_database(cfg).close()
    ahead = Prefetcher(str(cfg.database_path), 5)
    assert len(ahead.next() or ()) == 5
    ahead.close()
    assert not ahead._proc.is_alive()


def test_a_read_ahead_process_that_dies_stops_the_migration_with_one_sentence(tmp_path):
    from polybot import db
    from polybot.ops.snapshot_workers import Prefetcher, ReadAheadFailed

    cfg, _ = _old_workspace(tmp_path, steps=40, markets=4)
    db.open_database(cfg).close()
    ahead = Prefetcher(str(cfg.database_path), 5)
    try:
        assert ahead.next() is not None
        os.kill(ahead._proc.pid, signal.SIGKILL)
        with pytest.raises(ReadAheadFailed, match="read-ahead process stopped unexpectedly"):
            for _ in range(64):  # what it sent before it died comes first
                ahead.next()
    finally:
        ahead.close()


def test_the_read_ahead_process_sends_every_row_once_then_its_cpu_time(tmp_path):
    from polybot import db
    from polybot.ops.snapshot_workers import Prefetcher

    cfg, rows = _old_workspace(tmp_path, steps=10, markets=2)  # 40 rows: 6 batches of 7, the last short
    db.open_database(cfg).close()
    ahead = Prefetcher(str(cfg.database_path), 7)
    keys = []
    try:
        while (batch := ahead.next()) is not None:
            keys += zip(batch.timestamps, batch.tokens, strict=True)
    finally:
        ahead.close()
    assert keys == [(r[0], r[1]) for r in rows]
    assert ahead.cpu_seconds > 0


# --------------------------------------------------------------------------- (c)
def test_c_refused_while_the_bot_runs_and_nothing_changes(tmp_path, cli):
    cfg, rows = _old_workspace(tmp_path, steps=2, markets=2)
    bot = Sleeper()
    try:
        simulate_running_bot(cfg, bot.pid)
        res = cli("maintain_database.py", "--migrate")
    finally:
        bot.stop()
    assert res.returncode == 1
    assert f"The trading bot is running (PID {bot.pid}" in res.stderr and "--migrate again" in res.stderr
    assert backups_in(cfg) == []
    conn = _plain(cfg.database_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == len(rows)
    conn.close()


def test_c_refused_while_a_bot_holds_its_lock(tmp_path, cli):
    cfg, _ = _old_workspace(tmp_path, steps=2, markets=1)
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(cfg.database_path.parent / "trading_bot.lock")],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        res = cli("maintain_database.py", "--migrate")
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 1 and "holds trading_bot.lock" in res.stderr
    assert backups_in(cfg) == []


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from polybot.engine.state import InstanceLock
lock = InstanceLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_collection_started_during_the_migration_exits_quietly(tmp_path, cli):
    """The migration holds the collector's lock: what a cron collection then does."""
    from filelock import FileLock

    from polybot.collect.common import COLLECT_LOCK

    cfg, _ = _old_workspace(tmp_path, steps=2, markets=1)
    lock = FileLock(str(cfg.database_path.parent / COLLECT_LOCK), timeout=0)
    with lock:  # stands for the migration holding it
        res = cli("collect_market_data.py")
    assert res.returncode == 0 and "another collection is running" in res.stdout


# --------------------------------------------------------------------------- (d)
def test_d_nothing_to_migrate_on_a_new_database(tmp_path, cli):
    write_config(tmp_path)
    assert cli("initialize_db.py").returncode == 0
    res = cli("maintain_database.py", "--migrate")
    assert res.returncode == 0, res.stderr
    assert "Nothing to migrate" in res.stdout
    assert backups_in(load_config(tmp_path / "config.yaml", require_mode_secrets=False)) == []


def test_initialize_db_says_that_a_migration_is_pending(tmp_path, cli):
    cfg, rows = _old_workspace(tmp_path, steps=2, markets=2)
    res = cli("initialize_db.py")
    assert res.returncode == 0, res.stderr
    assert f"{len(rows)} market snapshot rows are in the old layout" in res.stdout
    assert "python maintain_database.py --migrate" in res.stdout


# --------------------------------------------------------------------------- the bulk path
def _texts(rng: random.Random, n: int) -> list[str | None]:
    out: list[str | None] = [
        None,
        "",
        "0.5:10",
        "0.50:10.0",
        "0.123456789:1",
        "0.5:1e-7",
        "1:0",
        "0.0001:0.000001",
    ]
    for _ in range(n):
        levels = rng.randrange(1, 6)
        step = rng.choice([0.01, 0.001, 0.0001, 0.1])
        p = rng.randrange(1, 99) / 100
        items = []
        for i in range(levels):
            size = rng.choice([rng.randrange(1, 10_000), rng.randrange(1, 10**8) / 100, rng.random() * 1000])
            price = rng.choice([f"{p - i * step:.4f}", repr(round(p - i * step, 6)), f"{p - i * step:g}"])
            items.append(f"{price}:{size}")
        out.append(",".join(items))
    return out


def test_the_bulk_packer_and_decoder_give_exactly_what_the_codec_gives():
    rng = random.Random(7)
    texts = _texts(rng, 3000)
    parsed = parse_texts(texts)
    blobs = pack_bulk(parsed, texts)
    for t, b in zip(texts, blobs, strict=True):
        assert b == (None if t is None else codec.pack_levels(codec.levels_of(t))), t
    bulk = decode_blobs(blobs)
    for i, b in enumerate(blobs):
        assert bulk.row(i) == codec.unpack_levels(b), texts[i]
        assert parsed.row(i) == (None if texts[i] is None else codec.levels_of(texts[i])), texts[i]
    assert parsed.counts.tolist() == bulk.counts.tolist() and parsed.kind.tolist() == bulk.kind.tolist()
    assert parsed.prices.tolist() == bulk.prices.tolist() and parsed.sizes.tolist() == bulk.sizes.tolist()
