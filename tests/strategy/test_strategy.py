"""The strategy interface, the shared feed (MarketView builder) and the built-in strategies."""

import math
import time

import numpy as np
import pytest

from polybot.errors import ConfigError, DataError
from polybot.exchange.models import FeeSchedule
from polybot.strategy import (
    ENTER,
    EXIT,
    Holding,
    Intent,
    MarketInfo,
    PortfolioView,
    get_strategy,
    strategy_names,
)
from polybot.strategy.correlation_pairs import CorrelationPairs
from polybot.strategy.feed import MarketFeed
from polybot.strategy.mean_reversion import MeanReversion
from tests.backtest.helpers import DAY, T0, M


def mk(mid, **kw):
    return MarketInfo(market_id=mid, question=f"Will {mid}?", token_ids=(f"{mid}-yes", f"{mid}-no"), **kw)


def row(ts, token, market, bid=None, ask=None, mid=None, **kw):
    r = {
        "timestamp": ts,
        "token_id": token,
        "market_id": market,
        "best_bid": bid,
        "best_ask": ask,
        "mid": mid if mid is not None or bid is None or ask is None else round((bid + ask) / 2, 6),
        "bids": f"{bid}:100" if bid is not None else None,
        "asks": f"{ask}:100" if ask is not None else None,
        "source": "collected",
    }
    r.update(kw)
    return r


# ------------------------------------------------------------------ registry and params
def test_registry_and_param_validation():
    assert strategy_names() == ["correlation_pairs", "mean_reversion"]
    s = get_strategy("correlation_pairs", {"entry_z": 2.5, "max_pairs": 5.0})
    assert (
        s.params["entry_z"] == 2.5 and s.params["max_pairs"] == 5 and isinstance(s.params["max_pairs"], int)
    )
    with pytest.raises(
        ConfigError, match=r"Unknown strategy 'corelation_pairs'.*did you mean 'correlation_pairs'"
    ):
        get_strategy("corelation_pairs")
    with pytest.raises(ConfigError) as e:
        get_strategy("correlation_pairs", {"entry_zz": 2})
    assert "strategy.params.entry_zz" in str(e.value) and "did you mean 'entry_z'" in str(e.value)
    with pytest.raises(ConfigError, match=r"strategy.params.max_pairs' must be a whole number"):
        get_strategy("correlation_pairs", {"max_pairs": 2.5})
    with pytest.raises(ConfigError, match=r"strategy.params.hold_to_resolution' must be true or false"):
        get_strategy("mean_reversion", {"hold_to_resolution": "yes"})
    with pytest.raises(ConfigError, match=r"strategy.params.exit_z"):
        get_strategy("correlation_pairs", {"entry_z": 1.0, "exit_z": 1.5})


def test_intent_rules():
    Intent(
        action=ENTER,
        token_id="t",
        market_id="m",
        side="BUY",
        notional_micro=10 * M,
        limit_price_micro=500_000,
    )
    with pytest.raises(ValueError, match="short selling"):
        Intent(action=ENTER, token_id="t", market_id="m", side="SELL", size_micro=M)
    with pytest.raises(ValueError, match="exactly one"):
        Intent(action=EXIT, token_id="t", market_id="m", side="SELL")
    with pytest.raises(ValueError, match="for BUYs"):
        Intent(action=EXIT, token_id="t", market_id="m", side="SELL", notional_micro=M)
    with pytest.raises(ValueError, match="limit_price_micro"):
        Intent(
            action=ENTER, token_id="t", market_id="m", side="BUY", size_micro=M, limit_price_micro=1_000_000
        )


def test_market_info_from_row():
    r = {
        "id": "m1",
        "question": "Q?",
        "token_ids": '["a","b"]',
        "outcomes": '["Yes","No"]',
        "event_id": "e",
        "event_title": None,
        "neg_risk": 1,
        "neg_risk_market_id": "0xnr",
        "end_date": T0,
        "tick_size": 0.001,
        "min_order_size": 5,
        "fees_enabled": 1,
        "fee_rate": 0.04,
        "fee_exponent": 1,
    }
    m = MarketInfo.from_row(r)
    assert m.token_ids == ("a", "b") and m.primary_token == "a" and m.neg_risk and m.tick_micro == 1000
    assert m.fee == FeeSchedule(rate=0.04, exponent=1.0, enabled=True)


# ------------------------------------------------------------------ the feed
def test_feed_point_in_time_rules():
    feed = MarketFeed([mk("A")], history_seconds=3600, interval_seconds=300)
    feed.add_rows([row(T0, "A-yes", "A", 0.40, 0.42)])
    v = feed.view(T0 + 10)
    q = v.quote("A-yes")
    assert (q.timestamp, q.best_bid, q.best_ask, q.mid, q.source) == (T0, 0.40, 0.42, 0.41, "collected")
    assert v.quote("A-no") is None
    feed.add_rows([row(T0 + 300, "A-yes", "A", 0.41, 0.43)])
    with pytest.raises(ValueError, match="cannot go back in time"):
        feed.view(T0)
    with pytest.raises(DataError, match="went back in time"):
        feed.add_rows([row(T0 - 300, "A-yes", "A", 0.41, 0.43)])
    with pytest.raises(RuntimeError, match="stale"):
        v.quote("A-yes")  # the feed moved on: the old view is dead
    book = feed.view(T0 + 300).book("A-yes")
    assert book.best_bid == 0.41 and book.asks[0].size == 100


def test_step_prices_looks_each_token_up_once_per_step():
    from polybot.strategy.execution import feed_prices, step_prices

    feed = MarketFeed([mk("A")], history_seconds=3600, interval_seconds=300)
    feed.add_rows([row(T0, "A-yes", "A", 0.40, 0.42)])
    prices = step_prices(feed)
    assert prices("A-yes") == feed_prices(feed, "A-yes") == (400_000, 420_000)
    assert prices("A-no") == (None, None)  # never seen
    feed.add_rows([row(T0 + 300, "A-yes", "A", 0.45, 0.47)])  # the next step's rows
    assert prices("A-yes") == (400_000, 420_000)  # one step's lookups: the book it started with
    assert step_prices(feed)("A-yes") == (450_000, 470_000)


def test_feed_ingest_derives_a_missing_mid_from_both_sides_only():
    feed = MarketFeed([mk("A"), mk("B")], history_seconds=3600, interval_seconds=300)
    idx = feed.index_array(["A-yes", "A-no", "B-yes", "B-no"])
    nan = np.nan
    feed.ingest(
        T0,
        idx,
        np.array([0.401, 0.3, nan, nan]),  # bid
        np.array([0.404, nan, nan, nan]),  # ask
        np.array([nan, nan, 0.55, nan]),  # mid: A-yes from its sides, B-yes a backfilled price
        np.array([False, False, True, False]),
    )
    got = feed.latest_arrays()
    assert got["mid"][idx[0]] == 0.4025 and got["mid"][idx[2]] == 0.55
    assert np.isnan(got["mid"][idx[1]]) and np.isnan(got["mid"][idx[3]])  # one side only / nothing
    assert got["backfill"][idx].tolist() == [False, False, True, False]
    assert got["bid"][idx[2]] < 0.55 < got["ask"][idx[2]]  # the backfilled price got a synthetic book


def test_completed_rows_equal_the_full_read_at_every_step():
    """The pairs strategy's z-window is extended a point at a time (CompletedRows); at every
    step it must equal the full read, through gaps, skipped buckets, a ring wrap-around, a
    change of columns and another feed."""
    from polybot.strategy.common import CompletedRows

    markets = [mk(c) for c in "ABCD"]
    feed = MarketFeed(markets, history_seconds=3600, interval_seconds=300)  # 13 slots: wraps
    other = MarketFeed(markets, history_seconds=3600, interval_seconds=300)
    idx = feed.index_array([f"{c}-yes" for c in "ABCD"])
    rng = np.random.default_rng(3)
    rows = CompletedRows()
    points, reads, t = 8, 0, T0
    for step in range(60):
        t += 300 * (4 if step in (20, 41) else 1)  # two spells with no rows at all
        for f in (feed, other):
            for k in range(2):  # two snapshots in each bucket
                mid = np.round(rng.uniform(0.2, 0.8, 4), 3)
                mid[rng.random(4) < 0.15] = np.nan  # gaps
                f.ingest(t + 100 * k, idx, mid - 0.01, mid + 0.01, mid)
        cols, key = (idx[:3], "abc") if step < 30 else (idx[1:], "bcd")
        view = (other if step == 50 else feed).view(t + 100)
        before = id(rows._buf)
        got = rows.window(view, cols, points, key)
        reads += id(rows._buf) != before
        want = view.history_by_index(cols, points + 1)[1][:-1]
        assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True), step
        assert got.flags.c_contiguous and not got.flags.writeable
    # full reads: the first, one after each skipped spell, the new columns, the other feed
    # and the step back to this one; every other step only added a point
    assert reads == 6, reads
    assert 4 <= reads <= 10, reads


def test_feed_history_grid_and_gaps():
    feed = MarketFeed([mk("A"), mk("B")], history_seconds=1800, interval_seconds=300)
    for k in range(5):
        rows = [row(T0 + 300 * k, "A-yes", "A", 0.40 + k / 100, 0.42 + k / 100)]
        if k != 2:  # B misses bucket 2
            rows.append(row(T0 + 300 * k, "B-yes", "B", 0.60, 0.62))
        feed.add_rows(rows)
    feed.add_rows([row(T0 + 1250, "A-yes", "A", 0.50, 0.52)])  # same bucket as 1200: overwrites
    h = feed.view(T0 + 1250).history(["A-yes", "B-yes"], seconds=1200)
    assert list(h.timestamps) == [T0 + 300 * k for k in range(5)]
    assert np.allclose(h.column("A-yes"), [0.41, 0.42, 0.43, 0.44, 0.51])
    b = h.column("B-yes")
    assert math.isnan(b[2]) and b[0] == 0.61
    # a long silence leaves NaN buckets, and the window slides
    feed.add_rows([row(T0 + 3000, "A-yes", "A", 0.30, 0.32)])
    h = feed.view(T0 + 3000).history(["A-yes"], seconds=900)
    assert list(h.timestamps) == [T0 + 2100, T0 + 2400, T0 + 2700, T0 + 3000]
    assert np.isnan(h.mids[:3, 0]).all() and h.mids[3, 0] == 0.31


def test_feed_history_is_the_same_wherever_the_ring_buffer_wraps():
    # history_by_index slices the ring when the window does not wrap, gathers rows when it
    # does: every window, at every position of the ring, equals the rows as recorded
    feed = MarketFeed([mk("A"), mk("B")], history_seconds=1500, interval_seconds=300)
    n_slots = feed.n_slots
    recorded: dict[int, tuple[float, float]] = {}
    for k in range(3 * n_slots):
        a, b = round(0.30 + k / 1000, 4), round(0.60 - k / 1000, 4)
        rows = [row(T0 + 300 * k, "A-yes", "A", a - 0.01, a + 0.01)]
        if k % 4 != 1:  # B misses some buckets
            rows.append(row(T0 + 300 * k, "B-yes", "B", b - 0.01, b + 0.01))
        feed.add_rows(rows)
        recorded[T0 + 300 * k] = (a, b if k % 4 != 1 else np.nan)
        for points in (1, 3, n_slots):
            ia, ib = feed.token_index["A-yes"], feed.token_index["B-yes"]
            ts, M = feed.history_by_index(np.array([ib, ia, ib]), points)
            want_ts = list(range(T0 + 300 * (k - points + 1), T0 + 300 * k + 1, 300))
            assert ts.tolist() == want_ts  # grid slots before the first row are there, NaN
            rec = [recorded.get(t, (np.nan, np.nan)) for t in want_ts]
            want = np.array([[b, a, b] for a, b in rec])
            assert np.allclose(M, want, equal_nan=True, atol=1e-12)


def test_feed_backfilled_rows_get_a_synthetic_book():
    feed = MarketFeed([mk("A", tick_size=0.01)], backfill_half_spread=0.01, interval_seconds=300)
    feed.add_rows(
        [
            {
                "timestamp": T0,
                "token_id": "A-yes",
                "market_id": "A",
                "best_bid": None,
                "best_ask": None,
                "mid": None,
                "last_trade_price": 0.555,
                "source": "backfill",
            }
        ]
    )
    q = feed.view(T0).quote("A-yes")
    # 0.555 − 0.01 = 0.545 → down to the tick 0.54; 0.565 → up to 0.57 (outward: pessimistic)
    assert (q.best_bid, q.best_ask, q.mid, q.backfilled) == (0.54, 0.57, 0.555, True)
    b = feed.view(T0).book("A-yes")
    assert [(lv.price, lv.size) for lv in b.bids] == [(0.54, 100.0)]


def test_feed_resolution_is_point_in_time():
    feed = MarketFeed([mk("A")], resolved_at={"A": T0 + 600})
    feed.add_rows([row(T0, "A-yes", "A", 0.4, 0.42)])
    assert not feed.view(T0 + 599).is_resolved("A")
    assert feed.view(T0 + 600).is_resolved("A")


# ------------------------------------------------------------------ built-ins
def _pair_feed(n=600, jump=0.0, seed=0):
    """Two markets whose YES mids share one random walk (r ≈ 0.8 on changes). Returns
    the feed with n − 1 steps and a function adding the last step, where A jumps by
    ``jump`` while B does not (returns that step's time)."""
    rng = np.random.default_rng(seed)
    walk = 0.5 + np.cumsum(rng.normal(0, 0.004, n))
    noise = rng.normal(0, 0.0015, (n, 2))
    feed = MarketFeed(
        [mk("A", end_date=T0 + 60 * DAY), mk("B", end_date=T0 + 60 * DAY)],
        history_seconds=80 * 3600,
        interval_seconds=300,
    )

    def step(k, j=0.0):
        a = walk[k] + noise[k, 0] + j
        b = walk[k] + noise[k, 1]
        feed.add_rows(
            [
                row(T0 + 300 * k, "A-yes", "A", round(a - 0.005, 4), round(a + 0.005, 4)),
                row(T0 + 300 * k, "B-yes", "B", round(b - 0.005, 4), round(b + 0.005, 4)),
            ]
        )
        return T0 + 300 * k

    for k in range(n - 1):
        step(k)
    return feed, T0 + 300 * (n - 2), (lambda: step(n - 1, jump))


PAIR_PARAMS = {
    "lookback_hours": 40,
    "z_window_hours": 24,
    "min_correlation": 0.7,
    "change_points": 1,
    "reselect_hours": 1000.0,
    "entry_z": 2.0,
    "exit_z": 0.5,
    "min_edge": 0.0,
}


def test_correlation_pairs_buys_the_laggard_then_exits_on_convergence():
    feed, before, last = _pair_feed(jump=0.08)
    s = CorrelationPairs(PAIR_PARAMS)
    assert s.decide(feed.view(before), PortfolioView(500 * M)) == []
    assert [(p.key, round(p.r, 1)) for p in s.pairs] == [("A-yes|B-yes", 0.8)]
    now = last()
    out = s.decide(feed.view(now), PortfolioView(500 * M))
    assert len(out) == 1
    it = out[0]
    # A jumped up: the spread A − βB is stretched upwards → B is the laggard
    assert (it.action, it.token_id, it.side, it.notional_micro) == (ENTER, "B-yes", "BUY", 50 * M)
    q = feed.view(now).quote("B-yes")
    assert it.limit_price_micro == round(q.best_ask * 100) * 10_000 + 10_000  # ask + 1 tick
    assert "laggard" in it.reason and it.tag == "pair:A-yes|B-yes"
    # no jump: nothing to do; holding B while the spread is normal → sell all at the bid − 1 tick
    feed2, _, last2 = _pair_feed(jump=0.0)
    # the hedge ratio comes from the levels (β ≈ 0.99): the spread is the two noises, last seen at z ≈ 1.0
    s2 = CorrelationPairs(dict(PAIR_PARAMS, exit_z=1.5))
    now2 = last2()
    assert s2.decide(feed2.view(now2), PortfolioView(500 * M)) == []
    held = Holding("B-yes", "B", 100 * M, 50 * M, now2 - 3600, "correlation_pairs")
    out = s2.decide(feed2.view(now2), PortfolioView(450 * M, {"B-yes": held}))
    assert len(out) == 1 and out[0].action == EXIT and out[0].size_micro == 100 * M
    assert "converged" in out[0].reason
    bid = feed2.view(now2).quote("B-yes").best_bid
    assert out[0].limit_price_micro == int(bid * 100) * 10_000 - 10_000


def test_correlation_pairs_respects_end_dates_and_time_stop():
    params = dict(PAIR_PARAMS, no_entry_hours_before_end=48, exit_hours_before_end=6, max_hold_hours=10)
    feed, before, last = _pair_feed(jump=0.08)
    s = CorrelationPairs(params)
    s.decide(feed.view(before), PortfolioView(500 * M))
    now = last()
    # end date within 48 h → no entry
    for mid in ("A", "B"):
        feed.add_market(mk(mid, end_date=now + 24 * 3600))
    assert s.decide(feed.view(now), PortfolioView(500 * M)) == []
    # a holding 5 h before the end is sold; one held 11 h is sold by the time stop
    h = Holding("A-yes", "A", 10 * M, 5 * M, now - 3600)
    feed.add_market(mk("A", end_date=now + 5 * 3600))
    out = s.decide(feed.view(now), PortfolioView(500 * M, {"A-yes": h}))
    assert out[0].action == EXIT and "market ends in 5.0 h" in out[0].reason
    feed.add_market(mk("A", end_date=now + 60 * DAY))
    h = Holding("A-yes", "A", 10 * M, 5 * M, now - 11 * 3600)
    out = s.decide(feed.view(now), PortfolioView(500 * M, {"A-yes": h}))
    assert out[0].action == EXIT and out[0].reason.startswith("time stop")


def test_mean_reversion_buys_a_drop_and_sells_the_recovery():
    feed = MarketFeed([mk("A", end_date=T0 + 60 * DAY)], history_seconds=20 * 3600, interval_seconds=300)
    rng = np.random.default_rng(1)
    n = 200
    for k in range(n):
        p = 0.50 + rng.normal(0, 0.003)
        feed.add_rows([row(T0 + 300 * k, "A-yes", "A", round(p - 0.005, 3), round(p + 0.005, 3))])
    now = T0 + 300 * n
    feed.add_rows([row(now, "A-yes", "A", 0.44, 0.45)])  # a sudden drop
    s = MeanReversion({"window_hours": 12})
    out = s.decide(feed.view(now), PortfolioView(500 * M))
    assert len(out) == 1 and out[0].action == ENTER and out[0].token_id == "A-yes"
    assert out[0].limit_price_micro == 460_000
    feed.add_rows([row(now + 300, "A-yes", "A", 0.50, 0.51)])  # back to the mean
    h = Holding("A-yes", "A", 100 * M, 45 * M, now)
    out = s.decide(feed.view(now + 300), PortfolioView(455 * M, {"A-yes": h}))
    assert len(out) == 1 and out[0].action == EXIT and out[0].limit_price_micro == 490_000
    # the remnant of a partial fill, below the market's 5-share minimum, is not offered for sale
    # (the exchange would reject the SELL); 5 shares are
    dust = Holding("A-yes", "A", 4_999_000, 2 * M, now)
    assert s.decide(feed.view(now + 300), PortfolioView(455 * M, {"A-yes": dust})) == []
    five = Holding("A-yes", "A", 5 * M, 2 * M, now)
    out = s.decide(feed.view(now + 300), PortfolioView(455 * M, {"A-yes": five}))
    assert [(i.action, i.size_micro) for i in out] == [(EXIT, 5 * M)]


def test_strategies_never_read_the_clock(monkeypatch):
    feed, _, last = _pair_feed(jump=0.08)
    now = last()
    strategies = [CorrelationPairs(PAIR_PARAMS), MeanReversion()]

    def boom(*a, **k):
        raise AssertionError("a strategy read the clock")

    for name in ("time", "monotonic", "perf_counter", "time_ns"):
        monkeypatch.setattr(time, name, boom)
    for s in strategies:
        s.decide(feed.view(now), PortfolioView(500 * M))


def test_same_rows_same_intents_on_both_feed_paths(tmp_path):
    """The engine feeds plain rows (add_rows); the backtester feeds numpy columns from
    SQLite (ingest + depth loader). The same strategy must decide identically."""
    from polybot.backtest.data import SnapshotStore, load_markets
    from polybot.backtest.synthetic import generate
    from polybot.db import connect

    d = generate(
        tmp_path / "s.db",
        n_markets=6,
        days=4,
        seed=5,
        tick=0.001,
        half_spread=0.002,
        common_vol=0.012,
        idio_vol=0.008,
        reversion=0.04,
    )
    conn = connect(d.path, readonly=True)
    markets, _ = load_markets(conn)
    params = {"lookback_hours": 24, "reselect_hours": 2, "z_window_hours": 12, "entry_z": 1.5}
    s1, s2 = get_strategy("correlation_pairs", params), get_strategy("correlation_pairs", params)
    s3 = get_strategy("correlation_pairs", params)
    f1 = MarketFeed(markets, history_seconds=s1.history_seconds)
    f2 = MarketFeed(markets, history_seconds=s2.history_seconds)
    f3 = MarketFeed(markets, history_seconds=s3.history_seconds)  # the reader's prices, not rounded again
    store = SnapshotStore(conn, f2.tokens)
    f2.depth_loader = f3.depth_loader = store.depth
    rows = conn.execute("SELECT * FROM snapshot_values ORDER BY timestamp, token_id").fetchall()
    by_ts = {}
    for r in rows:
        by_ts.setdefault(r["timestamp"], []).append(r)
    chunks = list(store.chunks(d.start_ts, d.end_ts))
    cols = {}
    for ch in chunks:
        for t in np.unique(ch.timestamp):
            sel = ch.timestamp == t
            cols[int(t)] = (ch.token[sel], ch.bid[sel], ch.ask[sel], ch.price[sel], ch.backfill[sel])
    pv = PortfolioView(500 * M)
    n_intents = 0
    for t in sorted(by_ts):
        f1.add_rows(by_ts[t])
        f2.ingest(t, *cols[t])
        f3.ingest(t, *cols[t], micro_exact=True)
        a, b = s1.decide(f1.view(t), pv), s2.decide(f2.view(t), pv)
        assert a == b == s3.decide(f3.view(t), pv), t
        n_intents += len(a)
        if t % 7200 == 0:
            tok = d.yes_tokens[0]
            assert f1.view(t).book(tok) == f2.view(t).book(tok)
    assert n_intents > 0  # the comparison was not vacuous
    for k, v in f2.latest_arrays().items():
        assert np.array_equal(v, f3.latest_arrays()[k], equal_nan=True), k
    conn.close()


def test_engine_warm_feed_equals_a_feed_built_row_by_row(tmp_path):
    """The engine warms its feed from the database at start-up (MarketData.start_feed), then
    adds live rows."""
    from polybot.backtest.synthetic import generate
    from polybot.config import Config
    from polybot.db import connect
    from polybot.engine.marketdata import MarketData
    from polybot.exchange.client import PolymarketClient

    d = generate(tmp_path / "w.db", n_markets=4, days=2, seed=2, tick=0.001, half_spread=0.002)
    conn = connect(d.path, readonly=True)
    s = get_strategy("mean_reversion", {"window_hours": 6})
    now = d.start_ts + DAY + 7 * 300
    nowhere = "http://127.0.0.1:9"  # warming reads the database only: a call out would fail
    md = MarketData(
        Config(),
        conn,
        PolymarketClient(nowhere, nowhere, nowhere),
        mode="paper",
        history_seconds=s.history_seconds,
    )
    md.load_universe()
    assert md.start_feed(now) > 0
    warm = md.require_feed()
    assert len(warm.markets) == 4
    ref = MarketFeed(list(warm.markets.values()), history_seconds=s.history_seconds)
    rows = conn.execute(
        "SELECT * FROM snapshot_values WHERE timestamp > ? AND timestamp <= ? ORDER BY timestamp",
        (now - s.history_seconds - 300, now),
    ).fetchall()
    ref.add_rows(rows)
    tok = d.yes_tokens[1]
    h1, h2 = warm.view(now).history([tok]), ref.view(now).history([tok])
    assert np.isfinite(h1.mids[-50:]).any()  # the comparison is not of two empty histories
    assert np.array_equal(h1.mids[-50:], h2.mids[-50:], equal_nan=True)
    assert warm.view(now).quote(tok) == ref.view(now).quote(tok)
    assert warm.view(now).book(tok) == ref.view(now).book(tok)
    # then live rows keep coming through add_rows
    nxt = conn.execute("SELECT * FROM snapshot_values WHERE timestamp = ?", (now + 300,)).fetchall()
    warm.add_rows(nxt)
    ref.add_rows(nxt)
    assert s.decide(warm.view(now + 300), PortfolioView(500 * M)) == get_strategy(
        "mean_reversion", {"window_hours": 6}
    ).decide(ref.view(now + 300), PortfolioView(500 * M))
    conn.close()


def test_nan_stats_with_and_without_gaps():
    from polybot.strategy.common import nan_stats

    rng = np.random.default_rng(5)
    M = rng.normal(0.5, 0.01, (50, 4))
    G = M.copy()
    G[rng.random(G.shape) < 0.2] = np.nan
    G[:, 3] = np.nan
    G[:3, 3] = 0.5  # 3 points: below min_count
    for X in (M, G):
        mean, std, cnt = nan_stats(X, 10)
        for c in range(X.shape[1]):
            v = X[:, c][~np.isnan(X[:, c])]
            assert cnt[c] == len(v)
            if len(v) >= 10:
                assert mean[c] == pytest.approx(v.mean(), abs=1e-15)
                assert std[c] == pytest.approx(v.std(), abs=1e-15)
            else:
                assert math.isnan(mean[c]) and math.isnan(std[c])
    # the caller's completeness hint takes the mask-free path: the same figures, bit for bit
    for a, b in zip(nan_stats(M, 10, complete=True), nan_stats(M, 10, complete=False), strict=True):
        assert np.array_equal(a, b)
    few = nan_stats(M[:5], 10, complete=True)
    assert np.isnan(few[0]).all() and np.isnan(few[1]).all() and few[2].tolist() == [5] * 4
