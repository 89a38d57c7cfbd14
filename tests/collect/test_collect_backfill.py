"""collect_market_data.py --backfill: grid alignment, collected rows win, resumable."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from tests.collect.helpers import collect, query, scalar, setup_workspace
from tests.conftest import ROOT, run_cli

STEP = 300
DAY = 86_400


def tracked_tokens(db) -> list[str]:
    return [
        r[0]
        for r in query(
            db,
            "SELECT t.token_id FROM market_tokens t JOIN markets m ON m.id = t.market_id WHERE m.tracked = 1",
        )
    ]


def test_backfill_fills_the_grid_and_collected_rows_win(workspace, sim):
    db = setup_workspace(workspace, sim, max_markets=4)
    assert collect(workspace, "--initial").returncode == 0
    t0 = sim.sim.now()
    collected = query(db, "SELECT token_id, mid, best_bid FROM snapshot_values ORDER BY token_id")
    r = collect(workspace, "--backfill", "--days", "2")
    assert r.returncode == 0, r.stderr
    assert "Backfill 2 days" in r.stdout and "8 tokens" in r.stdout
    n_grid = 2 * DAY // STEP
    for tok in tracked_tokens(db):
        rows = query(
            db,
            "SELECT timestamp, source, mid, last_trade_price, best_bid, best_ask, bids "
            "FROM snapshot_values WHERE token_id = ? ORDER BY timestamp",
            tok,
        )
        assert [r[0] for r in rows] == list(range(t0 - 2 * DAY, t0 + 1, STEP))
        assert len(rows) == n_grid + 1
        for _ts, source, mid, ltp, bb, ba, bids in rows[:-1]:
            assert source == "backfill" and mid == ltp and 0 <= mid <= 1
            assert bb is None and ba is None and bids is None
        assert rows[-1][1] == "collected"
    # the collected rows were not touched
    assert (
        query(
            db,
            "SELECT token_id, mid, best_bid FROM snapshot_values WHERE source = 'collected' "
            "ORDER BY token_id",
        )
        == collected
    )
    # backfilled prices are the exchange's price history, as of each grid point (no look-ahead)
    tok = tracked_tokens(db)[0]
    hist = requests.get(
        f"{sim.clob_url}/prices-history",
        params={"market": tok, "startTs": t0 - 3 * DAY, "endTs": t0, "fidelity": 5},
        timeout=10,
    ).json()["history"]
    points = sorted((h["t"], float(h["p"])) for h in hist)
    for ts, mid in query(
        db, "SELECT timestamp, mid FROM snapshot_values WHERE token_id = ? AND source = 'backfill'", tok
    ):
        expected = [p for t, p in points if t <= ts][-1]
        assert mid == expected
    # second run: nothing missing, nothing fetched
    before = sim.sim.path_count.get("/clob/prices-history", 0)
    r = collect(workspace, "--backfill", "--days", "2")
    assert r.returncode == 0, r.stderr
    assert "8 tokens (8 already complete): 0 rows written" in r.stdout
    assert sim.sim.path_count.get("/clob/prices-history", 0) == before
    kinds = query(db, "SELECT status, snapshots FROM collection_cycles WHERE kind = 'backfill' ORDER BY id")
    assert kinds == [("ok", 8 * n_grid), ("ok", 0)]


def test_backfill_fills_a_collection_gap(workspace, sim):
    db = setup_workspace(workspace, sim, max_markets=3)
    assert collect(workspace, "--initial").returncode == 0
    sim.sim.advance(3 * STEP)  # two cycles missed
    assert collect(workspace).returncode == 0
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 1 and "1 gap in the 5-minute grid" in r.stdout
    assert "2026-11-01T00:05:00Z → 2026-11-01T00:10:00Z (2 cycles missing)" in r.stdout
    assert collect(workspace, "--backfill", "--days", "1").returncode == 0
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 0, r.stdout
    assert "No holes in any market's series" in r.stdout
    assert "No gaps in the 5-minute grid (4 cycles" in r.stdout and "2 cycles filled by backfill" in r.stdout
    assert (
        scalar(
            db,
            "SELECT COUNT(*) FROM snapshot_values WHERE timestamp IN (?, ?) AND source = 'backfill'",
            1793491500,
            1793491800,
        )
        == 3 * 2 * 2
    )


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_backfill_interrupted_by_an_outage_resumes_with_no_gaps_or_duplicates(workspace, sim):
    db = setup_workspace(workspace, sim, max_markets=12)
    assert collect(workspace, "--initial").returncode == 0
    t0 = sim.sim.now()
    tokens = tracked_tokens(db)
    sim.sim.set_faults(latency_ms=40, path="/clob/prices-history")  # slow enough to interrupt
    env = {"PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    p = subprocess.Popen(
        [sys.executable, str(ROOT / "collect_market_data.py"), "--backfill", "--days", "30"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        if scalar(db, "SELECT COUNT(*) FROM snapshot_values WHERE source = 'backfill'") > 0:
            break
        time.sleep(0.02)
    sim.sim.set_faults(outage=True)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 4, (out, err)
    assert "INTERRUPTED after" in out and "run the same command again" in out
    assert "Traceback" not in err
    done = scalar(db, "SELECT COUNT(DISTINCT token_id) FROM snapshot_values WHERE source = 'backfill'")
    assert 0 < done < len(tokens)
    status = query(db, "SELECT status FROM collection_cycles WHERE kind = 'backfill'")
    assert status == [("partial",)]

    sim.sim.clear_faults()
    r = collect(workspace, "--backfill", "--days", "30")
    assert r.returncode == 0, r.stderr
    assert f"({done} already complete)" in r.stdout
    grid = list(range(t0 - 30 * DAY, t0 + 1, STEP))
    for tok in tokens:
        ts = [
            r[0]
            for r in query(
                db, "SELECT timestamp FROM snapshot_values WHERE token_id = ? ORDER BY timestamp", tok
            )
        ]
        assert ts == grid, tok
    assert (
        scalar(
            db,
            "SELECT COUNT(*) FROM (SELECT token_id, timestamp / 300 FROM snapshot_values "
            "GROUP BY 1, 2 HAVING COUNT(*) > 1)",
        )
        == 0
    )
    r = run_cli("verify_data_collection.py", "--hours", str(30 * 24 + 1), cwd=workspace)
    assert r.returncode == 0, r.stdout
    assert "No holes in any market's series" in r.stdout
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert r.returncode == 0, r.stdout
    assert "PASS: Data quality check passed" in r.stdout


def test_backfill_without_tracked_markets_says_what_to_run(workspace, sim):
    setup_workspace(workspace, sim)
    r = collect(workspace, "--backfill", "--days", "30")
    assert r.returncode == 1
    assert "run python collect_market_data.py --initial first" in r.stdout


def test_backfill_and_collection_run_side_by_side(workspace, sim):
    """The backfill has its own lock: a cron cycle during a long backfill still runs, and
    neither sees "database is locked"."""
    db = setup_workspace(workspace, sim, max_markets=10)
    assert collect(workspace, "--initial").returncode == 0
    sim.sim.set_faults(latency_ms=30, path="/clob/prices-history")
    env = {"PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    p = subprocess.Popen(
        [sys.executable, str(ROOT / "collect_market_data.py"), "--backfill", "--days", "10"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        if scalar(db, "SELECT COUNT(*) FROM snapshot_values WHERE source = 'backfill'") > 0:
            break
        time.sleep(0.02)
    sim.sim.advance(STEP)
    r = collect(workspace)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and r.returncode == 0, (out, err, r.stdout, r.stderr)
    assert "locked" not in err + r.stderr
    assert "Cycle 2026-11-01T00:05:00Z" in r.stdout
    assert (
        scalar(
            db,
            "SELECT COUNT(*) FROM snapshot_values WHERE timestamp = ? AND source = 'collected'",
            1793491500,
        )
        == 20
    )


# ------------------------------------------------------------------ survivorship-free history
def closed_between(sim, start, end):
    """The simulator's own answer: markets whose end date is inside [start, end] and that
    are closed now, with their payout per token."""
    s = sim.sim
    out = {}
    for m in s.world.markets:
        if start <= s.end_of(m.index) <= end and s.phase(m.index) != "open":
            out[m.id] = (
                int(s.end_of(m.index)),
                s.phase(m.index),
                dict(zip(m.token_ids, s.payouts(m.index), strict=True)),
            )
    return out


class BuyAndHold:
    """Buys 10 shares of each listed token at the first step it has a quote, holds them."""

    def __new__(cls, tokens):
        from polybot.strategy import ENTER, Intent, Strategy

        class _S(Strategy):
            name = "buy_and_hold_test"
            PARAMS = {}

            def __init__(self):
                super().__init__({})
                self.todo = dict(tokens)

            @property
            def history_seconds(self):
                return 3600

            def decide(self, view, portfolio):
                out = []
                for tok, market in list(self.todo.items()):
                    q = view.quote(tok)
                    if q is None or q.best_ask is None or view.is_resolved(market):
                        continue
                    del self.todo[tok]
                    out.append(
                        Intent(
                            action=ENTER,
                            token_id=tok,
                            market_id=market,
                            side="BUY",
                            size_micro=10_000_000,
                            limit_price_micro=990_000,
                            reason="buy and hold (test)",
                        )
                    )
                return out

        return _S()


def test_backfill_includes_markets_that_closed_in_the_window_and_a_replay_settles_them(workspace, sim):
    """Finding 3: the backfill covered only the markets open now; a replay over the window
    never saw a market that resolved inside it (survivors only)."""
    import json

    from polybot.backtest.engine import Backtester
    from polybot.config import load_config
    from polybot.db import connect

    db = setup_workspace(workspace, sim, max_markets=6)
    assert collect(workspace, "--initial").returncode == 0
    t0 = sim.sim.now()
    start = t0 - 30 * DAY
    expected = closed_between(sim, start, t0)
    resolved = {k: v for k, v in expected.items() if v[1] == "resolved"}
    assert resolved, "the simulated world has markets that resolved in the last 30 days"
    r = collect(workspace, "--backfill", "--days", "30")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"incl. {len(expected)} market" in r.stdout and "closed in the window" in r.stdout
    for mid, (end, phase, payouts) in expected.items():
        tracked, closed, pay, resolved_at = query(
            db, "SELECT tracked, closed, payouts, resolved_at FROM markets WHERE id = ?", mid
        )[0]
        assert (tracked, closed) == (0, 1)
        if phase == "resolved":
            assert json.loads(pay) == payouts
            assert resolved_at == end  # Gamma closedTime, not the time of the backfill
        for tok in payouts:
            ts = [
                row[0]
                for row in query(
                    db, "SELECT timestamp FROM snapshot_values WHERE token_id = ? ORDER BY timestamp", tok
                )
            ]
            assert ts, f"no history backfilled for token {tok} of closed market {mid}"
            assert ts[0] >= start and ts[-1] <= end  # nothing after the market closed
            assert len(ts) > (end - max(start, ts[0])) // STEP // 2
        assert (
            scalar(
                db,
                "SELECT COUNT(*) FROM market_metadata_history WHERE market_id = ? AND source = 'backfill'",
                mid,
            )
            == 1
        )
    # idempotent: the second run finds them complete and writes nothing new
    r = collect(workspace, "--backfill", "--days", "30")
    assert r.returncode == 0 and "0 rows written" in r.stdout, r.stdout

    # a replay over the window trades them and settles them at their outcome
    # (a token priced ≥ 0.6 at the start, so that the default backfill spread passes the
    # risk manager's entry-cost rule)
    first_mid = {
        tok: query(db, "SELECT mid FROM snapshot_values WHERE token_id = ? ORDER BY timestamp LIMIT 1", tok)[
            0
        ][0]
        for v in resolved.values()
        for tok in v[2]
    }
    yes = max(first_mid, key=first_mid.get)
    assert first_mid[yes] >= 0.6
    mid, (end, _, payouts) = next((k, v) for k, v in resolved.items() if yes in v[2])
    cfg = load_config(workspace / "config.yaml")
    conn = connect(db, readonly=True)
    try:
        bt = Backtester(
            conn, cfg, BuyAndHold({yes: mid}), start_ts=start, end_ts=t0, capital_micro=1_000_000_000
        )
        res = bt.run()
    finally:
        conn.close()
    buys = [f for f in res.ledger.fills if f.token_id == yes]
    assert buys and buys[0].timestamp < end, (res.counts, res.rejections, res.unfilled)
    settled = [st for st in res.ledger.settlements if st.token_id == yes]
    assert len(settled) == 1, (res.counts, [(f.timestamp, f.reason) for f in res.ledger.fills])
    assert settled[0].timestamp == end and settled[0].payout == payouts[yes]
    assert settled[0].size_micro == sum(f.size_micro for f in buys)


def test_closed_markets_are_capped_most_traded_first_and_can_be_switched_off(workspace, sim):
    t0 = sim.sim.now()
    expected = closed_between(sim, t0 - 30 * DAY, t0)
    assert len(expected) >= 2
    volume = {mid: sim.sim.world.by_id[mid].volume for mid in expected}
    top = max(volume, key=volume.get)
    db = setup_workspace(workspace, sim, max_markets=3, backfill_closed_max_markets=1)
    assert collect(workspace, "--initial").returncode == 0
    r = collect(workspace, "--backfill", "--days", "30")
    assert r.returncode == 0 and "incl. 1 market that closed in the window" in r.stdout, r.stdout
    assert {
        row[0]
        for row in query(
            db, f"SELECT id FROM markets WHERE id IN ({','.join('?' * len(expected))})", *expected
        )
    } == {top}
    # switched off: only the tracked markets, as before (their rows are complete: nothing new)
    from tests.collect.helpers import OPEN_FILTERS
    from tests.conftest import sim_urls, write_config

    write_config(
        workspace,
        {**sim_urls(sim), "collection": {**OPEN_FILTERS, "max_markets": 3, "backfill_closed": False}},
    )
    before = sim.sim.path_count.get("/gamma/markets/keyset", 0)
    assert before > 0  # the listings so far (the same key counts them)
    r = collect(workspace, "--backfill", "--days", "30")
    assert r.returncode == 0 and "closed in the window" not in r.stdout and "0 rows written" in r.stdout, (
        r.stdout
    )
    assert sim.sim.path_count.get("/gamma/markets/keyset", 0) == before


def test_a_market_resolved_early_is_backfilled_although_its_end_date_is_later(workspace, sim):
    """A "by <date>" market that resolves before its deadline keeps its scheduled endDate
    on Gamma (closedTime says when it closed): the backfill must not bound the listing by
    end date, or it would miss exactly the markets that resolved early."""
    import json

    db = setup_workspace(workspace, sim, max_markets=4)
    assert collect(workspace, "--initial").returncode == 0
    tracked = {r[0] for r in query(db, "SELECT id FROM markets WHERE tracked = 1")}
    w = sim.sim.world
    early = next(
        m
        for m in w.markets
        if m.id not in tracked
        and sim.sim.phase(m.index) == "open"
        and m.kind == "single"
        and not m.is_v2
        and m.end_ts > sim.sim.now() + 30 * DAY
    )
    sim.sim.advance(DAY)
    sim.sim.resolve(early.id, "YES")
    closed_at = sim.sim.now()
    gamma = requests.get(f"{sim.gamma_url}/markets/{early.id}", timeout=10).json()
    assert gamma["closed"] and gamma["endDate"] > gamma["closedTime"].replace(" ", "T")  # still the deadline
    sim.sim.advance(DAY)
    r = collect(workspace, "--backfill", "--days", "10")
    assert r.returncode == 0, r.stdout + r.stderr
    row = query(db, "SELECT tracked, payouts, resolved_at, end_date FROM markets WHERE id = ?", early.id)
    assert row, f"market {early.id}, resolved early inside the window, was not backfilled:\n{r.stdout}"
    tracked_flag, payouts, resolved_at, end_date = row[0]
    assert tracked_flag == 0 and resolved_at == closed_at and end_date > closed_at
    assert json.loads(payouts) == {early.token_ids[0]: 1.0, early.token_ids[1]: 0.0}
    last = query(db, "SELECT MAX(timestamp) FROM snapshot_values WHERE token_id = ?", early.token_ids[0])[0][
        0
    ]
    assert last is not None and closed_at - STEP < last <= closed_at


def test_malformed_closed_market_records_are_warnings_not_failures(workspace, sim):
    db = setup_workspace(workspace, sim, max_markets=3)
    assert collect(workspace, "--initial").returncode == 0
    sim.sim.set_faults(bad_market="all")
    r = collect(workspace, "--backfill", "--days", "30")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ", 0 errors, 3 warnings (see the log)" in r.stdout, r.stdout
    assert "Traceback" not in r.stderr
    status, detail = query(db, "SELECT status, error_detail FROM collection_cycles WHERE kind = 'backfill'")[
        0
    ]
    assert status == "ok" and "warning: skipped closed market 999991" in detail
