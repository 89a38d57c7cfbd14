"""Correlation analysis: numeric helpers, the matrix from stored snapshots, the two commands."""

import csv
import json

import numpy as np
import pandas as pd
import pytest

from polybot.analysis.correlation import NotEnoughData, analyse, load_prices
from polybot.analysis.stats import cluster_order, clusters, corr_pairwise, ffill_limited
from polybot.db import connect
from polybot.risk import load_correlation_groups
from tests.backtest.helpers import T0, add_market, new_db, snap
from tests.conftest import run_cli


# ------------------------------------------------------------------ numeric helpers
def test_ffill_limited():
    x = np.array([1.0, np.nan, np.nan, 4.0, np.nan, np.nan, np.nan, np.nan, 9.0])
    assert np.array_equal(ffill_limited(x, 2), [1, 1, 1, 4, 4, 4, np.nan, np.nan, 9], equal_nan=True)
    assert np.array_equal(ffill_limited(np.array([np.nan, 2.0]), 3), [np.nan, 2.0], equal_nan=True)


def test_corr_pairwise_matches_pandas_pairwise_complete():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    X[:, 1] += X[:, 0]  # correlated
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:250, 5] = np.nan  # little overlap
    X[:, 4] = np.where(np.isnan(X[:, 4]), np.nan, 3.0)  # constant
    r, n = corr_pairwise(X, min_overlap=60)
    ref = pd.DataFrame(X).corr(min_periods=60).to_numpy()
    ok = ~np.isnan(ref)
    ok[4, :] = ok[:, 4] = False
    assert np.allclose(r[ok], ref[ok])
    assert np.isnan(r[4]).all() and np.isnan(r[0, 5])  # constant; overlap < 60
    assert n[0, 1] == int((~np.isnan(X[:, 0]) & ~np.isnan(X[:, 1])).sum())


def test_clusters_and_cluster_order():
    r = np.eye(6)
    for i, j, v in [(0, 3, 0.9), (3, 5, 0.8), (1, 4, 0.75), (2, 4, 0.2)]:
        r[i, j] = r[j, i] = v
    assert clusters(r, 0.7) == [[0, 3, 5], [1, 4]]
    order = list(cluster_order(r))
    assert sorted(order) == list(range(6))
    pos = {m: k for k, m in enumerate(order)}
    assert max(pos[0], pos[3], pos[5]) - min(pos[0], pos[3], pos[5]) == 2  # the group sits together
    assert abs(pos[1] - pos[4]) == 1


# ------------------------------------------------------------------ from stored snapshots
def _world(path, steps=2016, seed=0):
    """A (common walk), B (A + noise), C (independent), D (a duplicate of A's book),
    E (too little data). YES and NO tokens are both stored (NO = 1 − YES)."""
    rng = np.random.default_rng(seed)
    conn = new_db(path)
    walk = 0.5 + np.cumsum(rng.normal(0, 0.004, steps))
    series = {
        "A": walk,
        "B": walk + rng.normal(0, 0.001, steps).cumsum() * 0.2,
        "C": 0.4 + np.cumsum(rng.normal(0, 0.004, steps)),
        "D": walk,
    }
    for mid in ("A", "B", "C", "D", "E"):
        add_market(conn, mid, question=f"Question {mid}?")
    conn.execute("BEGIN")
    for k in range(steps):
        ts = T0 + 300 * k
        for mid, s in series.items():
            p = float(np.clip(s[k], 0.05, 0.95))
            snap(conn, ts, f"{mid}-yes", mid, round(p - 0.005, 4), round(p + 0.005, 4))
            snap(conn, ts, f"{mid}-no", mid, round(1 - p - 0.005, 4), round(1 - p + 0.005, 4))
        if k % 50 == 0:
            snap(conn, ts, "E-yes", "E", 0.3, 0.32)
    conn.execute("COMMIT")
    conn.close()


def test_matrix_on_changes_one_token_per_market(tmp_path):
    db = tmp_path / "c.db"
    _world(db)
    conn = connect(db, readonly=True)
    res = analyse(conn, 7, min_overlap=0.5)
    assert res.market_ids == ["A", "B", "C", "D"]  # E: too little data
    assert res.excluded[0][0] == "E" and "need" in res.excluded[0][2]
    r = dict(((res.market_ids[i], res.market_ids[j]), v) for v, i, j in res.pairs())
    assert r[("A", "D")] > 0.999  # duplicated book
    assert r[("A", "B")] > 0.7
    assert abs(r[("A", "C")]) < 0.3
    # one series per market: no YES/NO pair (which would be −1) can appear
    assert min(v for v, _, _ in res.pairs()) > -0.5
    assert res.groups(0.7)[0]["markets"] == ["A", "B", "D"]
    # the grid: 7 days of 5-minute buckets
    pm = load_prices(conn, res.start_ts, res.end_ts)
    assert pm.prices.shape == (2016, 5)
    conn.close()


def test_not_enough_data(tmp_path):
    db = tmp_path / "n.db"
    conn = new_db(db)
    with pytest.raises(NotEnoughData, match="no market snapshots yet"):
        analyse(conn, 7)
    add_market(conn, "A")
    add_market(conn, "B")
    for k in range(5):
        snap(conn, T0 + 300 * k, "A-yes", "A", 0.4 + k / 100, 0.42 + k / 100)
    with pytest.raises(
        NotEnoughData, match=r"Not enough data for a correlation matrix: 0 of 2 tracked markets"
    ):
        analyse(conn, 7)
    conn.close()


def test_correlation_commands(workspace):
    db = workspace / "data" / "polymarket.db"
    _world(db)
    p = run_cli("correlation_analysis.py", "--days", "7", cwd=workspace)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Strong correlations (significant at FDR 0.05 and |r| ≥ 0.7): 3 of 6 pairs" in out
    assert "Question A?  ↔  Question D?" in out and "Weak correlations (|r| < 0.3):" in out
    assert "⚠ Near-perfect correlation r = 1.0000: Question A? ↔ Question D?" in out
    assert "changes, not levels" in out
    with open(workspace / "reports" / "correlation_7day.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["market_id", "question", "A", "B", "C", "D"]
    assert rows[1][:3] == ["A", "Question A?", "1.0000"]
    groups = json.loads((workspace / "reports" / "correlation_groups.json").read_text())
    assert groups["groups"][0]["markets"] == ["A", "B", "D"]
    assert load_correlation_groups(workspace / "reports" / "correlation_groups.json") == {
        "A": "g1",
        "B": "g1",
        "D": "g1",
    }
    # the heatmap
    p = run_cli(
        "plot_correlations.py",
        "--days",
        "7",
        "--output",
        "reports/correlation_heatmap_7day.png",
        cwd=workspace,
    )
    assert p.returncode == 0, p.stderr
    assert "Heatmap written" in p.stdout and "near-perfect" in p.stdout
    assert (workspace / "reports" / "correlation_heatmap_7day.png").read_bytes()[:4] == b"\x89PNG"


def test_correlation_command_without_data(workspace):
    assert run_cli("initialize_db.py", cwd=workspace).returncode == 0
    p = run_cli("correlation_analysis.py", "--days", "7", cwd=workspace)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == (
        "Error: The database has no market snapshots yet; collect data first "
        "(python collect_market_data.py, every 5 minutes for the checklist's 7 days)."
    )
    p = run_cli("plot_correlations.py", "--days", "7", cwd=workspace)
    assert p.returncode == 2 and "Traceback" not in p.stderr
