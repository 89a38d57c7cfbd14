"""Pure parts of the collector: universe selection, level encoding, grid runs, as-of fill,
and the market upsert rules (on a real SQLite file)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

from polybot import db
from polybot.collect import backfill, snapshot_rows, store, universe
from polybot.config import CollectionConfig, default_config
from polybot.exchange.models import BookLevel, Market, OrderBook, OutcomeToken, PricePoint
from polybot.snapshots import codec


def mk(i: int, liq: float, **kw) -> Market:
    base = dict(
        id=str(i),
        condition_id=f"0x{i:064x}",
        question=f"Question {i}?",
        slug=f"q-{i}",
        tokens=(OutcomeToken(f"{i}1", "Yes", 0), OutcomeToken(f"{i}2", "No", 1)),
        liquidity=liq,
        volume_24h=liq / 2,
    )
    base.update(kw)
    return Market(**base)


def test_select_applies_filters_in_order_and_caps_by_liquidity():
    cc = CollectionConfig(max_markets=2, min_liquidity=100, min_volume_24h=10, keywords=("question",))
    ms = [
        mk(1, 900),
        mk(2, 800, accepting_orders=False),
        mk(3, 700),
        mk(4, 600, closed=True),
        mk(5, 50),
        mk(6, 500),
    ]
    sel = universe.select(iter(ms), cc, full_scan=True)
    assert [m.id for m in sel.markets] == ["1", "3"]
    assert sel.counts == {
        "scanned": 6,
        "open": 5,
        "accepting": 4,
        "volume": 4,
        "liquidity": 3,
        "tags": 3,
        "keywords": 3,
    }
    assert sel.capped == 1 and sel.token_ids == ["11", "12", "31", "32"]


def test_select_stops_early_only_while_the_listing_is_sorted():
    consumed = []

    def listing(ms):
        for m in ms:
            consumed.append(m.id)
            yield m

    cc = CollectionConfig(max_markets=2)
    sel = universe.select(listing([mk(1, 900), mk(2, 800), mk(3, 700)]), cc)
    assert [m.id for m in sel.markets] == ["1", "2"] and consumed == ["1", "2"] and not sel.full_scan
    consumed.clear()
    sel = universe.select(listing([mk(1, 100), mk(2, 900), mk(3, 700), mk(4, 800)]), cc)
    assert [m.id for m in sel.markets] == ["2", "4"] and consumed == ["1", "2", "3", "4"]


def test_explicit_markets_bypass_filters_and_count_towards_the_cap():
    cc = CollectionConfig(max_markets=2, min_liquidity=1e9, market_ids=("7",))
    sel = universe.select(iter([mk(7, 1), mk(1, 2e9), mk(2, 1.5e9)]), cc, explicit=[mk(7, 1)])
    assert [m.id for m in sel.markets] == ["7", "1"]
    closed = universe.select(iter([]), cc, explicit=[mk(7, 1, closed=True)])
    assert closed.markets == []


def test_tags_match_labels_case_insensitively():
    cc = CollectionConfig(tags=("crypto",))
    sel = universe.select(iter([mk(1, 5, tags=("Crypto",)), mk(2, 9, tags=("Sports",))]), cc, full_scan=True)
    assert [m.id for m in sel.markets] == ["1"]


def test_levels_round_trip_and_one_sided_books():
    levels = (BookLevel(0.53, 1234.56), BookLevel(0.52, 100.0), BookLevel(0.5, 7.0))
    assert snapshot_rows.fmt_levels(levels, 2) == "0.53:1234.56,0.52:100"
    assert snapshot_rows.parse_levels(snapshot_rows.fmt_levels(levels, 5)) == [
        (0.53, 1234.56),
        (0.52, 100.0),
        (0.5, 7.0),
    ]
    book = OrderBook(token_id="11", market="0x1", timestamp_ms=0, bids=levels, asks=(), last_trade_price=0.53)
    row = dict(
        zip(snapshot_rows.SNAPSHOT_COLUMNS, snapshot_rows.snapshot_row(600, mk(1, 10), book, 2), strict=True)
    )
    assert row["best_bid"] == 0.53 and row["best_ask"] is None and row["mid"] is None
    # the sides are packed straight from the levels; parse_levels reads BLOBs and text alike
    assert isinstance(row["bids"], bytes) and snapshot_rows.parse_levels(row["bids"]) == [
        (0.53, 1234.56),
        (0.52, 100.0),
    ]
    assert row["asks"] == b"" and snapshot_rows.parse_levels(row["asks"]) == []
    assert row["ask_depth"] == 0 and row["bid_depth"] == 1334.56
    assert row["source"] == "collected" and row["last_trade_price"] == 0.53


def test_pack_side_is_byte_for_byte_the_codec_and_the_depth_is_the_exact_sum():
    """The collector's fast packer must write what codec.pack_levels writes (and decode to
    the same levels): tick grids 0.1..0.0001, sizes whole, in cents, with up to 7 decimals,
    huge, zero; empty and one-sided books; the depth equals the exact decimal sum."""
    rng = random.Random(16)
    for _ in range(5000):
        tick = rng.choice([0.1, 0.01, 0.001, 0.0001])
        nt = round(1 / tick)
        levels = []
        for _ in range(rng.randint(0, 7)):
            size = rng.choice(
                [
                    round(rng.uniform(0, 1e7), rng.choice([0, 1, 2, 3, 6, 7])),
                    float(rng.randint(0, 10**6)),
                    rng.random() * 1000,  # 17 significant digits: the codec's float mode
                    1e17,
                ]
            )
            levels.append(BookLevel(round(rng.randint(1, nt - 1) * tick, 4), size))
        n = rng.randint(1, 6)
        blob, depth = snapshot_rows.pack_side(levels, n)
        pairs = [(lv.price, lv.size) for lv in levels[:n]]
        assert blob == (codec.pack_levels(pairs) or b"")
        assert codec.levels_of(blob) == pairs
        assert depth == round(math.fsum(s for _, s in pairs), 6)
    # centi-share sizes: the depth is a whole number of centi-shares (stored as an INTEGER)
    blob, depth = snapshot_rows.pack_side(
        (BookLevel(0.52, 0.1), BookLevel(0.51, 0.2), BookLevel(0.5, 1500.07)), 5
    )
    assert depth == 1500.37 and codec.encode_scaled(depth, codec.SIZE_SCALE) == 150037


def test_a_snapshot_carries_exactly_the_codec_encoding_of_its_values():
    """The collector's pre-encoded values (Snapshot.stored) are what codec.encode makes of
    the decoded row: two-sided, one-sided, empty books, with and without a last trade."""
    full = (BookLevel(0.53, 1234.56), BookLevel(0.52, 100.0), BookLevel(0.5, 7.25))
    asks = (BookLevel(0.551, 3.0), BookLevel(0.56, 1e7 + 0.01))
    for bids, ask_side, last in ((full, asks, 0.54), (full, (), None), ((), asks, 0.0), ((), (), None)):
        book = OrderBook(
            token_id="11", market="0x1", timestamp_ms=0, bids=bids, asks=ask_side, last_trade_price=last
        )
        row = snapshot_rows.snapshot_row(900, mk(1, 1234.5678901), book, 5)
        assert codec.encode(row, 7) == (900, 7, *row.stored, None, None, 0)  # mid, spread, source
        assert (
            codec.STORED[-3:] == ("mid", "spread", "source")
            and "NULL, NULL, 0)" in snapshot_rows.INSERT_COLLECTED
        )
        assert codec.decode(codec.encode(row, 7), "11", "1") == tuple(row)


def test_token_upsert_rewrites_only_changed_tokens(tmp_path):
    cfg = default_config(tmp_path)
    db.initialize(cfg.database_path)
    conn = db.open_database(cfg)
    m = mk(1, 10)
    with db.atomic(conn):
        store.upsert_markets(conn, [m], tracked=True, now=100)
    before = conn.total_changes
    with db.atomic(conn):
        conn.executemany(store.UPSERT_TOKEN, [(t.token_id, m.id, t.outcome, t.index) for t in m.tokens])
    assert conn.total_changes == before  # unchanged: not rewritten
    moved = replace(m, id="2", tokens=(OutcomeToken("11", "Up", 0), OutcomeToken("12", "No", 1)))
    with db.atomic(conn):
        store.upsert_markets(conn, [moved], tracked=True, now=200)
    got = [
        tuple(r)
        for r in conn.execute("SELECT token_id, market_id, outcome FROM market_tokens ORDER BY token_id")
    ]
    assert got == [("11", "2", "Up"), ("12", "2", "No")]
    conn.close()


def test_runs_and_as_of_fill():
    assert backfill.runs_of([0, 300, 600, 1500, 1800], 300) == [(0, 600), (1500, 1800)]
    plan = backfill.TokenPlan("t", "m", [0, 300, 600, 900, 30_000], [], 0)
    pts = [PricePoint(100, 0.4), PricePoint(600, 0.5)]
    rows = backfill.fill(plan, pts)
    got = {r[0]: r[5] for r in rows}
    assert got == {300: 0.4, 600: 0.5, 900: 0.5}  # 0: before history; 30000: too old
    assert all(r[3] is None and r[4] is None and r[14] == "backfill" for r in rows)


def test_upsert_keeps_a_recorded_outcome(tmp_path):
    cfg = default_config(tmp_path)
    db.initialize(cfg.database_path)
    conn = db.open_database(cfg)
    m = mk(1, 10)
    with db.atomic(conn):
        store.upsert_markets(conn, [m], tracked=True, now=100)
    won = replace(m, closed=True, payouts={"11": 1.0, "12": 0.0}, uma_resolution_status="resolved")
    with db.atomic(conn):
        store.upsert_markets(conn, [won], tracked=False, now=200)
        store.upsert_markets(conn, [replace(m, closed=True)], tracked=False, now=300)
    row = conn.execute("SELECT payouts, resolved_at, first_seen, updated_at, tracked FROM markets").fetchone()
    assert json.loads(row[0]) == {"11": 1.0, "12": 0.0}
    assert tuple(row[1:]) == (200, 100, 300, 0)
    with db.atomic(conn):
        assert snapshot_rows.insert_snapshots(conn, [snapshot_rows.backfill_row(0, "11", "1", 0.5)] * 2) == 1
    conn.close()


def test_collected_rows_go_in_by_statements_of_many_rows_with_or_ignore_per_row(tmp_path):
    """insert_snapshots' multi-row statements: a count that is not a multiple of the
    statement size, a row already stored and a repeated row in one call (the first wins),
    and a connection whose variable limit allows only a few rows per statement."""
    import sqlite3

    cfg = default_config(tmp_path)
    db.initialize(cfg.database_path)
    conn = db.open_database(cfg)
    rng = random.Random(5)

    def book(t: str) -> OrderBook:
        bid = rng.randrange(1, 50) / 100
        return OrderBook(
            token_id=t,
            market="0x1",
            timestamp_ms=0,
            bids=(BookLevel(bid, rng.randrange(1, 10**6) / 100),),
            asks=(BookLevel(bid + 0.01, 5.0), BookLevel(bid + 0.02, 7.5)),
            last_trade_price=bid,
        )

    tokens = [str(10**70 + i) for i in range(613)]
    first = [snapshot_rows.snapshot_row(900, mk(1, 10), book(t), 5) for t in tokens]
    with db.atomic(conn):
        assert snapshot_rows.insert_snapshots(conn, first[:100]) == 100
    again = [snapshot_rows.snapshot_row(900, mk(1, 10), book(t), 5) for t in tokens[:50]]  # stored already
    twice = [snapshot_rows.snapshot_row(900, mk(1, 10), book(tokens[-1]), 5)]  # a second row, same key
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 11 * 7 + 3)  # 7 rows a statement
    with db.atomic(conn):
        assert snapshot_rows.insert_snapshots(conn, list(reversed(first[100:])) + again + twice) == 513
    got = {
        r[1]: tuple(r)
        for r in conn.execute(f"SELECT {', '.join(codec.COLUMNS)} FROM snapshot_values WHERE timestamp = 900")
    }
    assert got == {r[1]: tuple(r) for r in first}  # every token once, the first row written wins
    assert [r[0] for r in conn.execute("SELECT token_key FROM market_snapshots")] == sorted(
        r[0] for r in conn.execute("SELECT token_key FROM snapshot_tokens")
    )
    conn.close()


def test_the_cyclic_gc_is_paused_for_a_cycle_and_resumes_as_it_was():
    import gc

    from polybot.snapshots.store import cyclic_gc_paused

    assert gc.isenabled()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("the cycle failed")
    except RuntimeError:
        pass
    assert gc.isenabled()  # resumed, also after an exception
    gc.disable()  # a caller that runs without it keeps it off
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def _books(n: int, seed: int) -> list[tuple[Market, OrderBook]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        top = rng.randrange(3, 96)
        book = OrderBook(
            token_id=str(10**75 + i),
            market=f"0x{i}",
            timestamp_ms=0,
            bids=tuple(
                BookLevel((top - k) / 100, rng.randrange(1, 10**6) / 100) for k in range(3 * (i % 11 > 0))
            ),
            asks=tuple(
                BookLevel((top + 2 + k) / 100, rng.randrange(1, 10**6) / 100) for k in range(3 * (i % 7 > 0))
            ),
            last_trade_price=rng.choice([None, (top + 1) / 100]),
        )
        out.append((mk(500 + i // 2, rng.uniform(1e3, 1e6)), book))
    return out


def _stored_rows(conn) -> list[tuple]:
    """Every stored value of market_snapshots, by token id (keys differ between databases)."""
    return [
        tuple(r)
        for r in conn.execute(
            f"SELECT s.timestamp, k.token_id, {', '.join('s.' + c for c in codec.STORED)}, "
            "typeof(s.bids), typeof(s.asks) FROM market_snapshots s "
            "JOIN snapshot_tokens k USING (token_key) ORDER BY s.timestamp, k.token_id"
        )
    ]


def test_rows_built_with_token_keys_store_exactly_the_bytes_of_the_other_paths(tmp_path):
    """The book threads build each row's insert parameters with its token key (a key map
    loaded before the listing): the stored values are identical to rows built without keys
    and to the decoded rows written through snapshots.insert_rows (codec.encode_rows). The
    map is stale as a cycle's can be — tokens it lacks (new, or keyed by another writer
    after it was loaded) get the database's key."""
    from polybot.snapshots import store as snapshots

    books = _books(300, 3)
    paths = {name: tmp_path / f"{name}.db" for name in ("keyed", "unkeyed", "decoded")}
    conns = {}
    for name, path in paths.items():
        db.initialize(path)
        conns[name] = db.connect(path, synchronous="NORMAL")
    keyed = conns["keyed"]
    with db.atomic(keyed):  # an earlier cycle keyed the first 200 tokens
        keyed.executemany(
            "INSERT INTO snapshot_tokens (token_id, market_id) VALUES (?, ?)",
            [(b.token_id, m.id) for m, b in books[:200]],
        )
    loaded = snapshot_rows.token_keys(keyed)  # loaded "before the listing"
    other = db.connect(paths["keyed"])  # another writer keys a token after the load
    with db.atomic(other):
        other.execute(
            "INSERT INTO snapshot_tokens (token_id, market_id) VALUES (?, ?)", (books[250][1].token_id, "x")
        )
    other.close()
    with_keys = [snapshot_rows.snapshot_row(900, m, b, 5, loaded.keys) for m, b in books]
    without = [snapshot_rows.snapshot_row(900, m, b, 5) for m, b in books]
    assert sum(r.params[1] is not None for r in with_keys) == 200  # the map's keys were used
    for r in with_keys[:200]:
        assert r.params == codec.encode(r, loaded.keys[r[1]])[:11]  # (ts, key, bid … liquidity)
    with db.atomic(keyed):
        assert snapshot_rows.insert_snapshots(keyed, with_keys, keys=loaded) == 300
    with db.atomic(conns["unkeyed"]):
        assert snapshot_rows.insert_snapshots(conns["unkeyed"], without) == 300
    with db.atomic(conns["decoded"]):
        snapshots.insert_rows(conns["decoded"], [tuple(r) for r in without])
    got = {name: _stored_rows(c) for name, c in conns.items()}
    assert len(got["keyed"]) == 300 and got["keyed"] == got["unkeyed"] == got["decoded"]
    empty = [r for r in got["keyed"] if r[7] == b"" or r[8] == b""]  # one-sided books: X'', not NULL
    assert len(empty) > 50 and all(r[-2:] == ("blob", "blob") for r in got["keyed"])
    assert (
        keyed.execute(  # every row under its token's key, the one keyed by the other writer too
            "SELECT COUNT(*) FROM market_snapshots s JOIN snapshot_tokens k USING (token_key)"
        ).fetchone()[0]
        == 300
    )
    for c in conns.values():
        c.close()


def _write_pages(conn, ts: int, n_rows: int) -> None:
    rows = [snapshot_rows.snapshot_row(ts, m, b, 5) for m, b in _books(n_rows, ts)]
    with db.atomic(conn):
        snapshot_rows.insert_snapshots(conn, rows)


def _rows_in_the_main_file(path, tmp_path) -> int:
    """Snapshot rows in the database file alone — what checkpoints have moved out of the WAL."""
    import shutil
    import sqlite3

    copy = tmp_path / "main_file_only" / path.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, copy)
    c = sqlite3.connect(copy)
    try:
        return c.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0]
    finally:
        c.close()
        copy.unlink()


def test_the_collector_commits_without_the_checkpoint_then_checkpoints_after_it(tmp_path):
    """tune_for_bulk: a transaction of more than SQLite's default 1,000 pages commits into
    the WAL only (the checkpoint no longer runs inside the COMMIT); checkpoint_after_commit
    then moves every frame into the database file."""
    path = tmp_path / "c.db"
    db.initialize(path)
    conn = db.connect(path, synchronous="NORMAL")
    snapshot_rows.tune_for_bulk(conn)
    assert (
        conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        == snapshot_rows.COLLECTOR_WAL_AUTOCHECKPOINT_PAGES
    )
    before = _rows_in_the_main_file(path, tmp_path)
    _write_pages(conn, 300, 25_000)  # > 1,000 pages
    assert _rows_in_the_main_file(path, tmp_path) == before  # committed, still only in the WAL
    busy, frames, done = snapshot_rows.checkpoint_after_commit(conn)
    assert busy == 0 and frames > 1000 and done == frames
    assert _rows_in_the_main_file(path, tmp_path) == before + 25_000
    conn.close()


def test_the_collectors_wal_stays_bounded_when_its_checkpoints_do_not_run(tmp_path):
    """The raised automatic checkpoint is a bound, never 0: commits that are not followed by
    checkpoint_after_commit (a collector killed after each commit) still checkpoint past the
    threshold, and a WAL that grew while a reader held an old snapshot is truncated back to
    journal_size_limit once the checkpoint completes."""
    import sqlite3

    path = tmp_path / "w.db"
    db.initialize(path)
    conn = db.connect(path, synchronous="NORMAL")
    snapshot_rows.tune_for_bulk(conn, wal_autocheckpoint=0)  # 0 is refused: at least 1 page
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1
    limit = 60
    snapshot_rows.tune_for_bulk(conn, wal_autocheckpoint=limit)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    wal = path.with_name(path.name + "-wal")
    sizes = []
    for k in range(12):  # ~25 pages each, no explicit checkpoint: 300 frames without the bound
        _write_pages(conn, 300 * (k + 1), 400)
        sizes.append(wal.stat().st_size)
    bound = (limit + 40) * (page + 24) + 32  # the threshold, one transaction, the WAL header
    assert max(sizes) <= bound, (sizes, bound)
    # a reader holding a snapshot starves the checkpoints: the WAL grows past the bound …
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()
    for k in range(12, 20):
        _write_pages(conn, 300 * (k + 1), 400)
        snapshot_rows.checkpoint_after_commit(conn)
    assert wal.stat().st_size > bound
    reader.execute("COMMIT")
    reader.close()
    # … and once it lets go, the next cycle's checkpoint completes and the WAL is cut back
    _write_pages(conn, 300 * 21, 400)
    busy, frames, done = snapshot_rows.checkpoint_after_commit(conn)
    assert busy == 0 and done == frames
    _write_pages(conn, 300 * 22, 400)  # the WAL restarts from its start: truncated to the limit
    assert wal.stat().st_size <= bound, (wal.stat().st_size, bound)
    conn.close()
