"""Backtest = paper (issue 14, finding 4): the paper bot runs against the simulator and
records its snapshots; the backtester replays exactly those snapshots with the same
strategy and config, and must send the same orders and get the same fills — token, side,
size, price, fee and time step — with NO tolerance: both take the one decision path of
polybot/strategy/execution.py (same books, same sizing, same fill time, same risk rules,
same fill simulation), so any difference is a bug.

What is compared is the window the paper bot traded: from its first decision step to its
last one. Not compared: the replay's end-of-run liquidation (paper keeps its positions)
and settlements (paper learns of a resolution by looking it up, the replay at the recorded
resolution time; the drill run below sees none).
"""

from __future__ import annotations

import signal

import pytest

from tests.engine.helpers import (
    M,
    assert_consistent,
    load,
    make_workspace,
    query,
    start_bot,
    wait_for,
)

DRILL = {
    "size_usd": 20,
    "max_holdings": 3,
    "hold_seconds": 180,
    "entries_per_decision": 2,
    "max_spread": 0.1,
    "min_price": 0.1,
    "max_price": 0.9,
}


def _paper_run(root, min_fills: int) -> None:
    proc = start_bot(root)
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or query(root, "SELECT COUNT(*) FROM trades WHERE mode='paper' AND kind='fill'")[0][0]
                >= min_fills
            ),
            150,
            what=f"{min_fills} paper fills",
        )
        assert proc.poll() is None, (root / "bot.out").read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def _paper_records(root):
    """Orders (step, token, side, price, size) and fills per order (step, token, side, size,
    notional, fee) as the paper bot recorded them."""
    orders = [
        tuple(r)
        for r in query(
            root,
            "SELECT created_at, token_id, side, price_micro, size_micro FROM orders WHERE mode='paper' "
            "AND strategy <> 'emergency_stop' ORDER BY created_at, token_id, side",
        )
    ]
    fills = [
        tuple(r)
        for r in query(
            root,
            "SELECT MIN(t.timestamp), t.token_id, t.side, SUM(t.size_micro), SUM(t.notional_micro), "
            "SUM(t.fee_micro) FROM trades t WHERE t.mode='paper' AND t.kind='fill' "
            "GROUP BY t.order_id ORDER BY MIN(t.timestamp), t.token_id, t.side",
        )
    ]
    return orders, fills


def _replay(root, start: int, end: int):
    from polybot.backtest.engine import Backtester
    from polybot.db import connect as db_connect
    from polybot.engine.drill import Drill

    cfg = load(root)
    conn = db_connect(cfg.database_path, readonly=True)
    try:
        bt = Backtester(
            conn,
            cfg,
            Drill(cfg.strategy.params),
            start_ts=start,
            end_ts=end,
            capital_micro=int(cfg.capital * M),
        )
        res = bt.run()
    finally:
        conn.close()
    fills = sorted(
        (f.timestamp, f.token_id, f.side, f.size_micro, f.notional_micro, f.fee_micro)
        for f in res.ledger.fills
        if not f.reason.startswith("end of backtest")
    )
    orders = sorted(
        (t, s.token_id, s.side, s.price_micro, s.size_micro) for t, s in getattr(bt, "orders", [])
    )
    return orders, fills, res


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
@pytest.mark.parametrize(
    "order_type, slippage_ticks, min_fills",
    [
        ("FAK", 2, 16),  # marketable: taker fills walking the recorded depth
        ("GTC", -1, 5),  # one tick inside the spread: orders rest, fill as maker or go stale
    ],
)
def test_replaying_a_paper_run_gives_the_same_orders_and_fills(
    tmp_path, fast_sim, order_type, slippage_ticks, min_fills
):
    root = make_workspace(
        tmp_path,
        fast_sim,
        collection={"interval_minutes": 1, "min_volume_24h": 0, "min_liquidity": 0, "max_markets": 12},
        trading={
            "loop_interval_seconds": 0.2,
            "quick_check_interval_minutes": 0.05,
            "order_type": order_type,
            "stale_order_seconds": 900,
        },
        strategy={"name": "drill", "params": dict(DRILL, slippage_ticks=slippage_ticks)},
        risk_limits={"daily_loss_limit": 400},
    )
    _paper_run(root, min_fills=min_fills)
    assert_consistent(root)
    step = load(root).collection.interval_minutes * 60
    # the window the bot decided in: its first and last decision steps (grid times of its orders'
    # clock and of its last recorded snapshot)
    first_perf = query(root, "SELECT MIN(timestamp) FROM performance WHERE mode='paper'")[0][0]
    start = first_perf // step * step
    end = query(root, "SELECT MAX(timestamp) FROM snapshot_values")[0][0]
    p_orders, p_fills = _paper_records(root)
    r_orders, r_fills, res = _replay(root, start, end)
    assert len(p_fills) >= min_fills and {f[2] for f in p_fills} == {"BUY", "SELL"}
    if order_type == "GTC":  # the resting model was exercised: maker fills (no fee) happened
        assert res.counts.get("resting", 0) > 0 and any(f[5] == 0 for f in p_fills)
    assert not res.ledger.settlements, "a market resolved during the run: settlement timing is not compared"
    # the same fills: time step, token, side, size, notional (= price), fee
    assert r_fills == p_fills
    # and the same orders (rejected ones included), priced and sized identically
    assert r_orders == p_orders
    # fills happen on recorded steps (the grid); FAK ones at the step the order was sent
    placed = {(o[0], o[1], o[2]) for o in p_orders}
    assert all(f[0] % step == 0 for f in p_fills)
    if order_type == "FAK":
        assert all((f[0], f[1], f[2]) in placed for f in p_fills)


def test_fill_latency_zero_fills_on_the_decision_book_in_both(tmp_path, fast_sim):
    root = make_workspace(
        tmp_path,
        fast_sim,
        collection={"interval_minutes": 1, "min_volume_24h": 0, "min_liquidity": 0, "max_markets": 12},
        trading={
            "loop_interval_seconds": 0.2,
            "quick_check_interval_minutes": 0.05,
            "fill_latency_seconds": 0,
        },
        strategy={"name": "drill", "params": DRILL},
        risk_limits={"daily_loss_limit": 400},
    )
    _paper_run(root, min_fills=8)
    step = load(root).collection.interval_minutes * 60
    start = query(root, "SELECT MIN(timestamp) FROM performance WHERE mode='paper'")[0][0] // step * step
    end = query(root, "SELECT MAX(timestamp) FROM snapshot_values")[0][0]
    p_orders, p_fills = _paper_records(root)
    r_orders, r_fills, _ = _replay(root, start, end)
    assert len(p_fills) >= 8
    assert r_fills == p_fills and r_orders == p_orders
    # latency 0: each order filled at the step it was decided (and placed) at
    placed = {(o[0], o[1], o[2]) for o in p_orders}
    assert all((f[0], f[1], f[2]) in placed for f in p_fills)


def test_fill_latency_must_not_be_negative(tmp_path):
    from polybot.config import load_config
    from polybot.errors import ConfigError
    from tests.conftest import write_config

    with pytest.raises(ConfigError, match=r"trading.fill_latency_seconds' must be ≥ 0 seconds"):
        load_config(write_config(tmp_path, {"trading": {"fill_latency_seconds": -1}}), env={})
