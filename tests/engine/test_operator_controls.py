"""The operator's controls in the engine (issue 18): a stored pause blocks new entries while stop
losses still fire, survives a restart and is lifted by --resume; a close request is sold through
the exit path, and one the engine did not pick up in time never fires. Paper engine in process
against the simulator, real SQLite; the pause is set with the real command line."""

from __future__ import annotations

import time

import pytest

from polybot import control_state as cs
from polybot import db
from polybot.engine.bot import startup
from polybot.engine.drill import Drill
from tests.engine.controls_helpers import (
    DRILL,
    close_engine,
    fills,
    hair_trigger_stops,
    next_step,
    paper_engine,
    workspace,
)
from tests.engine.helpers import assert_consistent, connect, run_bot


def _state(root, key):
    conn = connect(root)
    try:
        return db.get_state(conn, key)
    finally:
        conn.close()


def test_pause_from_the_terminal_survives_a_restart_and_lets_stop_losses_fire(tmp_path, sim):
    # no stop-loss cooldown: the drill may buy the stopped token again once entries resume
    root = workspace(tmp_path, sim, risk_limits={"stop_loss_cooldown_hours": 0})
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)  # the first step: the drill buys one position
        bought = fills(eng, "BUY")
        assert len(bought) == 1
    finally:
        close_engine(eng)

    # paused while the bot is down (the command needs no running bot), then a new engine starts
    res = run_bot(root, "--pause", "--reason", "election night")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("New entries paused: the bot keeps managing its positions")
    assert len(res.stdout.strip().splitlines()) == 1
    assert _state(root, "paused") == "1" and _state(root, "paused_reason") == "election night"
    assert "(terminal)" in _state(root, "paused_by")

    eng = paper_engine(root)  # a restart: the pause is read from the database
    try:
        configured = hair_trigger_stops(eng)
        next_step(eng, sim)
        assert eng.require_risk().entries_paused is not None
        assert "election night" in eng.require_risk().entries_paused
        # the stop loss sold the position; the drill wanted a second entry and was refused
        assert fills(eng, "SELL") == [(bought[0][0], "stop_loss")]
        assert fills(eng, "BUY") == bought
        assert int(_state(root, "paused_skipped")) >= 1
        eng.risk = configured  # the configured stop again: only the pause refuses entries now
        next_step(eng, sim)
        assert fills(eng, "BUY") == bought  # still paused on the following step

        res = run_bot(root, "--resume")
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip().startswith("Entries resumed (entries paused since ")
        assert "election night" in res.stdout and "skipped" in res.stdout
        next_step(eng, sim)
        assert eng.require_risk().entries_paused is None
        assert len(fills(eng, "BUY")) == 2  # entries are back
    finally:
        close_engine(eng)
    assert_consistent(root)
    assert run_bot(root, "--resume").stdout.strip() == "Entries were not paused; nothing changed."


def test_pause_command_line_errors_are_one_sentence(tmp_path, sim):
    root = workspace(tmp_path, sim)
    res = run_bot(root, "--reason", "x")
    assert res.returncode == 2
    assert "--reason only goes with --pause" in res.stderr and "Traceback" not in res.stderr
    res = run_bot(root, "--pause", "--resume")
    assert res.returncode == 2 and "not allowed with argument" in res.stderr
    assert run_bot(root, "--pause").returncode == 0
    again = run_bot(root, "--pause", "--reason", "still")
    assert again.stdout.startswith("New entries were already paused; reason updated")
    assert _state(root, "paused_reason") == "still"


def test_a_pause_drops_paper_entries_queued_before_it(tmp_path, sim):
    root = workspace(tmp_path, sim, trading={"fill_latency_seconds": 1})  # fills at the next step
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        assert len(eng.pending) == 1 and fills(eng, "BUY") == []  # decided, not yet placed
        assert run_bot(root, "--pause").returncode == 0
        next_step(eng, sim)
        assert eng.pending == {} and fills(eng, "BUY") == []
        assert eng.conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    finally:
        close_engine(eng)


@pytest.mark.parametrize("latency", [0, 1])
def test_close_request_sells_through_the_exit_path_and_a_stale_one_never_fires(tmp_path, sim, latency):
    root = workspace(tmp_path, sim, trading={"fill_latency_seconds": latency})
    eng = paper_engine(root)
    try:
        eng.guarded(eng.iteration)
        next_step(eng, sim)
        if latency:  # the second entry fills at the third step
            next_step(eng, sim)
        bought = fills(eng, "BUY")
        assert len(bought) == 2
        now = int(time.time())
        # a request written 3 minutes ago (the bot was busy or down): expired, nothing sold
        stale = cs.add_close_request(eng.conn, target="all", label="all 2", by="test", now=now - 180)
        fresh = cs.add_close_request(eng.conn, target=[bought[1][0]], label="#2", by="@alice", now=now)
        eng.guarded(eng.iteration)  # same step: close requests are served every iteration
        old = cs.read_close_result(eng.conn, stale)
        assert old is not None and old.status == cs.EXPIRED and "nothing was sold" in old.text
        done = cs.read_close_result(eng.conn, fresh)
        assert done is not None and done.status == cs.DONE, done
        assert fills(eng, "SELL") == [(bought[1][0], "telegram_close")]
        sold = eng.conn.execute(
            "SELECT size_micro, notional_micro, reason FROM trades WHERE side='SELL' AND mode='paper'"
        ).fetchone()
        assert sold["reason"] == "telegram close #2 by @alice"
        assert f"sold {sold['size_micro'] / 1e6:,.2f} sh" in done.text
        assert f"{sold['notional_micro'] / sold['size_micro']:.3f} avg" in done.text
        assert cs.pending_close_requests(eng.conn) == []
        # the position is gone: a repeated request says so and sells nothing
        again = cs.add_close_request(eng.conn, target=[bought[1][0]], label="#2", by="@alice", now=now)
        eng.guarded(eng.iteration)
        res = cs.read_close_result(eng.conn, again)
        assert res is not None and res.status == cs.NOTHING and "no open position any more" in res.text
        assert len(fills(eng, "SELL")) == 1
    finally:
        close_engine(eng)
    assert_consistent(root)


def test_live_close_request_is_signed_and_sold_on_the_exchange(tmp_path, sim):
    from tests.engine.test_engine_live import _close, _engine

    root = workspace(tmp_path, sim)
    eng = _engine(root, sim, Drill(dict(DRILL)))
    try:
        assert startup(eng, halt=None, restart=False) == []
        eng.guarded(eng.iteration)
        token = eng.conn.execute("SELECT token_id FROM trades WHERE mode='live' AND side='BUY'").fetchone()[0]
        rid = cs.add_close_request(eng.conn, target="all", label="all 1", by="@alice", now=int(time.time()))
        eng.guarded(eng.iteration)  # the same step (the simulator's clock did not move)
        assert not eng.md.new_step
        res = cs.read_close_result(eng.conn, rid)
        assert res is not None and res.status == cs.DONE, res
        sell = eng.conn.execute(
            "SELECT o.signed_payload, o.status, o.strategy FROM orders o WHERE o.side='SELL' AND o.mode='live'"
        ).fetchone()
        assert sell["signed_payload"] and sell["status"] == "FILLED" and sell["strategy"] == "telegram_close"
        # sold on the exchange: at most a rest below the 0.01-share order step remains
        assert {p.token_id: p.size for p in eng.exchange.positions()}.get(token, 0) < 10_000
        assert res.text.startswith("✅ Close #1 (all 1), live mode:")
    finally:
        _close(eng)


def test_a_close_cut_short_by_an_exchange_error_says_so(tmp_path, sim):
    from tests.engine.test_engine_live import _close, _engine

    root = workspace(tmp_path, sim)
    eng = _engine(root, sim, Drill(dict(DRILL)))
    try:
        assert startup(eng, halt=None, restart=False) == []
        eng.guarded(eng.iteration)
        rid = cs.add_close_request(eng.conn, target="all", label="all 1", by="@alice", now=int(time.time()))
        sim.sim.set_faults(error_rate=1.0, path="/clob/balance-allowance")  # the account cannot be read
        try:
            eng.guarded(eng.iteration)  # counted as an API error by the loop, not raised
        finally:
            sim.sim.clear_faults()
        res = cs.read_close_result(eng.conn, rid)
        assert res is not None and res.status == cs.FAILED, res
        assert res.text.startswith("⚠️ Close #1 (all 1) stopped on an error (") and "/positions" in res.text
        assert eng.conn.execute("SELECT COUNT(*) FROM orders WHERE side='SELL'").fetchone()[0] == 0
        assert eng.api_errors.count == 1
    finally:
        _close(eng)
