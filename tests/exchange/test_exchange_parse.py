"""Parsers against EVERY captured/official sample in shared/polymarket/samples/, with
hand-checked field values, plus corrupted variants that must be skipped with a clear
sentence (never a traceback)."""

from __future__ import annotations

import calendar
import copy
import itertools
import json
import os
from pathlib import Path

import pytest

from polybot.errors import DataError
from polybot.exchange import parse as P
from polybot.exchange.models import Market, OrderBook, ParseIssue
from tests.conftest import SAMPLES_DIR, SHARED_SAMPLES_DIR

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(os.environ.get("POLYBOT_SAMPLES_DIR", SAMPLES_DIR))


def test_fixture_copy_matches_shared_samples():
    """The repository's copy must hold every shared sample, byte for byte."""
    if not SHARED_SAMPLES_DIR.is_dir():
        pytest.skip(f"{SHARED_SAMPLES_DIR} is not beside this checkout; the repository copy is used")
    for src in sorted(SHARED_SAMPLES_DIR.glob("*.json")):
        copy = SAMPLES_DIR / src.name
        assert copy.exists(), f"new shared sample {src.name}: copy it into {SAMPLES_DIR} and route it"
        assert copy.read_bytes() == src.read_bytes(), f"{src.name} changed in shared/: update the copy"


def load(name: str):
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def utc(s: str) -> int:
    from datetime import datetime

    return calendar.timegm(datetime.fromisoformat(s.replace("Z", "+00:00")).utctimetuple())


NEWSOM_YES = "54533043819946592547517511176940999955633860128497669742211153063842200957669"
NEWSOM_NO = "87854174148074652060467921081181402357467303721471806610111179101805869578687"
CEASEFIRE_YES = "22978793223071892222859460592277435458011604214087068523744633723809814935807"
CEASEFIRE_NO = "108268928354766371660560153450121076545199284531791348447523752861907448942629"


# ----------------------------------------------------------------------------- per-sample checks


def check_gamma_market(obj):
    m = P.parse_gamma_market(obj)
    assert m.id == "559652"
    assert m.condition_id == "0x0f49db97f71c68b1e42a6d16e3de93d85dbf7d4148e3f018eb79e88554be9f75"
    assert m.token_ids == (NEWSOM_YES, NEWSOM_NO)
    assert [t.outcome for t in m.tokens] == ["Yes", "No"]
    assert [t.price for t in m.tokens] == [0.2325, 0.7675]
    assert m.version == "v1"
    assert m.neg_risk is True
    assert m.neg_risk_market_id == "0x2c3d7e0eee6f058be3006baabf0d54a07da254ba47fe6e3e095e7990c7814700"
    assert (m.event_id, m.event_title) == ("30829", "Democratic Presidential Nominee 2028")
    assert m.tick_size == 0.001 and m.min_order_size == 5.0
    # feeSchedule, NOT makerBaseFee/takerBaseFee (1000 bps)
    assert m.fees.enabled is True
    assert (m.fees.rate, m.fees.exponent, m.fees.taker_only, m.fees.rebate_rate) == (0.04, 1.0, True, 0.25)
    assert m.fees.effective_rate == 0.04
    assert m.fee_type == "politics_fees"
    assert m.end_date == utc("2028-11-07T00:00:00Z")
    assert m.volume_24h == pytest.approx(9066.547418000006)
    assert m.liquidity == pytest.approx(230438.22824)
    assert (m.best_bid, m.best_ask, m.last_trade_price) == (0.232, 0.233, 0.232)
    assert m.active and not m.closed and m.accepting_orders and m.enable_order_book
    assert m.payouts is None and not m.resolved
    assert m.uma_resolution_statuses == ()


def check_gamma_crypto(obj):
    m = P.parse_gamma_market(obj)
    assert m.id == "3763487"
    assert [t.outcome for t in m.tokens] == ["Up", "Down"]
    assert m.token_ids[0] == "113013382422133157315656090194075928009220145127085300671933810669470922115281"
    # trimmed capture has no feesEnabled: a schedule with a positive rate counts as enabled
    assert m.fees.enabled and m.fees.rate == 0.07 and m.fees.rebate_rate == 0.2
    assert m.end_date == utc("2026-08-22T16:05:00Z")
    assert m.event_id is None and m.liquidity == 0.0 and m.volume_24h == 0.0
    assert m.payouts is None


def check_gamma_resolved(obj):
    # No umaResolutionStatus and an empty statuses list: closed + outcomePrices ["1","0"]
    # is taken as resolved (rule 3 in parse.py's docstring).
    assert "umaResolutionStatus" not in obj
    m = P.parse_gamma_market(obj)
    assert m.closed and m.resolved
    assert m.payouts == {CEASEFIRE_YES: 1.0, CEASEFIRE_NO: 0.0}
    assert [t.winner for t in m.tokens] == [True, False]
    assert m.fees.enabled is False and m.fees.effective_rate == 0.0
    assert m.closed_time == utc("2026-05-09T02:07:01+00:00")
    assert m.liquidity == 0.0  # no liquidityNum / liquidity in this record


def check_gamma_legacy(obj):
    m = P.parse_gamma_market(obj)
    assert m.id == "12" and m.closed
    assert m.payouts is None  # ["0","0"] = unknown, never a payout
    assert (m.best_bid, m.best_ask) == (0.0, 1.0)
    assert m.end_date == utc("2020-11-04T00:00:00Z")


def check_clob_market(obj):
    m = P.parse_clob_market(obj)
    assert m.id == m.condition_id == "0xd57eed0d44f5b8ca54925d8d6ff440b146b3e6e071da18136ee3ee572d34479e"
    assert m.payouts == {CEASEFIRE_YES: 1.0, CEASEFIRE_NO: 0.0}
    assert m.tick_size == 0.01 and m.min_order_size == 5.0
    assert m.closed and m.accepting_orders and not m.enable_order_book
    assert "Geopolitics" in m.tags and m.slug == "russia-x-ukraine-ceasefire-by-end-of-2027"
    assert m.fees.enabled is False  # CLOB market carries no fee rate


def check_clob_markets(obj):
    page = P.parse_clob_markets_page(obj)
    assert page.next_cursor == "next" and page.issues == ()
    (m,) = page.items
    assert m.token_ids == ("YES_TOKEN", "NO_TOKEN")
    assert [t.price for t in m.tokens] == [0.55, 0.45]
    assert m.min_order_size == 1.0 and m.tick_size == 0.01 and m.payouts is None


def check_clob_book(obj):
    b = P.parse_book(obj)
    assert isinstance(b, OrderBook)
    # wire: bids ascending → best bid is the LAST bid on the wire
    assert b.best_bid == float(obj["bids"][-1]["price"]) == 0.002
    assert [lv.price for lv in b.bids] == [0.002, 0.001]
    assert b.bids[0].size == 6.99
    assert b.asks == () and b.best_ask is None and b.mid is None and b.spread is None
    assert b.last_trade_price is None  # "" on the wire
    assert b.tick_size == 0.001 and b.min_order_size == 5.0 and b.neg_risk is True
    assert b.timestamp_ms == 1785734468581
    assert b.hash == "d7df883ae546b09533a4f485bfae0810da1af04e"
    assert b.market == "0x9d839bf0aa31324b9848f5b89841b779238a7c07dee2f7fca675d934e8ab5bf2"


def check_ws_book(obj):
    b = P.parse_book(obj)
    assert b.best_bid == 0.07 == float(obj["bids"][-1]["price"])
    assert b.best_ask == 0.08 == float(obj["asks"][-1]["price"])
    assert len(b.bids) == len(obj["bids"]) and len(b.asks) == len(obj["asks"])
    assert all(a.price <= c.price for a, c in itertools.pairwise(b.asks))
    assert all(a.price >= c.price for a, c in itertools.pairwise(b.bids))
    assert b.last_trade_price == 0.92 and b.mid == pytest.approx(0.075)


def check_ws_docs(obj):
    # Only the "book" event has a REST twin; the other six event types are WebSocket-only
    # (price_change, tick_size_change, last_trade_price, best_bid_ask, new_market,
    # market_resolved) and belong to the WS client.
    b = P.parse_book(obj["book"])
    assert (b.best_bid, b.best_ask) == (0.50, 0.52)  # ".50" / ".52" parse


def check_prices_history(obj):
    pts = P.parse_price_history(obj, "tok")
    assert [(p.t, p.p) for p in pts] == [(1000, 0.5), (1500, 0.55), (2000, 0.6)]
    numeric = {"history": [{"t": 5, "p": 0.1815}]}  # live API sends numbers
    assert P.parse_price_history(numeric)[0].p == 0.1815


def check_cancel(obj):
    r = P.parse_cancel_response(obj)
    assert r.canceled == ("2",)
    assert r.not_canceled == {"1": "the order is already canceled"}


def check_errors(obj):
    generic = P.parse_error_body(obj["generic_error_body"])
    assert generic.message == "<message>" and generic.code is None
    po = P.parse_error_body(obj["post_only_mode_503"])
    assert po.code == "post_only_mode" and po.retry_after_seconds == 79
    assert po.message.startswith("post-only mode")


def check_open_orders(obj):
    page = P.parse_open_orders_page(obj)
    assert page.next_cursor is None  # "LTE=" = last page
    a, b = page.items
    assert a.side == "BUY" and a.price == 600_000 and a.original_size == 200_000_000
    assert a.expiration is None and a.created_at == 1703875200 and a.order_type == "GTC"
    assert b.side == "SELL" and b.size_matched == 50_000_000 and b.size_remaining == 100_000_000
    assert b.associate_trades == ()  # null on the wire


def check_trades_page(obj):
    page = P.parse_trades_page(obj)
    (t,) = page.items
    assert (t.id, t.side, t.size, t.price, t.status) == ("trade-0x001", "BUY", 10_000_000, 500_000, "MINED")
    assert t.match_time == utc("2024-01-01T00:00:00Z") and t.trader_side == "TAKER"
    assert page.next_cursor is None


def check_positions_v1(obj):
    ps, issues = P.parse_positions(obj)
    assert issues == [] and len(ps) == 4
    a = ps[0]
    assert a.token_id.startswith("7132104586") and a.size == 150_500_000
    assert a.avg_price == 550_000 and a.cur_price == 0.6 and a.current_value == 90_300_000
    assert a.cash_pnl == 7_525_000 and a.initial_value == 82_775_000
    assert a.end_date == utc("2026-12-31T00:00:00Z") and a.status is None
    assert ps[1].size == 0 and ps[1].realized_pnl == 5_000_000
    assert ps[2].redeemable and ps[2].negative_risk and ps[2].outcome_index == 1
    assert ps[3].size == 5_000  # dust 0.005 shares


def check_positions_v2(obj):
    ps, issues = P.parse_positions(obj)
    assert issues == [] and len(ps) == 4
    assert [p.status for p in ps] == ["OPEN", "CLOSED", "REDEEMABLE", "OPEN"]
    v1, _ = P.parse_positions(load("data_api_positions.json"))
    for a, b in zip(ps, v1, strict=True):  # same fixture in both shapes → same money
        assert (a.token_id, a.size, a.avg_price, a.current_value, a.cash_pnl) == (
            b.token_id,
            b.size,
            b.avg_price,
            b.current_value,
            b.cash_pnl,
        )
    assert P.next_cursor(obj) is None


def check_trades_v2(obj):
    ts, issues = P.parse_user_trades(obj)
    assert issues == [] and len(ts) == 3
    assert (ts[0].side, ts[0].size, ts[0].price, ts[0].timestamp) == ("SELL", 92_590_000, 700_000, 1786179735)
    assert ts[1].price == 710_000  # 0.709999959 → half-up micro
    assert ts[1].size == 1_464_786 and ts[2].outcome_index == 1


def check_order_post(obj):
    r = P.parse_order_post_response(obj)
    assert r.accepted and r.status == "live"
    assert r.order_id == "0xabcdef1234567890abcdef1234567890abcdef12"
    assert r.raw_making_amount == "100000000" and r.error_msg == ""


def check_ws_trade(obj):
    t = P.parse_clob_trade(obj)
    assert t.status == "CONFIRMED" and t.size == 25_000_000 and t.price == 500_000
    assert t.bucket_index == 1


def check_ws_order_cancel(obj):
    o = P.parse_open_order(obj)
    assert o.order_type == "FOK" and o.price == 10_000 and o.size_matched == 0
    assert o.status.startswith("CANCELED") and o.expiration is None and o.created_at is None


ROUTES = {
    "gamma_market.json": check_gamma_market,
    "gamma_market_crypto_5m.json": check_gamma_crypto,
    "gamma_market_resolved.json": check_gamma_resolved,
    "gamma_market_closed_legacy_zero_zero.json": check_gamma_legacy,
    "clob_market.json": check_clob_market,
    "clob_markets.json": check_clob_markets,
    "clob_book.json": check_clob_book,
    "clob_prices_history.json": check_prices_history,
    "clob_cancel_response.json": check_cancel,
    "clob_error_examples.json": check_errors,
    "clob_open_orders_page.json": check_open_orders,
    "clob_trades_page.json": check_trades_page,
    "data_api_positions.json": check_positions_v1,
    "data_api_v2_positions.json": check_positions_v2,
    "data_api_v2_trades_captured.json": check_trades_v2,
    "order_post_response.json": check_order_post,
    "ws_market_book_snapshot.json": check_ws_book,  # same shape as a REST book
    "ws_market_messages_docs.json": check_ws_docs,
    "ws_user_trade.json": check_ws_trade,  # same shape as a /data/trades row
    "ws_user_order_cancellation.json": check_ws_order_cancel,
}

OUT_OF_SCOPE = {
    "ws_market_message.json": "a WebSocket price_change delta; consumed by the WS client, "
    "not by the REST read side",
    "ws_subscribe_examples.json": "messages we SEND on the WebSocket; nothing to parse",
    "order_post_request.json": "a request body the order signer builds; nothing to parse",
}


def test_every_sample_is_routed_or_explicitly_out_of_scope():
    assert SAMPLES.is_dir(), f"samples directory {SAMPLES} is missing (set POLYBOT_SAMPLES_DIR)"
    names = sorted(p.name for p in SAMPLES.glob("*.json"))
    assert names, "no samples found"
    unrouted = [n for n in names if n not in ROUTES and n not in OUT_OF_SCOPE]
    assert not unrouted, f"new sample file(s) not routed to a parser: {unrouted}"
    stale = [n for n in (*ROUTES, *OUT_OF_SCOPE) if n not in names]
    assert not stale, f"routed sample(s) no longer present: {stale}"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_sample_parses_with_hand_checked_fields(name):
    ROUTES[name](load(name))


@pytest.mark.parametrize("name", sorted(OUT_OF_SCOPE))
def test_out_of_scope_samples_are_valid_json(name):
    assert load(name)


# ----------------------------------------------------------------------------- resolution rule


def _gm(**changes):
    obj = copy.deepcopy(load("gamma_market_resolved.json"))
    for k, v in changes.items():
        if v is ...:
            obj.pop(k, None)
        else:
            obj[k] = v
    return obj


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"umaResolutionStatus": "resolved"}, {CEASEFIRE_YES: 1.0, CEASEFIRE_NO: 0.0}),
        (
            {"umaResolutionStatus": "resolved", "outcomePrices": '["0", "1"]'},
            {CEASEFIRE_YES: 0.0, CEASEFIRE_NO: 1.0},
        ),
        (
            {"umaResolutionStatus": "resolved", "outcomePrices": '["0.5", "0.5"]'},
            {CEASEFIRE_YES: 0.5, CEASEFIRE_NO: 0.5},
        ),
        ({"umaResolutionStatus": "proposed"}, None),
        ({"umaResolutionStatus": "disputed"}, None),
        ({"umaResolutionStatuses": '["proposed", "resolved"]'}, {CEASEFIRE_YES: 1.0, CEASEFIRE_NO: 0.0}),
        ({"umaResolutionStatuses": '["proposed"]'}, None),
        ({"umaResolutionStatuses": '["proposed", "disputed"]'}, None),
        ({"umaResolutionStatus": "resolved", "outcomePrices": '["0.9995", "0.0005"]'}, None),
        ({"outcomePrices": '["0", "0"]'}, None),  # legacy: unknown
        ({"closed": False}, None),  # open market at 1/0
        ({"outcomePrices": '["0.5", "0.5"]'}, {CEASEFIRE_YES: 0.5, CEASEFIRE_NO: 0.5}),
        ({"umaResolutionStatuses": ...}, {CEASEFIRE_YES: 1.0, CEASEFIRE_NO: 0.0}),
        ({"outcomePrices": ...}, None),
    ],
)
def test_resolution_rule(changes, expected):
    assert P.parse_gamma_market(_gm(**changes)).payouts == expected


def test_protocol_v2_market_uses_position_ids():
    obj = copy.deepcopy(load("gamma_market.json"))
    obj["version"] = "v2"
    obj["positionIds"] = ["111", "222"]  # a real array, not a JSON string
    m = P.parse_gamma_market(obj)
    assert m.version == "v2" and m.token_ids == ("111", "222")
    obj["positionIds"] = []
    with pytest.raises(DataError, match="559652"):
        P.parse_gamma_market(obj)


def test_event_with_embedded_markets():
    gm = load("gamma_market.json")
    ev = copy.deepcopy(gm["events"][0])
    good = {k: v for k, v in gm.items() if k != "events"}
    bad = dict(good, id="999", outcomePrices='["7", "0"]')
    ev["markets"] = [good, bad]
    event, issues = P.parse_gamma_event(ev)
    assert event.id == "30829" and event.neg_risk and len(event.markets) == 1
    assert event.markets[0].event_id == "30829"
    assert event.markets[0].event_title == "Democratic Presidential Nominee 2028"
    assert [i.record_id for i in issues] == ["999"]
    events, issues = P.parse_gamma_events({"events": [ev, {"title": "no id"}], "next_cursor": ""})
    assert len(events) == 1 and len(issues) == 2


# ----------------------------------------------------------------------------- corrupted variants


def _corrupt_gamma(mutate):
    obj = copy.deepcopy(load("gamma_market.json"))
    mutate(obj)
    return obj


GAMMA_CORRUPTIONS = {
    "missing id": (lambda o: o.pop("id"), "without an id"),
    "price above 1": (lambda o: o.update(outcomePrices='["1.5", "0"]'), "outside [0, 1]"),
    "token ids not JSON": (lambda o: o.update(clobTokenIds="[not json"), "clobTokenIds"),
    "no token ids": (lambda o: o.update(clobTokenIds="[]"), "no token ids"),
    "outcome count mismatch": (lambda o: o.update(outcomes='["Yes"]'), "1 outcomes but 2 token ids"),
    "best bid 2": (lambda o: o.update(bestBid=2), "bestBid"),
    "fee rate not a number": (lambda o: o["feeSchedule"].update(rate="abc"), "feeSchedule.rate"),
    "fees enabled, no schedule": (lambda o: o.pop("feeSchedule"), "feeSchedule is missing"),
    "tick size zero": (lambda o: o.update(orderPriceMinTickSize=0), "orderPriceMinTickSize"),
    "bad end date": (lambda o: o.update(endDate="next tuesday"), "endDate"),
    "missing conditionId": (lambda o: o.pop("conditionId"), "conditionId"),
    "volume is a dict": (lambda o: o.update(volume24hr={"x": 1}), "volume24hr"),
}


@pytest.mark.parametrize("what", sorted(GAMMA_CORRUPTIONS))
def test_corrupted_gamma_market_is_skipped_with_a_sentence(what):
    mutate, fragment = GAMMA_CORRUPTIONS[what]
    bad = _corrupt_gamma(mutate)
    good2 = dict(load("gamma_market_crypto_5m.json"))
    markets, issues = P.parse_gamma_markets(
        [
            load("gamma_market.json") if what != "missing id" else load("gamma_market_resolved.json"),
            bad,
            good2,
        ]
    )
    assert len(markets) == 2 and all(isinstance(m, Market) for m in markets)
    (issue,) = issues
    assert isinstance(issue, ParseIssue)
    assert fragment in issue.reason, issue.reason
    assert "Traceback" not in issue.reason and "\n" not in issue.reason
    if what != "missing id":
        assert issue.record_id == "559652" and "559652" in issue.reason
    with pytest.raises(DataError):
        P.parse_gamma_market(bad)


BOOK_CORRUPTIONS = {
    "bid price above 1": (lambda o: o["bids"].append({"price": "1.2", "size": "1"}), "outside [0, 1]"),
    "negative size": (lambda o: o["bids"].append({"price": "0.5", "size": "-1"}), "negative"),
    "price not a number": (lambda o: o["bids"].append({"price": "abc", "size": "1"}), "abc"),
    "level without size": (lambda o: o["bids"].append({"price": "0.5"}), "size"),
    "bids not a list": (lambda o: o.update(bids="oops"), "bids is not a list"),
    "missing asset_id": (lambda o: o.pop("asset_id"), "without an asset_id"),
    "last trade price 3": (lambda o: o.update(last_trade_price="3"), "last_trade_price"),
}


@pytest.mark.parametrize("what", sorted(BOOK_CORRUPTIONS))
def test_corrupted_book_is_skipped_with_a_sentence(what):
    mutate, fragment = BOOK_CORRUPTIONS[what]
    bad = copy.deepcopy(load("clob_book.json"))
    bad["asset_id"] = "BAD"
    mutate(bad)
    books, issues = P.parse_books([load("clob_book.json"), bad, load("ws_market_book_snapshot.json")])
    assert len(books) == 2
    (issue,) = issues
    assert fragment in issue.reason and "Traceback" not in issue.reason
    assert "0x9d839bf0" in issue.reason  # the market id is named


def test_corrupted_account_rows_are_skipped():
    rows = copy.deepcopy(load("data_api_positions.json"))
    rows[0]["avgPrice"] = 1.5
    rows[1]["size"] = -3
    del rows[2]["asset"]
    ps, issues = P.parse_positions(rows)
    assert len(ps) == 1 and len(issues) == 3
    assert "outside [0, 1]" in issues[0].reason and "negative" in issues[1].reason
    assert "without a token id" in issues[2].reason

    trades = copy.deepcopy(load("data_api_v2_trades_captured.json"))
    trades["data"][0]["side"] = "HOLD"
    trades["data"][1]["price"] = "x"
    ts, issues = P.parse_user_trades(trades)
    assert len(ts) == 1 and len(issues) == 2

    page = copy.deepcopy(load("clob_open_orders_page.json"))
    page["data"][0]["price"] = "2"
    parsed = P.parse_open_orders_page(page)
    assert len(parsed.items) == 1 and "outside [0, 1]" in parsed.issues[0].reason


def test_price_history_bad_point_names_the_token():
    with pytest.raises(DataError, match="tok-9"):
        P.parse_price_history({"history": [{"t": 1, "p": "x"}]}, "tok-9")
    with pytest.raises(DataError, match="outside"):
        P.parse_price_history({"history": [{"t": 1, "p": 1.5}]}, "tok-9")


def test_small_map_parsers():
    mids, issues = P.parse_midpoints({"a": "0.5", "b": 0.25, "c": "nan?"})
    assert mids == {"a": 0.5, "b": 0.25} and [i.record_id for i in issues] == ["c"]
    prices, issues = P.parse_prices({"a": {"BUY": "0.51", "SELL": 0.49}, "b": {"BUY": 7}})
    assert prices == {"a": {"BUY": 0.51, "SELL": 0.49}} and issues[0].record_id == "b"
    last, issues = P.parse_last_trade_prices(
        [{"token_id": "a", "price": "0.4", "side": "SELL"}, {"token_id": "b", "price": ""}]
    )
    assert last["a"].price == 0.4 and last["a"].side == "SELL" and issues[0].record_id == "b"
    assert P.parse_midpoint({"mid": "0.5"}) == 0.5
    assert P.parse_tick_size({"minimum_tick_size": "0.001"}) == 0.001
    assert P.parse_tick_size({"minimum_tick_size": 0.01}) == 0.01
    with pytest.raises(DataError):
        P.parse_tick_size({"minimum_tick_size": 0})
    assert P.parse_server_time(1764612536) == 1764612536
    assert P.parse_server_time("1764612536000") == 1764612536
    assert P.parse_value([{"user": "0x1", "value": 12.5}]) == 12_500_000
    assert P.parse_error_body("Bad Gateway").message == "Bad Gateway"


def test_unexpected_envelope_is_a_data_error_not_a_traceback():
    with pytest.raises(DataError, match="base URL"):
        P.parse_gamma_markets({"unexpected": 1})
    with pytest.raises(DataError):
        P.parse_books("<html>")


@pytest.mark.parametrize(
    "raw, want",
    [
        ("TRADE_STATUS_MATCHED", "MATCHED"),
        ("trade_status_mined", "MINED"),
        ("CONFIRMED", "CONFIRMED"),
        ("TRADE_STATUS_RETRYING", "RETRYING"),
        ("failed", "FAILED"),
    ],
)
def test_trade_status_is_normalised_for_the_ledger(raw, want):
    """Issue 13 finding 4: REST may prefix TRADE_STATUS_; the ledger keys on the bare status."""
    t = P.parse_clob_trade(
        {"id": "t", "asset_id": "1", "side": "BUY", "size": "1", "price": "0.5", "status": raw}
    )
    assert t.status == want
