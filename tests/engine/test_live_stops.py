"""Live, between two decision steps (issue 14 #4): the strategy decides once per recorded
grid step — the same steps a replay sees — but real money does not wait for the next step
to stop a loss: breakers and stop losses also run on the freshest books in between.
(Paper, which must equal its replay, acts on recorded steps only: tests/engine/test_parity.py.)"""

from __future__ import annotations

import dataclasses

from polybot.engine.bot import startup
from polybot.engine.drill import Drill
from polybot.risk import RiskManager
from tests.engine.helpers import make_workspace
from tests.engine.test_engine_live import _close, _engine


def test_live_stop_loss_fires_between_decision_steps(tmp_path, sim):
    root = make_workspace(tmp_path, sim, trading={"use_exchange_heartbeat": False})
    # max_entry_cost: only books the risk manager's entry_cost rule accepts (0.5 × the 15 % stop)
    eng = _engine(
        root, sim, Drill({"size_usd": 20, "max_holdings": 1, "hold_seconds": 100_000, "max_entry_cost": 0.07})
    )
    try:
        assert startup(eng, halt=None, restart=False) == []
        eng.guarded(eng.iteration)  # a new step: the drill buys
        assert eng.md.new_step
        bought = eng.conn.execute("SELECT token_id FROM trades WHERE mode='live' AND side='BUY'").fetchall()
        assert len(bought) >= 1
        # the position is now 'down' by more than the stop (a 0.1 % stop: its own spread trips it)
        limits = dataclasses.replace(eng.cfg.risk_limits, stop_loss_percent=0.001)
        eng.risk = RiskManager(limits, eng.risk.capital_micro, markets=eng.md.infos().values())
        eng.guarded(eng.iteration)  # the simulator's clock did not move: same step
        assert not eng.md.new_step
        sells = eng.conn.execute(
            "SELECT token_id, strategy FROM trades WHERE mode='live' AND side='SELL'"
        ).fetchall()
        assert [(r[0], r[1]) for r in sells] == [(bought[0][0], "stop_loss")]
    finally:
        _close(eng)
