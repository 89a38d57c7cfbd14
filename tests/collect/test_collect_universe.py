"""``collection.max_markets: all`` and the compact write path, end to end: real HTTP to a
simulator larger than the old default cap (200 markets), a real SQLite file, rows read
back through the ``snapshot_values`` view and compared with the simulator's own books."""

from __future__ import annotations

from decimal import Decimal

import pytest

from polybot.sim.clob import books_for
from polybot.snapshots import codec
from tests.collect.helpers import collect, query, scalar, setup_workspace

DEPTH = 5  # collection.depth_levels default


@pytest.fixture(scope="module")
def big_sim():
    """A 260-market world (about 250 open): more than the old default cap of 200."""
    from polybot.sim.server import start_simulator

    handle = start_simulator(port=0, seed=7, n_markets=260, speed=0.0)
    try:
        yield handle
    finally:
        handle.stop()


def open_markets(handle) -> list:
    return [m for m in handle.sim.world.markets if handle.sim.phase(m.index) == "open"]


def test_all_collects_every_open_market_with_the_books_the_exchange_served(tmp_path, big_sim):
    ws = tmp_path
    db = setup_workspace(ws, big_sim, max_markets="all")
    opened = open_markets(big_sim)
    assert len(opened) > 200  # the old default cap would have left some out
    r = collect(ws, "--initial")
    assert r.returncode == 0, r.stderr
    assert "max_markets = all (no cap)" in r.stdout
    tokens = [t for m in opened for t in m.token_ids]
    assert f"{len(opened)} markets, {len(tokens)} snapshots, 0 errors" in r.stdout
    assert scalar(db, "SELECT COUNT(*) FROM markets WHERE tracked = 1") == len(opened)

    # every open market's tokens, decoded through the view, equal the simulator's books at
    # the same (frozen) simulator time: prices, sizes, depth, last trade, ids
    ts = scalar(db, "SELECT MAX(timestamp) FROM snapshot_values")
    cols = ", ".join(codec.COLUMNS)
    rows = {r[1]: r for r in query(db, f"SELECT {cols} FROM snapshot_values WHERE timestamp = ?", ts)}
    assert set(rows) == set(tokens)
    market_of = {t: m.id for m in opened for t in m.token_ids}
    books = {b["asset_id"]: b for b in books_for(big_sim.sim, tokens, big_sim.sim.now_float())}
    assert set(books) == set(tokens)
    integer_depths = 0
    for tok, row in rows.items():
        snap = dict(zip(codec.COLUMNS, row, strict=True))
        book = books[tok]
        # the wire lists each side best LAST; a snapshot keeps the top DEPTH best first
        bids = [(lv["price"], lv["size"]) for lv in reversed(book["bids"])][:DEPTH]
        asks = [(lv["price"], lv["size"]) for lv in reversed(book["asks"])][:DEPTH]
        assert snap["market_id"] == market_of[tok] and snap["source"] == "collected"
        assert isinstance(snap["bids"], bytes) and isinstance(snap["asks"], bytes)
        assert codec.levels_of(snap["bids"]) == [(float(p), float(s)) for p, s in bids]
        assert codec.levels_of(snap["asks"]) == [(float(p), float(s)) for p, s in asks]
        bb = float(bids[0][0]) if bids else None
        ba = float(asks[0][0]) if asks else None
        assert (snap["best_bid"], snap["best_ask"]) == (bb, ba)
        if bb is not None and ba is not None:
            assert snap["mid"] == (bb + ba) / 2 and snap["spread"] == ba - bb
        else:
            assert snap["mid"] is None and snap["spread"] is None
        # depth: the exact decimal sum of the sizes the exchange sent
        assert snap["bid_depth"] == float(sum((Decimal(s) for _, s in bids), Decimal(0)))
        assert snap["ask_depth"] == float(sum((Decimal(s) for _, s in asks), Decimal(0)))
        ltp = book["last_trade_price"]
        assert snap["last_trade_price"] == (float(ltp) if ltp else None)
        if all(len(s.partition(".")[2]) <= 2 for _, s in bids):
            integer_depths += 1
    # sizes in whole cents sum to whole centi-shares: stored as INTEGERs, not float noise
    stored = query(
        db,
        "SELECT COUNT(*) FROM market_snapshots WHERE timestamp = ? AND typeof(bid_depth) = 'integer'",
        ts,
    )[0][0]
    assert integer_depths > 0 and stored >= integer_depths


def test_a_rerun_of_the_cycle_is_idempotent(tmp_path, big_sim):
    ws = tmp_path
    db = setup_workspace(ws, big_sim, max_markets="all")
    assert collect(ws).returncode == 0
    stored = "SELECT * FROM market_snapshots ORDER BY timestamp, token_key"
    before = query(db, stored)
    keys = query(db, "SELECT * FROM snapshot_tokens ORDER BY token_key")
    n = len(before)
    assert n == 2 * len(open_markets(big_sim))
    r = collect(ws)  # the simulator clock has not moved: the same grid point
    assert r.returncode == 0, r.stderr
    assert f"0 new snapshots (already collected: {n:,} existed)" in r.stdout
    assert query(db, stored) == before  # the first row written wins, byte for byte
    assert query(db, "SELECT * FROM snapshot_tokens ORDER BY token_key") == keys
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values") == n


def test_max_markets_accepts_all_or_a_number_only(tmp_path):
    from polybot.config import load_config
    from polybot.errors import ConfigError
    from tests.conftest import write_config

    def cap(value):
        write_config(tmp_path, {"collection": {"max_markets": value}})
        return load_config(tmp_path / "config.yaml", require_mode_secrets=False).collection.market_cap

    assert cap("all") is None
    assert cap(25) == 25 and cap("25") == 25
    for bad in ("everything", 0, "2.5", "ALL "):
        with pytest.raises(ConfigError) as exc:
            cap(bad)
        msg = str(exc.value)
        assert "collection.max_markets" in msg and "whole number ≥ 1" in msg and " or all " in msg
