"""The live path: the engine with LiveExchange (official SDK) against the simulator over
real HTTP — places, tracks and cancels orders, reconciles a post that timed out, and a
restarted engine finds nothing to repair."""

from __future__ import annotations

import time

import pytest

from polybot import db
from polybot.domain import BUY
from polybot.engine.bot import startup
from polybot.engine.drill import Drill
from polybot.engine.loop import Engine
from polybot.exchange.base import OrderRequest
from polybot.exchange.client import PolymarketClient
from polybot.exchange.live import LiveExchange
from tests.engine.helpers import M, load, make_workspace

PRIVATE_KEY = "0x" + "22" * 32  # test-only key


def _engine(root, sim, strategy):
    cfg = load(root)
    conn = db.open_database(cfg)
    client = PolymarketClient.from_config(cfg)
    eng = Engine(cfg, conn, mode="live", client=client, strategy=strategy, sleep=lambda s: None)
    eng.exchange = LiveExchange(
        clob_url=sim.clob_url,
        private_key=PRIVATE_KEY,
        chain_id=137,
        signature_type=0,
        reader=client,
        fees_by_token=eng.md.fee_for,
        clock=eng.clock,
        timeout_seconds=1,
        max_retries=1,
        sleep=lambda s: None,
    )
    return eng


def _close(eng):
    eng.exchange.close()
    eng.client.close()
    eng.alerter.close(5)
    eng.conn.close()


def _resting_request(eng) -> tuple[OrderRequest, str]:
    """A BUY far below the bid of a liquid token: it rests on the book."""
    for token, book in sorted(eng.md.books.items()):
        if book.bids and book.asks and 0.2 < book.bids[0].price < 0.8:
            market = eng.md.market_of(token)
            tick = int(round(book.tick_size * M))
            price = max(tick, int(round(book.bids[0].price * M)) // 2 // tick * tick)
            return OrderRequest(
                token, BUY, "GTC", price_micro=price, size_micro=10 * M, tick_size=format(book.tick_size, "g")
            ), market
    raise AssertionError("no two-sided book")


def test_live_engine_places_tracks_cancels_and_reconciles_timeout(tmp_path, sim):
    root = make_workspace(
        tmp_path,
        sim,
        trading={"order_type": "GTC", "stale_order_seconds": 60, "use_exchange_heartbeat": False},
    )
    drill = Drill({"size_usd": 20, "max_holdings": 1, "hold_seconds": 300})
    eng = _engine(root, sim, drill)
    try:
        assert startup(eng, halt=None, restart=False) == []
        # 1. the strategy's marketable entry: signed once, recorded, posted, filled
        eng.guarded(eng.iteration)
        orders = eng.conn.execute("SELECT * FROM orders WHERE mode='live'").fetchall()
        assert len(orders) == 1 and orders[0]["status"] == "FILLED"
        assert orders[0]["signed_payload"] and orders[0]["exchange_order_id"].startswith("0x")
        fills = eng.conn.execute(
            "SELECT * FROM trades WHERE mode='live' AND order_id=?", (orders[0]["id"],)
        ).fetchall()
        assert fills and sum(f["size_micro"] for f in fills) == orders[0]["filled_micro"]
        token = orders[0]["token_id"]
        assert {p.token_id: p.size for p in eng.exchange.positions()}[token] == orders[0]["filled_micro"]

        # 2. a resting order is tracked, then cancelled once stale
        req, market = _resting_request(eng)
        out = eng.executor.place(req, market_id=market, strategy="test", reason="resting")
        assert out.status == "LIVE"
        exchange_id = eng.executor.row(out.order_id)["exchange_order_id"]
        assert exchange_id.lower() in [o.order_id.lower() for o in eng.exchange.open_orders()]
        eng.guarded(eng.iteration)
        assert eng.executor.row(out.order_id)["status"] == "LIVE"
        sim.sim.advance(61)
        eng.guarded(eng.iteration)
        assert eng.executor.row(out.order_id)["status"] == "CANCELED"
        assert exchange_id.lower() not in [o.order_id.lower() for o in eng.exchange.open_orders()]

        # 3. the post times out: UNKNOWN, never re-signed; resolved by looking it up
        req, market = _resting_request(eng)
        sim.sim.set_faults(timeout="3:1", path="/clob/order")
        try:
            out = eng.executor.place(req, market_id=market, strategy="test", reason="timeout")
        finally:
            sim.sim.clear_faults()
        assert out.status == "UNKNOWN"
        row = eng.executor.row(out.order_id)
        assert market in eng.executor.unresolved_markets()  # no new order there meanwhile
        deadline = time.monotonic() + 20
        while eng.executor.row(out.order_id)["status"] == "UNKNOWN" and time.monotonic() < deadline:
            time.sleep(0.3)
            eng.guarded(eng.iteration)
        after = eng.executor.row(out.order_id)
        assert after["status"] == "LIVE" and after["signed_payload"] == row["signed_payload"]
        mine = [o for o in eng.exchange.open_orders() if o.token_id == req.token_id]
        assert [o.order_id.lower() for o in mine] == [after["exchange_order_id"].lower()]
        assert eng.conn.execute("SELECT COUNT(*) FROM orders WHERE reason='timeout'").fetchone()[0] == 1
    finally:
        _close(eng)

    # 4. a restart reconciles against the exchange: nothing to repair
    eng = _engine(root, sim, drill)
    try:
        report = startup(eng, halt=None, restart=True)
        assert report == [], report
        # cancel everything (what every STOP does)
        eng.executor.cancel_all("test")
        assert eng.exchange.open_orders() == []
        assert eng.executor.row(out.order_id)["status"] == "CANCELED"
    finally:
        _close(eng)


def test_live_mode_requires_credentials_and_bounds(tmp_path, sim):
    from tests.engine.helpers import run_bot

    root = make_workspace(tmp_path, sim, paper_trading=False)
    res = run_bot(root, "--once")
    assert res.returncode == 2 and "Live trading needs polymarket.private_key" in res.stderr
    root2 = tmp_path / "loose"
    root2.mkdir()
    make_workspace(
        root2,
        sim,
        paper_trading=False,
        risk_limits={"max_position_size": 200},
        polymarket={
            "private_key": "${PK}",
            "api_key": "${AK}",
            "api_secret": "${AS}",
            "api_passphrase": "${AP}",
        },
    )
    res = run_bot(root2, "--once", env={"PK": PRIVATE_KEY, "AK": "k", "AS": "c2VjcmV0c2VjcmV0", "AP": "p"})
    assert res.returncode == 2 and "max_position_size" in res.stderr and "20% of capital" in res.stderr


@pytest.mark.parametrize("flag", ["--paper-trading"])
def test_paper_flag_never_builds_a_live_exchange(tmp_path, sim, flag):
    from tests.engine.helpers import query, run_bot

    root = make_workspace(tmp_path, sim, paper_trading=False)
    res = run_bot(root, flag, "--once")
    assert res.returncode == 0, res.stderr
    assert query(root, "SELECT value FROM bot_state WHERE key='mode'")[0][0] == "paper"
    assert query(root, "SELECT COUNT(*) FROM orders WHERE mode='live'")[0][0] == 0


def test_exchange_heartbeat_is_a_dead_man_switch(tmp_path):
    from polybot.sim.server import start_simulator

    h = start_simulator(port=0, seed=42, n_markets=12, speed=0, heartbeat_timeout=1.5)
    try:
        root = make_workspace(tmp_path, h, trading={"order_type": "GTC", "use_exchange_heartbeat": True})
        eng = _engine(root, h, Drill({"max_holdings": 0}))
        try:
            startup(eng, halt=None, restart=False)
            eng.heartbeat_seconds = 0.3
            eng.start_exchange_heartbeat()
            eng.refresh()
            req, market = _resting_request(eng)
            out = eng.executor.place(req, market_id=market, reason="dead man")
            assert out.status == "LIVE"
            time.sleep(3)  # twice the exchange's timeout passes while heartbeats flow: the order stays
            eng.guarded(eng.iteration)
            assert eng.executor.row(out.order_id)["status"] == "LIVE"
            eng.stop_exchange_heartbeat()  # the bot "dies": no more heartbeats
            deadline = time.monotonic() + 30  # the exchange cancels 1.5 s after the last one
            while eng.executor.row(out.order_id)["status"] == "LIVE" and time.monotonic() < deadline:
                time.sleep(0.2)
                eng.guarded(eng.iteration)
            assert eng.executor.row(out.order_id)["status"] == "CANCELED"
            assert eng.exchange.open_orders() == []
        finally:
            _close(eng)
    finally:
        h.stop()
