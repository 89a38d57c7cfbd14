"""collect_market_data.py --estimate-storage: bytes per row measured per retention tier on a
real database, projected per tier for the tracked set and the whole universe."""

from __future__ import annotations

import sqlite3
import time

from polybot import db as dbmod
from polybot.collect import storage
from polybot.collect.common import fmt_bytes
from polybot.collect.storage import Measured, Population, project
from polybot.config import load_config
from polybot.ops.retention import Tiers, apply_retention
from tests.collect.helpers import collect, scalar, setup_workspace
from tests.conftest import run_cli, write_config

STEP = 300
TIERS = {"full_depth_days": 30, "top_of_book_days": 365, "hourly_bar_days": 0}


def test_estimate_measures_full_and_top_of_book_rows(workspace, sim):
    db = setup_workspace(workspace, sim)
    write_config(workspace, {"maintenance": TIERS}, base=_config(workspace))
    assert collect(workspace, "--initial").returncode == 0
    for _ in range(3):
        sim.sim.advance(STEP)
        assert collect(workspace).returncode == 0
    stamps = [
        r[0]
        for r in sqlite3.connect(db).execute("SELECT DISTINCT timestamp FROM market_snapshots ORDER BY 1")
    ]
    assert len(stamps) == 4
    cfg = load_config(workspace / "config.yaml", require_mode_secrets=False)
    conn = dbmod.connect(db)
    # the two oldest cycles age into the top-of-book tier
    apply_retention(conn, Tiers(full_depth_days=30), now=stamps[1] + 30 * 86400 + 1, emit=lambda _: None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    m = storage.measure(cfg, conn)
    conn.close()

    n = scalar(db, "SELECT COUNT(*) FROM snapshot_values")
    tokens = scalar(
        db, "SELECT COUNT(*) FROM market_tokens t JOIN markets m ON m.id = t.market_id WHERE m.tracked = 1"
    )
    markets = scalar(db, "SELECT COUNT(*) FROM markets WHERE tracked = 1")
    assert (m.rows, m.full_rows, m.tob_rows, m.collected) == (n, n // 2, n // 2, n)
    assert m.full_source == m.tob_source == "measured" and m.bar_source == "benchmark figure"
    # the table's pages, shared out: every byte counted once
    assert abs(m.full_bpr * m.full_rows + m.tob_bpr * m.tob_rows - m.table_bytes) < 1e-6 * m.table_bytes
    assert 20 < m.tob_bpr < m.full_bpr < 400

    r = collect(workspace, "--estimate-storage")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert (
        f"{n:,} snapshot rows ({n // 2:,} full depth, {n // 2:,} top of book; {n:,} collected, 0 backfill)"
        in out
    )
    assert f"full depth {m.full_bpr:,.1f} B (measured), top of book {m.tob_bpr:,.1f} B (measured)" in out
    assert "hourly bar 52.9 B per bar (benchmark figure)" in out
    assert "Measured with:       dbstat" in out
    assert "full depth for 30 days, top of book until 365 days, hourly bars forever" in out
    assert "tracked now" in out and f"{markets:,} markets, {tokens:,} tokens" in out
    assert "46,500 markets, 93,000 tokens" in out  # the sim's 60 are a selection
    per_day = tokens * 288
    line = next(ln for ln in out.splitlines() if "snapshots per day" in ln)
    assert f"{per_day:,}" in line and f"{93_000 * 288:,}" in line
    full = next(ln for ln in out.splitlines() if "full depth (0–30 days)" in ln)
    assert fmt_bytes(per_day * m.full_bpr * 30) in full and fmt_bytes(93_000 * 288 * m.full_bpr * 30) in full
    tob = next(ln for ln in out.splitlines() if "top of book (30–365 days)" in ln)
    assert fmt_bytes(per_day * m.tob_bpr * 335) in tob
    bars = next(ln for ln in out.splitlines() if "hourly bars (365 days on)" in ln)
    assert f"+{fmt_bytes(tokens * 24 * 52.9 * 365)}/year" in bars
    steady = next(ln for ln in out.splitlines() if ln.strip().startswith("steady state"))
    assert fmt_bytes(per_day * (m.full_bpr * 30 + m.tob_bpr * 335)) in steady
    assert "Free disk" in out and "checklist" in out.lower()


def _config(ws):
    import yaml

    return yaml.safe_load((ws / "config.yaml").read_text())


def test_empty_database_uses_the_benchmark_figures(workspace):
    write_config(workspace, {"maintenance": TIERS})
    assert run_cli("initialize_db.py", cwd=workspace).returncode == 0
    r = run_cli("collect_market_data.py", "--estimate-storage", cwd=workspace)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "No snapshots yet" in out
    # depth_levels 5 (the default): 75.4 B at 3 levels a side + 2 × 7.85 B
    assert "full depth 91.1 B (benchmark figure), top of book 30.9 B (benchmark figure)" in out
    assert "tracked (config)" in out and "200 markets, 400 tokens" in out
    rows_day = 400 * 288
    assert f"{rows_day:,}" in next(ln for ln in out.splitlines() if "snapshots per day" in ln)
    full = next(ln for ln in out.splitlines() if "full depth (0–30 days)" in ln)
    assert fmt_bytes(rows_day * 91.1 * 30) in full


def _measured() -> Measured:
    return Measured(rows=1, full_bpr=100.0, tob_bpr=40.0, bar_bpb=50.0)


def _cfg(tmp_path, maintenance):
    write_config(tmp_path, {"maintenance": maintenance})
    return load_config(tmp_path / "config.yaml", require_mode_secrets=False)


def test_projection_by_hand(tmp_path):
    pop = Population("t", 10, 20, "test")
    cfg = _cfg(tmp_path, {"full_depth_days": 30, "top_of_book_days": 365, "hourly_bar_days": 730})
    p = project(cfg, _measured(), pop)
    assert p.rows_per_day == 20 * 288
    assert [(t.name, t.lo, t.hi) for t in p.tiers] == [
        ("full depth", 0, 30),
        ("top of book", 30, 365),
        ("hourly bars", 365, 730),
    ]
    assert p.steady == 5760 * 100 * 30 + 5760 * 40 * 335 + 20 * 24 * 50 * 365
    assert p.growth_per_year == 0
    assert p.after(10) == 5760 * 100 * 10
    assert p.after(90) == 5760 * 100 * 30 + 5760 * 40 * 60


def test_projection_with_the_hard_limit_and_with_the_tiers_off(tmp_path):
    pop = Population("t", 10, 20, "test")
    cut = project(_cfg(tmp_path, {**TIERS, "snapshot_retention_days": 90}), _measured(), pop)
    assert [(t.name, t.lo, t.hi) for t in cut.tiers] == [("full depth", 0, 30), ("top of book", 30, 90)]
    assert cut.growth_per_year == 0
    off = project(_cfg(tmp_path, {}), _measured(), pop)
    assert [(t.name, t.lo, t.hi) for t in off.tiers] == [("full depth", 0, None)]
    assert off.steady == 0 and off.growth_per_year == 5760 * 100 * 365
    bars_only = project(_cfg(tmp_path, {"top_of_book_days": 60}), _measured(), pop)
    assert [(t.name, t.lo, t.hi) for t in bars_only.tiers] == [
        ("full depth", 0, 60),
        ("hourly bars", 60, None),
    ]


def test_universe_counted_from_the_markets_table_when_it_holds_it(tmp_path):
    cfg = _cfg(tmp_path, TIERS)
    dbmod.initialize(cfg.database_path)
    conn = dbmod.connect(cfg.database_path)
    now = int(time.time())
    n = storage.UNIVERSE_MIN_FROM_TABLE + 5
    with dbmod.atomic(conn):
        conn.executemany(
            "INSERT INTO markets (id, condition_id, question, token_ids, outcomes, first_seen, updated_at, tracked) "
            "VALUES (?, ?, 'q', '[]', '[]', ?, ?, ?)",
            [(str(i), f"c{i}", now, now, int(i < 3)) for i in range(n)],
        )
        conn.executemany(
            "INSERT INTO market_tokens (token_id, market_id, outcome, outcome_index) VALUES (?, ?, ?, ?)",
            [(f"{i}-{o}", str(i), o, k) for i in range(n) for k, o in enumerate(("Yes", "No"))],
        )
    tracked, universe = storage.populations(cfg, conn)
    conn.close()
    assert (tracked.markets, tracked.tokens) == (3, 6)
    assert (universe.markets, universe.tokens, universe.source) == (
        n,
        2 * n,
        "active markets in the database",
    )


def test_verify_and_quality_pass_on_thinned_rows(workspace, sim):
    """The checklist's checks on a database whose older cycles maintenance thinned to top of book."""
    db = setup_workspace(workspace, sim)
    write_config(workspace, {"maintenance": TIERS}, base=_config(workspace))
    assert collect(workspace, "--initial").returncode == 0
    for _ in range(3):
        sim.sim.advance(STEP)
        assert collect(workspace).returncode == 0
    stamps = [
        r[0]
        for r in sqlite3.connect(db).execute("SELECT DISTINCT timestamp FROM market_snapshots ORDER BY 1")
    ]
    conn = dbmod.connect(db)
    res = apply_retention(
        conn, Tiers(full_depth_days=30), now=stamps[2] + 30 * 86400 + 1, emit=lambda _: None
    )
    conn.close()
    assert res.thinned_rows == 3 * scalar(
        db, "SELECT COUNT(*) FROM market_snapshots WHERE timestamp = ?", stamps[3]
    )
    assert scalar(db, "SELECT COUNT(*) FROM snapshot_values WHERE bids IS NULL AND source = 'collected'") > 0
    r = run_cli("data_quality_check.py", cwd=workspace)
    assert r.returncode == 0, r.stdout
    assert "✓ No NULL values in critical fields" in r.stdout and "PASS" in r.stdout
    r = run_cli("verify_data_collection.py", cwd=workspace)
    assert r.returncode == 0, r.stdout
