"""A paper engine in process against the simulator (manual clock), for the operator-control tests
(pause, resume, close): the test moves the simulator's clock one decision step at a time."""

from __future__ import annotations

import dataclasses

from polybot import db
from polybot.engine.bot import startup
from polybot.engine.drill import Drill
from polybot.engine.loop import Engine
from polybot.exchange.client import PolymarketClient
from polybot.risk import RiskManager
from tests.engine.helpers import load, make_workspace

STEP = 300  # collection.interval_minutes (5) in seconds: one decision step
# one entry per step, room for two holdings, held long enough that only a stop or a close sells
DRILL = {"size_usd": 20, "max_holdings": 2, "hold_seconds": 100_000, "max_entry_cost": 0.07}


def workspace(tmp_path, sim, **overrides):
    trading = {"fill_latency_seconds": 0, "use_exchange_heartbeat": False}
    trading.update(overrides.pop("trading", {}))
    return make_workspace(tmp_path, sim, trading=trading, **overrides)


def paper_engine(root) -> Engine:
    cfg = load(root)
    conn = db.open_database(cfg)
    client = PolymarketClient.from_config(cfg)
    eng = Engine(cfg, conn, mode="paper", client=client, strategy=Drill(dict(DRILL)), sleep=lambda s: None)
    assert startup(eng, halt=None, restart=False) == []
    return eng


def close_engine(eng: Engine) -> None:
    eng.client.close()
    eng.alerter.close(5)
    eng.conn.close()


def next_step(eng: Engine, sim) -> None:
    """Move the simulator to the next decision step and run one iteration there."""
    sim.sim.advance(STEP)
    eng.guarded(eng.iteration)
    assert eng.md.new_step


def hair_trigger_stops(eng: Engine) -> RiskManager:
    """A 0.1 % stop loss: every position's own spread trips it at the next step (the entries were
    approved under the configured stop). Returns the configured risk manager, to put back: under
    this stop the entry-cost rule would refuse every entry."""
    configured = eng.require_risk()
    limits = dataclasses.replace(eng.cfg.risk_limits, stop_loss_percent=0.001)
    eng.risk = RiskManager(limits, configured.capital_micro, markets=eng.md.infos().values())
    eng.risk.entries_paused = configured.entries_paused
    return configured


def fills(eng: Engine, side: str) -> list[tuple[str, str]]:
    """(token, strategy) of the engine's fills on ``side``, in order."""
    return [
        (r[0], r[1])
        for r in eng.conn.execute(
            "SELECT token_id, strategy FROM trades WHERE mode='paper' AND kind='fill' AND side=? ORDER BY id",
            (side,),
        )
    ]
