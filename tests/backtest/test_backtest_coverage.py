"""polybot.backtest.coverage.data_coverage: how much of a window the stored data covers."""

from __future__ import annotations

import pytest

from polybot.backtest.coverage import data_coverage
from tests.backtest.helpers import DAY, T0, add_market, new_db

STEP = 300


def fill(conn, tokens, market, start, end, *, source="collected", step=STEP):
    """One row per token per grid point in [start, end)."""
    rows = []
    for ts in range(start, end, step):
        for t in tokens:
            if source == "backfill":
                rows.append((ts, t, market, None, None, 0.5, 0.5, None, None, "backfill"))
            else:
                rows.append((ts, t, market, 0.49, 0.51, 0.5, 0.5, "0.49:100", "0.51:100", "collected"))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT OR IGNORE INTO snapshot_values (timestamp, token_id, market_id, best_bid, "
        "best_ask, mid, last_trade_price, bids, asks, source) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.execute("COMMIT")


@pytest.fixture
def conn(tmp_path):
    c = new_db(tmp_path / "cov.db")
    yield c
    c.close()


def test_six_days_of_data_in_a_thirty_day_window_is_a_fifth(conn):
    toks = add_market(conn, "m1")
    start, end = T0, T0 + 30 * DAY
    fill(conn, toks, "m1", end - 6 * DAY, end)
    cov = data_coverage(conn, toks, start, end)
    assert cov["grid_points"] == 30 * 288
    assert cov["covered_points"] == 6 * 288
    assert cov["coverage"] == pytest.approx(0.2)
    assert cov["recorded_days"] == pytest.approx(6.0)
    assert cov["recorded_share"] == 1.0 and cov["backfilled_share"] == 0.0
    assert cov["rows"] == 2 * 6 * 288 and cov["tokens_with_data"] == 2
    assert cov["first_ts"] == end - 6 * DAY and cov["last_ts"] == end - STEP


def test_backfilled_rows_cover_but_are_not_recorded(conn):
    toks = add_market(conn, "m1")
    start, end = T0, T0 + 30 * DAY
    fill(conn, toks, "m1", start, end - 6 * DAY, source="backfill")
    fill(conn, toks, "m1", end - 6 * DAY, end)
    cov = data_coverage(conn, toks, start, end)
    assert cov["coverage"] == 1.0
    assert cov["recorded_share"] == pytest.approx(0.2)
    assert cov["backfilled_share"] == pytest.approx(0.8)
    assert cov["recorded_share"] + cov["backfilled_share"] == pytest.approx(1.0)
    assert cov["recorded_days"] == pytest.approx(6.0)
    assert cov["recorded_coverage"] == pytest.approx(0.2)
    assert cov["backfilled_rows"] == 4 * cov["recorded_rows"]


def test_only_the_universe_counts_and_one_token_covers_a_grid_point(conn):
    a = add_market(conn, "a")
    b = add_market(conn, "b")
    start, end = T0, T0 + 10 * DAY
    fill(conn, b, "b", start, end)  # outside the universe: ignored
    fill(conn, a, "a", start, start + 5 * DAY)  # both tokens for 5 days
    fill(conn, a[:1], "a", start + 5 * DAY, end)  # the YES token only afterwards
    cov = data_coverage(conn, a, start, end)
    assert cov["coverage"] == 1.0
    assert cov["token_coverage"] == pytest.approx(0.75)
    assert cov["rows"] == 2 * 5 * 288 + 5 * 288
    assert data_coverage(conn, [], start, end)["coverage"] == 0.0
    assert data_coverage(conn, ["nobody"], start, end)["tokens_with_data"] == 0


def test_window_edges_and_a_grid_coarser_than_the_rows(conn):
    toks = add_market(conn, "m1")
    fill(conn, toks[:1], "m1", T0, T0 + DAY, step=60)  # one-minute rows
    cov = data_coverage(conn, toks[:1], T0, T0 + 2 * DAY)  # end inclusive, 5-minute grid
    assert cov["grid_points"] == 2 * 288
    assert cov["coverage"] == pytest.approx(0.5)
    assert cov["token_coverage"] == pytest.approx(0.5)  # 5 rows in a bucket count once
    assert cov["recorded_days"] == pytest.approx(1.0)
    hourly = data_coverage(conn, toks[:1], T0, T0 + 2 * DAY, grid_seconds=3600)
    assert hourly["grid_points"] == 48 and hourly["covered_points"] == 24
    # a row exactly at end_ts belongs to the last grid point
    end_only = data_coverage(conn, toks[:1], T0 - DAY, T0)
    assert end_only["covered_points"] == 1 and end_only["last_ts"] == T0
    with pytest.raises(ValueError):
        data_coverage(conn, toks, T0 + 1, T0)
    with pytest.raises(ValueError):
        data_coverage(conn, toks, T0, T0 + DAY, grid_seconds=0)


def test_small_and_large_universes_read_differently_but_agree(conn):
    toks = add_market(conn, "m1")
    start, end = T0, T0 + 4 * DAY
    fill(conn, toks, "m1", start, start + DAY, source="backfill")
    fill(conn, toks, "m1", start + 2 * DAY, start + 3 * DAY)
    large = data_coverage(conn, toks, start, end)  # 2 of 2 stored tokens: key scan
    for k in range(40):  # now 2 of 82: token index
        add_market(conn, f"x{k}")
    small = data_coverage(conn, toks, start, end)
    assert small == large
    assert large["coverage"] == pytest.approx(0.5) and large["recorded_days"] == pytest.approx(1.0)
