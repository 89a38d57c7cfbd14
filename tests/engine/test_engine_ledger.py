"""Ledger, order state machine, halts and the paper idempotency rule on a real SQLite
file (the paper exchange filling against a fixed order book)."""

from __future__ import annotations

import pytest

from polybot import db
from polybot.config import default_config
from polybot.domain import OrderState
from polybot.engine import ledger, state
from polybot.engine.breakers import ApiErrorCounter, BreakerTripped, check_positions
from polybot.engine.orders import PAPER_NOT_EXECUTED, Executor
from polybot.errors import ExchangeUnavailable, PolybotError, RequestRejected
from polybot.exchange.base import OrderRequest
from polybot.exchange.models import BookLevel, FeeSchedule, OrderBook
from polybot.exchange.paper import PaperExchange

M = 1_000_000
TOKEN = "1234567890"
BOOK = OrderBook(
    token_id=TOKEN,
    market="0xabc",
    timestamp_ms=0,
    bids=(BookLevel(0.48, 100), BookLevel(0.47, 500)),
    asks=(BookLevel(0.52, 100), BookLevel(0.53, 500)),
    tick_size=0.01,
    min_order_size=5,
)


@pytest.fixture
def conn(tmp_path):
    cfg = default_config(tmp_path)
    db.initialize(cfg.database_path)
    c = db.open_database(cfg)
    c.execute(
        "INSERT INTO markets(id, condition_id, question, token_ids, outcomes, first_seen, updated_at, "
        "event_id, tracked) VALUES ('m1','0xabc','Q?','[\"1234567890\"]','[\"Yes\"]',0,0,'e1',1)"
    )
    c.execute(
        "INSERT INTO market_tokens(token_id, market_id, outcome, outcome_index) VALUES (?, 'm1', 'Yes', 0)",
        (TOKEN,),
    )
    yield c
    c.close()


def _trade(conn, tid, side, price, size, fee=0, ts=100, kind="fill"):
    with db.atomic(conn):
        return ledger.record_trade(
            conn,
            mode="paper",
            trade_id=tid,
            token_id=TOKEN,
            market_id="m1",
            side=side,
            price_micro=price,
            size_micro=size,
            fee_micro=fee,
            ts=ts,
            kind=kind,
        )


def test_average_cost_realised_pnl_and_idempotency(conn):
    assert _trade(conn, "t1", "BUY", 400_000, 10 * M, fee=10_000)
    assert not _trade(conn, "t1", "BUY", 400_000, 10 * M, fee=10_000)  # the same fill again: no-op
    assert _trade(conn, "t2", "BUY", 600_000, 10 * M)
    p = ledger.get_position(conn, "paper", TOKEN)
    assert (p.size_micro, p.cost_micro) == (20 * M, 10_010_000)
    assert _trade(conn, "t3", "SELL", 700_000, 5 * M, fee=20_000)
    p = ledger.get_position(conn, "paper", TOKEN)
    assert p.size_micro == 15 * M and p.cost_micro == 10_010_000 - 2_502_500
    realised = conn.execute("SELECT realized_pnl_micro FROM trades WHERE trade_id='t3'").fetchone()[0]
    assert realised == 3_500_000 - 20_000 - 2_502_500
    assert _trade(conn, "t4", "SELL", 100_000, 15 * M)
    p = ledger.get_position(conn, "paper", TOKEN)
    assert p.status == "closed" and p.size_micro == 0 and p.cost_micro == 0
    assert ledger.position_differences(conn, "paper") == []
    # cash = capital + Σ flows, to the micro-unit
    flows = -(4 * M + 10_000) - 6 * M + (3_500_000 - 20_000) + 1_500_000
    assert ledger.paper_cash_micro(conn, "paper", 500 * M) == 500 * M + flows
    assert ledger.realized_pnl_micro(conn, "paper") == flows


def test_settlement_pays_out_and_closes(conn):
    _trade(conn, "b", "BUY", 300_000, 10 * M)
    with db.atomic(conn):
        assert ledger.record_settlement(conn, "paper", TOKEN, "m1", 500_000, 10 * M, 200)  # 50-50
        assert not ledger.record_settlement(conn, "paper", TOKEN, "m1", 500_000, 10 * M, 201)
    p = ledger.get_position(conn, "paper", TOKEN)
    assert p.status == "closed"
    assert ledger.paper_cash_micro(conn, "paper", 0) == -3 * M + 5 * M
    s = ledger.settlements_of_mode(conn, "paper")
    assert s == [
        {"token_id": TOKEN, "payout_micro": 500_000, "size_micro": 10 * M, "amount_micro": 5 * M, "ts": 200}
    ]


def test_rebuild_repairs_a_positions_table_that_disagrees_with_trades(conn):
    _trade(conn, "b", "BUY", 300_000, 10 * M)
    conn.execute("UPDATE positions SET size_micro = 99 * 1000000")
    diffs = ledger.position_differences(conn, "paper")
    assert len(diffs) == 1 and "trades imply 10" in diffs[0]
    with db.atomic(conn):
        assert ledger.rebuild_positions(conn, "paper", 300) == diffs
    assert ledger.position_differences(conn, "paper") == []


def test_daily_baseline(conn):
    day = 86_400 * 20_000
    conn.execute(
        "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
        "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
        "VALUES (?, 'paper', ?, 0, 0, 0, 0, 0, 0)",
        (day - 10, 480 * M),
    )
    assert ledger.daily_baseline_micro(conn, "paper", day + 50, capital_micro=500 * M, paper=True) == 480 * M
    assert (
        ledger.daily_pnl_micro(conn, "paper", 470 * M, day + 50, capital_micro=500 * M, paper=True) == -10 * M
    )
    # no history before today: capital + flows before today (paper)
    assert ledger.daily_baseline_micro(conn, "paper", day - 20, capital_micro=500 * M, paper=True) == 500 * M


def _paper(conn, book=BOOK, **kw):
    return PaperExchange.from_records(
        lambda t: book,
        fees_by_token=lambda t: FeeSchedule(),
        clock=lambda: 1000,
        initial_cash_micro=500 * M,
        fills=ledger.fills_of_mode(conn, "paper"),
        settlements=ledger.settlements_of_mode(conn, "paper"),
        known_order_ids=[r[0] for r in conn.execute("SELECT client_order_id FROM orders")],
        **kw,
    )


def _executor(conn, ex, counter=None):
    return Executor(
        conn,
        ex,
        mode="paper",
        clock=lambda: 1000,
        api_errors=counter or ApiErrorCounter(3),
        stop_loss_percent=0.15,
    )


def test_order_written_before_sent_and_filled_after(conn):
    ex = _paper(conn)
    exe = _executor(conn, ex)
    out = exe.place(
        OrderRequest(TOKEN, "BUY", "FAK", price_micro=530_000, size_micro=150 * M),
        market_id="m1",
        strategy="s",
        reason="test",
    )
    assert out.status == OrderState.FILLED and out.filled_micro == 150 * M
    row = exe.row(out.order_id)
    assert row["signed_payload"] and row["client_order_id"] == "paper-1"
    fills = conn.execute(
        "SELECT price_micro, size_micro FROM trades WHERE order_id=? ORDER BY id", (out.order_id,)
    ).fetchall()
    assert [tuple(f) for f in fills] == [(520_000, 100 * M), (530_000, 50 * M)]  # walked the book
    p = ledger.get_position(conn, "paper", TOKEN)
    assert p.size_micro == 150 * M and p.group_key == "e1" and p.stop_price_micro is not None
    # definitive refusal: more than the cash (a deep book this time)
    deep = OrderBook(
        token_id=TOKEN,
        market="0xabc",
        timestamp_ms=0,
        bids=BOOK.bids,
        asks=(BookLevel(0.52, 5000),),
        tick_size=0.01,
        min_order_size=5,
    )
    ex = _paper(conn, deep)  # a restart: rebuilt from the records
    exe = _executor(conn, ex)
    out = exe.place(
        OrderRequest(TOKEN, "BUY", "FAK", price_micro=530_000, size_micro=900 * M), market_id="m1"
    )
    assert out.status == OrderState.REJECTED and "not enough balance" in out.error
    assert conn.execute("SELECT COUNT(*) FROM trades WHERE order_id=?", (out.order_id,)).fetchone()[0] == 0
    assert ex.balance_micro() == ledger.paper_cash_micro(conn, "paper", 500 * M)


def test_paper_fill_not_recorded_before_a_crash_is_not_executed(conn):
    ex = _paper(conn)
    req = OrderRequest(TOKEN, "BUY", "FAK", price_micro=530_000, size_micro=10 * M)
    prepared = ex.prepare(req)
    with db.atomic(conn):  # step 1 of place(): recorded PENDING_SUBMIT and committed
        conn.execute(
            "INSERT INTO orders(client_order_id, exchange_order_id, mode, token_id, market_id, side, "
            "order_type, price_micro, size_micro, status, signed_payload, created_at, updated_at) "
            "VALUES (?,?,'paper',?,'m1','BUY','FAK',530000,?,?,?,0,0)",
            (
                prepared.client_order_id,
                prepared.order_hash,
                TOKEN,
                10 * M,
                OrderState.PENDING_SUBMIT,
                prepared.to_json(),
            ),
        )
    res = ex.submit(prepared)  # step 2: the paper fill is simulated in memory ...
    assert res.fills
    # ... and the process dies before step 3 records it. A new process rebuilds from records:
    ex2 = _paper(conn)
    assert ex2.balance_micro() == 500 * M and ex2.positions() == []
    exe2 = _executor(conn, ex2)
    report = exe2.resolve_inflight(startup=True)
    assert len(report) == 1 and PAPER_NOT_EXECUTED in report[0]
    row = conn.execute("SELECT status, error FROM orders").fetchone()
    assert tuple(row) == (OrderState.CANCELED, PAPER_NOT_EXECUTED)
    assert conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0] == 0
    # the next order gets a new id; the old one is never re-filled
    out = exe2.place(req, market_id="m1")
    assert out.status == OrderState.FILLED and exe2.row(out.order_id)["client_order_id"] == "paper-2"
    assert ledger.paper_cash_micro(conn, "paper", 500 * M) == ex2.balance_micro()


def test_unresolved_order_blocks_its_market(conn):
    exe = _executor(conn, _paper(conn))
    conn.execute(
        "INSERT INTO orders(client_order_id, mode, token_id, market_id, side, order_type, price_micro, "
        "size_micro, status, created_at, updated_at) VALUES ('x','paper',?,'m1','BUY','FAK',1,1,'UNKNOWN',0,0)",
        (TOKEN,),
    )
    out = exe.place(OrderRequest(TOKEN, "BUY", "FAK", price_micro=530_000, size_micro=10 * M), market_id="m1")
    assert out.status == "SKIPPED" and out.order_id is None


def test_api_error_counter_counts_only_transient_failures():
    c = ApiErrorCounter(3)
    c.failure(ExchangeUnavailable("down", attempts=3), "x")
    c.failure(RequestRejected("bad request", status=400), "x")  # definitive: not counted
    assert c.count == 1
    c.success()
    c.failure(ExchangeUnavailable("down"), "x")
    c.failure(ExchangeUnavailable("down"), "x")
    with pytest.raises(BreakerTripped) as e:
        c.failure(TimeoutError("slow"), "reading")
    assert e.value.breaker == "api_errors" and "3 consecutive" in e.value.reason


def test_position_anomaly_rule():
    check_positions([("t", 150 * M, 105 * M)], 100, "the database")  # fees/rounding slack
    with pytest.raises(BreakerTripped):
        check_positions([("t", 300 * M, 150 * M)], 100, "the database")
    with pytest.raises(BreakerTripped):
        check_positions([("t", -1, 0)], 100, "the exchange")


def test_halt_latches_in_the_database_and_falls_back_to_a_file(tmp_path, conn):
    cfg = default_config(tmp_path)
    assert state.current_halt(conn, cfg) is None
    where = state.persist_halt(conn, cfg, mode="paper", breaker="api_errors", reason="3 errors", now=5)
    assert where == "database"
    h = state.current_halt(conn, cfg)
    assert (h.breaker, h.reason, h.since) == ("api_errors", "3 errors", 5)
    assert state.clear_halt(conn, cfg, by="op (--restart)", now=6) == 1
    assert state.current_halt(conn, cfg) is None
    # the database cannot be written: the halt still latches, in the fallback file
    where = state.persist_halt(None, cfg, mode="paper", breaker="database", reason="malformed", now=7)
    assert "trading_bot.halted" in where
    assert state.current_halt(conn, cfg).breaker == "database"
    state.clear_halt(conn, cfg, by="op", now=8)
    assert state.current_halt(conn, cfg) is None


def test_one_bot_per_database(tmp_path):
    a = state.InstanceLock(tmp_path / "trading_bot.lock")
    b = state.InstanceLock(tmp_path / "trading_bot.lock")
    a.acquire()
    try:
        with pytest.raises(PolybotError, match="already running"):
            b.acquire()
    finally:
        a.release()
    b.acquire()
    b.release()


# ----------------------------------------------------------------------------- trade status (issue 13)
def _live_trade(conn, tid, side, price, size, fee=0, status="MATCHED", order=None):
    with db.atomic(conn):
        return ledger.record_trade(
            conn,
            mode="live",
            trade_id=tid,
            token_id=TOKEN,
            market_id="m1",
            side=side,
            price_micro=price,
            size_micro=size,
            fee_micro=fee,
            ts=100,
            trade_status=status,
            order_db_id=order,
        )


def _status(conn, tid, status):
    with db.atomic(conn):
        return ledger.update_trade_status(conn, "live", tid, status, now=200)


def _state(conn):
    p = ledger.get_position(conn, "live", TOKEN)
    return (p.size_micro, p.cost_micro, p.realized_pnl_micro), ledger.cash_flow_micro(conn, "live")


def test_a_failed_buy_is_reversed_exactly_once(conn):
    _live_trade(conn, "b1", "BUY", 400_000, 10 * M, fee=30_000, status="CONFIRMED")
    before = _state(conn)
    _live_trade(conn, "b2", "BUY", 520_000, 5 * M, fee=12_345)
    assert ledger.provisional_net_micro(conn, "live") == {TOKEN: 5 * M}
    assert _status(conn, "b2", "TRADE_STATUS_RETRYING") == "RETRYING"
    assert _status(conn, "b2", "FAILED") == "FAILED"
    assert _state(conn) == before  # position, cost, realised and cash as without it
    assert ledger.provisional_net_micro(conn, "live") == {}
    assert _status(conn, "b2", "FAILED") is None  # seen again (a restart): nothing changes
    assert _status(conn, "b2", "CONFIRMED") is None  # FAILED is final
    assert _state(conn) == before
    assert ledger.position_differences(conn, "live") == []  # the replay agrees with the table
    n = conn.execute("SELECT COUNT(*) FROM trades WHERE kind='reversal'").fetchone()[0]
    assert n == 1


def test_a_failed_sell_restores_the_position_and_its_cost(conn):
    _live_trade(conn, "b1", "BUY", 400_000, 10 * M, fee=30_000, status="CONFIRMED")
    before = _state(conn)
    _live_trade(conn, "s1", "SELL", 600_000, 4 * M, fee=7_000)
    assert _state(conn) != before
    assert _status(conn, "s1", "FAILED") == "FAILED"
    assert _state(conn) == before
    assert ledger.position_differences(conn, "live") == []
    # a FAILED sale is no closing trade: nothing realised, nothing for the win rate
    assert ledger.realized_pnl_micro(conn, "live") == 0
    assert conn.execute("SELECT COUNT(*) FROM trades WHERE realized_pnl_micro IS NOT NULL").fetchone()[0] == 0
    assert ledger.positions_implied(conn, "live")[TOKEN]["realized_micro"] == 0


def test_confirmed_is_final_and_unknown_status_is_provisional(conn):
    assert ledger.trade_status_of(None) == "MATCHED"
    assert ledger.trade_status_of("trade_status_mined") == "MINED"
    assert ledger.trade_status_of("weird") == "MATCHED"
    _live_trade(conn, "b1", "BUY", 400_000, 10 * M)
    assert _status(conn, "b1", "MINED") == "MINED"
    assert _status(conn, "b1", "CONFIRMED") == "CONFIRMED"
    assert _status(conn, "b1", "FAILED") is None
    assert _state(conn)[0][0] == 10 * M


def test_a_failed_fill_seen_first_is_never_recorded(conn):
    from polybot.exchange.base import Fill

    f = Fill(
        trade_id="x1",
        order_id="0xabc",
        token_id=TOKEN,
        side="BUY",
        price_micro=500_000,
        size_micro=5 * M,
        fee_micro=0,
        ts=100,
        status="FAILED",
    )
    with db.atomic(conn):
        assert ledger.record_fill(conn, "live", f, market_id="m1") is False
    assert conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0] == 0
    with db.atomic(conn):  # paper fills are final whatever they say
        assert ledger.record_fill(conn, "paper", Fill(**{**f.to_dict(), "status": "MATCHED"}), market_id="m1")
    assert conn.execute("SELECT trade_status FROM trades").fetchone()[0] == "CONFIRMED"


def test_baseline_moves_fills_of_no_order_out_of_a_legacy_live_ledger(conn):
    """A database that went live with commit 15cb2c7 adopted the account's history as fills
    of no order; the first start with the baseline moves them out (the bot never sells them)."""
    from polybot.engine import external
    from polybot.exchange.models import Position

    other = "999"
    conn.execute(
        "INSERT INTO market_tokens(token_id, market_id, outcome, outcome_index) VALUES (?, 'm1', 'No', 1)",
        (other,),
    )
    with db.atomic(conn):
        conn.execute(
            "INSERT INTO orders(client_order_id, mode, token_id, market_id, side, order_type, price_micro, "
            "size_micro, status, created_at, updated_at) VALUES ('0xo','live',?,'m1','BUY','GTC',500000,"
            "?,'FILLED',1,1)",
            (TOKEN, 5 * M),
        )
        ledger.record_trade(
            conn,
            mode="live",
            trade_id="bot-1",
            token_id=TOKEN,
            market_id="m1",
            side="BUY",
            price_micro=500_000,
            size_micro=5 * M,
            fee_micro=0,
            ts=10,
            order_db_id=1,
        )
        ledger.record_trade(
            conn,
            mode="live",
            trade_id="old-1",
            token_id=TOKEN,
            market_id="m1",
            side="BUY",
            price_micro=300_000,
            size_micro=8 * M,
            fee_micro=0,
            ts=5,
            reason="external fill (not placed by this bot)",
        )
        ledger.record_trade(
            conn,
            mode="live",
            trade_id="old-2",
            token_id=other,
            market_id="m1",
            side="BUY",
            price_micro=200_000,
            size_micro=4 * M,
            fee_micro=0,
            ts=6,
            reason="external fill (not placed by this bot)",
        )
        ledger.record_settlement(conn, "live", other, "m1", 0, 4 * M, 7)
    xpos = [Position(token_id=TOKEN, condition_id="0xabc", size=13 * M, avg_price=380_000)]
    lines = external.record_baseline(conn, xpos, [], now=100)
    assert any("moved out of the ledger" in line for line in lines), lines
    assert {p.token_id: p.size_micro for p in ledger.open_positions(conn, "live")} == {TOKEN: 5 * M}
    assert external.sizes(conn) == {TOKEN: 8 * M}
    assert [r[0] for r in conn.execute("SELECT trade_id FROM trades WHERE mode='live'")] == ["bot-1"]
    assert ledger.position_differences(conn, "live") == []
    assert external.baseline_at(conn) == 100


def test_position_invariant_allows_unconfirmed_fills_and_external_holdings(conn):
    """reconcile.position_mismatches: the bot's ledger against the exchange's position minus
    the external holding, with room for fills not confirmed yet (pure logic, real SQLite)."""
    from polybot.engine import external
    from polybot.engine.reconcile import position_mismatches
    from polybot.exchange.models import Position

    _live_trade(conn, "b1", "BUY", 500_000, 10 * M, status="CONFIRMED", order=1)  # the bot's own order
    external.record_baseline(
        conn, [Position(token_id=TOKEN, condition_id="0xabc", size=14 * M, avg_price=1)], [], now=1
    )
    assert external.sizes(conn) == {TOKEN: 4 * M}  # 14 at the exchange, 10 of them the bot's
    assert position_mismatches(conn, {TOKEN: 14 * M}) == []
    _live_trade(conn, "b2", "BUY", 500_000, 3 * M, status="MATCHED", order=1)
    assert position_mismatches(conn, {TOKEN: 14 * M}) == []  # not settled yet: allowed
    assert position_mismatches(conn, {TOKEN: 17 * M}) == []  # settled: equal
    lines = position_mismatches(conn, {TOKEN: 12 * M})
    assert len(lines) == 1 and "ledger holds 13 shares (+3 of it not confirmed yet)" in lines[0]
    assert "the exchange shows 8 (12 at the Data API minus 4 external)" in lines[0], lines
    _status(conn, "b2", "CONFIRMED")
    assert position_mismatches(conn, {TOKEN: 14 * M}) != []  # confirmed: it must be there now
    assert position_mismatches(conn, {}) != []  # the exchange lists nothing: 0 ≠ 13
