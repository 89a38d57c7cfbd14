"""What a replay knows at each step (issue 14, findings 3 and 6): market metadata as it was
then (tick, fees, minimum size, end date), and books for backfilled rows that cost what the
market's recorded books cost.

At 15cb2c7 the ``markets`` row (the latest values) was applied to all history, and a
backfilled row traded at price ± 0.01 with 1,000 shares whatever the market's real spread.
"""

from __future__ import annotations

import pytest

from polybot.backtest.data import (
    DEFAULT_BACKFILL_DEPTH,
    DEFAULT_BACKFILL_SPREAD,
    estimate_backfill_books,
    load_markets,
    load_metadata_history,
    read_chunks,
)
from polybot.exchange.fills import simulate_fill
from polybot.strategy.feed import MarketFeed
from tests.backtest.helpers import DAY, T0, M, add_market, new_db, snap
from tests.collect.helpers import collect, query, setup_workspace
from tests.conftest import run_cli

STEP = 300
HOUR = 3600


def meta(conn, mid, eff, *, tick=0.01, min_size=5.0, fee_rate=0.0, end=None, source="collected"):
    conn.execute(
        "INSERT INTO market_metadata_history (market_id, effective_from, tick_size, min_order_size, "
        "fees_enabled, fee_rate, fee_exponent, end_date, source) VALUES (?,?,?,?,?,?,?,?,?)",
        (mid, eff, tick, min_size, 1 if fee_rate else 0, fee_rate, 1.0, end, source),
    )


def replay(conn, feed, start, end, at):
    """Feed the stored rows of [start, end] through the backtester's reader; call
    ``at(t)`` after each timestamp (the engine's step)."""
    store_tokens = feed.tokens
    for ch in read_chunks(conn, store_tokens, start, end, 6 * HOUR, parallel=False):
        ts = ch.timestamp
        for t in sorted(set(ts.tolist())):
            sel = ts == t
            feed.ingest(t, ch.token[sel], ch.bid[sel], ch.ask[sel], ch.price[sel], ch.backfill[sel])
            at(t)


# ------------------------------------------------------------------ point-in-time metadata
def test_a_fee_and_tick_change_mid_window_changes_fills_only_after_it(tmp_path):
    path = tmp_path / "pit.db"
    conn = new_db(path)
    change = T0 + 2 * HOUR
    # the markets row holds TODAY's values: tick 0.001, a 5 % taker fee, min size 20, end date moved
    add_market(conn, "A", tick=0.001, fee_rate=0.05, min_size=20.0, end_date=T0 + 5 * DAY)
    meta(conn, "A", T0 - DAY, tick=0.01, min_size=5.0, fee_rate=0.0, end=T0 + 9 * DAY)
    meta(conn, "A", change, tick=0.001, min_size=20.0, fee_rate=0.05, end=T0 + 5 * DAY)
    for k in range(0, 4 * HOUR // STEP):
        snap(conn, T0 + k * STEP, "A-yes", "A", 0.48, 0.52, bids="0.48:500", asks="0.52:500")
    conn.close()

    conn = new_db(path)
    markets, resolved = load_markets(conn)
    history = load_metadata_history(conn)
    assert [c.effective_from for c in history["A"]] == [T0 - DAY, change]
    feed = MarketFeed(markets, interval_seconds=STEP, metadata_history=history)
    seen = {}

    def at(t):
        view = feed.view(t)
        m = view.market("A")
        book = view.book("A-yes")
        # what any fill at t is computed with: the book's tick / minimum size and the market's fee
        buy = simulate_fill(book, "BUY", size_micro=100 * M, order_type="FAK", fee=m.fee)
        seen[t] = (
            m.tick_size,
            m.min_order_size,
            m.fee.effective_rate,
            m.end_date,
            book.tick_size,
            book.min_order_size,
            buy.fee_micro,
            buy.notional_micro,
        )

    replay(conn, feed, T0, T0 + 4 * HOUR - 1, at)
    conn.close()
    before = [v for t, v in seen.items() if t < change]
    after = [v for t, v in seen.items() if t >= change]
    assert len(before) == 24 and len(after) == 24
    # before the change: the values then — no fee, the old tick, size and end date
    assert set(before) == {(0.01, 5.0, 0.0, T0 + 9 * DAY, 0.01, 5.0, 0, 52 * M)}
    # from the change on: today's values, and the fill pays the fee
    fee = round(100 * 0.05 * 0.52 * 0.48 * M)
    assert set(after) == {(0.001, 20.0, 0.05, T0 + 5 * DAY, 0.001, 20.0, fee, 52 * M)}


def test_metadata_before_the_first_change_is_the_earliest_known_and_views_see_no_later_value(tmp_path):
    conn = new_db(tmp_path / "pit2.db")
    add_market(conn, "A", tick=0.001, end_date=T0 + DAY)
    add_market(conn, "B", tick=0.01)  # no history rows: its markets row, always
    meta(conn, "A", T0 + HOUR, tick=0.01, end=T0 + 3 * DAY)
    meta(conn, "A", T0 + 2 * HOUR, tick=0.001, end=T0 + DAY)
    markets, _ = load_markets(conn)
    feed = MarketFeed(markets, interval_seconds=STEP, metadata_history=load_metadata_history(conn))
    feed.add_rows(
        [{"timestamp": T0, "token_id": "A-yes", "market_id": "A", "best_bid": 0.5, "best_ask": 0.52}]
    )
    v = feed.view(T0)
    assert (v.market("A").tick_size, v.market("A").end_date) == (0.01, T0 + 3 * DAY)
    assert v.market("B").tick_size == 0.01
    version = v.markets_version
    # a view asked for at the change time sees it (nothing fed since), and the old view is stale
    v2 = feed.view(T0 + 2 * HOUR)
    assert (v2.market("A").tick_size, v2.market("A").end_date) == (0.001, T0 + DAY)
    assert v2.markets_version > version
    with pytest.raises(RuntimeError):
        v.market("A")
    conn.close()


def test_the_collector_records_a_metadata_change_with_the_time_it_was_seen(workspace, sim):
    db = setup_workspace(workspace, sim, max_markets=5)
    assert collect(workspace, "--initial").returncode == 0
    t0 = sim.sim.now()
    rows = query(
        db, "SELECT market_id, effective_from, source FROM market_metadata_history ORDER BY market_id"
    )
    tracked = {r[0] for r in query(db, "SELECT id FROM markets WHERE tracked = 1")}
    assert {r[0] for r in rows} >= tracked and all(r[1:] == (t0, "collected") for r in rows)
    n = len(rows)
    assert collect(workspace).returncode == 0  # a re-run of the same cycle: nothing new
    assert len(query(db, "SELECT * FROM market_metadata_history")) == n
    sim.sim.advance(STEP)
    assert collect(workspace).returncode == 0  # nothing changed: nothing recorded
    assert len(query(db, "SELECT * FROM market_metadata_history")) == n
    # the exchange changes one market's fee schedule and tick size
    mid = sorted(tracked)[0]
    m = sim.sim.world.by_id[mid]
    old = (m.tick, m.fee_rate, m.fees_enabled)
    m.fee_rate, m.fees_enabled = 0.07, True
    m.tick = 0.001 if m.tick != 0.001 else 0.01
    sim.sim.advance(STEP)
    assert collect(workspace).returncode == 0
    t2 = sim.sim.now()
    hist = query(
        db,
        "SELECT effective_from, tick_size, fees_enabled, fee_rate FROM market_metadata_history "
        "WHERE market_id = ? ORDER BY effective_from",
        mid,
    )
    assert hist == [(t0, old[0], int(old[2]), old[1]), (t2, m.tick, 1, 0.07)]
    assert len(query(db, "SELECT * FROM market_metadata_history")) == n + 1
    # the markets row keeps only the latest (what the live engine uses)
    assert query(db, "SELECT tick_size, fee_rate FROM markets WHERE id = ?", mid) == [(m.tick, 0.07)]
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ backfilled books
def _round_trip_cost(book_at_buy, book_at_sell, shares, fee):
    buy = simulate_fill(book_at_buy, "BUY", size_micro=shares * M, order_type="FAK", fee=fee)
    sell = simulate_fill(book_at_sell, "SELL", size_micro=buy.size_micro, order_type="FAK", fee=fee)
    return buy, sell, (sell.notional_micro - sell.fee_micro) - (buy.notional_micro + buy.fee_micro)


def test_backfilled_books_use_the_markets_recorded_spread_and_depth(tmp_path):
    """The issue's case: the same mids with a real 3-cent spread lost −$3.0 a trade on
    recorded books and −$1.7 on backfilled ones. Now a backfilled row costs what the
    market's recorded books cost."""
    path = tmp_path / "bf.db"
    conn = new_db(path)
    add_market(conn, "B", tick=0.001)
    add_market(conn, "C", tick=0.01)  # never recorded: the defaults
    day1 = T0 + DAY
    for k in range(DAY // STEP):
        # day 0: backfilled price history (mid only); day 1: recorded 3-cent books, 200 shares on top
        snap(conn, T0 + k * STEP, "B-yes", "B", mid=0.5, last=0.5, source="backfill")
        snap(conn, T0 + k * STEP, "C-yes", "C", mid=0.5, last=0.5, source="backfill")
        snap(
            conn,
            day1 + k * STEP,
            "B-yes",
            "B",
            0.485,
            0.515,
            bids="0.485:200,0.48:900",
            asks="0.515:250,0.52:900",
        )
    conn.close()
    conn = new_db(path)
    books = estimate_backfill_books(conn, ["B-yes", "B-no", "C-yes"])
    assert (books["B-yes"].half_spread, books["B-yes"].depth, books["B-yes"].basis) == (0.015, 200.0, "token")
    assert (books["B-no"].half_spread, books["B-no"].depth, books["B-no"].basis) == (0.015, 200.0, "market")
    assert (books["C-yes"].half_spread, books["C-yes"].depth, books["C-yes"].basis) == (
        DEFAULT_BACKFILL_SPREAD / 2,
        DEFAULT_BACKFILL_DEPTH,
        "default",
    )
    assert DEFAULT_BACKFILL_SPREAD >= 0.04 and DEFAULT_BACKFILL_DEPTH <= 100  # conservative

    markets, _ = load_markets(conn)
    feed = MarketFeed(markets, interval_seconds=STEP, backfill_books=books)
    got = {}

    def at(t):
        if t in (T0 + HOUR, T0 + 2 * HOUR, day1 + HOUR, day1 + 2 * HOUR):
            got[t] = (feed.book("B-yes"), feed.book("C-yes"))

    replay(conn, feed, T0, day1 + DAY - 1, at)
    conn.close()
    bf_buy, bf_sell = got[T0 + HOUR][0], got[T0 + 2 * HOUR][0]
    rec_buy, rec_sell = got[day1 + HOUR][0], got[day1 + 2 * HOUR][0]
    assert (bf_buy.bids[0].price, bf_buy.asks[0].price) == (0.485, 0.515)
    assert (rec_buy.bids[0].price, rec_buy.asks[0].price) == (0.485, 0.515)
    fee = markets[[m.market_id for m in markets].index("B")].fee
    # a round trip of 100 shares costs the spread on both, to the micro-dollar
    _, _, cost_bf = _round_trip_cost(bf_buy, bf_sell, 100, fee)
    _, _, cost_rec = _round_trip_cost(rec_buy, rec_sell, 100, fee)
    assert cost_bf == cost_rec == -3 * M
    # a backfilled level holds what the market's top level holds: 500 shares fill 200
    buy, _, _ = _round_trip_cost(bf_buy, bf_sell, 500, fee)
    assert buy.size_micro == 200 * M
    # the never-recorded market trades on the conservative default: 4 cents wide, 100 shares
    c = got[T0 + HOUR][1]
    assert (c.bids[0].price, c.asks[0].price, c.bids[0].size) == (0.48, 0.52, 100.0)


def test_the_estimate_samples_a_large_database_and_ignores_empty_books(tmp_path, monkeypatch):
    conn = new_db(tmp_path / "big.db")
    add_market(conn, "A", tick=0.01)
    rows = []
    for k in range(3 * DAY // STEP):
        ts = T0 + k * STEP
        bid, ask = (0.40, 0.42) if k % 10 else (0.01, 0.99)  # 10 % one-sided / empty books
        rows.append((ts, "A-yes", "A", bid, ask, f"{bid}:50", f"{ask}:80", "collected"))
    for j in range(300):  # enough other rows to sample
        rows += [
            (T0 + k * STEP, f"X{j}", "X", 0.5, 0.51, "0.5:1", "0.51:1", "collected")
            for k in range(0, 3 * DAY // STEP, 12)
        ]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO snapshot_values (timestamp, token_id, market_id, best_bid, best_ask, "
        "bids, asks, source) VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.execute("COMMIT")
    from polybot.backtest import data

    assert len(rows) > data.FULL_SCAN_ROWS / 10
    full = estimate_backfill_books(conn, ["A-yes"])
    monkeypatch.setattr(data, "FULL_SCAN_ROWS", 1_000)  # force the hourly sample
    sampled = estimate_backfill_books(conn, ["A-yes"])
    assert sampled == full
    assert (full["A-yes"].half_spread, full["A-yes"].depth) == (0.01, 50.0)
    conn.close()


def test_a_replay_on_backfilled_rows_costs_what_it_costs_on_the_recorded_books(tmp_path):
    """End to end through the backtester: the same round trip on the same mids, once on
    backfilled rows and once on recorded 3-cent books, loses the same $3.00."""
    from polybot.backtest.data import prepare_backfill_books
    from polybot.backtest.engine import Backtester
    from polybot.config import default_config
    from polybot.db import connect
    from polybot.strategy import ENTER, EXIT, Intent, Strategy

    path = tmp_path / "e2e.db"
    conn = new_db(path)
    add_market(conn, "B", tick=0.001)
    day1 = T0 + DAY
    conn.execute("BEGIN")
    for k in range(DAY // STEP):
        snap(conn, T0 + k * STEP, "B-yes", "B", mid=0.5, last=0.5, source="backfill")
        snap(
            conn,
            day1 + k * STEP,
            "B-yes",
            "B",
            0.485,
            0.515,
            bids="0.485:200,0.48:900",
            asks="0.515:250,0.52:900",
        )
    conn.execute("COMMIT")
    conn.close()

    class RoundTrips(Strategy):
        name = "round_trips_test"
        PARAMS = {}

        @property
        def history_seconds(self):
            return 3600

        def decide(self, view, portfolio):
            t = view.now
            if t in (T0 + HOUR, day1 + HOUR):
                return [
                    Intent(
                        action=ENTER,
                        token_id="B-yes",
                        market_id="B",
                        side="BUY",
                        size_micro=100 * M,
                        limit_price_micro=600_000,
                        reason="test entry",
                    )
                ]
            h = portfolio.positions.get("B-yes")
            if h is not None and t in (T0 + 2 * HOUR, day1 + 2 * HOUR):
                return [
                    Intent(
                        action=EXIT,
                        token_id="B-yes",
                        market_id="B",
                        side="SELL",
                        size_micro=h.size_micro,
                        reason="test exit",
                    )
                ]
            return []

    cfg = default_config(tmp_path)
    conn = connect(path, readonly=True)
    try:
        bt = Backtester(conn, cfg, RoundTrips({}), start_ts=T0, end_ts=day1 + DAY - 1, capital_micro=500 * M)
        assert bt.backfill_basis is None  # estimated at the first backfilled row, not before
        res = bt.run()
        # the same books as estimating them up front
        assert prepare_backfill_books(bt.feed, conn, cfg.backtest, T0, day1 + DAY - 1) == bt.backfill_basis
        # a replay of the recorded day only (no backfilled row) never estimates them
        recorded = Backtester(
            conn, cfg, RoundTrips({}), start_ts=day1, end_ts=day1 + DAY - 1, capital_micro=500 * M
        )
        assert recorded.run().counts["rows"] == DAY // STEP and recorded.backfill_basis is None
    finally:
        conn.close()
    assert bt.backfill_basis == {"token": 1, "market": 1, "default": 0}
    trips = [(t.opened_at < day1, t.pnl_micro) for t in res.ledger.closed_trips]
    assert trips == [(True, -3 * M), (False, -3 * M)], [
        (f.timestamp, f.side, f.price_micro, f.backfilled_book) for f in res.ledger.fills
    ]
    assert [f.backfilled_book for f in res.ledger.fills] == [True, True, False, False]


def test_the_backtester_applies_a_fee_change_only_after_it(tmp_path):
    """End to end: the same round trip before and after a fee change pays no fee before it
    and the new fee after it (at 15cb2c7, and until the engine is wired, today's fee is
    charged on all history)."""
    from polybot.backtest.engine import Backtester
    from polybot.config import default_config
    from polybot.db import connect
    from polybot.strategy import ENTER, EXIT, Intent, Strategy

    path = tmp_path / "e.db"
    conn = new_db(path)
    change = T0 + 3 * HOUR
    add_market(conn, "A", tick=0.001, fee_rate=0.05, end_date=T0 + 5 * DAY)
    meta(conn, "A", T0 - DAY, tick=0.01, fee_rate=0.0)
    meta(conn, "A", change, tick=0.001, fee_rate=0.05)
    conn.execute("BEGIN")
    for k in range(6 * HOUR // STEP):
        snap(conn, T0 + k * STEP, "A-yes", "A", 0.50, 0.51, bids="0.5:500", asks="0.51:500")
    conn.execute("COMMIT")
    conn.close()

    class S(Strategy):
        name = "s"
        PARAMS = {}

        @property
        def history_seconds(self):
            return 3600

        def decide(self, view, portfolio):
            t = view.now
            if t in (T0 + HOUR, T0 + 4 * HOUR):
                return [
                    Intent(
                        action=ENTER,
                        token_id="A-yes",
                        market_id="A",
                        side="BUY",
                        size_micro=100 * M,
                        limit_price_micro=600_000,
                        reason="in",
                    )
                ]
            h = portfolio.positions.get("A-yes")
            if h is not None and t in (T0 + 2 * HOUR, T0 + 5 * HOUR):
                return [
                    Intent(
                        action=EXIT,
                        token_id="A-yes",
                        market_id="A",
                        side="SELL",
                        size_micro=h.size_micro,
                        reason="out",
                    )
                ]
            return []

    cfg = default_config(tmp_path)
    conn = connect(path, readonly=True)
    try:
        res = Backtester(conn, cfg, S({}), start_ts=T0, end_ts=T0 + 6 * HOUR - 1, capital_micro=500 * M).run()
    finally:
        conn.close()
    fees = [(f.timestamp < change, f.fee_micro > 0) for f in res.ledger.fills]
    assert fees == [(True, False), (True, False), (False, True), (False, True)], res.ledger.fills
