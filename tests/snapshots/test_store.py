"""The compact snapshot store through a real database: the view decodes exactly what was
written (by the fast path and by the view's INSERT trigger), an old database keeps its rows
visible through the view until they are migrated, and the checklist's queries (on the
``market_snapshots`` table) and the view work in a plain sqlite3 connection that has none of our functions registered."""

from __future__ import annotations

import sqlite3

import pytest

from polybot import db
from polybot.schema import MIGRATIONS
from polybot.snapshots import codec, store

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"  # 77 digits
OTHER = "52114319501245915516055106046884209969926127482827954674443846427813813222426"

ROWS = [
    # a collected row: 3 levels a side, derived mid/spread, integer-able values
    (
        1_700_000_000,
        TOKEN,
        "512",
        0.52,
        0.53,
        0.525,
        0.53 - 0.52,
        0.52,
        1720.5,
        220.0,
        "0.52:1000,0.51:500.5,0.5:220",
        "0.53:200,0.54:20,0.55:0.001",
        12345.678901,
        1000.0,
        "collected",
    ),
    # one-sided book: empty bids, NULL mid/spread
    (
        1_700_000_000,
        OTHER,
        "512",
        None,
        0.48,
        None,
        None,
        0.47,
        0.0,
        10.0,
        "",
        "0.48:10",
        None,
        None,
        "collected",
    ),
    # a backfilled row: the history price as mid and last, no book
    (
        1_700_000_300,
        TOKEN,
        "512",
        None,
        None,
        0.5355,
        None,
        0.5355,
        None,
        None,
        None,
        None,
        None,
        None,
        "backfill",
    ),
    # odd floats: off-grid prices, a depth sum with float noise, a mid that is not derived,
    # a NULL mid although both sides are there, six-decimal sizes
    (
        1_700_000_300,
        OTHER,
        "512",
        0.123456789,
        0.2,
        None,
        0.076543211,
        0.123456789,
        100.1 + 200.2 + 300.3,
        0.000001,
        "0.123456789:1.234567",
        "0.2:0.000001",
        1e-9,
        -5.5,
        "collected",
    ),
]


def _cols(n: int = 15) -> str:
    return ", ".join(codec.COLUMNS[:n])


def _decoded(conn: sqlite3.Connection) -> list[tuple]:
    out = []
    for r in conn.execute(f"SELECT {_cols()} FROM snapshot_values ORDER BY timestamp, token_id"):
        out.append(codec.canonical(tuple(r)))
    return out


def _expected(rows) -> list[tuple]:
    return sorted((codec.canonical(r) for r in rows), key=lambda r: (r[0], r[1]))


@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "s.db", create=True)
    db.migrate(c)
    yield c
    c.close()


def test_the_fast_path_and_the_view_trigger_store_the_same_values(conn, tmp_path):
    with db.atomic(conn):
        store.insert_rows(conn, ROWS[:2])
        conn.executemany(f"INSERT INTO snapshot_values ({_cols()}) VALUES ({', '.join('?' * 15)})", ROWS[2:])
    assert _decoded(conn) == _expected(ROWS)
    # bit for bit, not approximately
    got = {(r[0], r[1]): r for r in _decoded(conn)}
    assert got[(ROWS[3][0], OTHER)][8].hex() == (100.1 + 200.2 + 300.3).hex()
    assert got[(ROWS[0][0], TOKEN)][6].hex() == (0.53 - 0.52).hex()
    # the first row written for a grid point wins; OR REPLACE replaces
    dup = (*ROWS[2][:5], 0.9, None, 0.9, *ROWS[2][8:])
    with db.atomic(conn):
        conn.execute(f"INSERT OR IGNORE INTO snapshot_values ({_cols()}) VALUES ({', '.join('?' * 15)})", dup)
    assert _decoded(conn) == _expected(ROWS)
    with db.atomic(conn):
        store.insert_rows(conn, [dup], replace=True)
    assert _decoded(conn) == _expected([*ROWS[:2], dup, ROWS[3]])
    # the sqlite3 shell's view: none of our functions, and the checklist's queries still work
    plain = sqlite3.connect(tmp_path / "s.db")
    assert plain.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == 4
    assert plain.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == 4
    assert plain.execute("SELECT MAX(timestamp), MIN(best_ask) FROM snapshot_values").fetchone() == (
        1_700_000_300,
        0.2,
    )
    plain.close()


def test_values_are_stored_as_integers_where_they_are_whole_units(conn):
    with db.atomic(conn):
        store.insert_rows(conn, ROWS)
    r = conn.execute(
        "SELECT bid, ask, last, bid_depth, ask_depth, volume_24h, liquidity, mid, spread, source "
        "FROM market_snapshots WHERE timestamp = ? AND token_key = (SELECT token_key FROM snapshot_tokens "
        "WHERE token_id = ?)",
        (ROWS[0][0], TOKEN),
    ).fetchone()
    assert tuple(r) == (5200, 5300, 5200, 172050, 22000, 12345678901, 1000000000, None, None, 0)
    assert conn.execute("SELECT COUNT(*) FROM snapshot_tokens").fetchone()[0] == 2


def test_deleting_through_the_view_deletes_the_stored_row(conn):
    with db.atomic(conn):
        store.insert_rows(conn, ROWS)
        conn.execute("DELETE FROM snapshot_values WHERE timestamp = ? AND token_id = ?", (ROWS[2][0], TOKEN))
    assert _decoded(conn) == _expected([ROWS[0], ROWS[1], ROWS[3]])


def test_latest_snapshots_finds_each_tokens_newest_row(conn):
    with db.atomic(conn):
        store.insert_rows(conn, ROWS[:3])  # OTHER's newest row is older than the newest cycle
    latest = store.latest_snapshots(conn, [TOKEN, OTHER, "unknown"])
    assert {t: r["timestamp"] for t, r in latest.items()} == {TOKEN: 1_700_000_300, OTHER: 1_700_000_000}
    assert latest[OTHER]["best_ask"] == 0.48


def test_a_version_5_database_keeps_its_rows_visible_until_they_are_migrated(tmp_path):
    path = tmp_path / "old.db"
    c = sqlite3.connect(path)
    for _version, _name, sql in MIGRATIONS[:5]:
        assert isinstance(sql, str)
        c.executescript(sql)
    c.execute("PRAGMA user_version = 5")
    c.executemany(f"INSERT INTO market_snapshots ({_cols()}) VALUES ({', '.join('?' * 15)})", ROWS[:3])
    c.commit()
    c.close()
    conn = db.connect(path)
    assert db.migrate(conn) == [6]
    assert store.has_legacy(conn)
    with db.atomic(conn):
        store.insert_rows(conn, [ROWS[3]])
    assert _decoded(conn) == _expected(ROWS)
    assert store.latest_timestamp(conn) == 1_700_000_300
    conn.close()


def test_an_empty_old_table_is_simply_replaced(tmp_path):
    path = tmp_path / "old.db"
    c = sqlite3.connect(path)
    for _version, _name, sql in MIGRATIONS[:5]:
        assert isinstance(sql, str)
        c.executescript(sql)
    c.execute("PRAGMA user_version = 5")
    c.commit()
    c.close()
    conn = db.connect(path)
    db.migrate(conn)
    assert not store.has_legacy(conn)
    assert (
        conn.execute("SELECT type FROM sqlite_master WHERE name = 'snapshot_values'").fetchone()[0] == "view"
    )
    conn.close()


def test_updating_the_view_re_encodes_the_row(conn):
    with db.atomic(conn):
        store.insert_rows(conn, ROWS[:2])
        conn.execute(
            "UPDATE snapshot_values SET best_bid = 0.4, bids = '0.4:7' WHERE timestamp = ? AND token_id = ?",
            (ROWS[0][0], TOKEN),
        )
    row = conn.execute(
        "SELECT best_bid, mid, spread, bids FROM snapshot_values WHERE token_id = ?", (TOKEN,)
    ).fetchone()
    # mid and spread were stored values of the old row: the update keeps them as they were
    assert (row[0], row[1], row[2], codec.levels_of(row[3])) == (0.4, 0.525, 0.53 - 0.52, [(0.4, 7.0)])
    assert conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == 2


def test_insert_rows_in_multi_row_statements_stores_exactly_codec_encode(conn):
    """insert_rows binds the packed sides as bytearrays and writes many rows a statement:
    every stored value is codec.encode of its row (X'' for an empty side, not NULL), for a
    count that is not a multiple of the statement size and a connection whose variable
    limit allows only a few rows a statement; OR IGNORE keeps the first of two rows with
    one key, OR REPLACE the last."""
    rows = []
    for i in range(613):
        base = ROWS[i % 4]
        rows.append((1_700_000_000 + 300 * (i // 4), f"{TOKEN[:-4]}{i % 4:04d}", *base[2:]))
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 14 * 7 + 5)  # 7 rows a statement
    with db.atomic(conn):
        assert store.insert_rows(conn, rows[:300]) == 300
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    first = {(r[0], r[1]): r for r in rows}
    changed = [(*r[:3], 0.9, *r[4:]) for r in rows[:5]]  # same keys, another bid
    with db.atomic(conn):
        store.insert_rows(conn, rows[300:] + changed + rows[:300])  # the stored ones are ignored
    keys = dict(conn.execute("SELECT token_id, token_key FROM snapshot_tokens").fetchall())
    stored = {
        tuple(r[:2]): tuple(r)
        for r in conn.execute(f"SELECT timestamp, token_key, {', '.join(codec.STORED)} FROM market_snapshots")
    }
    assert len(stored) == 613
    for (ts, tok), r in first.items():
        assert stored[(ts, keys[tok])] == codec.encode(r, keys[tok])
    assert stored[(rows[1][0], keys[rows[1][1]])][7] == b""  # an empty side: X'', not NULL
    with db.atomic(conn):
        store.insert_rows(conn, [*changed, (*changed[0][:3], 0.95, *changed[0][4:])], replace=True)
    got = conn.execute(
        "SELECT best_bid FROM snapshot_values WHERE timestamp = ? AND token_id = ?", rows[0][:2]
    ).fetchone()[0]
    assert got == 0.95  # the last of two rows with one key replaces


def test_insert_rows_pauses_the_cyclic_gc_and_restores_it(conn):
    """The cyclic garbage collector does not run while insert_rows encodes and writes a
    batch (it scanned every live object on each allocation burst), and it is back as it
    was afterwards — also when the batch is refused."""
    import gc

    runs = []

    def seen(phase, info):
        if phase == "start":
            runs.append(info["generation"])

    rows = [(1_700_000_000, f"{TOKEN[:-5]}{i:05d}", *ROWS[0][2:]) for i in range(3000)]
    gc.callbacks.append(seen)
    try:
        assert gc.isenabled()
        with db.atomic(conn):
            assert store.insert_rows(conn, rows) == 3000
        # at most the one collection of the allocations counted during the pause, right after it
        # (without the pause: one every few hundred allocations, a dozen here)
        assert len(runs) <= 1 and gc.isenabled()
        bad = [(*ROWS[0][:14], "guessed")]
        with pytest.raises(ValueError, match="unknown snapshot source"), db.atomic(conn):
            store.insert_rows(conn, bad)
        assert gc.isenabled()
        gc.disable()
        with db.atomic(conn):
            store.insert_rows(conn, [(1_700_000_300, *rows[0][1:])])
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()
        gc.callbacks.remove(seen)
