"""Is a correlation real? Shared moves, effective n, Fisher z, Benjamini–Hochberg, |r| groups,
mean-reversion of a pair's spread, degenerate z-scores — on planted worlds and real Polymarket series."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from polybot.analysis.correlation import PriceMatrix, correlate
from polybot.analysis.meanrev import adf_critical, adf_test, degenerate, degenerate_columns, half_life
from polybot.analysis.significance import bh_qvalues, effective_n, fisher_p, lag1_autocorr, shared_moves
from polybot.analysis.stats import corr_pairwise
from polybot.risk import load_correlation_groups
from polybot.strategy import MarketInfo, PortfolioView
from polybot.strategy.correlation_pairs import CorrelationPairs
from polybot.strategy.feed import MarketFeed
from tests.backtest.helpers import DAY, T0, M, add_market, new_db, snap
from tests.conftest import run_cli, write_config

REAL = Path(__file__).resolve().parents[1] / "data" / "realdata" / "prices_subset.jsonl"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "prices_us2024_elections.jsonl"
SWING = ("arizona", "georgia", "michigan", "nevada", "north-carolina", "pennsylvania", "wisconsin")


# ------------------------------------------------------------------ the statistics, by hand
def test_fisher_p_bh_and_effective_n_by_hand():
    # r = 0.5, n = 28: z = atanh(0.5)·√25 = 2.7465 → two-sided p = erfc(2.7465/√2) = 0.006023
    assert fisher_p(np.array([0.5, -0.5]), np.array([28.0, 28.0])) == pytest.approx(
        [0.006023, 0.006023], abs=1e-5
    )
    assert fisher_p(np.array([0.9]), np.array([3.0]))[0] == 1.0  # n_eff ≤ 3: no evidence
    # BH: sorted p .01 .03 .04 .2 → p·m/rank .04 .06 .0533 .2 → running min from the top
    assert bh_qvalues(np.array([0.01, 0.04, 0.03, 0.2])) == pytest.approx(
        [0.04, 0.053333, 0.053333, 0.2], abs=1e-6
    )
    # ties (untested pairs are all p = 1): q does not depend on the order the sort gives ties;
    # by the definition, q_i = min over p_j ≥ p_i of p_j·m / #{k: p_k ≤ p_j}, capped at 1
    rng = np.random.default_rng(2)
    p = np.round(rng.random(400), 2)
    p[rng.random(400) < 0.5] = 1.0
    m = len(p)
    rank = np.array([(p <= v).sum() for v in p])
    want = np.array([min(1.0, min(p[j] * m / rank[j] for j in range(m) if p[j] >= v)) for v in p])
    assert bh_qvalues(p) == pytest.approx(want, rel=1e-12)
    assert np.array_equal(bh_qvalues(p[::-1]), bh_qvalues(p)[::-1])
    # corr_pairwise: a matrix without gaps (one product) agrees with the same data with a gap row
    X = rng.normal(size=(60, 5))
    r_full, n_full = corr_pairwise(X)
    r_gap, n_gap = corr_pairwise(np.vstack([X, np.full((1, 5), np.nan)]))
    assert np.allclose(r_full, r_gap, atol=1e-12) and (n_full == 60).all() and (n_gap == 60).all()
    assert r_full[0, 1] == pytest.approx(np.corrcoef(X[:, 0], X[:, 1])[0, 1], abs=1e-12)
    flat = X.copy()
    flat[:, 2] = 0.3  # a constant series: NaN in its row and column on both paths
    for A in (flat, flat[:1]):  # one row: below the minimum overlap, all NaN
        r_a, _ = corr_pairwise(A)
        r_b, _ = corr_pairwise(np.vstack([A, np.full((1, 5), np.nan)]))
        assert np.array_equal(np.isnan(r_a), np.isnan(r_b))
        assert np.allclose(r_a[~np.isnan(r_a)], r_b[~np.isnan(r_b)], atol=1e-12)
    assert np.isnan(corr_pairwise(flat)[0][2]).all() and not np.isnan(corr_pairwise(flat)[0][0, 1])
    # Bartlett: ρa = ρb = 0.5 → n·(1 − .25)/(1 + .25) = 0.6 n; capped by the shared moves
    assert effective_n(np.array([[100.0]]), np.array([0.5]), np.array([[1000]]))[0, 0] == pytest.approx(60)
    assert effective_n(np.array([[100.0]]), np.array([0.5]), np.array([[12]]))[0, 0] == 12
    D = np.array([[0, 1], [0.01, 1], [0.01, 0], [0, 0], [-0.02, 2]], dtype=float)
    assert shared_moves(D).tolist() == [[3, 2], [2, 3]]
    x = np.random.default_rng(0).normal(size=5000)
    ar = np.zeros(5000)
    for t in range(1, 5000):
        ar[t] = 0.6 * ar[t - 1] + x[t]
    assert lag1_autocorr(ar[:, None])[0] == pytest.approx(0.6, abs=0.03)


def test_adf_and_half_life():
    # MacKinnon (2010) constant-only: 5 % at T = 100 is −2.86154 − 2.8903/100 − 4.234/100² − 40.04/100³
    assert adf_critical(100, 0.05) == pytest.approx(-2.8909, abs=1e-4)
    assert adf_critical(100, 0.05, n_series=2) == pytest.approx(-3.3980, abs=1e-3)
    rng = np.random.default_rng(3)
    e = rng.normal(size=400)
    ou = np.zeros(400)
    for t in range(1, 400):
        ou[t] = 0.5 * ou[t - 1] + e[t]
    assert adf_test(ou).stationary and half_life(ou) == pytest.approx(1.0, abs=0.3)
    walk = np.cumsum(e)
    assert not adf_test(walk).stationary and half_life(walk) > 50
    assert degenerate(np.r_[np.full(200, 0.1), 0.2]) is not None  # 2 distinct values
    assert degenerate(np.linspace(0, 1e-4, 50)) is not None  # near-zero variance
    assert degenerate(ou) is None


def test_degenerate_columns_agrees_with_degenerate_column_by_column():
    # the pairs strategy asks every pair at once; each column's answer is degenerate()'s
    rng = np.random.default_rng(11)
    cols = [
        rng.normal(0, 0.01, 60),  # usable
        np.full(60, 0.1),  # flat
        np.r_[np.full(59, 0.1), 0.2],  # one jump: 2 distinct values
        np.round(rng.normal(0, 0.004, 60), 2),  # few distinct values (3) after rounding
        np.linspace(0, 1e-4, 60),  # near-zero standard deviation
        np.r_[rng.normal(0, 0.01, 8), np.full(52, np.nan)],  # too few points
        np.full(60, np.nan),  # no points
        np.where(rng.random(60) < 0.3, np.nan, rng.normal(0, 0.01, 60)),  # gaps, usable
        np.where(rng.random(60) < 0.9, np.nan, rng.normal(0, 0.01, 60)),  # mostly gaps
        np.r_[np.full(30, 0.0), np.full(30, -0.0)] + np.r_[np.zeros(55), [0.01, 0.02, 0.03, 0.04, 0.05]],
    ]
    S = np.column_stack(cols)
    for kw in ({}, {"min_points": 5, "min_distinct": 3, "min_std": 0.001}, {"min_distinct": 2}):
        got = degenerate_columns(S, **kw)
        want = [degenerate(c, **kw) is not None for c in cols]
        assert got.tolist() == want, kw
    assert degenerate_columns(S).tolist() == [False, True, True, True, True, True, True, False, True, False]
    full = [0, 1, 2, 3, 4, 9]  # the columns without gaps: the path without masks
    moving = [0, 4]  # a few rows already show 5 distinct values (no full sort); 4 fails on its std
    assert degenerate_columns(S[:, moving]).tolist() == [False, True]
    assert degenerate_columns(S[:, full]).tolist() == [degenerate(cols[c]) is not None for c in full]
    with np.errstate(invalid="ignore"):  # the caller's own standard deviations (NaN: none)
        sd = np.array([np.std(c[~np.isnan(c)]) if (~np.isnan(c)).any() else np.nan for c in cols])
    assert degenerate_columns(S, std=sd).tolist() == [degenerate(c) is not None for c in cols]
    # the caller's completeness hint gives the same answers (too few rows: every column)
    assert degenerate_columns(S[:, full], complete=True).tolist() == [
        degenerate(cols[c]) is not None for c in full
    ]
    assert degenerate_columns(S, complete=False).tolist() == [degenerate(c) is not None for c in cols]
    assert degenerate_columns(S[:8, full], complete=True).tolist() == [True] * len(full)
    assert degenerate_columns(np.zeros((5, 0))).shape == (0,)
    one = degenerate_columns(np.array([[0.5]]), min_points=1, min_distinct=1, min_std=0.0)
    assert one.tolist() == [False]


# ------------------------------------------------------------------ planted worlds
def _sparse_world(k=200, steps=864, p_move=0.003, seed=7):
    """72 hours of 5-minute prices: k independent markets that each move on ~0.3 % of steps, plus a planted
    pair (the last two columns) that move together on 4 % of steps (≈ 30 shared 30-minute moves)."""
    rng = np.random.default_rng(seed)
    moves = (rng.random((steps, k)) < p_move) * rng.normal(0, 0.01, (steps, k))
    common = np.cumsum((rng.random(steps) < 0.04) * rng.normal(0, 0.01, steps))
    planted = common[:, None] + rng.normal(0, 0.0015, (steps, 2))  # a shared walk + own noise
    P = 0.5 + np.column_stack([np.cumsum(moves, axis=0), planted])
    ids = [f"m{i:03d}" for i in range(k)] + ["planted_a", "planted_b"]
    return P, ids


def _correlate(P, ids, interval=300, change_minutes=5):
    pm = PriceMatrix(
        T0 + interval * np.arange(len(P)), ids, [f"Question {m}?" for m in ids], [None] * len(ids), P
    )
    return correlate(
        pm,
        start_ts=T0,
        end_ts=T0 + interval * (len(P) - 1),
        interval=interval,
        change_minutes=change_minutes,
        ffill_points=1,
        min_overlap=0.5,
    )


def test_sparse_independent_markets_give_no_strong_pair_and_the_planted_one_is_found():
    P, ids = _sparse_world()
    res = _correlate(P, ids, change_minutes=30)  # the pairs strategy's default: 30-minute changes
    iu = np.triu_indices(len(res.market_ids), 1)
    # the old rule (r ≥ 0.7 over all pairs) finds many coincidences in this world ...
    coincidences = int((np.nan_to_num(res.r[iu]) >= 0.7).sum())
    assert coincidences >= 10
    # ... the statistics keep only the planted pair
    groups = res.groups(0.7)
    assert [g["markets"] for g in groups] == [["planted_a", "planted_b"]]
    st = res.stats
    a, b = res.market_ids.index("planted_a"), res.market_ids.index("planted_b")
    k = len(res.market_ids)  # markets that never moved are left out
    assert st.shared[a, b] >= 20 and st.q[a, b] < 1e-6 and st.m == k * (k - 1) // 2
    assert int(res.strong_mask(0.7)[iu].sum()) == 1


def test_one_shared_move_of_a_tenth_of_a_cent_is_never_strong():
    """The issue's real case: one shared move of 0.001 in 2,016 steps gave r = 0.71 and a risk group."""
    n = 2016
    a = np.full(n, 0.40)
    b = np.full(n, 0.62)
    a[700:] += 0.001  # A moves twice, B once — at the same step as A's first move
    a[1500:] += 0.001
    b[700:] += 0.001
    res = _correlate(np.column_stack([a, b]), ["A", "B"])
    assert res.r[0, 1] == pytest.approx(0.707, abs=0.01)
    assert res.stats.shared[0, 1] == 1 and res.stats.p[0, 1] == 1.0
    assert res.groups(0.7) == [] and not res.strong_mask(0.7)[0, 1]
    assert res.stats.why_not(0, 1) == "only 1 shared move (need 20)"


def test_negative_correlation_forms_a_group():
    """Two outcomes of one decision move against each other (r ≈ −0.8): one risk."""
    rng = np.random.default_rng(11)
    n = 2016
    common = rng.normal(0, 0.004, n)
    P = np.column_stack(
        [
            0.5 + np.cumsum(common + rng.normal(0, 0.002, n)),
            0.4 + np.cumsum(-common + rng.normal(0, 0.002, n)),
            0.3 + np.cumsum(rng.normal(0, 0.004, n)),
        ]
    )
    res = _correlate(P, ["cut", "hold", "other"])
    assert res.r[0, 1] < -0.7
    g = res.groups(0.7)
    assert [x["markets"] for x in g] == [["cut", "hold"]] and g[0]["negative_links"] == 1


# ------------------------------------------------------------------ the pairs strategy
def mk(mid):
    return MarketInfo(
        market_id=mid, question=f"Will {mid}?", token_ids=(f"{mid}-yes", f"{mid}-no"), end_date=T0 + 60 * DAY
    )


def _feed(P, ids, history_hours=170, upto=None):
    """A feed holding P's rows 0 … upto − 1 (all by default) and a function adding row t."""
    feed = MarketFeed([mk(m) for m in ids], history_seconds=history_hours * 3600, interval_seconds=300)

    def add(t):
        feed.add_rows(
            [
                {
                    "timestamp": T0 + 300 * t,
                    "token_id": f"{m}-yes",
                    "market_id": m,
                    "best_bid": round(P[t, j] - 0.005, 4),
                    "best_ask": round(P[t, j] + 0.005, 4),
                    "mid": round(P[t, j], 4),
                    "bids": f"{P[t, j] - 0.005:.4f}:100",
                    "asks": f"{P[t, j] + 0.005:.4f}:100",
                    "source": "collected",
                }
                for j, m in enumerate(ids)
            ]
        )

    for t in range(len(P) if upto is None else upto):
        add(t)
    return (feed, add) if upto is not None else feed


def test_pairs_strategy_trades_only_significant_pairs():
    P, ids = _sparse_world(k=120)
    P = np.clip(P, 0.1, 0.9)
    feed = _feed(P, ids, history_hours=80)
    s = CorrelationPairs({"reselect_hours": 1000.0})  # defaults: 72 h lookback, 30-minute changes
    s.decide(feed.view(T0 + 300 * (len(P) - 1)), PortfolioView(500 * M))
    assert [p.key for p in s.pairs] == ["planted_a-yes|planted_b-yes"]
    assert s.pairs[0].q < 1e-6 and s.pairs[0].half_life_hours < 24


def test_pairs_strategy_drops_a_correlated_pair_whose_spread_does_not_revert():
    """Two markets share a walk (r ≈ 0.7, significant) but each also wanders on its own (random-walk
    deviations): the spread A − βB is a random walk, so 'convergence' is a coin toss — not traded."""
    rng = np.random.default_rng(9)
    n = 865
    walk = np.cumsum(rng.normal(0, 0.004, n))
    P = 0.5 + np.column_stack(
        [walk + np.cumsum(rng.normal(0, 0.0025, n)), walk + np.cumsum(rng.normal(0, 0.0025, n))]
    )
    feed = _feed(np.clip(P, 0.1, 0.9), ["A", "B"], history_hours=80)
    now = T0 + 300 * (n - 1)
    s = CorrelationPairs({"reselect_hours": 1000.0, "min_correlation": 0.5})
    s.decide(feed.view(now), PortfolioView(500 * M))
    assert s.pairs == []
    assert len(s.selection_log) == 1 and "not mean-reverting (ADF t" in s.selection_log[0][2]
    # the same pair IS significant: only the mean-reversion test removed it
    s2 = CorrelationPairs({"reselect_hours": 1000.0, "min_correlation": 0.5, "require_mean_reversion": False})
    s2.decide(feed.view(now), PortfolioView(500 * M))
    assert [p.key for p in s2.pairs] == ["A-yes|B-yes"] and s2.pairs[0].q < 0.05


def test_pairs_strategy_never_enters_on_a_degenerate_spread():
    """Co-moving for two days (the pair is selected), then both prices sit still for a day and A jumps:
    the z window's spread has ~1 distinct value, so z would be +47-like; no entry."""
    rng = np.random.default_rng(5)
    n1, n2 = 576, 288
    walk = 0.5 + np.cumsum(rng.normal(0, 0.004, n1))
    a = walk + rng.normal(0, 0.0015, n1)
    b = walk + rng.normal(0, 0.0015, n1)
    P = np.vstack([np.column_stack([a, b]), np.tile([a[-1], b[-1]], (n2, 1))])
    P = np.vstack([P, [P[-1, 0] + 0.1, P[-1, 1]]])
    feed, add = _feed(np.round(P, 4), ["A", "B"], history_hours=80, upto=len(P) - 1)
    params = {
        "lookback_hours": 72,
        "change_points": 1,
        "reselect_hours": 1000.0,
        "z_window_hours": 23,
        "min_edge": 0.0,
        "entry_z": 2.0,
    }
    s = CorrelationPairs(params)
    s.decide(feed.view(T0 + 300 * (len(P) - 2)), PortfolioView(500 * M))
    assert [p.key for p in s.pairs] == ["A-yes|B-yes"]
    add(len(P) - 1)
    assert s.decide(feed.view(T0 + 300 * (len(P) - 1)), PortfolioView(500 * M)) == []
    view = feed.view(T0 + 300 * (len(P) - 1))
    assert np.isnan(s._z_scores(view, s.pairs, view.latest())[0])


# ------------------------------------------------------------------ real Polymarket series
def _real():
    return [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines()]


def test_real_data_copy_matches_the_shared_files():
    if not SHARED.exists():
        pytest.skip("shared/realdata is not next to this clone")
    shared = set(SHARED.read_text(encoding="utf-8").splitlines())
    lines = REAL.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 16 and all(line in shared for line in lines)


def _real_matrix(start=1719792000, end=1730764800, grid=43200):
    rows = [r for r in _real() if r["fidelity"].startswith("720")]
    b0 = start // grid
    nb = end // grid - b0 + 1
    P = np.full((nb, len(rows)), np.nan)
    for j, r in enumerate(rows):
        for ts, p in r["history"]:
            if 0 <= ts // grid - b0 < nb:
                P[ts // grid - b0, j] = p
    names = [r["event"] for r in rows]
    pm = PriceMatrix((b0 + np.arange(nb)) * grid, names, [r["question"] for r in rows], [None] * len(rows), P)
    return correlate(
        pm, start_ts=start, end_ts=end, interval=grid, change_minutes=720, ffill_points=1, min_overlap=0.5
    )


def test_real_swing_states_co_move_significantly_and_coincidences_are_never_strong():
    res = _real_matrix()  # Jul–Nov 2024, 12-hour changes
    st = res.stats
    sig = st.significant()
    swing = [i for i, m in enumerate(res.market_ids) if m.split("-presidential")[0] in SWING]
    national = res.market_ids.index("presidential-election-party-winner-2024")
    assert len(swing) == 7
    swing_sig = [(i, j) for i in swing + [national] for j in swing if i < j and sig[i, j]]
    assert len(swing_sig) >= 8  # real co-movement, with p-values
    for i, j in swing_sig:
        assert (
            0.25 <= res.r[i, j] <= 0.6 and st.p[i, j] < 0.02 and st.q[i, j] <= 0.05 and st.shared[i, j] >= 60
        )
    # every significant pair involves a swing state or the national market — none of the safe states
    iu, ju = np.nonzero(np.triu(sig, 1))
    assert all(i in swing + [national] and j in swing + [national] for i, j in zip(iu, ju, strict=True))
    # |r| ≥ 0.7 among safe states (Senate vs governor races at r = −0.99, New Mexico vs New Jersey Senate at
    # r = +0.99 on 14 shared moves) are coincidences: never strong, no group
    high = np.triu(np.abs(np.nan_to_num(res.r)) >= 0.7, 1)
    assert high.sum() >= 5
    assert not (high & st.strong(0.7)).any() and res.groups(0.7) == []
    nm, nj = (
        res.market_ids.index("new-mexico-us-senate-election-winner-2024"),
        res.market_ids.index("new-jersey-us-senate-election-winner"),
    )
    assert res.r[nm, nj] > 0.95 and st.shared[nm, nj] < 20


def test_real_fed_outcomes_moving_against_each_other_are_one_group():
    """The Fed "no change" series is real (30-minute book mids); the "25 bp cut" outcome is DERIVED from
    it (1 − no change, plus independent noise as the other outcomes take their share) because the shared
    data holds one outcome only. The point: a negative r between outcomes of one decision is one group."""
    (fed,) = [r for r in _real() if r["event"] == "fed-decision-in-december"]
    h = np.array(fed["history"], dtype=float)
    grid = 1800
    t0 = int(h[0, 0]) // grid * grid
    n = int(h[-1, 0]) // grid - t0 // grid + 1
    no_change = np.full(n, np.nan)
    no_change[(h[:, 0].astype(int) // grid) - t0 // grid] = h[:, 1]
    rng = np.random.default_rng(2)
    steps = np.nan_to_num(np.diff(no_change, prepend=no_change[0]))
    cut = np.clip(
        1 - no_change - np.cumsum(rng.normal(0, 1, n) * (steps != 0) * np.std(steps) * 0.7), 0.01, 0.99
    )
    pm = PriceMatrix(
        t0 + grid * np.arange(n),
        ["fed-no-change", "fed-cut-25"],
        ["No change?", "25 bp cut?"],
        [None, None],
        np.column_stack([no_change, cut]),
    )
    res = correlate(
        pm,
        start_ts=t0,
        end_ts=t0 + grid * (n - 1),
        interval=grid,
        change_minutes=30,
        ffill_points=2,
        min_overlap=0.5,
    )
    assert res.r[0, 1] < -0.7
    assert [sorted(g["markets"]) for g in res.groups(0.7)] == [["fed-cut-25", "fed-no-change"]]


def test_correlation_command_on_real_series(tmp_path):
    """correlation_analysis.py and plot_correlations.py on the real 12-hour series stored as snapshots."""
    write_config(tmp_path, {"collection": {"interval_minutes": 720}})
    conn = new_db(tmp_path / "data" / "polymarket.db")
    conn.execute("BEGIN")
    for r in _real():
        if not r["fidelity"].startswith("720"):
            continue
        mid = r["event"]
        add_market(conn, mid, question=r["question"])
        for ts, p in r["history"]:
            if 1719792000 <= ts <= 1730764800:
                snap(conn, int(ts), f"{mid}-yes", mid, mid=float(p), last=float(p))
    conn.execute("COMMIT")
    conn.close()
    p = run_cli("correlation_analysis.py", "--days", "120", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Strong correlations (significant at FDR 0.05 and |r| ≥ 0.7): 0 of" in out
    sig_block = out.split("Significant but weaker")[1].split("NOT strong")[0]
    assert "Wisconsin" in sig_block and "p = " in sig_block and "q = " in sig_block
    assert "NOT strong although |r| ≥ 0.7" in out
    groups = json.loads((tmp_path / "reports" / "correlation_groups.json").read_text())
    assert groups["groups"] == [] and groups["uses_abs_r"] is True
    assert load_correlation_groups(tmp_path / "reports" / "correlation_groups.json") == {}
    p = run_cli("plot_correlations.py", "--days", "120", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "reports" / "correlation_heatmap_120day.png").read_bytes()[:4] == b"\x89PNG"
    assert math.isfinite(len(out))


def test_anti_correlated_markets_share_the_risk_managers_group_cap(tmp_path):
    """correlation_analysis.py on two markets that move against each other → one group in
    correlation_groups.json → the risk manager caps their exposure together."""
    from polybot.risk import group_keys

    write_config(tmp_path)
    conn = new_db(tmp_path / "data" / "polymarket.db")
    rng = np.random.default_rng(4)
    n = 2016
    common = rng.normal(0, 0.004, n)
    series = {
        "CUT": 0.5 + np.cumsum(common + rng.normal(0, 0.002, n)),
        "HOLD": 0.45 + np.cumsum(-common + rng.normal(0, 0.002, n)),
        "OTHER": 0.3 + np.cumsum(rng.normal(0, 0.004, n)),
    }
    for mid in series:
        add_market(conn, mid, question=f"{mid}?")
    conn.execute("BEGIN")
    for k in range(n):
        for mid, s in series.items():
            p = float(np.clip(s[k], 0.05, 0.95))
            snap(conn, T0 + 300 * k, f"{mid}-yes", mid, round(p - 0.005, 4), round(p + 0.005, 4))
    conn.execute("COMMIT")
    conn.close()
    p = run_cli("correlation_analysis.py", "--days", "7", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "g1: 2 markets, mean r -0.8" in p.stdout and "1 negative links" in p.stdout
    groups = load_correlation_groups(tmp_path / "reports" / "correlation_groups.json")
    assert groups == {"CUT": "g1", "HOLD": "g1"}
    cut, hold = (
        MarketInfo(market_id=m, question=f"{m}?", token_ids=(f"{m}-yes", f"{m}-no")) for m in ("CUT", "HOLD")
    )
    assert group_keys(cut, groups) == group_keys(hold, groups) == ("corr:g1",)


def _move_share(D, i, j):  # the definition, one pair at a time
    x, y = D[:, i], D[:, j]
    ok = ~np.isnan(x) & ~np.isnan(y)
    if ok.sum() < 2:
        return float("nan")
    pr = np.abs((x[ok] - x[ok].mean()) * (y[ok] - y[ok].mean()))
    return float(pr.max() / pr.sum()) if pr.sum() > 0 else float("nan")


def test_move_shares_is_the_definition_for_every_pair():
    from polybot.analysis.significance import move_shares

    rng = np.random.default_rng(4)
    D = rng.normal(0, 0.01, (80, 6))
    D[rng.random(D.shape) < 0.15] = np.nan
    D[:, 4] = 0.0  # a flat column: no co-movement at all (NaN)
    D[:78, 5] = np.nan  # two points: defined; one point would not be
    D[5, 1] = 0.5  # one step that carries most of the co-movement with column 1
    ia, ja = np.triu_indices(6, 1)
    got = move_shares(D, ia, ja)
    want = np.array([_move_share(D, int(i), int(j)) for i, j in zip(ia, ja, strict=True)])
    assert np.allclose(got, want, equal_nan=True, rtol=1e-12)
    assert np.isnan(got[(ia == 0) & (ja == 4)]).all()
    assert (got[ia == 1][~np.isnan(got[ia == 1])] > 0.0).all()
