"""Issue 13, engine side: the live engine (LiveExchange over real HTTP) against the
simulator's independent exchange rules (polybot/sim/RULES.md), with a real SQLite file.

Each test fails on commit 15cb2c7's behaviour:
- the first live start adopted the account's whole trade history as the bot's fills;
- a partly filled GTC was marked FILLED and its resting remainder never refreshed;
- trade status was ignored: a FAILED trade stayed in the ledger;
- a "matched" answer whose trades were not readable was marked CANCELED;
- the emergency close-out sold the ledger's sizes without asking the exchange;
- the bot's positions were compared with the exchange's only at start-up.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request

import pytest

from polybot import db
from polybot.domain import BUY, SELL
from polybot.engine import external, ledger
from polybot.engine.bot import startup
from polybot.engine.breakers import POSITION_ANOMALY, BreakerTripped
from polybot.engine.closeout import close_all_positions
from polybot.engine.drill import Drill
from polybot.engine.loop import Engine
from polybot.exchange.base import OrderRequest
from polybot.exchange.client import PolymarketClient
from polybot.exchange.live import LiveExchange
from tests.engine.helpers import M, load, make_workspace

PRIVATE_KEY = "0x" + "33" * 32  # test-only key


# ----------------------------------------------------------------------------- helpers
def admin(handle, path: str, body: dict | None = None) -> dict:
    """The simulator's admin endpoints (RULES.md): POST with a body, else GET."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        handle.url + "/_sim" + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read().decode())


def live_exchange(handle, eng=None, *, reader=None, signature_type: int = 0, funder=None) -> LiveExchange:
    return LiveExchange(
        clob_url=handle.clob_url,
        private_key=PRIVATE_KEY,
        chain_id=137,
        signature_type=signature_type,
        funder=funder,
        reader=reader if reader is not None else eng.client,
        fees_by_token=eng.md.fee_for if eng is not None else None,
        clock=eng.clock if eng is not None else None or __import__("time").time,
        timeout_seconds=2,
        max_retries=1,
        sleep=lambda s: None,
    )


def make_engine(root, handle, **kw) -> Engine:
    cfg = load(root)
    conn = db.open_database(cfg)
    client = PolymarketClient.from_config(cfg)
    eng = Engine(
        cfg,
        conn,
        mode="live",
        client=client,
        strategy=Drill({"max_holdings": 0, "hold_seconds": 10**8}),
        sleep=lambda s: None,
    )
    eng.exchange = live_exchange(handle, eng, **kw)
    return eng


@contextlib.contextmanager
def running_engine(root, handle, **kw):
    """A live engine against the simulator, started (reconciled) and closed afterwards."""
    eng = make_engine(root, handle, **kw)
    try:
        startup(eng, halt=None, restart=False)
        yield eng
    finally:
        close(eng)


def close(eng: Engine) -> None:
    eng.exchange.close()
    eng.client.close()
    eng.alerter.close(5)
    eng.conn.close()


def workspace(tmp_path, handle, **trading):
    return make_workspace(
        tmp_path,
        handle,
        trading={"order_type": "GTC", "stale_order_seconds": 60, "use_exchange_heartbeat": False, **trading},
    )


def pick_token(handle, root) -> tuple[str, str]:
    """A tracked token of a plain binary market (token, market id)."""
    from tests.engine.helpers import connect

    conn = connect(root)
    try:
        rows = conn.execute(
            "SELECT t.token_id, t.market_id FROM market_tokens t JOIN markets m ON m.id=t.market_id "
            "WHERE m.tracked=1 AND m.closed=0 AND m.neg_risk=0 AND m.version='v1' "
            "ORDER BY t.token_id"
        ).fetchall()
    finally:
        conn.close()
    assert rows, "no plain binary market in the universe"
    return rows[0][0], rows[0][1]


def set_book(handle, token: str, bids, asks) -> None:
    admin(handle, "/book", {"token_id": token, "bids": bids, "asks": asks})


def buy(token: str, size: float, price: float, otype: str = "GTC") -> OrderRequest:
    return OrderRequest(
        token,
        BUY,
        otype,
        price_micro=int(round(price * M)),
        size_micro=int(round(size * M)),
        tick_size="0.01",
        neg_risk=False,
    )


def sell(token: str, size: float, price: float, otype: str = "GTC") -> OrderRequest:
    return OrderRequest(
        token,
        SELL,
        otype,
        price_micro=int(round(price * M)),
        size_micro=int(round(size * M)),
        tick_size="0.01",
        neg_risk=False,
    )


def by_hand(ex: LiveExchange, req: OrderRequest):
    """What an operator does on polymarket.com with the same account: sign and post."""
    res = ex.submit(ex.prepare(req))
    assert res.status in ("matched", "live"), res
    return res


def exchange_size(eng: Engine, token: str) -> int:
    return {p.token_id: int(p.size) for p in eng.exchange.positions()}.get(token, 0)


def ledger_size(eng: Engine, token: str) -> int:
    p = ledger.get_position(eng.conn, "live", token)
    return p.size_micro if p is not None and p.status == "open" else 0


# ----------------------------------------------------------------------------- 1. baseline
def test_first_live_start_records_external_holdings_and_never_sells_them(tmp_path, sim):
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
    eng = make_engine(root, sim)
    hand = live_exchange(sim, eng)
    try:
        by_hand(hand, buy(token, 10, 0.50))  # bought before the bot ever ran live
        assert exchange_size(eng, token) == 10 * M
        report = startup(eng, halt=None, restart=False)
        assert any("baseline recorded" in line for line in report), report
        # the history is external: nothing in the ledger, the holding is recorded apart
        assert eng.conn.execute("SELECT COUNT(*) FROM trades WHERE mode='live'").fetchone()[0] == 0
        assert ledger.open_positions(eng.conn, "live") == []
        assert external.sizes(eng.conn) == {token: 10 * M}
        assert eng.conn.execute("SELECT COUNT(*) FROM external_trades WHERE in_baseline=1").fetchone()[0] >= 1

        # the bot's own order on the same token is the bot's
        out = eng.executor.place(buy(token, 5, 0.50), market_id=market, strategy="test", reason="bot entry")
        assert out.status == "FILLED" and out.filled_micro == 5 * M
        # a trade by hand after the baseline is external too (trade sync), never the ledger's
        balance = eng.exchange.balance_micro()
        by_hand(hand, buy(token, 6, 0.50))
        eng.guarded(eng.iteration)  # the invariant holds: 21 = 5 + 16
        assert ledger_size(eng, token) == 5 * M
        assert external.sizes(eng.conn) == {token: 16 * M}
        assert exchange_size(eng, token) == 21 * M
        # the purchase by hand is not the bot's loss: its cash is as before it
        assert eng.exchange.balance_micro() < balance and eng.cash_micro() == balance

        # the emergency close-out sells the bot's 5 only
        report = close_all_positions(eng)
        assert any("not the bot's (external); left alone" in line for line in report), report
        assert ledger_size(eng, token) == 0
        assert exchange_size(eng, token) == 16 * M
        # --close-external: the operator asks for the rest
        eng.close_external = True
        report = close_all_positions(eng)
        assert exchange_size(eng, token) == 0, report
        assert external.sizes(eng.conn) == {token: 0}
        assert ledger.get_position(eng.conn, "live", token).size_micro == 0  # never negative
    finally:
        hand.close()
        close(eng)


# ----------------------------------------------------------------------------- 2. partial GTC
def test_partly_filled_gtc_stays_partially_filled_is_refreshed_and_its_remainder_cancelled(tmp_path, sim):
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    with running_engine(root, sim) as eng:
        set_book(sim, token, [["0.48", "500"]], [["0.50", "4"]])  # only 4 shares offered at 0.50
        out = eng.executor.place(buy(token, 10, 0.50), market_id=market, strategy="test", reason="partial")
        row = eng.executor.row(out.order_id)
        assert out.status == "PARTIALLY_FILLED", out  # 15cb2c7: FILLED
        assert row["filled_micro"] == 4 * M
        st = eng.exchange.lookup(row["exchange_order_id"])
        assert st.size_matched_micro == 4 * M and st.original_size_micro == 10 * M
        assert row["exchange_order_id"].lower() in [o.order_id.lower() for o in eng.exchange.open_orders()]

        eng.guarded(eng.iteration)  # refreshed: still partly filled
        assert eng.executor.row(out.order_id)["status"] == "PARTIALLY_FILLED"
        set_book(sim, token, [["0.48", "500"]], [["0.50", "3"]])  # 3 more cross the resting rest
        sim.sim.advance(1)
        eng.guarded(eng.iteration)
        row = eng.executor.row(out.order_id)
        assert row["status"] == "PARTIALLY_FILLED" and row["filled_micro"] == 7 * M

        set_book(sim, token, [["0.48", "500"]], [["0.55", "500"]])  # nothing crosses it any more
        sim.sim.advance(61)  # stale: the remainder is cancelled
        eng.guarded(eng.iteration)
        row = eng.executor.row(out.order_id)
        st = eng.exchange.lookup(row["exchange_order_id"])
        assert row["status"] == "CANCELED"
        fills = eng.conn.execute(
            "SELECT COALESCE(SUM(size_micro),0) FROM trades WHERE order_id=?", (out.order_id,)
        ).fetchone()[0]
        assert row["filled_micro"] == fills == st.size_matched_micro == 7 * M
        assert row["exchange_order_id"].lower() not in [
            o.order_id.lower() for o in eng.exchange.open_orders()
        ]
        assert ledger_size(eng, token) == exchange_size(eng, token) == 7 * M


def test_whole_gtc_fill_is_filled(tmp_path, sim):
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    with running_engine(root, sim) as eng:
        set_book(sim, token, [["0.48", "500"]], [["0.50", "100"]])
        out = eng.executor.place(buy(token, 10, 0.50), market_id=market, strategy="test", reason="whole")
        assert out.status == "FILLED" and out.filled_micro == 10 * M
        assert market not in eng.executor.unresolved_markets()


# ----------------------------------------------------------------------------- 3. trade status
def test_failed_trade_is_reversed_in_the_ledger_once_and_alerted(tmp_path, sim):
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    with running_engine(root, sim) as eng:
        set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
        admin(sim, "/lifecycle", {"mined_after": 2, "confirmed_after": 5})
        cash0 = eng.exchange.balance_micro()
        ok = eng.executor.place(buy(token, 5, 0.50), market_id=market, strategy="test", reason="confirms")
        admin(sim, "/trades/fail", {"address": eng.exchange.address, "next": 1})
        bad = eng.executor.place(buy(token, 10, 0.50), market_id=market, strategy="test", reason="fails")
        assert ok.status == bad.status == "FILLED"
        statuses = {r[0] for r in eng.conn.execute("SELECT trade_status FROM trades WHERE mode='live'")}
        assert statuses <= {"MATCHED", "MINED", "RETRYING"}, statuses  # provisional until confirmed
        assert ledger_size(eng, token) == 15 * M

        sim.sim.advance(3)  # MINED / RETRYING
        eng.guarded(eng.iteration)
        assert ledger_size(eng, token) == 15 * M
        sim.sim.advance(3)  # CONFIRMED / FAILED
        eng.guarded(eng.iteration)
        rows = eng.conn.execute("SELECT order_id, trade_status FROM trades WHERE kind='fill'").fetchall()
        assert {r["trade_status"] for r in rows if r["order_id"] == ok.order_id} == {"CONFIRMED"}
        assert {r["trade_status"] for r in rows if r["order_id"] == bad.order_id} == {"FAILED"}
        assert ledger_size(eng, token) == exchange_size(eng, token) == 5 * M
        flows = ledger.cash_flow_micro(eng.conn, "live")
        assert cash0 + flows == eng.exchange.balance_micro()  # cash as if it never happened
        assert eng.executor.row(bad.order_id)["filled_micro"] == 0
        assert eng.conn.execute("SELECT COUNT(*) FROM trades WHERE kind='reversal'").fetchone()[0] >= 1
        assert ledger.position_differences(eng.conn, "live") == []
        eng.alerter.flush(10)
        assert eng.conn.execute("SELECT COUNT(*) FROM alerts WHERE key='trade_failed'").fetchone()[0] >= 1
    # a restart sees the FAILED trade again and changes nothing
    eng = make_engine(root, sim)
    try:
        n = eng.conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0]
        assert startup(eng, halt=None, restart=False) == []
        eng.guarded(eng.iteration)
        assert eng.conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0] == n
        assert ledger_size(eng, token) == 5 * M
    finally:
        close(eng)


# ----------------------------------------------------------------------------- 4. finding 9
def test_matched_order_whose_trades_are_not_readable_stays_open_until_its_fills_are_read(tmp_path, sim):
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    with running_engine(root, sim) as eng:
        set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
        sim.sim.set_faults(error_rate=1.0, path="/clob/data/trades")
        try:
            out = eng.executor.place(
                buy(token, 10, 0.50, "FAK"), market_id=market, strategy="test", reason="unreadable"
            )
            assert out.status in ("LIVE", "PARTIALLY_FILLED"), out  # 15cb2c7: CANCELED
            assert market in eng.executor.unresolved_markets()  # no second order meanwhile
            eng.executor.sync_open()
            assert eng.executor.row(out.order_id)["status"] in ("LIVE", "PARTIALLY_FILLED")
        finally:
            sim.sim.clear_faults()
        eng.guarded(eng.iteration)
        row = eng.executor.row(out.order_id)
        assert row["status"] == "FILLED" and row["filled_micro"] == 10 * M
        assert ledger_size(eng, token) == exchange_size(eng, token) == 10 * M


def test_close_out_sells_what_the_exchange_reports_never_more_than_the_bot_holds(tmp_path, sim):
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    eng = make_engine(root, sim)
    hand = live_exchange(sim, eng)
    try:
        startup(eng, halt=None, restart=False)
        set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
        out = eng.executor.place(buy(token, 10, 0.50), market_id=market, strategy="test", reason="entry")
        assert out.status == "FILLED"
        by_hand(hand, sell(token, 5, 0.48))  # sold by hand; the bot has not seen it yet
        report = close_all_positions(eng)
        assert exchange_size(eng, token) == 0, report  # 15cb2c7: SELL 10 refused, nothing sold
        assert any("the exchange shows 5" in line for line in report), report
    finally:
        hand.close()
        close(eng)


# ----------------------------------------------------------------------------- 5. invariant
def test_position_mismatch_that_persists_trips_breaker_3_naming_both_figures(tmp_path, sim):
    root = workspace(tmp_path, sim, reconcile_mismatch_loops=3)
    token, market = pick_token(sim, root)
    with running_engine(root, sim) as eng:
        set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
        out = eng.executor.place(buy(token, 10, 0.50), market_id=market, strategy="test", reason="entry")
        assert out.status == "FILLED"
        sim.sim.advance(6)  # the bot's own fill is CONFIRMED
        eng.guarded(eng.iteration)
        assert {r[0] for r in eng.conn.execute("SELECT trade_status FROM trades")} == {"CONFIRMED"}
        # a provisional fill the Data API does not show yet is allowed for
        with db.atomic(eng.conn):
            ledger.record_trade(
                eng.conn,
                mode="live",
                trade_id="pending-1",
                token_id=token,
                market_id=market,
                side="BUY",
                price_micro=500_000,
                size_micro=2 * M,
                fee_micro=0,
                ts=eng.now_ts,
                trade_status="MATCHED",
            )
        for _ in range(4):
            eng.guarded(eng.iteration)
        # a confirmed ledger position the exchange does not have is not
        with db.atomic(eng.conn):
            eng.conn.execute("UPDATE trades SET trade_status='CONFIRMED' WHERE trade_id='pending-1'")
        eng.guarded(eng.iteration)
        eng.guarded(eng.iteration)
        with pytest.raises(BreakerTripped) as exc:
            eng.guarded(eng.iteration)
        assert exc.value.breaker == POSITION_ANOMALY
        assert "3 consecutive loops" in exc.value.reason
        assert "ledger holds 12 shares" in exc.value.reason and "exchange shows 10" in exc.value.reason


def test_health_dashboard_and_daily_report_show_external_holdings_apart(tmp_path, sim):
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
    eng = make_engine(root, sim)
    hand = live_exchange(sim, eng)
    try:
        by_hand(hand, buy(token, 7, 0.50))
        startup(eng, halt=None, restart=False)
        out = eng.executor.place(buy(token, 5, 0.50), market_id=market, strategy="test", reason="bot entry")
        assert out.status == "FILLED"
        eng.record_performance()
    finally:
        hand.close()
        close(eng)
    import dataclasses
    import time as _time

    from polybot.dashboard.queries import build_state
    from polybot.ops.health import run_health_checks
    from polybot.ops.reports import build_daily, render_daily

    cfg = dataclasses.replace(load(root), paper_trading=False)
    lines = run_health_checks(cfg, check_api_connectivity=False)
    ext = [h for h in lines if h.name == "external"]
    assert ext and "1 token(s), 7 shares" in ext[0].text, [str(h) for h in lines]
    conn = db.connect(cfg.database_path)
    try:
        state = build_state(cfg, conn, now=_time.time())
        assert [i["size_micro"] for i in state["positions"]["items"]] == [5 * M]  # the bot's only
        assert [i["size_micro"] for i in state["positions"]["external"]["items"]] == [7 * M]
        text = render_daily(build_daily(cfg, conn), cfg)
    finally:
        conn.close()
    assert "Open positions: 1" in text and "External holdings" in text and "7 shares" in text, text


def test_close_external_is_documented_in_the_help(tmp_path):
    from tests.conftest import run_cli

    res = run_cli("trading_bot.py", "--help", cwd=tmp_path)
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert (
        "--close-external" in text and "external holdings" in text and "only the bot's own positions" in text
    )


def test_close_out_rides_a_tick_change_at_a_collapsed_price(tmp_path, sim):
    """Below 0.04 the tick becomes 0.001: the close-out sells at the book's tick now, so a
    bid of 0.005 is taken (15cb2c7 used the stored 0.01 tick: its worst price 0.01 took nothing)."""
    root = workspace(tmp_path, sim)
    token, market = pick_token(sim, root)
    with running_engine(root, sim) as eng:
        set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
        out = eng.executor.place(buy(token, 10, 0.50), market_id=market, strategy="test", reason="entry")
        assert out.status == "FILLED"
        admin(sim, "/ticks", {"token_id": token, "tick": "0.001"})
        set_book(sim, token, [["0.005", "500"]], [["0.02", "500"]])
        report = close_all_positions(eng)
        assert exchange_size(eng, token) == 0, report
        assert ledger_size(eng, token) == 0
        sold = eng.conn.execute("SELECT price_micro FROM trades WHERE side='SELL'").fetchall()
        assert [r[0] for r in sold] == [5_000]


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_trading_bot_close_external_sells_external_holdings_on_emergency_stop(tmp_path, sim):
    """The CLI wiring: a live bot started with --close-external; EMERGENCY_STOP closes the
    bot's positions AND the holding bought by hand before its first live order."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.engine.helpers import bot_env, query, wait_for

    root = make_workspace(
        tmp_path,
        sim,
        paper_trading=False,
        trading={"order_type": "GTC", "use_exchange_heartbeat": False, "loop_interval_seconds": 0.3},
        strategy={"name": "drill", "params": {"max_holdings": 0, "hold_seconds": 10**8}},
        polymarket={
            "private_key": "${POLYMARKET_PRIVATE_KEY}",
            "api_key": "${POLYMARKET_API_KEY}",
            "api_secret": "${POLYMARKET_API_SECRET}",
            "api_passphrase": "${POLYMARKET_API_PASSPHRASE}",
        },
    )
    token, market = pick_token(sim, root)
    set_book(sim, token, [["0.48", "500"]], [["0.50", "500"]])
    eng = make_engine(root, sim)
    hand = live_exchange(sim, eng)
    try:
        by_hand(hand, buy(token, 6, 0.50))  # external: before the first live start
        creds = hand._sdk.creds
    finally:
        hand.close()
        close(eng)
    env = dict(
        bot_env(),
        POLYMARKET_PRIVATE_KEY=PRIVATE_KEY,
        POLYMARKET_API_KEY=creds.api_key,
        POLYMARKET_API_SECRET=creds.api_secret,
        POLYMARKET_API_PASSPHRASE=creds.api_passphrase,
    )
    # not a with-block: the bot process writes to it after this call returns
    log = open(root / "bot.out", "w", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "trading_bot.py"), "--close-external"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: query(root, "SELECT value FROM bot_state WHERE key='live_baseline_at'"),
            timeout=60,
            what="the live baseline",
        )
        wait_for(
            lambda: query(root, "SELECT COUNT(*) FROM performance WHERE mode='live'")[0][0] > 0,
            timeout=60,
            what="a live loop",
        )
        (root / "EMERGENCY_STOP").write_text("test\n", encoding="utf-8")
        assert proc.wait(timeout=60) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
    out = (root / "bot.out").read_text(encoding="utf-8")
    assert "--close-external" in out, out
    eng = make_engine(root, sim)
    try:
        assert exchange_size(eng, token) == 0, out
        assert external.sizes(eng.conn) == {token: 0}
        details = eng.conn.execute("SELECT details FROM halts ORDER BY id DESC LIMIT 1").fetchone()[0]
        assert "external holding" in details, details
    finally:
        close(eng)
    assert os.path.exists(root / "EMERGENCY_STOP")


def test_reconcile_mismatch_loops_must_be_at_least_one(tmp_path):
    from polybot.config import load_config
    from polybot.errors import ConfigError
    from tests.conftest import write_config

    write_config(tmp_path, {"trading": {"reconcile_mismatch_loops": 0}})
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    assert "trading.reconcile_mismatch_loops" in str(exc.value) and "≥ 1" in str(exc.value)
