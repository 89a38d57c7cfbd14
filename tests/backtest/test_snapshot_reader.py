"""The replay's snapshot reader on the compact layout (schema version 6): the same chunks as
from the old table, legacy rows of a database not yet migrated, depth and backfill books."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from polybot.backtest.data import SnapshotStore, _open_readonly, estimate_backfill_books, load_markets
from polybot.backtest.synthetic import generate
from polybot.db import connect
from polybot.snapshots import codec, store
from polybot.strategy.base import parse_levels
from tests.backtest.helpers import T0, add_market, new_db

OLD_COLUMNS = ", ".join(codec.COLUMNS)


def _flat(chunks) -> np.ndarray:
    """Every chunk's rows as one (timestamp, token, bid, ask, price, backfill) array, sorted."""
    if not chunks:
        return np.zeros((0, 6))
    a = np.concatenate(
        [
            np.column_stack(
                [c.timestamp, c.token, np.nan_to_num(c.bid, nan=-1), np.nan_to_num(c.ask, nan=-1)]
                + [np.nan_to_num(c.price, nan=-1), c.backfill]
            )
            for c in chunks
        ]
    )
    return a[np.lexsort((a[:, 1], a[:, 0]))]


def _to_legacy(conn: sqlite3.Connection, where: str = "1") -> int:
    """Move rows from the compact table into an old-layout ``market_snapshots_legacy`` table
    (text levels), as a database made before version 6 has them; returns the rows moved."""
    rows = [
        tuple(codec.text_of(v) if i in (10, 11) else v for i, v in enumerate(r))
        for r in conn.execute(f"SELECT * FROM snapshot_values WHERE {where}")
    ]
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {store.LEGACY_TABLE} (timestamp INTEGER NOT NULL, token_id TEXT NOT NULL, "
        "market_id TEXT NOT NULL, best_bid REAL, best_ask REAL, mid REAL, spread REAL, last_trade_price REAL, "
        "bid_depth REAL, ask_depth REAL, bids TEXT, asks TEXT, volume_24h REAL, liquidity REAL, "
        "source TEXT NOT NULL DEFAULT 'collected', PRIMARY KEY (timestamp, token_id)) WITHOUT ROWID"
    )
    conn.executemany(f"INSERT OR IGNORE INTO {store.LEGACY_TABLE} VALUES ({', '.join('?' * 15)})", rows)
    conn.execute(
        f"DELETE FROM market_snapshots WHERE (timestamp, token_key) IN (SELECT timestamp, token_key FROM "
        f"market_snapshots s WHERE EXISTS (SELECT 1 FROM {store.LEGACY_TABLE} l JOIN snapshot_tokens k "
        f"ON k.token_id = l.token_id WHERE l.timestamp = s.timestamp AND k.token_key = s.token_key))"
    )
    store.install_view(conn)
    conn.commit()
    return len(rows)


@pytest.fixture
def synthetic(tmp_path):
    d = generate(tmp_path / "s.db", n_markets=4, days=1, seed=3, tick=0.001, half_spread=0.002)
    conn = connect(d.path)
    markets, _ = load_markets(conn)
    tokens = [t for m in markets for t in m.token_ids]
    try:
        yield d, conn, tokens
    finally:
        conn.close()


def test_legacy_rows_read_the_same_as_compact_rows(synthetic):
    d, conn, tokens = synthetic
    compact = _flat(list(SnapshotStore(conn, tokens).chunks(d.start_ts, d.end_ts, 3600)))
    assert len(compact) == d.rows
    # half the day moves to the old table (a migration under way): the reader merges both
    moved = _to_legacy(conn, f"timestamp < {d.start_ts + 43_200}")
    assert 0 < moved < d.rows and store.has_legacy(conn)
    s = SnapshotStore(conn, tokens)
    assert np.array_equal(_flat(list(s.chunks(d.start_ts, d.end_ts, 3600))), compact)
    assert s.bounds(d.start_ts, d.end_ts) == (d.start_ts, d.end_ts)
    # a row in both tables (copied, not yet deleted): read once
    first = conn.execute(f"SELECT * FROM {store.LEGACY_TABLE} LIMIT 1").fetchone()
    store.insert_rows(conn, [tuple(first)])
    conn.commit()
    assert np.array_equal(
        _flat(list(SnapshotStore(conn, tokens).chunks(d.start_ts, d.end_ts, 3600))), compact
    )
    # everything legacy
    _to_legacy(conn)
    assert conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == 0
    assert np.array_equal(
        _flat(list(SnapshotStore(conn, tokens).chunks(d.start_ts, d.end_ts, 3600))), compact
    )


def test_depth_reads_blobs_and_old_text_alike(synthetic):
    d, conn, tokens = synthetic
    compact = SnapshotStore(conn, tokens).depth(tokens[0], d.start_ts)
    assert all(isinstance(x, bytes) for x in compact)
    _to_legacy(conn)
    old = SnapshotStore(conn, tokens).depth(tokens[0], d.start_ts)
    assert all(isinstance(x, str) for x in old)
    assert [parse_levels(x) for x in compact] == [parse_levels(x) for x in old]
    assert len(parse_levels(compact[0])) == 3
    assert SnapshotStore(conn, tokens).depth("no-such-token", d.start_ts) == (None, None)


def test_backfill_books_are_estimated_the_same_from_both_layouts(synthetic):
    d, conn, tokens = synthetic
    compact = estimate_backfill_books(conn, tokens)
    assert {b.basis for b in compact.values()} == {"token"}
    assert all(b.depth > 0 and b.half_spread > 0 for b in compact.values())
    _to_legacy(conn)
    assert estimate_backfill_books(conn, tokens) == compact


@pytest.mark.parametrize("with_real", [False, True])
def test_prices_decode_from_units_and_real_fallbacks(tmp_path, with_real):
    # without a REAL price the reader's integer-only SQL reads the window, with one the exact SQL
    conn = new_db(tmp_path / "p.db")
    add_market(conn, "A")
    rows = [
        # (timestamp, bid, ask, mid, last, source) → expected (bid, ask, price, backfill)
        (T0, 0.52, 0.54, (0.52 + 0.54) / 2, 0.5, "collected", 0.52, 0.54, 0.53, False),  # mid derived
        (T0 + 300, 0.52, 0.54, None, 0.5, "collected", 0.52, 0.54, 0.5, False),  # mid NULL: the last trade
        (T0 + 600, None, None, 0.6123, 0.6123, "backfill", None, None, 0.6123, True),  # a backfilled price
        (T0 + 900, 0.52, None, None, None, "collected", 0.52, None, None, False),  # one side: no price
        (T0 + 1200, 0.52, 0.54, 0.5301, 0.5, "collected", 0.52, 0.54, 0.5301, False),  # a stored mid
    ]
    if with_real:  # an off-grid bid (stored REAL) and mid; an off-grid last trade
        rows.append((T0 + 1500, 0.1 + 0.2, 0.54, None, 0.5, "collected", 0.3, 0.54, 0.5, False))
        rows.append((T0 + 1800, None, None, 0.61234, 0.61234, "backfill", None, None, 0.61234, True))
        rows.append((T0 + 2100, 0.52, 0.54, None, 0.500001, "collected", 0.52, 0.54, 0.500001, False))
    store.insert_rows(
        conn,
        [
            (r[0], "A-yes", "A", r[1], r[2], r[3], None, r[4], None, None, None, None, None, None, r[5])
            for r in rows
        ],
    )
    conn.commit()
    kinds = {t for (t,) in conn.execute("SELECT DISTINCT typeof(bid) FROM market_snapshots")}
    assert ("real" in kinds) == with_real
    (chunk,) = list(SnapshotStore(conn, ["A-yes"]).chunks(T0, T0 + 3000, 86_400))

    def values(a):
        return [None if np.isnan(x) else x for x in a.tolist()]

    assert chunk.timestamp.tolist() == [r[0] for r in rows]
    assert values(chunk.bid) == [r[6] for r in rows]
    assert values(chunk.ask) == [r[7] for r in rows]
    assert values(chunk.price) == [r[8] for r in rows]
    assert chunk.backfill.tolist() == [r[9] for r in rows]
    assert chunk.token.tolist() == [0] * len(rows)


def test_read_only_connections_know_the_snapshot_functions(synthetic):
    d, conn, _ = synthetic
    ro = _open_readonly(d.path)
    try:
        top = ro.execute("SELECT snapshot_top_size(bids) FROM market_snapshots LIMIT 1").fetchone()[0]
    finally:
        ro.close()
    blob = conn.execute("SELECT bids FROM market_snapshots LIMIT 1").fetchone()[0]
    assert top == codec.top_size(blob) > 0


def test_chunks_longer_than_the_packed_time_offset_read_every_timestamp(tmp_path):
    conn = new_db(tmp_path / "long.db")
    add_market(conn, "A")
    times = [T0, T0 + (1 << 20) - 1, T0 + (1 << 20), T0 + 3 * (1 << 20) + 7]
    store.insert_rows(
        conn,
        [
            (t, "A-yes", "A", 0.4, 0.6, 0.5, 0.2, None, None, None, None, None, None, None, None)
            for t in times
        ],
    )
    conn.commit()
    chunks = list(SnapshotStore(conn, ["A-yes"]).chunks(T0, times[-1], 1 << 23))
    assert [t for c in chunks for t in c.timestamp.tolist()] == times
    assert max(int(c.timestamp[-1] - c.timestamp[0]) for c in chunks) >= 1 << 20  # one chunk spans more
    assert [p for c in chunks for p in c.price.tolist()] == [0.5] * 4


def test_rows_handed_over_out_of_key_order_are_read_in_key_order(synthetic, monkeypatch):
    # the reader's group_concat texts follow the scan; a scan in another order is sorted back
    from polybot.backtest import data

    d, conn, tokens = synthetic

    def rows(chunks):  # in the order handed over (within a timestamp: the stored key's)
        return np.concatenate(
            [np.column_stack([c.timestamp, c.token, c.bid, c.ask, c.price, c.backfill]) for c in chunks]
        )

    expected = rows(SnapshotStore(conn, tokens).chunks(d.start_ts, d.end_ts, 86_400))
    reverse = data._INTEGER_TEXT_SQL.replace(
        "FROM market_snapshots s WHERE",
        "FROM (SELECT * FROM market_snapshots WHERE timestamp >= ?1 AND timestamp < ?2 "
        "ORDER BY timestamp DESC, token_key DESC) s WHERE",
    )
    assert reverse != data._INTEGER_TEXT_SQL
    monkeypatch.setattr(data, "_INTEGER_TEXT_SQL", reverse)
    first = conn.execute(
        reverse.replace("count(*), group_concat(", "group_concat(", 1), (d.start_ts, d.end_ts)
    )
    # the token keys in the order SQLite hands them over
    handed = [int(v) >> (data._BITS + 1) for v in first.fetchone()[0].split(",")]
    assert handed != sorted(handed)  # the scan really was out of order
    got = rows(SnapshotStore(conn, tokens).chunks(d.start_ts, d.end_ts, 86_400))
    assert np.array_equal(got, expected, equal_nan=True)


def test_a_few_tokens_of_a_larger_database_are_filtered_in_sqlite(synthetic):
    # the other tokens' rows are skipped by SQLite; the chunks are the same rows as reading all
    d, conn, tokens = synthetic
    everything = _flat(list(SnapshotStore(conn, tokens).chunks(d.start_ts, d.end_ts, 86_400)))
    few = tokens[:3]
    store_few = SnapshotStore(conn, few)
    assert store_few.filtered and not SnapshotStore(conn, tokens).filtered
    got = _flat(list(store_few.chunks(d.start_ts, d.end_ts, 86_400)))
    # the same rows, indexed by position in ``few`` (the same as in ``tokens``: a prefix)
    want = everything[everything[:, 1] < 3]
    assert len(got) > 0 and np.array_equal(got, want)
    store_few.close()
    assert conn.execute("SELECT COUNT(*) FROM temp.sqlite_master WHERE name = 'bt_keys'").fetchone()[0] == 0


def test_the_reader_holds_no_read_transaction_between_chunks(tmp_path):
    # a reader paused between days (the replay is busy) must not hold back the WAL's
    # checkpoints: the collector keeps writing while a long backtest runs
    d = generate(tmp_path / "w.db", n_markets=2, days=3, seed=1, tick=0.001, half_spread=0.002)
    conn = connect(d.path, readonly=True)
    markets, _ = load_markets(conn)
    tokens = [t for m in markets for t in m.token_ids]
    chunks = SnapshotStore(conn, tokens).chunks(d.start_ts, d.end_ts, 86_400)
    assert len(next(chunks)) > 0  # the first day read, the generator paused
    writer = sqlite3.connect(d.path, timeout=0)
    writer.execute("CREATE TABLE IF NOT EXISTS probe (x)")
    writer.execute("INSERT INTO probe VALUES (1)")
    writer.commit()
    busy, _, _ = writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0  # nothing in the reader pins an old snapshot of the database
    assert sum(len(c) for c in chunks) > 0
    writer.close()
    conn.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see the process state")
def test_the_reader_process_ends_when_the_backtest_is_killed(tmp_path):
    # a killed backtest leaves no reader behind waiting forever to hand over its next day
    d = generate(tmp_path / "k.db", n_markets=2, days=12, seed=1, tick=0.001, half_spread=0.002)
    script = (
        "import multiprocessing, sys, time\n"
        "from pathlib import Path\n"
        "from polybot.backtest.data import load_markets, read_chunks\n"
        "from polybot.db import connect\n"
        f"conn = connect(Path({str(d.path)!r}), readonly=True)\n"
        "markets, _ = load_markets(conn)\n"
        "tokens = [t for m in markets for t in m.token_ids]\n"
        f"it = read_chunks(conn, tokens, {d.start_ts}, {d.end_ts}, 86400, parallel=True)\n"
        "next(it)\n"
        "print(multiprocessing.active_children()[0].pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        reader_pid = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)

        def gone() -> bool:  # exited (a zombie nobody reaps counts as exited)
            try:
                status = Path(f"/proc/{reader_pid}/status").read_text()
            except FileNotFoundError:
                return True
            return "\nState:\tZ" in status

        deadline = time.monotonic() + 60
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(), "the reader process outlived the killed backtest"
    finally:
        if parent.poll() is None:
            parent.kill()
