"""The local Polymarket simulator, through real HTTP (requests and py_clob_client_v2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from polybot.sim.faults import parse_spec
from polybot.sim.server import start_simulator

ROOT = Path(__file__).resolve().parents[2]
TEST_KEY = "0x" + "11" * 32
DAY = 86_400


def walk_keyset(http, url, params, key="markets"):
    items, cursor, pages = [], None, 0
    while True:
        p = dict(params)
        if cursor:
            p["after_cursor"] = cursor
        r = http.get(url, params=p)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body[key]
        pages += 1
        cursor = body.get("next_cursor")
        if not cursor:
            return items, pages


def yes_token(m: dict) -> str:
    return json.loads(m["clobTokenIds"])[0] if "clobTokenIds" in m else m["positionIds"][0]


def open_single(sim, tick=0.01):
    """A plain open binary market (no planned resolution, no empty side)."""
    return next(
        m
        for m in sim.world.markets
        if m.kind == "single"
        and not m.resolution
        and not m.empty_side
        and m.tick == tick
        and sim.phase(m.index) == "open"
        and not m.is_v2
    )


# ----------------------------------------------------------------------------- Gamma


def test_keyset_pagination_returns_every_market_exactly_once(sim, http):
    url = sim.gamma_url + "/markets/keyset"
    open_ms, pages = walk_keyset(http, url, {"limit": 7})
    closed_ms, _ = walk_keyset(http, url, {"limit": 7, "closed": "true"})
    ids = [m["id"] for m in open_ms + closed_ms]
    assert len(ids) == len(set(ids)) == len(sim.sim.world.markets)
    assert pages == -(-len(open_ms) // 7)
    assert all(m["closed"] is False for m in open_ms) and all(m["closed"] is True for m in closed_ms)
    ranked, _ = walk_keyset(http, url, {"limit": 9, "order": "liquidityNum", "ascending": "false"})
    liq = [m["liquidityNum"] for m in ranked]
    assert liq == sorted(liq, reverse=True) and len(ranked) == len(open_ms)


def test_keyset_rejects_big_limit_offset_and_foreign_cursor(sim, http):
    url = sim.gamma_url + "/markets/keyset"
    assert http.get(url, params={"limit": 101}).status_code == 422
    assert http.get(url, params={"limit": 10, "offset": 10}).status_code == 422
    cursor = http.get(url, params={"limit": 5}).json()["next_cursor"]
    r = http.get(url, params={"limit": 5, "after_cursor": cursor, "order": "volume24hr"})
    assert r.status_code == 422 and "after_cursor" in r.json()["error"]
    legacy = http.get(sim.gamma_url + "/markets", params={"limit": 500})
    assert legacy.status_code == 200 and isinstance(legacy.json(), list) and len(legacy.json()) <= 100
    events, _ = walk_keyset(http, sim.gamma_url + "/events/keyset", {"limit": 4}, key="events")
    assert all(e["markets"] and "events" not in e["markets"][0] for e in events)


def test_gamma_market_objects_use_the_real_field_encodings(sim, http):
    ms, _ = walk_keyset(http, sim.gamma_url + "/markets/keyset", {"limit": 100})
    for m in ms:
        for f in ("outcomes", "outcomePrices", "umaResolutionStatuses"):
            assert isinstance(m[f], str) and isinstance(json.loads(m[f]), list)
        assert isinstance(m["liquidity"], str) and isinstance(m["volume"], str)
        for f in (
            "liquidityNum",
            "volumeNum",
            "volume24hr",
            "orderPriceMinTickSize",
            "bestBid",
            "bestAsk",
            "lastTradePrice",
            "spread",
        ):
            assert isinstance(m[f], (int, float)), f
        assert m["orderMinSize"] == 5 and m["orderPriceMinTickSize"] in (0.01, 0.001)
        assert set(m["feeSchedule"]) == {"exponent", "rate", "takerOnly", "rebateRate"}
        assert m["feeSchedule"]["rate"] in (0, 0.04, 0.05, 0.07) and m["feeSchedule"]["exponent"] == 1
        assert m["feesEnabled"] == (m["feeSchedule"]["rate"] > 0)
        assert m["endDate"].endswith("Z") and {"id", "title", "negRisk"} <= set(m["events"][0])
        assert 0 < float(json.loads(m["outcomePrices"])[0]) < 1
        if m.get("version") == "v2":
            assert "clobTokenIds" not in m and isinstance(m["positionIds"], list)
            assert all(p.isdigit() for p in m["positionIds"])
        else:
            assert isinstance(m["clobTokenIds"], str) and len(json.loads(m["clobTokenIds"])) == 2
        if m["negRisk"]:
            assert m["negRiskMarketID"].startswith("0x")
    assert any(m.get("version") == "v2" for m in ms)
    assert any(m["negRisk"] for m in ms) and any(not m["feesEnabled"] for m in ms)
    liqs = sorted(m["liquidityNum"] for m in ms)
    assert liqs[-1] / liqs[0] > 100  # orders of magnitude apart


# ----------------------------------------------------------------------------- CLOB market data


def test_books_have_the_live_shape(sim, http):
    from py_clob_client_v2.utilities import generate_orderbook_summary_hash, parse_raw_orderbook_summary

    m = open_single(sim.sim)
    yes_b = http.get(sim.clob_url + "/book", params={"token_id": m.token_ids[0]}).json()
    no_b = http.get(sim.clob_url + "/book", params={"token_id": m.token_ids[1]}).json()
    for b in (yes_b, no_b):
        assert b["market"] == m.condition_id and b["timestamp"].isdigit() and len(b["timestamp"]) == 13
        assert b["tick_size"] == "0.01" and b["min_order_size"] == "5" and b["neg_risk"] is False
        assert all(isinstance(x["price"], str) and isinstance(x["size"], str) for x in b["bids"] + b["asks"])
        bids = [float(x["price"]) for x in b["bids"]]
        asks = [float(x["price"]) for x in b["asks"]]
        assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # best = last
        assert 5 <= len(bids) <= 10 and 5 <= len(asks) <= 10 or m.liquidity < 1500
        assert bids[-1] < asks[-1]
        assert generate_orderbook_summary_hash(parse_raw_orderbook_summary(dict(b))) == b["hash"]
    assert float(no_b["bids"][-1]["price"]) == pytest.approx(1 - float(yes_b["asks"][-1]["price"]))
    r = http.get(sim.clob_url + "/book", params={"token_id": "123"})
    assert r.status_code == 404 and r.json() == {"error": "No orderbook exists for the requested token id"}
    toks = list(sim.sim.world.token_index)
    body = [{"token_id": toks[i % len(toks)]} for i in range(500)]
    r = http.post(sim.clob_url + "/books", json=body)
    assert r.status_code == 200 and len(r.json()) == 500
    assert http.post(sim.clob_url + "/books", json=body + body[:1]).status_code == 400
    mid = float(http.get(sim.clob_url + "/midpoint", params={"token_id": m.token_ids[0]}).json()["mid"])
    assert mid == pytest.approx((float(yes_b["bids"][-1]["price"]) + float(yes_b["asks"][-1]["price"])) / 2)
    assert http.get(sim.clob_url + "/time").json() == sim.sim.now()
    assert http.get(sim.clob_url + "/").json() == "OK"


def test_thin_and_one_sided_books_exist(sim, http):
    w = sim.sim.world
    assert any(m.empty_side for m in w.markets) or len(w.markets) < 50
    one_sided = next(m for m in w.markets if m.empty_side and sim.sim.phase(m.index) == "open")
    b = http.get(sim.clob_url + "/book", params={"token_id": one_sided.token_ids[0]}).json()
    assert (b["asks"] == []) == (one_sided.empty_side == "ask")
    assert (b["bids"] == []) == (one_sided.empty_side == "bid")


def test_prices_history_covers_30_days_and_matches_the_book(sim, http):
    m = open_single(sim.sim)
    now = sim.sim.now()
    r = http.get(
        sim.clob_url + "/prices-history",
        params={"market": m.token_ids[0], "startTs": now - 30 * DAY, "endTs": now, "fidelity": 60},
    )
    hist = r.json()["history"]
    assert len(hist) >= 30 * 24 and hist[0]["t"] <= now - 30 * DAY + 3600 and hist[-1]["t"] <= now
    assert all(isinstance(x["t"], int) and isinstance(x["p"], float) and 0 < x["p"] < 1 for x in hist)
    assert [x["t"] for x in hist] == sorted(x["t"] for x in hist)
    mid = float(http.get(sim.clob_url + "/midpoint", params={"token_id": m.token_ids[0]}).json()["mid"])
    assert abs(hist[-1]["p"] - mid) <= 0.02
    month = http.get(
        sim.clob_url + "/prices-history",
        params={"market": m.token_ids[1], "interval": "1m", "fidelity": 1440},
    ).json()["history"]
    assert len(month) >= 30 and all(0 < x["p"] < 1 for x in month)


def test_same_seed_same_world_other_seed_other_world(http):
    def snapshot(seed):
        with start_simulator(port=0, seed=seed, n_markets=40) as h:
            ms = http.get(h.gamma_url + "/markets/keyset", params={"limit": 40}).json()["markets"]
            toks = [yes_token(m) for m in ms]
            books = http.post(h.clob_url + "/books", json=[{"token_id": t} for t in toks]).json()
            return [(m["id"], m["question"], m["outcomePrices"]) for m in ms], [
                (b["asset_id"], b["bids"], b["asks"], b["hash"]) for b in books
            ]

    assert snapshot(7) == snapshot(7)
    assert snapshot(7)[0] != snapshot(8)[0]


def _changes(http, url, token, now):
    hist = http.get(
        url + "/prices-history",
        params={"market": token, "startTs": now - 30 * DAY, "endTs": now, "fidelity": 60},
    ).json()["history"]
    return np.diff([x["p"] for x in hist])


def test_markets_sharing_a_driver_are_correlated_and_others_are_not(sim, http):
    w, now = sim.sim.world, sim.sim.now()
    url = sim.clob_url

    def mid_ok(mid):
        p = float(sim.sim.prices.yes_prices([w.by_id[mid].index], now)[0])
        return 0.1 < p < 0.9 and sim.sim.phase(w.by_id[mid].index) == "open"

    a, b = next((x, y) for x, y in w.correlated_pairs() if mid_ok(x) and mid_ok(y))
    assert w.driver_of[a] == w.driver_of[b]
    r_same = np.corrcoef(
        _changes(http, url, w.by_id[a].token_ids[0], now), _changes(http, url, w.by_id[b].token_ids[0], now)
    )[0, 1]
    singles = [i for i in w.independent_markets() if mid_ok(i)][:2]
    assert w.driver_of[singles[0]] != w.driver_of[singles[1]]
    r_ind = np.corrcoef(
        _changes(http, url, w.by_id[singles[0]].token_ids[0], now),
        _changes(http, url, w.by_id[singles[1]].token_ids[0], now),
    )[0, 1]
    assert r_same > 0.5 and abs(r_ind) < 0.3


def test_neg_risk_yes_prices_sum_to_one(sim, http):
    w = sim.sim.world
    events = [e for e in w.neg_risk_events() if sim.sim.phase(e.market_indices[0]) == "open"]
    assert events
    for e in events:
        toks = [{"token_id": w.markets[i].token_ids[0]} for i in e.market_indices]
        mids = http.post(sim.clob_url + "/midpoints", json=toks).json()
        assert 3 <= len(mids) <= 5 and sum(float(v) for v in mids.values()) == pytest.approx(1.0, abs=0.05)
        ms = http.get(
            sim.gamma_url + "/markets/keyset",
            params=[("limit", 10)] + [("id", w.markets[i].id) for i in e.market_indices],
        ).json()
        assert all(m["negRisk"] and m["negRiskMarketID"] == e.neg_risk_market_id for m in ms["markets"])


# ----------------------------------------------------------------------------- lifecycle


def test_markets_resolve_after_advance(sim, http):
    s, w = sim.sim, sim.sim.world
    planned = {
        o: next(m for m in w.markets if m.resolution == o and m.end_ts > w.start_ts and m.kind == "single")
        for o in ("YES", "NO", "50-50")
    }
    m = planned["YES"]
    assert http.get(sim.gamma_url + f"/markets/{m.id}").json()["closed"] is False
    s.advance(m.end_ts - s.now() + 60)
    g = http.get(sim.gamma_url + f"/markets/{m.id}").json()
    assert g["closed"] is True and g["umaResolutionStatus"] == "proposed"
    assert http.get(sim.clob_url + "/book", params={"token_id": m.token_ids[0]}).json()["bids"] == []
    s.advance(max(x.end_ts for x in planned.values()) - s.now() + 3 * 3600)
    expect = {"YES": ["1", "0"], "NO": ["0", "1"], "50-50": ["0.5", "0.5"]}
    for outcome, mk in planned.items():
        g = http.get(sim.gamma_url + f"/markets/slug/{mk.slug}").json()
        assert g["closed"] and g["umaResolutionStatus"] == "resolved"
        assert json.loads(g["outcomePrices"]) == expect[outcome]
        assert json.loads(g["umaResolutionStatuses"]) == ["proposed", "resolved"]
        c = http.get(sim.clob_url + f"/markets/{mk.condition_id}").json()
        assert c["closed"] and [t["winner"] for t in c["tokens"]] == [outcome == "YES", outcome == "NO"]
    other = open_single(s)
    r = http.post(sim.url + "/_sim/resolve", json={"market_id": other.id, "outcome": "NO"})
    assert r.status_code == 200 and r.json()["phase"] == "resolved"
    assert json.loads(http.get(sim.gamma_url + f"/markets/{other.id}").json()["outcomePrices"]) == ["0", "1"]
    assert (
        http.post(sim.url + "/_sim/resolve", json={"market_id": other.id, "outcome": "NO"}).status_code == 400
    )


# ----------------------------------------------------------------------------- faults


def test_fault_injection_each_kind(sim, http):
    s = sim.sim
    s.set_faults(error_rate=1.0, path="/clob/book")
    assert http.get(sim.clob_url + "/book", params={"token_id": "1"}).status_code == 500
    assert http.get(sim.clob_url + "/time").status_code == 200
    s.set_faults(burst="429:3:2")
    codes = [http.get(sim.gamma_url + "/markets/keyset", params={"limit": 1}) for _ in range(4)]
    assert [r.status_code for r in codes] == [429, 429, 429, 200] and codes[0].headers["Retry-After"] == "2"
    s.set_faults(latency_ms=300)
    t0 = time.monotonic()
    assert http.get(sim.clob_url + "/time").status_code == 200 and time.monotonic() - t0 >= 0.29
    s.set_faults(timeout="2:1")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(sim.clob_url + "/time", timeout=0.5)
    assert http.get(sim.clob_url + "/time", timeout=5).status_code == 200
    s.set_faults(malformed=1.0)
    r = http.get(sim.clob_url + "/version")
    with pytest.raises(ValueError):
        r.json()
    s.set_faults(outage=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(sim.clob_url + "/time", timeout=3)
    assert http.post(sim.url + "/_sim/faults", json={}).status_code == 200  # admin is never faulted
    assert http.get(sim.clob_url + "/time").status_code == 200
    http.post(sim.url + "/_sim/faults", json={"spec": "bad_market=all"})
    page = http.get(sim.gamma_url + "/markets/keyset", params={"limit": 5}).json()["markets"]
    assert len(page) == 8 and sum("id" not in m for m in page) == 1
    assert any(float(json.loads(m["outcomePrices"])[0]) > 1 for m in page if m["outcomePrices"][0] == "[")
    with pytest.raises(ValueError):
        [json.loads(m["clobTokenIds"]) for m in page]
    assert http.get(sim.url + "/_sim/state").json()["faults"][0]["bad_market"] == "all"
    s.clear_faults()
    assert len(http.get(sim.gamma_url + "/markets/keyset", params={"limit": 5}).json()["markets"]) == 5


def test_fault_spec_syntax_and_start_time_faults(http):
    rules = parse_spec("error_rate=0.1,latency_ms=200;burst=429:5:1,path=/clob/books")
    assert (rules[0].error_rate, rules[0].latency_ms, rules[0].path) == (0.1, 200, "")
    assert (rules[1].burst_status, rules[1].burst_left, rules[1].burst_retry_after, rules[1].path) == (
        429,
        5,
        1,
        "/clob/books",
    )
    for bad in ("error_rate=2", "burst=429", "nonsense=1", "latency_ms"):
        with pytest.raises(ValueError):
            parse_spec(bad)
    with start_simulator(port=0, faults="burst=503:1:4,path=/data") as h:
        r = http.get(h.data_url + "/positions", params={"user": "0x" + "ab" * 20})
        assert r.status_code == 503 and r.headers["Retry-After"] == "4"
        assert http.get(h.data_url + "/positions", params={"user": "0x" + "ab" * 20}).json() == []
        assert h.sim.request_count["data"] == 2


# ----------------------------------------------------------------------------- auth & trading


def test_l2_endpoints_reject_missing_or_wrong_auth(sim, http):
    r = http.get(sim.clob_url + "/data/orders")
    assert r.status_code == 401 and r.json() == {"error": "Unauthorized/Invalid api key"}
    headers = {
        "POLY_ADDRESS": "0x" + "ab" * 20,
        "POLY_SIGNATURE": "x",
        "POLY_TIMESTAMP": "1",
        "POLY_API_KEY": "nope",
        "POLY_PASSPHRASE": "nope",
    }
    assert http.delete(sim.clob_url + "/cancel-all", headers=headers).status_code == 401
    assert http.post(sim.clob_url + "/auth/api-key").json() == {"error": "Invalid L1 Request headers"}
    l1 = {
        "POLY_ADDRESS": "0x" + "ab" * 20,
        "POLY_SIGNATURE": "0x1234",
        "POLY_TIMESTAMP": "1",
        "POLY_NONCE": "0",
    }
    r = http.get(sim.clob_url + "/auth/derive-api-key", headers=l1)  # the L1 signature is verified
    assert r.status_code == 401 and r.json() == {"error": "Invalid L1 Request headers"}
    from tests.sim.helpers import SimTrader

    trader = SimTrader(sim.clob_url, TEST_KEY)
    forged = dict(trader.l1_headers(key="0x" + "22" * 32))  # another key signs for this address
    assert http.get(sim.clob_url + "/auth/derive-api-key", headers=forged).status_code == 401
    l1 = trader.l1_headers()
    creds = http.get(sim.clob_url + "/auth/derive-api-key", headers=l1).json()
    assert http.post(sim.clob_url + "/auth/api-key", headers=l1).json() == creds == trader.creds
    headers.update(POLY_API_KEY=creds["apiKey"], POLY_PASSPHRASE=creds["passphrase"])
    assert http.get(sim.clob_url + "/balance-allowance", headers=headers).status_code == 401


@pytest.fixture
def client(sim):
    from py_clob_client_v2 import ClobClient

    c = ClobClient(host=sim.clob_url, chain_id=137, key=TEST_KEY, signature_type=0)
    c.set_api_creds(c.create_or_derive_api_key())
    return c


def _error(exc) -> str:
    msg = getattr(exc, "error_msg", exc)
    return msg.get("error", "") if isinstance(msg, dict) else str(msg)


def test_sdk_order_lifecycle_fills_trades_and_balance(sim, client, http):
    from py_clob_client_v2 import (
        AssetType,
        BalanceAllowanceParams,
        OpenOrderParams,
        OrderArgs,
        OrderType,
        TradeParams,
    )
    from py_clob_client_v2.clob_types import OrderPayload
    from py_clob_client_v2.exceptions import PolyApiException

    m = open_single(sim.sim)
    tok = m.token_ids[0]
    book = client.get_order_book(tok)
    best_bid, best_ask = float(book["bids"][-1]["price"]), float(book["asks"][-1]["price"])
    resting = client.create_order(
        OrderArgs(token_id=tok, price=round(best_bid - 0.02, 2), size=10, side="BUY")
    )
    r = client.post_order(resting, OrderType.GTC)
    assert r["success"] and r["status"] == "live" and r["errorMsg"] == ""
    opened = client.get_open_orders(OpenOrderParams(asset_id=tok))
    assert [o["id"] for o in opened] == [r["orderID"]] and opened[0]["status"] == "LIVE"
    mine = http.get(sim.clob_url + "/book", params={"token_id": tok}).json()["bids"]
    assert any(x["price"] == f"{best_bid - 0.02:.2f}".rstrip("0") for x in mine)
    assert client.cancel_order(OrderPayload(orderID=r["orderID"]))["canceled"] == [r["orderID"]]
    assert client.get_open_orders() == []
    bal0 = int(
        client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))["balance"]
    )
    assert bal0 == 10_000 * 10**6
    crossing = client.create_order(OrderArgs(token_id=tok, price=best_ask, size=20, side="BUY"))
    r2 = client.post_order(crossing, OrderType.GTC)
    assert r2["status"] == "matched" and len(r2["tradeIDs"]) == 1
    trades = client.get_trades(TradeParams(asset_id=tok))
    assert [t["id"] for t in trades] == r2["tradeIDs"] and trades[0]["trader_side"] == "TAKER"
    assert float(trades[0]["size"]) == 20 and float(trades[0]["price"]) == best_ask
    fee = round(20 * m.fee_rate * best_ask * (1 - best_ask), 5)
    bal1 = int(
        client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))["balance"]
    )
    assert bal0 - bal1 == round((20 * best_ask + fee) * 10**6)
    cond = client.get_balance_allowance(
        BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=tok)
    )
    assert cond["balance"] == str(20 * 10**6)
    with pytest.raises(PolyApiException) as dup:
        client.post_order(crossing, OrderType.GTC)
    assert _error(dup.value) == f"order {r2['orderID']} is invalid. Duplicated."
    pos = http.get(sim.data_url + "/positions", params={"user": client.get_address()}).json()
    assert len(pos) == 1 and pos[0]["asset"] == tok and pos[0]["size"] == 20
    assert pos[0]["avgPrice"] == pytest.approx(best_ask)
    v2 = http.get(sim.data_url + "/v2/positions", params={"user": client.get_address()}).json()
    assert v2["data"][0]["status"] == "OPEN" and v2["pagination"]["has_more"] is False
    value = http.get(sim.data_url + "/value", params={"user": client.get_address()}).json()
    assert value[0]["value"] == pytest.approx(pos[0]["currentValue"])
    assert http.get(sim.data_url + "/trades", params={"user": client.get_address()}).json()[0]["size"] == 20


def test_sdk_order_rejections(sim, client):
    from py_clob_client_v2 import OrderArgs, OrderType
    from py_clob_client_v2.exceptions import PolyApiException

    m = open_single(sim.sim)
    tok = m.token_ids[0]
    book = client.get_order_book(tok)
    best_bid = float(book["bids"][-1]["price"])

    def rejected(order, order_type=OrderType.GTC) -> str:
        with pytest.raises(PolyApiException) as exc:
            client.post_order(order, order_type)
        assert exc.value.status_code == 400
        return _error(exc.value)

    assert "lower than the minimum: 5" in rejected(
        client.create_order(OrderArgs(token_id=tok, price=best_bid, size=2, side="BUY"))
    )
    # an off-tick price must be SIGNED off-tick (a tampered amount is now an invalid signature):
    # sign it with the independent test-side signer, same key, same API key
    from tests.sim.helpers import SimTrader

    trader = SimTrader(sim.clob_url, TEST_KEY)
    off_tick = trader.sign(tok, round(best_bid * 10 * 10**6) + 33_000, 10 * 10**6, "BUY", market=m)
    r = trader.post_order(off_tick)  # 0.0033 above a tick
    assert r.status_code == 400 and "breaks minimum tick size rule: 0.01" in r.json()["error"]
    assert "FOK orders are fully filled or killed" in rejected(
        client.create_order(OrderArgs(token_id=tok, price=round(best_bid - 0.05, 2), size=10, side="BUY")),
        OrderType.FOK,
    )
    assert (
        rejected(client.create_order(OrderArgs(token_id=tok, price=0.5, size=100_000, side="BUY")))
        == "not enough balance / allowance"
    )
    assert (
        rejected(client.create_order(OrderArgs(token_id=tok, price=0.5, size=10, side="SELL")))
        == "not enough balance / allowance"
    )


def test_batch_orders_fak_and_matching_between_users(sim, client, http):
    from py_clob_client_v2 import ClobClient, OrderArgs, OrderType, PostOrdersV2Args
    from py_clob_client_v2.clob_types import MarketOrderArgsV2, OrderMarketCancelParams

    s = sim.sim
    m = next(
        x
        for x in s.world.markets
        if x.kind == "single"
        and not x.resolution
        and not x.empty_side
        and x.tick == 0.01
        and s.phase(x.index) == "open"
        and not x.is_v2
        and x.liquidity < 20_000
    )
    tok = m.token_ids[0]
    book = client.get_order_book(tok)
    ask, ask_size = float(book["asks"][-1]["price"]), float(book["asks"][-1]["size"])
    assert ask * (ask_size + 50) < 9_000
    # FAK: takes the whole best level, the rest is killed. A market order (pUSD amount,
    # 2-decimal maker / 4-decimal taker): a limit-built FAK is rejected by the exchange's
    # market-order precision rule (issue 13 finding 1; see test_sim_exchange_rules.py)
    fak = client.create_market_order(
        MarketOrderArgsV2(
            token_id=tok,
            amount=round(ask * (ask_size + 50), 2),
            side="BUY",
            price=ask,
            order_type=OrderType.FAK,
        )
    )
    r = client.post_order(fak, OrderType.FAK)
    assert r["status"] == "matched" and int(r["takingAmount"]) == round(ask_size * 10**6)
    assert client.get_order(r["orderID"])["status"] == "MATCHED" and client.get_open_orders() == []
    # batch: one resting SELL below the synthetic ask, one invalid (size under the minimum)
    sell_px = round(ask - 0.01, 2)
    good = client.create_order(OrderArgs(token_id=tok, price=sell_px, size=10, side="SELL"))
    bad = client.create_order(OrderArgs(token_id=tok, price=sell_px, size=1, side="SELL"))
    res = client.post_orders([PostOrdersV2Args(order=good), PostOrdersV2Args(order=bad)])
    assert res[0]["success"] and res[0]["status"] == "live"
    assert res[1]["success"] is False and res[1]["status"] == "unmatched" and "minimum" in res[1]["errorMsg"]
    assert client.get_order_book(tok)["asks"][-1] == {"price": f"{sell_px:g}", "size": "10"}
    # another user takes it: maker and taker trades on both sides
    other = ClobClient(host=sim.clob_url, chain_id=137, key="0x" + "22" * 32, signature_type=0)
    other.set_api_creds(other.create_or_derive_api_key())
    taken = other.post_order(
        other.create_order(OrderArgs(token_id=tok, price=sell_px, size=10, side="BUY")), OrderType.GTC
    )
    assert taken["status"] == "matched" and int(taken["takingAmount"]) == 10 * 10**6
    taker_trade = other.get_trades()[0]
    assert taker_trade["maker_orders"][0]["order_id"] == res[0]["orderID"]
    assert client.get_order(res[0]["orderID"])["status"] == "MATCHED"
    assert client.get_trades()[0]["trader_side"] == "MAKER"
    # cancel-market-orders only touches that market
    client.post_order(
        client.create_order(OrderArgs(token_id=tok, price=0.02, size=10, side="BUY")), OrderType.GTC
    )
    out = client.cancel_market_orders(OrderMarketCancelParams(market=m.condition_id))
    assert len(out["canceled"]) == 1 and out["not_canceled"] == {} and client.get_open_orders() == []


def test_resting_order_fills_when_the_price_moves_through_it(sim, client):
    from py_clob_client_v2 import OrderArgs, OrderType

    s = sim.sim
    m = open_single(s)
    times = s.now() + np.arange(60, DAY, 60)
    path = s.prices.probs([m.index], times)[0]
    lowest_ask = int(np.floor(path * 100 + m.half_spread + 1e-9).min()) / 100
    now_ask = float(client.get_order_book(m.token_ids[0])["asks"][-1]["price"])
    assert lowest_ask < now_ask
    r = client.post_order(
        client.create_order(OrderArgs(token_id=m.token_ids[0], price=lowest_ask, size=10, side="BUY")),
        OrderType.GTC,
    )
    assert r["status"] == "live"
    s.advance(DAY)
    order = client.get_order(r["orderID"])
    assert order["status"] == "MATCHED" and order["size_matched"] == "10"
    maker = [t for t in client.get_trades() if t["trader_side"] == "MAKER"]
    assert maker and maker[0]["price"] == f"{lowest_ask:.2f}".rstrip("0") and maker[0]["fee_rate_bps"] == "0"


def test_heartbeat_dead_man_switch_cancels_orders(http):
    from py_clob_client_v2 import ClobClient, OrderArgs, OrderType

    with start_simulator(port=0, heartbeat_timeout=1.0) as h:
        c = ClobClient(host=h.clob_url, chain_id=137, key=TEST_KEY, signature_type=0)
        c.set_api_creds(c.create_or_derive_api_key())
        m = open_single(h.sim)
        bid = float(c.get_order_book(m.token_ids[0])["bids"][-1]["price"])
        c.post_order(
            c.create_order(OrderArgs(token_id=m.token_ids[0], price=bid, size=10, side="BUY")), OrderType.GTC
        )
        assert c.post_heartbeat("")["heartbeat_id"] and len(c.get_open_orders()) == 1
        deadline = time.monotonic() + 10
        while c.get_open_orders() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert c.get_open_orders() == []


def test_rate_limit_headers(sim, client, http):
    r = http.get(sim.gamma_url + "/markets/keyset", params={"limit": 1})
    assert int(r.headers["X-RateLimit-Limit"]) == 300 and "X-RateLimit-Remaining" in r.headers
    assert "X-RateLimit-Reset" in r.headers
    import httpx
    from py_clob_client_v2.clob_types import RequestArgs
    from py_clob_client_v2.headers.headers import create_level_2_headers

    hdrs = create_level_2_headers(
        client.signer, client.creds, RequestArgs(method="DELETE", request_path="/cancel-all")
    )
    resp = httpx.delete(sim.clob_url + "/cancel-all", headers=hdrs)
    assert resp.status_code == 200 and resp.json() == {"canceled": [], "not_canceled": {}}
    assert resp.headers["Poly-RateLimit-Tier"] == "standard" and "Poly-RateLimit-Remaining" in resp.headers


def test_clock_speed_moves_sim_time():
    with start_simulator(port=0, speed=600.0, n_markets=5) as h:
        t1 = requests.get(h.clob_url + "/time").json()
        deadline = time.monotonic() + 30  # 100 s of simulated time take 1/6 s at 600×: polled
        while (t2 := requests.get(h.clob_url + "/time").json()) < t1 + 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert t2 >= t1 + 100


# ----------------------------------------------------------------------------- CLI


def test_cli_serves_writes_port_file_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "polybot.sim",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--markets",
            "10",
            "--speed",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        port = int(port_file.read_text())
        assert requests.get(f"http://127.0.0.1:{port}/clob/time", timeout=5).json() == 1793491200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    u = f"http://127.0.0.1:{port}"
    assert out.strip() == f"Simulator listening on {u} (gamma: {u}/gamma, clob: {u}/clob, data: {u}/data)"
    bad = subprocess.run(
        [sys.executable, "-m", "polybot.sim", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "127.0.0.1" in bad.stderr


def test_speed_can_change_at_run_time_without_a_jump():
    from polybot.sim.server import start_simulator

    with start_simulator(port=0, seed=1, n_markets=10, speed=0.0) as h:
        t0 = h.sim.now()
        real0 = time.monotonic()
        r = requests.post(f"{h.url}/_sim/speed", json={"speed": 3600}, timeout=5).json()
        assert r["speed"] == 3600 and abs(r["now"] - t0) <= 1  # no jump when the speed changes
        # the clock now runs: wait (polled) for half an hour of simulated time …
        deadline = time.monotonic() + 30
        while (t1 := h.sim.now()) - t0 < 1800 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert t1 - t0 >= 1800, f"the clock did not run at 3600×: {t1 - t0} s in 30 s"
        # … and never faster than 3600 simulated seconds per real second since the change
        assert t1 - t0 <= 3600 * (time.monotonic() - real0) + 1
        requests.post(f"{h.url}/_sim/speed", json={"speed": 0}, timeout=5).raise_for_status()
        t2 = h.sim.now()
        assert t2 >= t1  # time never went backwards …
        assert requests.get(f"{h.clob_url}/time", timeout=5).json() == t2 == h.sim.now()  # … and is frozen
