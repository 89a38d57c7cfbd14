"""kill -9 at the moments that matter of a paper run, restart, repeat: no trade lost, none
duplicated; positions and cash always equal what the recorded trades imply.

Each life of the bot is killed as soon as the database shows it reached one of four moments
(polled, never slept on): it is up (its heartbeat carries its PID), it has just recorded a new order (the
kill lands between the order's commit and its fill), a new trade, or a new sale. The moments
come in a seeded random order, each at least once.

Rounds: 8 by default (each moment twice, about 15 s); the full soak is ``POLYBOT_SOAK_ROUNDS=60 pytest
tests/engine/test_crash_safety.py`` (what the release check runs).
"""

from __future__ import annotations

import os
import random

import pytest

from polybot.engine.orders import PAPER_NOT_EXECUTED
from polybot.sim.server import start_simulator
from tests.engine.helpers import (
    assert_consistent,
    assert_limits_respected,
    kill,
    make_workspace,
    query,
    run_bot,
    start_bot,
    wait_for,
)

ROUNDS = int(os.environ.get("POLYBOT_SOAK_ROUNDS", "8"))
# what the database shows at each moment: a query whose answer changes when the moment comes
MOMENTS = {
    "up": "SELECT value FROM bot_state WHERE key = 'pid'",
    "order": "SELECT COUNT(*) FROM orders",
    "trade": "SELECT COUNT(*) FROM trades",
    "sale": "SELECT COUNT(*) FROM trades WHERE side = 'SELL'",
}


@pytest.fixture
def fast_sim():
    h = start_simulator(port=0, seed=7, n_markets=16, speed=60)
    try:
        yield h
    finally:
        h.stop()


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path, fast_sim):
    root = make_workspace(
        tmp_path,
        fast_sim,
        # the bot decides once per recorded grid step (issue 14 #4): a 1-minute grid (1 s at 60×)
        # and orders placed at the step they are decided, so that short lives between kills trade
        trading={"loop_interval_seconds": 0.05, "fill_latency_seconds": 0},
        collection={"interval_minutes": 1},
        risk_limits={"daily_loss_limit": 500, "stop_loss_percent": 0.9},
        strategy={
            "name": "drill",
            "params": {"size_usd": 15, "max_holdings": 3, "hold_seconds": 30, "entries_per_decision": 2},
        },
    )
    rng = random.Random(20261124)
    moments = [list(MOMENTS)[i % len(MOMENTS)] for i in range(max(ROUNDS, len(MOMENTS)))]
    rng.shuffle(moments)
    trades_seen = []
    for i, moment in enumerate(moments):
        before = query(root, MOMENTS[moment])
        proc = start_bot(root)
        try:
            wait_for(
                lambda p=proc, sql=MOMENTS[moment], seen=before: (
                    p.poll() is not None or query(root, sql) != seen
                ),
                timeout=60,
                interval=0.02,
                what=f"round {i}: the bot to reach '{moment}'",
            )
            assert proc.poll() is None, (root / "bot.out").read_text()[-2000:]
        finally:
            kill(proc)
        assert query(root, "SELECT COUNT(*) FROM halts")[0][0] == 0, (root / "bot.out").read_text()[-2000:]
        inv = assert_consistent(root)  # after EVERY kill, before any repair
        trades_seen.append(inv["trades"])
        # recorded trades only ever grow: nothing recorded is lost by a later crash
        assert trades_seen == sorted(trades_seen)
    res = run_bot(root, "--once")  # a clean start reconciles what the kills left
    assert res.returncode == 0, res.stderr
    assert_consistent(root)
    assert query(root, "SELECT COUNT(*) FROM orders WHERE status IN ('PENDING_SUBMIT','UNKNOWN')")[0][0] == 0
    stats = assert_limits_respected(root)
    # every 'trade' and 'sale' round recorded one more trade, every 'sale' round one more sale
    assert stats["buys"] + stats["sells"] >= moments.count("trade") + moments.count("sale"), stats
    assert stats["sells"] >= moments.count("sale"), stats
    # every order that was cut off before its fill was recorded is accounted "not executed"
    for status, error, n_trades in query(
        root,
        "SELECT o.status, o.error, COUNT(t.id) FROM orders o LEFT JOIN trades t ON t.order_id=o.id "
        "GROUP BY o.id",
    ):
        if error == PAPER_NOT_EXECUTED:
            assert status == "CANCELED" and n_trades == 0
        if status == "FILLED":
            assert n_trades >= 1
