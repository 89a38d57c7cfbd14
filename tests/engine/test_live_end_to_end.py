"""Issue 13, done-when: a live-mode run against the simulator, for each supported signature
type, places, fills, partially fills, cancels, rides a tick-size change and a FAILED trade,
survives a missed heartbeat, and ends with positions and cash equal to the exchange's.

The engine runs with the real LiveExchange (py_clob_client_v2 signing, real HTTP) against
the simulator's independent rules (polybot/sim/RULES.md): signatures are recovered with
eth_account, the maker must be the signer's registered funder for its signature type,
trades go MATCHED → MINED → CONFIRMED (or RETRYING → FAILED, reversed at the exchange),
heartbeats carry ids. Conditions are polled with a deadline, never slept on.

Signature type 3 (deposit wallet): the simulator requires maker = signer = the key owner's
registered deposit wallet and verifies the ERC-7739 wrap to the wallet's owner (RULES.md §1
checks 4-5). Whether the real CLOB accepts it for a given account is still only proven by
``test_api_connectivity.py --live-order-check`` against the real exchange (docs/dev/signature_types.md).
"""

from __future__ import annotations

import time

import pytest

from polybot.engine import ledger
from polybot.engine.bot import startup
from tests.engine.helpers import M, wait_for
from tests.engine.test_live_engine_rules import (
    admin,
    buy,
    close,
    ledger_size,
    live_exchange,
    make_engine,
    sell,
    set_book,
    workspace,
)


@pytest.fixture
def hb_sim():
    """The simulator with a short dead-man switch (1.5 real seconds without a heartbeat)."""
    from polybot.sim.server import start_simulator

    h = start_simulator(port=0, seed=42, n_markets=60, speed=0, heartbeat_timeout=1.5)
    try:
        yield h
    finally:
        h.stop()


def _funder(handle, eng, signature_type: int):
    if signature_type == 0:
        return None
    acct = admin(handle, f"/accounts?address={eng.exchange.address}")
    return acct["funders"][str(signature_type)]


def _tokens(root, n: int) -> list[tuple[str, str]]:
    """n tokens of different plain binary markets."""
    from tests.engine.helpers import connect

    conn = connect(root)
    try:
        rows = conn.execute(
            "SELECT t.token_id, t.market_id FROM market_tokens t JOIN markets m ON m.id=t.market_id "
            "WHERE m.tracked=1 AND m.closed=0 AND m.neg_risk=0 AND m.version='v1' AND "
            "t.outcome_index=0 ORDER BY m.id"
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) >= n
    return [(r[0], r[1]) for r in rows[:n]]


def _account(handle, eng) -> dict:
    return admin(handle, f"/accounts?address={eng.exchange.address}")


@pytest.mark.parametrize("signature_type", [0, 1, 2, 3])
def test_live_run_ends_equal_to_the_exchange(tmp_path, hb_sim, signature_type):
    sim = hb_sim
    root = workspace(tmp_path, sim, stale_order_seconds=60, use_exchange_heartbeat=True)
    probe = make_engine(root, sim)  # the EOA, to read its funders
    funder = _funder(sim, probe, signature_type)
    close(probe)
    eng = make_engine(root, sim, signature_type=signature_type, funder=funder)
    (ta, ma), (tb, mb), (tc, mc) = _tokens(root, 3)
    try:
        cash0 = eng.exchange.balance_micro()
        assert startup(eng, halt=None, restart=False) == []
        eng.heartbeat_seconds = 0.3
        eng.start_exchange_heartbeat()
        admin(sim, "/lifecycle", {"mined_after": 2, "confirmed_after": 5})

        # 1. places and fills
        set_book(sim, ta, [["0.48", "500"]], [["0.50", "500"]])
        out = eng.executor.place(buy(ta, 10, 0.50), market_id=ma, strategy="e2e", reason="fill")
        assert out.status == "FILLED" and out.filled_micro == 10 * M

        # 2. partially fills; the remainder rests, is refreshed, then cancelled when stale
        set_book(sim, tb, [["0.48", "500"]], [["0.50", "4"]])
        part = eng.executor.place(buy(tb, 10, 0.50), market_id=mb, strategy="e2e", reason="partial")
        assert part.status == "PARTIALLY_FILLED" and part.filled_micro == 4 * M
        eng.guarded(eng.iteration)
        assert eng.executor.row(part.order_id)["status"] == "PARTIALLY_FILLED"

        # 3. survives a missed heartbeat: another session of the same key moves the id on; the
        #    bot's next heartbeat is refused with the expected id, which it adopts (orders stay)
        hand = live_exchange(sim, eng, signature_type=signature_type, funder=funder)
        try:

            def hand_beats() -> bool:  # it races the bot's own beats
                try:
                    hand.heartbeat()
                    return True
                except Exception:  # noqa: BLE001 — the id moved under it; try again
                    return False

            wait_for(hand_beats, timeout=20, what="a heartbeat of the other session accepted")
            moved = _account(sim, eng)["heartbeat_id"]
            wait_for(
                lambda: _account(sim, eng)["heartbeat_id"] != moved,
                timeout=20,
                what="the bot's heartbeat accepted again after the id moved",
            )
        finally:
            hand.close()
        t0 = time.monotonic()  # beyond the 1.5 s dead-man window
        wait_for(
            lambda: time.monotonic() - t0 > 2.0 and _account(sim, eng)["heartbeat_active"],
            timeout=20,
            what="a dead-man window passing with heartbeats flowing",
        )
        xid = eng.executor.row(part.order_id)["exchange_order_id"].lower()
        assert xid in [o.order_id.lower() for o in eng.exchange.open_orders()], "the dead-man switch fired"

        # 4. rides a tick-size change: 0.001 while the book sits there, back to 0.01 after
        admin(sim, "/ticks", {"token_id": tc, "tick": "0.001"})
        set_book(sim, tc, [["0.495", "500"]], [["0.505", "500"]])
        eng.guarded(eng.iteration)
        book = eng.md.book(tc)
        assert book is not None and book.tick_size == pytest.approx(0.001)
        req = buy(tc, 10, 0.505)
        req = type(req)(**{**req.to_dict(), "tick_size": format(book.tick_size, "g")})
        fine = eng.executor.place(req, market_id=mc, strategy="e2e", reason="fine tick")
        assert fine.status == "FILLED", fine
        admin(sim, "/ticks", {"token_id": tc, "tick": None})
        set_book(sim, tc, [["0.49", "500"]], [["0.51", "500"]])
        eng.guarded(eng.iteration)
        back = eng.executor.place(sell(tc, 5, 0.49), market_id=mc, strategy="e2e", reason="coarse tick")
        assert back.status == "FILLED", back

        # 5. a FAILED trade is reversed at the exchange and in the ledger
        admin(sim, "/trades/fail", {"address": eng.exchange.address, "next": 1})
        bad = eng.executor.place(buy(ta, 5, 0.50), market_id=ma, strategy="e2e", reason="fails")
        assert bad.status == "FILLED"
        assert ledger_size(eng, ta) == 15 * M

        # 6. cancels: the partial order's remainder once stale; the clock moves on, trades settle
        set_book(sim, tb, [["0.48", "500"]], [["0.55", "500"]])
        sim.sim.advance(61)
        eng.guarded(eng.iteration)
        eng.guarded(eng.iteration)
        row = eng.executor.row(part.order_id)
        assert row["status"] == "CANCELED" and row["filled_micro"] == 4 * M
        assert xid not in [o.order_id.lower() for o in eng.exchange.open_orders()]
        statuses = {r[0] for r in eng.conn.execute("SELECT trade_status FROM trades WHERE kind='fill'")}
        assert statuses == {"CONFIRMED", "FAILED"}, statuses
        assert eng.executor.row(bad.order_id)["filled_micro"] == 0

        # the exchange accepted every order with this signature type (type 3: the wallet signs)
        placed = [
            o for o in sim.sim.exchange.orders.values() if o.account.address == eng.exchange.address.lower()
        ]
        assert placed and {(o.signature_type, o.maker) for o in placed} == {
            (signature_type, (funder or eng.exchange.address).lower())
        }

        # the end: positions and cash equal to the exchange's
        xpos = {p.token_id: int(p.size) for p in eng.exchange.positions()}
        mine = {p.token_id: p.size_micro for p in ledger.open_positions(eng.conn, "live") if p.size_micro}
        assert mine == xpos == {ta: 10 * M, tb: 4 * M, tc: 5 * M}
        assert cash0 + ledger.cash_flow_micro(eng.conn, "live") == eng.exchange.balance_micro()
        assert ledger.position_differences(eng.conn, "live") == []
        assert eng.conn.execute("SELECT COUNT(*) FROM halts").fetchone()[0] == 0
    finally:
        eng.stop_exchange_heartbeat()
        close(eng)
