"""collect_market_data.py end to end: real HTTP to the simulator, a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from polybot.snapshots import codec
from tests.collect.helpers import OPEN_FILTERS, checklist_counts, collect, query, scalar, setup_workspace
from tests.conftest import ROOT, run_cli, sim_urls, write_config

STEP = 300


def open_markets(handle) -> list:
    w = handle.sim.world
    return [m for m in w.markets if handle.sim.phase(m.index) == "open"]


def test_initial_then_three_cycles_match_the_checklist_counts(workspace, sim):
    db = setup_workspace(workspace, sim)
    n_open = len(open_markets(sim))
    r = collect(workspace, "--initial")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Universe selection" in out and "markets tracked" in out and "Top 10 tracked markets" in out
    assert f"Cycle 2026-11-01T00:00:00Z: {n_open} markets, {2 * n_open} snapshots, 0 errors in" in out
    assert checklist_counts(workspace) == (n_open, 2 * n_open)

    for k in range(1, 4):
        sim.sim.advance(STEP)
        r = collect(workspace)
        assert r.returncode == 0, r.stderr
        ts = f"2026-11-01T00:{5 * k:02d}:00Z"
        assert f"Cycle {ts}: {n_open} markets, {2 * n_open} snapshots, 0 errors" in r.stdout
    assert checklist_counts(workspace) == (n_open, 8 * n_open)

    # every tracked token has exactly one row per cycle, on the 5-minute grid
    rows = query(
        db,
        "SELECT token_id, COUNT(*), MIN(timestamp) % 300, MAX(timestamp) - MIN(timestamp) "
        "FROM snapshot_values GROUP BY token_id",
    )
    assert len(rows) == 2 * n_open
    assert all(n == 4 and off == 0 and span == 900 for _, n, off, span in rows)
    cycles = query(
        db,
        "SELECT kind, status, markets, snapshots, errors, duration, api_seconds "
        "FROM collection_cycles ORDER BY id",
    )
    assert [c[0] for c in cycles] == ["initial", "cycle", "cycle", "cycle"]
    assert all(c[1] == "ok" and c[2] == n_open and c[3] == 2 * n_open and c[4] == 0 for c in cycles)
    assert all(c[5] > 0 and c[6] > 0 for c in cycles)

    # market metadata recorded as the issue lists it
    m = query(
        db,
        "SELECT condition_id, token_ids, outcomes, end_date, tick_size, min_order_size, "
        "event_id, tracked, fee_rate FROM markets WHERE neg_risk = 1 LIMIT 1",
    )[0]
    assert m[0].startswith("0x") and len(json.loads(m[1])) == 2 and json.loads(m[2]) == ["Yes", "No"]
    assert m[3] and m[4] in (0.01, 0.001) and m[5] == 5 and m[6] and m[7] == 1
    assert scalar(db, "SELECT COUNT(*) FROM market_tokens") == 2 * n_open

    # snapshot content: levels best first, depth = sum of the top levels, mid/spread
    snap = query(
        db,
        "SELECT best_bid, best_ask, mid, spread, bids, asks, bid_depth, ask_depth, source "
        "FROM snapshot_values WHERE best_bid IS NOT NULL AND best_ask IS NOT NULL LIMIT 50",
    )
    for bb, ba, mid, spread, bids, asks, bd, ad, source in snap:
        assert isinstance(bids, bytes) and isinstance(asks, bytes)  # packed, not text
        b, a = codec.levels_of(bids), codec.levels_of(asks)
        assert b[0][0] == bb and a[0][0] == ba and bb < ba
        assert [p for p, _ in b] == sorted((p for p, _ in b), reverse=True)
        assert [p for p, _ in a] == sorted(p for p, _ in a)
        assert len(b) <= 5 and len(a) <= 5
        assert abs(bd - sum(s for _, s in b)) < 1e-6 and abs(ad - sum(s for _, s in a)) < 1e-6
        assert abs(mid - (bb + ba) / 2) < 1e-12 and abs(spread - (ba - bb)) < 1e-12
        assert source == "collected"


def test_rerun_of_the_same_cycle_inserts_nothing_and_says_so(workspace, sim):
    db = setup_workspace(workspace, sim)
    assert collect(workspace).returncode == 0
    before = scalar(db, "SELECT COUNT(*) FROM snapshot_values")
    r = collect(workspace)
    assert r.returncode == 0, r.stderr
    assert "already collected" in r.stdout
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values") == before


def test_cap_and_filters_choose_the_most_liquid(workspace, sim):
    db = setup_workspace(workspace, sim, max_markets=10, min_liquidity=1000)
    r = collect(workspace, "--initial")
    assert r.returncode == 0, r.stderr
    opened = open_markets(sim)
    want = sorted((m for m in opened if m.liquidity >= 1000), key=lambda m: -m.liquidity)[:10]
    got = {r[0] for r in query(db, "SELECT id FROM markets WHERE tracked = 1")}
    assert got == {m.id for m in want}
    assert "within the cap max_markets = 10" in r.stdout
    assert f"{sum(1 for m in opened if m.liquidity >= 1000):>7,}  liquidity >= $1,000" in r.stdout


def test_explicit_market_ids_are_always_tracked(workspace, sim):
    opened = open_markets(sim)
    poor = min(opened, key=lambda m: m.liquidity)
    db = setup_workspace(
        workspace, sim, max_markets=3, min_liquidity=1e9, market_ids=[poor.id], slugs=[opened[0].slug]
    )
    r = collect(workspace, "--initial")
    assert r.returncode == 0, r.stderr
    got = {r[0] for r in query(db, "SELECT id FROM markets WHERE tracked = 1")}
    assert got == {poor.id, opened[0].id}


def test_market_lifecycle_untrack_and_record_resolution(workspace, sim):
    db = setup_workspace(workspace, sim)
    assert collect(workspace, "--initial").returncode == 0
    opened = open_markets(sim)
    settled, proposed = opened[0], opened[1]
    sim.sim.resolve(settled.id, "YES")
    sim.sim.resolve(proposed.id, "NO", proposed=True)
    sim.sim.advance(STEP)
    r = collect(workspace)
    assert r.returncode == 0, r.stderr
    row = dict(
        zip(
            ("tracked", "closed", "payouts", "resolved_at", "status"),
            query(
                db,
                "SELECT tracked, closed, payouts, resolved_at, resolution_status FROM markets WHERE id = ?",
                settled.id,
            )[0],
            strict=True,
        )
    )
    assert row["tracked"] == 0 and row["closed"] == 1 and row["status"] == "resolved"
    assert json.loads(row["payouts"]) == {settled.token_ids[0]: 1.0, settled.token_ids[1]: 0.0}
    assert row["resolved_at"] == sim.sim.now()
    # proposed (closed, not final): not settled yet, but no longer snapshotted
    p = query(db, "SELECT tracked, closed, payouts FROM markets WHERE id = ?", proposed.id)[0]
    assert p == (0, 1, None)
    last = scalar(db, "SELECT MAX(timestamp) FROM snapshot_values")
    assert (
        scalar(
            db,
            "SELECT COUNT(*) FROM snapshot_values WHERE timestamp = ? AND market_id IN (?, ?)",
            last,
            settled.id,
            proposed.id,
        )
        == 0
    )
    # history is kept
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values WHERE market_id = ?", settled.id) == 2
    # after the proposal period the outcome is recorded
    sim.sim.advance(3 * 3600)
    assert collect(workspace).returncode == 0
    assert json.loads(scalar(db, "SELECT payouts FROM markets WHERE id = ?", proposed.id)) == {
        proposed.token_ids[0]: 0.0,
        proposed.token_ids[1]: 1.0,
    }
    # a recorded outcome is final: later cycles leave it alone
    resolved_at = scalar(db, "SELECT resolved_at FROM markets WHERE id = ?", settled.id)
    sim.sim.advance(STEP)
    assert collect(workspace).returncode == 0
    assert scalar(db, "SELECT resolved_at FROM markets WHERE id = ?", settled.id) == resolved_at


def test_new_markets_entering_the_filter_raise_one_info_alert_each(workspace, sim):
    opened = sorted(open_markets(sim), key=lambda m: -m.liquidity)
    db = setup_workspace(workspace, sim, max_markets=5)
    assert collect(workspace, "--initial").returncode == 0
    assert scalar(db, "SELECT COUNT(*) FROM alerts WHERE key = 'new_market'") == 0  # first population
    write_config(workspace, {**sim_urls(sim), "collection": {**OPEN_FILTERS, "max_markets": 8}})
    sim.sim.advance(STEP)
    r = collect(workspace)
    assert r.returncode == 0, r.stderr
    # one alert per market: every one is logged; the alerter stores the first and counts the
    # repeats of the key inside its throttle window (SUM(repeat_count) = alerts fired)
    alerts = query(db, "SELECT level, message, repeat_count FROM alerts WHERE key = 'new_market' ORDER BY id")
    assert sum(a[2] for a in alerts) == 3 and {a[0] for a in alerts} == {"info"}
    assert alerts[0][1] == f"New market detected: {opened[5].question}"
    log = "".join(p.read_text() for p in (workspace / "logs").glob("trading_system_*.log"))
    for m in opened[5:8]:
        assert log.count(f"[new_market] New market detected: {m.question}") == 1
    # back to 5: three leave (history kept, tracked=0), no alerts when they come back later
    write_config(workspace, {**sim_urls(sim), "collection": {**OPEN_FILTERS, "max_markets": 5}})
    sim.sim.advance(STEP)
    assert collect(workspace).returncode == 0
    assert scalar(db, "SELECT COUNT(*) FROM markets WHERE tracked = 0") == 3
    write_config(workspace, {**sim_urls(sim), "collection": {**OPEN_FILTERS, "max_markets": 8}})
    sim.sim.advance(STEP)
    assert collect(workspace).returncode == 0
    assert scalar(db, "SELECT SUM(repeat_count) FROM alerts WHERE key = 'new_market'") == 3


# ----------------------------------------------------------------------------- faults
def test_outage_after_discovery_fails_cleanly_then_recovers(workspace, sim):
    db = setup_workspace(workspace, sim)
    assert collect(workspace, "--initial").returncode == 0
    sim.sim.advance(STEP)
    sim.sim.set_faults(outage=True, path="/clob/books")
    r = collect(workspace)
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "Cycle 2026-11-01T00:05:00Z: FAILED" in r.stdout and "no snapshots written" in r.stdout
    assert "Traceback" not in r.stderr
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values WHERE timestamp = ?", 1793491500) == 0
    status, detail = query(db, "SELECT status, error_detail FROM collection_cycles ORDER BY id DESC LIMIT 1")[
        0
    ]
    assert status == "failed" and "unreachable" in detail
    # the exchange comes back: the same cycle is collected completely
    sim.sim.clear_faults()
    r = collect(workspace)
    assert r.returncode == 0, r.stderr
    n = scalar(db, "SELECT COUNT(*) FROM market_tokens")
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values WHERE timestamp = ?", 1793491500) == n


def test_exchange_down_from_the_start_exit_4(workspace, sim):
    db = setup_workspace(workspace, sim)
    sim.sim.set_faults(outage=True)
    r = collect(workspace)
    assert r.returncode == 4
    assert "FAILED" in r.stdout and "Traceback" not in r.stderr
    assert query(db, "SELECT status FROM collection_cycles") == [("failed",)]
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values") == 0


def test_malformed_markets_are_skipped_with_their_id_logged(workspace, sim):
    db = setup_workspace(workspace, sim)
    sim.sim.set_faults(bad_market="all")
    r = collect(workspace, "--verbose")
    assert r.returncode == 0, r.stderr
    assert ", 3 errors in" in r.stdout
    n_open = len(open_markets(sim))
    assert checklist_counts(workspace) == (n_open, 2 * n_open)
    status, errors, detail = query(db, "SELECT status, errors, error_detail FROM collection_cycles")[0]
    assert status == "ok" and errors == 3
    assert "skipped market 999991" in detail and "skipped market 999992" in detail
    log = (workspace / "logs").glob("trading_system_*.log")
    text = "".join(p.read_text() for p in log)
    assert "skipped malformed market 999991" in text
    out = r.stdout + r.stderr  # issue 15 #10: said once on screen, not twice
    assert sum("market 999991" in ln for ln in out.splitlines()) == 1, out


def test_429_burst_is_waited_out(workspace, sim):
    db = setup_workspace(workspace, sim)
    sim.sim.set_faults(burst="429:3:1", path="/clob/books")
    r = collect(workspace)
    assert r.returncode == 0, r.stderr
    assert ", 0 errors in" in r.stdout
    n = scalar(db, "SELECT COUNT(*) FROM market_tokens")
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values") == n
    assert query(db, "SELECT status FROM collection_cycles") == [("ok",)]


def test_killed_cycle_leaves_nothing_half_written(workspace, sim):
    """A collector killed mid-cycle (here: while waiting for slow books) leaves a 'running'
    row and no snapshots; the next run marks it failed and collects the cycle."""
    db = setup_workspace(workspace, sim)
    sim.sim.set_faults(latency_ms=3000, path="/clob/books")
    env = {"PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    p = subprocess.Popen(
        [sys.executable, str(ROOT / "collect_market_data.py")],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline and not query(db, "SELECT 1 FROM collection_cycles"):
        time.sleep(0.05)
    time.sleep(0.3)
    p.kill()
    p.wait(timeout=10)
    assert query(db, "SELECT status FROM collection_cycles") == [("running",)]
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values") == 0
    sim.sim.clear_faults()
    assert collect(workspace).returncode == 0
    assert [r[0] for r in query(db, "SELECT status FROM collection_cycles ORDER BY id")] == ["failed", "ok"]
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values") == scalar(
        db, "SELECT COUNT(*) FROM market_tokens"
    )


def test_two_collectors_at_once_one_runs_one_exits_cleanly(workspace, sim):
    db = setup_workspace(workspace, sim)
    sim.sim.set_faults(latency_ms=400)  # make the cycle last long enough to overlap
    env = {"PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "collect_market_data.py")],
            cwd=workspace,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    busy = [o for o in outs if "another collection is running; exiting" in o[0]]
    ran = [o for o in outs if "Cycle 2026-11-01T00:00:00Z" in o[0]]
    assert len(busy) == 1 and len(ran) == 1, outs
    assert all("locked" not in o[1] for o in outs)
    assert query(db, "SELECT status FROM collection_cycles") == [("ok",)]
    log = "".join(p.read_text() for p in (workspace / "logs").glob("trading_system_*.log"))
    assert "another collection is running; exiting" in log


def test_help_documents_exit_codes():
    r = run_cli("collect_market_data.py", "--help", cwd=ROOT)
    assert r.returncode == 0
    for code in ("0  ok", "1  partial", "4  exchange unreachable"):
        assert code in r.stdout


def test_a_token_without_a_book_makes_a_partial_cycle(workspace, sim):
    """The CLOB rejects a batch (4xx): it is split until the bad token is isolated; the other
    snapshots are written, the cycle is 'partial' (exit 1) and verify shows the hole."""
    db = setup_workspace(workspace, sim)
    assert collect(workspace, "--initial").returncode == 0
    n = scalar(db, "SELECT COUNT(*) FROM market_tokens")
    sim.sim.advance(STEP)
    # one batch of every token: 7 rejections in a row reach a single token (n -> n/2 -> ... -> 1)
    sim.sim.set_faults(burst="404:7:0", path="/clob/books")
    r = collect(workspace)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"{n - 1} snapshots, 1 error in" in r.stdout and "[PARTIAL]" in r.stdout
    status, errors, detail = query(
        db, "SELECT status, errors, error_detail FROM collection_cycles ORDER BY id DESC LIMIT 1"
    )[0]
    assert status == "partial" and errors == 1 and "book " in detail
    sim.sim.clear_faults()
    sim.sim.advance(STEP)
    assert collect(workspace).returncode == 0
    v = run_cli("verify_data_collection.py", cwd=workspace)
    assert v.returncode == 1 and "1 token with holes" in v.stdout
    assert "first hole 2026-11-01T00:05:00Z → 2026-11-01T00:05:00Z" in v.stdout


def test_prefetch_listing_matches_the_client_listing():
    """Several keyset pages: the prefetching walk returns exactly the client's markets, in order."""
    from polybot.collect.listing import PrefetchListing
    from polybot.exchange.client import PolymarketClient
    from polybot.sim.server import start_simulator

    h = start_simulator(port=0, seed=7, n_markets=250, speed=0.0, faults="bad_market=missing_id")
    try:
        c = PolymarketClient(h.gamma_url, h.clob_url, h.data_url)
        want = [m.id for m in c.iter_markets(closed=False, order="liquidityNum", ascending=False)]
        listing = PrefetchListing(c, closed=False, order="liquidityNum", ascending=False)
        got = [m.id for m in listing]
        assert got == want and len(got) > 200 and listing.pages == 3
        assert len(listing.issues) == 1 == len(c.last_issues)
        c.close()
    finally:
        h.stop()


def test_which_closed_markets_the_backfill_takes():
    """universe.passes_closed: closed inside the window, tags/keywords, lifetime volume;
    the live filters (24 h volume, liquidity, accepting orders) do not apply."""
    from dataclasses import replace

    from polybot.collect.universe import passes_closed
    from polybot.config import CollectionConfig
    from polybot.exchange.models import Market, OutcomeToken

    start, end = 1_000_000, 1_000_000 + 30 * 86_400
    base = Market(
        id="1",
        condition_id="0x1",
        question="Will the Fed cut rates in March?",
        slug="fed-cut",
        tokens=(OutcomeToken("y", "Yes", 0), OutcomeToken("n", "No", 1)),
        closed=True,
        active=True,
        accepting_orders=False,
        volume_24h=0.0,
        liquidity=0.0,
        volume=5_000.0,
        tags=("Economy",),
        end_date=start + 86_400,
        closed_time=start + 2 * 86_400,
    )
    cc = CollectionConfig(min_volume_24h=1_000, min_liquidity=1_000)
    assert passes_closed(base, cc, start, end)  # live filters ignored
    assert not passes_closed(replace(base, closed=False), cc, start, end)
    assert not passes_closed(replace(base, tokens=()), cc, start, end)
    assert not passes_closed(replace(base, closed_time=start - 1), cc, start, end)  # before the window
    assert passes_closed(replace(base, closed_time=None), cc, start, end)  # end date instead
    assert not passes_closed(replace(base, closed_time=None, end_date=None), cc, start, end)
    assert passes_closed(base, replace(cc, tags=("economy",)), start, end)
    assert not passes_closed(base, replace(cc, tags=("Sports",)), start, end)
    assert passes_closed(base, replace(cc, keywords=("fed",)), start, end)
    assert not passes_closed(base, replace(cc, keywords=("bitcoin",)), start, end)
    assert not passes_closed(base, replace(cc, backfill_closed_min_volume=10_000), start, end)


def test_a_cycle_checkpoints_its_rows_into_the_database_file_after_its_commit(workspace, sim, tmp_path):
    """The cycle, on a connection set up as collect_market_data.py sets it up (the WAL
    checkpoint moved off the COMMIT): right after collect_once — the connection still open,
    so no close-time checkpoint helps — the cycle's rows are in the database file itself,
    not only in the WAL, and the cycle reports the checkpoint apart from the commit."""
    import shutil
    import sqlite3

    from polybot import db as dbm
    from polybot.collect import snapshot_rows
    from polybot.collect.common import make_client
    from polybot.collect.cycle import collect_once
    from polybot.config import load_config

    path = setup_workspace(workspace, sim)
    cfg = load_config(workspace / "config.yaml", require_mode_secrets=False)
    conn = dbm.open_database(cfg, synchronous="NORMAL")
    snapshot_rows.tune_for_bulk(conn)
    client = make_client(cfg)
    try:
        for k in range(2):
            if k:
                sim.sim.advance(STEP)
            res = collect_once(cfg, conn, client, initial=k == 0)
            assert res.status == "ok" and res.snapshots == 2 * len(open_markets(sim))
            busy, frames, done = res.checkpoint
            assert busy == 0 and frames > 0 and done == frames
            copy = tmp_path / f"main_file_only_{k}.db"
            shutil.copyfile(path, copy)  # the database file alone, without its -wal
            c = sqlite3.connect(copy)
            in_file = c.execute("SELECT COUNT(*) FROM market_snapshots WHERE timestamp = ?", (res.cycle_ts,))
            assert in_file.fetchone()[0] == res.snapshots
            c.close()
            assert res.commit_seconds >= 0 and res.checkpoint_seconds > 0
    finally:
        client.close()
        conn.close()
