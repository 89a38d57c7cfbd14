"""verify_data_collection.py and data_quality_check.py on real collected data."""

from __future__ import annotations

import re
import sqlite3

from tests.collect.helpers import collect, query, scalar, setup_workspace
from tests.conftest import run_cli, sim_urls, write_config

STEP = 300
CHECKLIST_LINES = [
    "✓ No NULL values in critical fields",
    "✓ Timestamps sequential",
    "✓ Prices within bounds (0.01 to 0.99)",
    "✓ No duplicate snapshots",
]


def collect_cycles(ws, sim, n: int) -> None:
    assert collect(ws, "--initial").returncode == 0
    for _ in range(n - 1):
        sim.sim.advance(STEP)
        r = collect(ws)
        assert r.returncode == 0, r.stderr


def test_checklist_flow_verify_and_quality_pass(workspace, sim):
    setup_workspace(workspace, sim)
    collect_cycles(workspace, sim, 4)
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 0, r.stdout
    assert "✓ Cycles seen: 4" in r.stdout and "4 ok, 0 partial, 0 failed" in r.stdout
    assert re.search(r"per market min 8, median 8, max 8", r.stdout)
    assert "✓ No gaps in the 5-minute grid (4 cycles" in r.stdout
    assert "PASS" in r.stdout

    r = run_cli("data_quality_check.py", cwd=workspace)
    assert r.returncode == 0, r.stdout
    lines = r.stdout.splitlines()
    assert lines[:4] == CHECKLIST_LINES
    assert re.fullmatch(r"✓ Data fresh \(last update: 0 minutes ago\)", lines[4])
    assert lines[5] == "✓ Coverage: 100% of target markets"
    assert lines[6] == "PASS: Data quality check passed"
    saved = list((workspace / "reports").glob("data_quality_*.txt"))
    assert len(saved) == 1 and re.fullmatch(r"data_quality_\d{8}_\d{6}\.txt", saved[0].name)
    assert "PASS: Data quality check passed" in saved[0].read_text(encoding="utf-8")
    assert f"Report saved: {saved[0]}" in r.stdout


def test_wait_thirty_minutes_flow(workspace, sim):
    """--initial, then cron-like cycles for 30 sim-minutes, then verify: multiple snapshots
    per market and no gaps; freshness reported in minutes."""
    setup_workspace(workspace, sim)
    collect_cycles(workspace, sim, 7)
    sim.sim.advance(180)  # 3 minutes after the last cycle
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 0 and "per market min 14" in r.stdout
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert "✓ Data fresh (last update: 3 minutes ago)" in r.stdout and r.returncode == 0


def test_empty_database_fails_with_the_next_step(workspace, sim):
    setup_workspace(workspace, sim)
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert r.returncode == 1
    assert "FAIL: no snapshots yet — run python collect_market_data.py --initial" in r.stdout
    assert list((workspace / "reports").glob("data_quality_*.txt"))
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 1 and "no snapshots yet" in r.stdout


def test_stale_data_and_low_coverage_fail(workspace, sim):
    db = setup_workspace(workspace, sim)
    collect_cycles(workspace, sim, 2)
    sim.sim.advance(25 * 60)
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert r.returncode == 1
    assert "✗ Data stale (last update: 25 minutes ago; limit 10 minutes)" in r.stdout
    assert "✗ Coverage: 0% of target markets" in r.stdout
    assert re.search(r"^FAIL: data stale \(last update: 25 minutes ago\); coverage 0% < 80%$", r.stdout, re.M)
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 1
    assert "gaps" in r.stdout.splitlines()[-1] or "gap" in r.stdout
    n = scalar(db, "SELECT COUNT(*) FROM markets WHERE tracked = 1")
    assert f"✗ {n} tracked markets with no snapshot in the last 10 minutes" in r.stdout


def test_verify_lists_gaps_with_start_and_end(workspace, sim):
    setup_workspace(workspace, sim)
    assert collect(workspace, "--initial").returncode == 0
    sim.sim.advance(STEP)
    assert collect(workspace).returncode == 0
    sim.sim.advance(4 * STEP)
    assert collect(workspace).returncode == 0
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 1
    assert "✗ 1 gap in the 5-minute grid" in r.stdout
    assert "2026-11-01T00:10:00Z → 2026-11-01T00:20:00Z (3 cycles missing)" in r.stdout
    assert "FAIL" in r.stdout and "--backfill" in r.stdout


def test_quality_detects_bad_rows(workspace, sim):
    """Corrupt rows written directly (as a buggy writer would) are reported, each by its check."""
    db = setup_workspace(workspace, sim)
    collect_cycles(workspace, sim, 2)
    token, market, ts = query(db, "SELECT token_id, market_id, MAX(timestamp) FROM snapshot_values")[0]
    conn = sqlite3.connect(db)
    with conn:
        # NULL critical field (collected row without any price)
        conn.execute(
            "UPDATE snapshot_values SET best_bid = NULL, best_ask = NULL WHERE token_id = ? "
            "AND timestamp = ?",
            (token, ts),
        )
        # off-grid near-duplicate of an existing cycle, with an impossible price
        conn.execute(
            "INSERT INTO snapshot_values (timestamp, token_id, market_id, best_bid, best_ask, mid, "
            "bids, asks, bid_depth, ask_depth, volume_24h, liquidity, source) "
            "VALUES (?, ?, ?, 1.2, 1.3, 1.25, '', '', 0, 0, 1, 1, 'collected')",
            (ts - STEP + 7, token, market),
        )
    conn.close()
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert r.returncode == 1
    out = r.stdout
    assert "✗ NULL values in critical fields: 1 collected rows" in out
    assert "✗ Timestamps not sequential: 1 off the 5-minute grid" in out
    assert "✗ Prices outside bounds (0.01 to 0.99): 1 snapshot" in out
    assert "✗ Duplicate snapshots: 1 token-cycle with more than one row" in out
    assert "✓ Data fresh" in out
    assert out.count("✗") == 4
    fail = [ln for ln in out.splitlines() if ln.startswith("FAIL: ")][0]
    assert "NULL" in fail and "sequential" in fail and "out of bounds" in fail and "duplicate" in fail


def test_bounds_follow_config_and_allow_fine_ticks(workspace, sim):
    """A 0.001-tick market trading below 0.01 is within its exchange range; a tighter
    configured band fails tick-0.01 prices outside it."""
    db = setup_workspace(workspace, sim)
    collect_cycles(workspace, sim, 2)
    fine = scalar(
        db,
        "SELECT COUNT(*) FROM snapshot_values s JOIN markets m ON m.id = s.market_id "
        "WHERE m.tick_size < 0.01 AND (s.best_bid < 0.01 OR s.best_ask > 0.99)",
    )
    assert fine > 0  # seed 42 has a 0.001-tick long shot
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert "✓ Prices within bounds (0.01 to 0.99)" in r.stdout, r.stdout
    write_config(
        workspace,
        {
            **sim_urls(sim),
            "collection": {"min_volume_24h": 0, "min_liquidity": 0, "min_price": 0.2, "max_price": 0.8},
        },
    )
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert "✗ Prices outside bounds (0.2 to 0.8)" in r.stdout and r.returncode == 1


def test_estimate_storage_measures_the_database(workspace, sim):
    db = setup_workspace(workspace, sim)
    collect_cycles(workspace, sim, 3)
    r = collect(workspace, "--estimate-storage")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    n = scalar(db, "SELECT COUNT(*) FROM snapshot_values")
    tokens = scalar(db, "SELECT COUNT(*) FROM market_tokens")
    assert f"Snapshots stored:    {n:,} ({n:,} collected, 0 backfill)" in out
    assert "measured with dbstat" in out
    assert f"{tokens:,} tokens → {tokens * 288:,} snapshots/day" in out
    assert "checklist estimate ~10 MB/day" in out and "3 months" in out and "Free disk" in out
    per_row = float(re.search(r"Bytes per snapshot:\s+([\d,]+) B", out).group(1).replace(",", ""))
    size = (
        db.stat().st_size + (db.parent / "polymarket.db-wal").stat().st_size
        if (db.parent / "polymarket.db-wal").exists()
        else db.stat().st_size
    )
    assert 50 < per_row < size
