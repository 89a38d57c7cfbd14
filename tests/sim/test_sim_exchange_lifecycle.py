"""The simulator's stateful exchange rules (polybot/sim/RULES.md §3-§7) over real HTTP:
heartbeat ids and the dead-man switch, trading modes, partial GTC fills, the trade
lifecycle with FAILED reversal, and tick-size changes at run time. Orders are signed by
tests/sim/helpers.py (independent of polybot.exchange and of the simulator).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests

from polybot.money import taker_fee_micro
from polybot.sim.server import start_simulator
from tests.sim.helpers import SimTrader

KEY_A = "0x" + "a1" * 32
KEY_B = "0x" + "b2" * 32
M = 1_000_000
CANCEL_ONLY = "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."


@pytest.fixture
def a(sim):
    return SimTrader(sim.clob_url, KEY_A)


def single(sim):
    s = sim.sim
    return next(
        m
        for m in s.world.markets
        if m.kind == "single"
        and m.tick == 0.01
        and not m.resolution
        and not m.empty_side
        and not m.is_v2
        and s.phase(m.index) == "open"
    )


def book(sim, token) -> dict:
    return requests.get(sim.clob_url + "/book", params={"token_id": token}, timeout=10).json()


def advance(http, sim, seconds):
    r = http.post(sim.url + "/_sim/advance", json={"seconds": seconds})
    assert r.status_code == 200


def buy(trader, m, token, price: str, shares: float, order_type="GTC"):
    p, q = int(round(float(price) * M)), int(round(shares * M))
    return trader.post_order(trader.sign(token, q * p // M, q, "BUY", market=m), order_type)


def set_book(http, sim, token, bids, asks):
    r = http.post(sim.url + "/_sim/book", json={"token_id": token, "bids": bids, "asks": asks})
    assert r.status_code == 200, r.text


# ----------------------------------------------------------------------------- §5 heartbeats


def test_heartbeat_ids_rotate_and_a_wrong_id_gets_the_expected_one(sim, a):
    r = a.heartbeat("nonsense")  # no session yet: the first carries no id
    assert r.status_code == 400 and r.json() == {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": ""}
    first = a.heartbeat(None)
    assert first.status_code == 200
    id1 = first.json()["heartbeat_id"]
    id2 = a.heartbeat(id1).json()["heartbeat_id"]
    assert id2 and id2 != id1
    stale = a.heartbeat(id1)
    assert stale.status_code == 400 and stale.json() == {
        "error_msg": "Invalid Heartbeat ID",
        "heartbeat_id": id2,
    }
    assert a.heartbeat("").json() == {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": id2}
    r = a.heartbeat(stale.json()["heartbeat_id"])  # adopting the expected id recovers
    assert r.status_code == 200 and r.json()["heartbeat_id"] not in (id1, id2)


def test_missed_heartbeat_window_cancels_orders_and_the_session_continues():
    with start_simulator(port=0, heartbeat_timeout=1.0) as h:
        a = SimTrader(h.clob_url, KEY_A)
        m = single(h)
        tok = m.token_ids[0]
        bid = book(h, tok)["bids"][-1]["price"]
        hid = a.heartbeat("").json()["heartbeat_id"]
        r = buy(a, m, tok, f"{float(bid) - 0.05:.2f}", 10)
        oid = r.json()["orderID"]
        assert a.order(oid)["status"] == "LIVE"
        deadline = time.monotonic() + 15
        while a.order(oid)["status"] == "LIVE" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert a.order(oid)["status"] == "CANCELED"
        late = a.heartbeat("")  # the session still expects the last id
        assert late.status_code == 400 and late.json()["heartbeat_id"] == hid
        assert a.heartbeat(hid).status_code == 200


# ----------------------------------------------------------------------------- §4 trading modes


def test_cancel_only_mode_rejects_orders_with_503_and_still_cancels(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    bid = float(book(sim, tok)["bids"][-1]["price"])
    oid = buy(a, m, tok, f"{bid - 0.05:.2f}", 10).json()["orderID"]
    assert http.post(sim.url + "/_sim/mode", json={"mode": "cancel-only"}).json() == {
        "mode": "cancel-only",
        "until": None,
    }
    r = buy(a, m, tok, f"{bid - 0.06:.2f}", 10)
    assert r.status_code == 503 and r.json() == {"error": CANCEL_ONLY}
    batch = a.request("POST", "/orders", [a.body(a.sign(tok, 4 * M, 10 * M, "BUY", market=m))])
    assert batch.status_code == 503 and batch.json()["error"] == CANCEL_ONLY
    assert a.heartbeat("").status_code == 200
    r = a.request("DELETE", "/order", {"orderID": oid})
    assert r.status_code == 200 and r.json()["canceled"] == [oid]
    http.post(sim.url + "/_sim/mode", json={"mode": "normal"})
    assert buy(a, m, tok, f"{bid - 0.06:.2f}", 10).json()["status"] == "live"


def test_post_only_and_disabled_modes(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    bid = float(book(sim, tok)["bids"][-1]["price"])
    http.post(sim.url + "/_sim/mode", json={"mode": "post-only", "seconds": 120})
    order = a.sign(tok, 10 * int(round((bid - 0.05) * M)), 10 * M, "BUY", market=m)
    r = a.post_order(order)
    assert (
        r.status_code == 503
        and r.json()["code"] == "post_only_mode"
        and r.json()["retry_after_seconds"] == 120
    )
    r = a.post_order(order, post_only=True)
    assert r.status_code == 200 and r.json()["status"] == "live"
    advance(http, sim, 121)  # the mode ends on the sim clock
    assert http.get(sim.url + "/_sim/mode").json() == {"mode": "normal", "until": None}
    http.post(sim.url + "/_sim/mode", json={"mode": "disabled"})
    r = a.request("DELETE", "/order", {"orderID": r.json()["orderID"]})
    assert r.status_code == 503 and r.json()["error"].startswith("Trading is currently disabled")
    assert http.post(sim.url + "/_sim/mode", json={"mode": "sideways"}).status_code == 400


# ----------------------------------------------------------------------------- §6 partial GTC fills


def test_partial_gtc_fill_stays_live_and_the_rest_fills_later(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    set_book(http, sim, tok, bids=[["0.40", "100"]], asks=[["0.45", "3"]])
    r = buy(a, m, tok, "0.45", 10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "matched" and body["takingAmount"] == str(3 * M)
    o = a.order(body["orderID"])
    assert (o["status"], o["size_matched"], o["original_size"]) == ("LIVE", "3", "10")
    assert o["associate_trades"] == body["tradeIDs"] and len(body["tradeIDs"]) == 1
    bids = book(sim, tok)["bids"]
    assert {"price": "0.45", "size": "7"} in bids  # the remainder rests
    set_book(http, sim, tok, bids=[["0.40", "100"]], asks=[["0.45", "100"]])
    advance(http, sim, 60)
    o = a.order(body["orderID"])
    assert (o["status"], o["size_matched"]) == ("MATCHED", "10") and len(o["associate_trades"]) == 2
    assert sorted(t["trader_side"] for t in a.trades()) == ["MAKER", "TAKER"]
    maker_trade = next(t for t in a.trades() if t["trader_side"] == "MAKER")
    assert [(x["order_id"], x["matched_amount"]) for x in maker_trade["maker_orders"]] == [
        (body["orderID"], "7")
    ]  # attributable by maker_orders
    assert a.balance(tok) == 10 * M


def test_partial_gtc_fill_remainder_can_be_cancelled(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    cash0 = a.balance()
    set_book(http, sim, tok, bids=[["0.40", "100"]], asks=[["0.45", "3"]])
    oid = buy(a, m, tok, "0.45", 10).json()["orderID"]
    assert a.request("DELETE", "/order", {"orderID": oid}).json()["canceled"] == [oid]
    o = a.order(oid)
    assert (o["status"], o["size_matched"]) == ("CANCELED", "3")
    fee = taker_fee_micro(3 * M, 450_000, m.fee_rate, 1) if m.fees_enabled else 0  # the fee formula
    assert a.balance(tok) == 3 * M
    assert cash0 - a.balance() == 1_350_000 + fee  # the cancelled rest's reserve is free again


# ----------------------------------------------------------------------------- §7 trade lifecycle


def test_trades_go_matched_mined_confirmed_on_the_sim_clock(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    ask = book(sim, tok)["asks"][-1]["price"]
    buy(a, m, tok, ask, 10)
    (t0,) = a.trades()
    assert t0["status"] == "MATCHED" and t0["last_update"] == t0["match_time"]
    advance(http, sim, 2)
    (t1,) = a.trades()
    assert t1["status"] == "MINED" and t1["last_update"] > t0["last_update"]
    advance(http, sim, 3)
    (t2,) = a.trades()
    assert t2["status"] == "CONFIRMED" and t2["last_update"] > t1["last_update"]
    assert a.balance(tok) == 10 * M


def test_a_failed_trade_is_reversed(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    cash0 = a.balance()
    r = http.post(sim.url + "/_sim/trades/fail", json={"address": a.address, "next": 1})
    assert r.json() == {"marked": [], "pending_next": 1}
    ask = book(sim, tok)["asks"][-1]["price"]
    buy(a, m, tok, ask, 10)
    assert a.balance(tok) == 10 * M and a.balance() < cash0  # settled at match ...
    advance(http, sim, 2)
    assert a.trades()[0]["status"] == "RETRYING"
    advance(http, sim, 3)
    assert a.trades()[0]["status"] == "FAILED"
    assert a.balance(tok) == 0 and a.balance() == cash0  # ... and reversed at FAILED
    assert http.get(sim.data_url + "/trades", params={"user": a.address}).json() == []  # never on chain
    buy(a, m, tok, book(sim, tok)["asks"][-1]["price"], 10)  # only the next trade was marked
    advance(http, sim, 5)
    assert [t["status"] for t in a.trades()] == ["CONFIRMED", "FAILED"]
    assert len(http.get(sim.data_url + "/trades", params={"user": a.address}).json()) == 1
    assert http.get(sim.url + "/_sim/state").json()["trade_delays"] == {
        "mined_after": 2.0,
        "confirmed_after": 5.0,
    }


def test_failing_a_chosen_match_reverses_both_parties(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    b = SimTrader(sim.clob_url, KEY_B)
    set_book(http, sim, tok, bids=[["0.40", "100"]], asks=[["0.45", "100"]])
    buy(a, m, tok, "0.45", 10)  # A owns 10 shares (confirmed)
    advance(http, sim, 5)
    cash_a, cash_b = a.balance(), b.balance()
    sell = a.sign(tok, 10 * M, 4_400_000, "SELL", market=m)  # rests at 0.44, under the book's ask
    assert a.post_order(sell).json()["status"] == "live"
    taken = buy(b, m, tok, "0.44", 10).json()
    assert taken["status"] == "matched" and a.balance(tok) == 0 and b.balance(tok) == 10 * M
    maker_view = a.trades()[0]  # newest first
    assert (
        maker_view["trader_side"] == "MAKER" and maker_view["maker_orders"][0]["owner"] == a.creds["apiKey"]
    )
    r = http.post(sim.url + "/_sim/trades/fail", json={"address": b.address, "trade_ids": taken["tradeIDs"]})
    assert r.json()["marked"] == taken["tradeIDs"]
    advance(http, sim, 5)
    assert b.trades()[0]["status"] == "FAILED" and a.trades()[0]["status"] == "FAILED"
    assert (a.balance(tok), b.balance(tok)) == (10 * M, 0)
    assert (a.balance(), b.balance()) == (cash_a, cash_b)
    r = http.post(sim.url + "/_sim/trades/fail", json={"address": b.address, "trade_ids": taken["tradeIDs"]})
    assert r.status_code == 400 and "already FAILED" in r.json()["error"]


# ----------------------------------------------------------------------------- §3 tick changes at run time


def _tick(sim, tok) -> float:
    return requests.get(sim.clob_url + "/tick-size", params={"token_id": tok}, timeout=10).json()[
        "minimum_tick_size"
    ]


def test_forced_tick_change_is_visible_everywhere_and_enforced(sim, a, http):
    m = single(sim)
    tok = m.token_ids[0]
    bid = float(book(sim, tok)["bids"][-1]["price"])
    fine = f"{bid - 0.045:.3f}"  # e.g. 0.455: off a 0.01 tick
    r = buy(a, m, tok, fine, 10)
    assert r.status_code == 400 and r.json()["error"].endswith("breaks minimum tick size rule: 0.01")
    coarse_oid = buy(a, m, tok, f"{bid - 0.05:.2f}", 10).json()["orderID"]
    assert (
        http.post(sim.url + "/_sim/ticks", json={"token_id": tok, "tick": "0.001"}).json()["tick"] == "0.001"
    )
    assert _tick(sim, tok) == 0.001 and book(sim, tok)["tick_size"] == "0.001"
    assert (
        requests.get(sim.clob_url + f"/markets/{m.condition_id}", timeout=10).json()["minimum_tick_size"]
        == 0.001
    )
    assert (
        requests.get(sim.gamma_url + f"/markets/{m.id}", timeout=10).json()["orderPriceMinTickSize"] == 0.001
    )
    assert http.get(sim.url + "/_sim/ticks").json()["ticks"][tok] == "0.001"
    fine_oid = buy(a, m, tok, fine, 10).json()["orderID"]
    assert a.order(fine_oid)["status"] == "LIVE" and a.order(fine_oid)["price"] == fine.rstrip("0")
    http.post(sim.url + "/_sim/ticks", json={"token_id": tok, "tick": "0.01"})
    assert _tick(sim, tok) == 0.01
    assert a.order(fine_oid)["status"] == "CANCELED"  # off the coarser tick
    assert a.order(coarse_oid)["status"] == "LIVE"
    assert buy(a, m, tok, fine, 10).status_code == 400
    back = http.post(sim.url + "/_sim/ticks", json={"token_id": tok, "tick": None}).json()
    assert back == {"token_id": tok, "tick": "0.01", "forced": False}
    assert http.post(sim.url + "/_sim/ticks", json={"token_id": tok, "tick": "0.05"}).status_code == 400


def test_tick_becomes_fine_when_the_price_leaves_0_04_to_0_96(sim, a, http):
    s = sim.sim
    now = s.now()
    times = now + np.arange(60, 3 * 86_400, 60)
    hit = None
    for m in s.world.markets:
        if m.base_tick != 0.01 or s.phase(m.index) != "open" or m.resolution:
            continue
        ts = times[times < s.end_of(m.index)]
        p = s.prices.probs([m.index], ts)[0]
        out = np.nonzero((p > 0.96) | (p < 0.04))[0]
        if len(out) and out[0] > 0:
            hit = (m, int(ts[out[0]]))
            break
    assert hit is not None, "the seed-42 world has a 0.01-tick market that leaves [0.04, 0.96] within 3 days"
    m, when = hit
    tok = m.token_ids[0]
    assert _tick(sim, tok) == 0.01
    advance(http, sim, when - now)
    assert _tick(sim, tok) == 0.001 and book(sim, tok)["tick_size"] == "0.001"
    bid = book(sim, tok)["bids"][-1]["price"]
    assert len(bid.split(".")[1]) <= 3
    r = buy(a, m, tok, f"{float(bid) - 0.005:.3f}", 10)
    assert r.status_code == 200 and r.json()["status"] == "live", r.text


def test_books_batch_after_fills_with_and_without_an_admin_book(sim, a, http):
    """Consumed liquidity in several markets, one of them on an admin-set book: POST /books
    answers every book (a shadowed variable once turned this into a 500)."""
    s = sim.sim
    ms = [
        m
        for m in s.world.markets
        if m.kind == "single"
        and m.tick == 0.01
        and not m.resolution
        and not m.empty_side
        and not m.is_v2
        and s.phase(m.index) == "open"
    ][:3]
    set_book(http, sim, ms[0].token_ids[0], bids=[["0.40", "100"]], asks=[["0.45", "50"]])
    for m in ms:
        buy(a, m, m.token_ids[0], book(sim, m.token_ids[0])["asks"][-1]["price"], 5)
    r = http.post(sim.clob_url + "/books", json=[{"token_id": m.token_ids[0]} for m in ms])
    assert r.status_code == 200 and len(r.json()) == 3
    assert r.json()[0]["asks"] == [{"price": "0.45", "size": "45"}]


def test_cli_rejects_bad_trade_delays_with_one_sentence():
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run(
        [sys.executable, "-m", "polybot.sim", "--port", "0", "--trade-delays", "5:1"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "Invalid --trade-delays '5:1'" in out.stderr + out.stdout


def test_trade_delays_are_configurable(http):
    with start_simulator(port=0, trade_delays=(0, 0)) as h:
        a = SimTrader(h.clob_url, KEY_A)
        m = single(h)
        buy(a, m, m.token_ids[0], book(h, m.token_ids[0])["asks"][-1]["price"], 5)
        assert a.trades()[0]["status"] == "CONFIRMED"  # zero delays: final at once
        r = http.post(h.url + "/_sim/lifecycle", json={"mined_after": 10, "confirmed_after": 1})
        assert r.status_code == 400
        assert http.post(
            h.url + "/_sim/lifecycle", json={"mined_after": 1, "confirmed_after": 30}
        ).json() == {"mined_after": 1.0, "confirmed_after": 30.0}
