"""The live client against the simulator's INDEPENDENT exchange rules (polybot/sim/RULES.md),
over real HTTP, plus pure tests of the amount math — issue 13's client-side findings.

Each test names the finding it covers; each fails on commit 15cb2c7's client:
market orders built with the limit-order builder (precision 400), float sizes (37.72 for
37.73), a tick cached forever, a heartbeat id never adopted, Protocol-V2 positions signed
for ExchangeV2, "matched" with unreadable trades reported as 0 matched, unvalidated
signature types.
"""

import json
import time
from decimal import Decimal

import httpx
import pytest

from polybot.config import PolymarketConfig
from polybot.errors import ConfigError, OrderRejected
from polybot.exchange import amounts as A
from polybot.exchange.base import TICK_SIZE_CHANGED, OrderRequest
from polybot.exchange.live import LiveExchange

KEY = "0x" + "11" * 32  # test-only keys
OTHER_KEY = "0x" + "22" * 32
M = 1_000_000


# ----------------------------------------------------------------------------- helpers
def _admin(sim, path: str, body=None):
    url = f"{sim.url}/_sim/{path}"
    r = httpx.post(url, json=body, timeout=10) if body is not None else httpx.get(url, timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def _live(sim, reader=None, key=KEY, **kw):
    kw.setdefault("signature_type", 0)
    return LiveExchange(
        clob_url=sim.clob_url,
        private_key=key,
        chain_id=137,
        timeout_seconds=5,
        max_retries=2,
        sleep=lambda s: None,
        reader=reader,
        **kw,
    )


@pytest.fixture
def live(sim, reader):
    ex = _live(sim, reader)
    yield ex
    ex.close()


def _markets(reader, version=None):
    markets, _ = reader.list_markets(limit=100)
    return [
        m
        for m in markets
        if m.accepting_orders and not m.closed and (version is None or m.version == version)
    ]


def _set_book(sim, token, bids, asks):
    _admin(sim, "book", {"token_id": token, "bids": bids, "asks": asks})


def _plain_token(reader, sim, bids=(("0.50", "500"),), asks=(("0.53", "500"),)):
    """A v1, non-neg-risk token with a deterministic book."""
    m = next(m for m in _markets(reader, "v1") if not m.neg_risk)
    token = m.token_ids[0]
    _set_book(sim, token, [list(b) for b in bids], [list(a) for a in asks])
    return token


def _wait(cond, what, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ----------------------------------------------------------------------------- finding 1 + 9: amounts (pure)
@pytest.mark.parametrize("tick", A.TICKS)
def test_market_amounts_obey_the_precision_rule_and_never_overspend(tick):
    """Finding 1: FAK/FOK maker ≤ 2 decimals, taker ≤ 4, at every tick; never more pUSD
    than size×price, never more shares than asked, implied price within one tick of P."""
    t = A.tick_micro(tick)
    prices = sorted({t, 2 * t, 7 * t, (M // 2 // t) * t, M - t, M - 3 * t, 530_000 // t * t})
    sizes = [5 * M, 9_970_000, 37_730_000, 10_123_456, 1_000_001 * 3, 250 * M + 7]
    checked = 0
    for p in prices:
        for s in sizes:
            for side in ("BUY", "SELL"):
                try:
                    a = A.market_amounts(side, p, tick, size_micro=s)
                except A.AmountError as exc:  # only the $1 BUY minimum may refuse here
                    assert side == "BUY" and s * p // M < A.MIN_MARKET_BUY_MICRO + A.CENT, exc
                    continue
                checked += 1
                assert a.maker_micro % 10_000 == 0 and a.taker_micro % 100 == 0, (side, p, s, a)
                assert 0 < a.shares_micro <= s
                implied = Decimal(a.usd_micro) / Decimal(a.shares_micro)
                assert abs(implied - Decimal(p) / M) < Decimal(t) / M, (side, p, s, implied)
                if side == "BUY":
                    assert a.maker_micro * M <= s * p  # never spends more than size × P
    assert checked > 30


def test_the_issue_examples():
    """Finding 1's figures: BUY 37.73 @ 0.53 (the limit builder signed 19.9969 pUSD) and a
    SELL on a 0.001-tick market (signed 9.97805 pUSD); finding 9: 37.73 shares stay 37.73."""
    buy = A.market_amounts("BUY", 530_000, "0.01", size_micro=37_730_000)
    assert (buy.maker_micro, buy.taker_micro) == (19_990_000, 37_716_900)
    sell = A.market_amounts("SELL", 985_000, "0.001", size_micro=10_130_000)
    assert (sell.maker_micro, sell.taker_micro) == (10_130_000, 9_978_000)
    assert A.limit_amounts("BUY", 530_000, 37_730_000, "0.01").taker_micro == 37_730_000
    assert A.limit_amounts("SELL", 953_000, 37_730_000, "0.001").taker_micro == 35_956_690
    with pytest.raises(A.AmountError, match=r"at least \$1"):
        A.market_amounts("BUY", 100_000, "0.01", size_micro=5 * M)  # $0.50
    with pytest.raises(A.AmountError, match="not a multiple"):
        A.limit_amounts("BUY", 535_000, 10 * M, "0.01")


# ----------------------------------------------------------------------------- finding 1 against the sim
@pytest.mark.parametrize("tick", ["0.01", "0.001"])
def test_fak_entry_and_exit_are_accepted_at_any_tick(sim, reader, live, tick):
    """Finding 1: the simulator rejects market orders with more than 2/4 decimals
    (RULES.md §2). 15cb2c7 signed FAK BUY 37.73 @ 0.53 as 19.9969 pUSD → 400."""
    token = _plain_token(reader, sim)
    if tick == "0.001":
        _admin(sim, "ticks", {"token_id": token, "tick": "0.001"})
    buy = live.submit(
        live.prepare(
            OrderRequest(token, "BUY", "FAK", price_micro=530_000, size_micro=37_730_000, tick_size="0.01")
        )
    )
    assert buy.status == "matched", buy
    got = sum(f.size_micro for f in buy.fills)
    assert 0 < got <= 37_730_000
    # the exit: sell what we got at "any price" (the tick)
    sell = live.submit(
        live.prepare(
            OrderRequest(token, "SELL", "FAK", price_micro=A.tick_micro(tick), size_micro=got, tick_size=tick)
        )
    )
    assert sell.status == "matched", sell
    assert sum(f.size_micro for f in sell.fills) == got // 10_000 * 10_000


def test_gtc_signs_the_exact_size(sim, reader, live):
    """Finding 9: float rounding signed 37.72 shares for 37.73 (floor(37.73 * 100) = 3772)."""
    token = _plain_token(reader, sim)
    p = live.prepare(OrderRequest(token, "BUY", "GTC", price_micro=450_000, size_micro=37_730_000))
    order = json.loads(p.payload_json)["order"]
    assert (order["takerAmount"], order["makerAmount"]) == ("37730000", "16978500")
    res = live.submit(p)
    assert res.status == "live", res
    st = live.resolve(p)
    assert st.original_size_micro == 37_730_000 and st.price_micro == 450_000
    live.cancel_all()


# ----------------------------------------------------------------------------- finding 8: tick changes
def test_tick_change_refreshes_the_tick_and_exits_ride_it(sim, reader, live):
    token = _plain_token(reader, sim, bids=(("0.50", "500"),), asks=(("0.53", "500"),))
    assert live.tick_size(token) == "0.01"  # held from now on
    # the market goes fine-tick: a price on the 0.001 grid is signed (15cb2c7: the SDK's cached
    # tick refused it, "invalid tick size (0.001), minimum for the market is 0.01")
    _admin(sim, "ticks", {"token_id": token, "tick": "0.001"})
    fine = live.prepare(
        OrderRequest(token, "BUY", "GTC", price_micro=452_000, size_micro=10 * M, tick_size="0.001")
    )
    assert fine.request.tick_size == "0.001"
    # ... and coarsens again before it is sent: the exchange says the price breaks the tick
    # rule; nothing rests, the result says why, and the tick we hold is refreshed
    _admin(sim, "ticks", {"token_id": token, "tick": "0.01"})
    res = live.submit(fine)
    assert res.status == "rejected" and res.code == TICK_SIZE_CHANGED, res
    assert "tick" in res.error
    assert live.tick_size(token) == "0.01"
    assert live.resolve(fine) is None  # never placed; never re-posted
    # an exit priced on the old fine tick (0.001, "any price") still goes out at the new tick
    bought = live.submit(
        live.prepare(
            OrderRequest(token, "BUY", "FAK", price_micro=530_000, size_micro=10 * M, tick_size="0.01")
        )
    )
    shares = sum(f.size_micro for f in bought.fills)
    assert shares > 0
    exit_ = live.prepare(
        OrderRequest(token, "SELL", "FAK", price_micro=1_000, size_micro=shares, tick_size="0.001")
    )
    assert exit_.request.price_micro == 10_000 and exit_.request.tick_size == "0.01"
    out = live.submit(exit_)
    assert out.status == "matched", out
    # a GTC off the current tick is refused before signing, with the tick in the sentence
    with pytest.raises(OrderRejected, match="0.01"):
        live.prepare(OrderRequest(token, "BUY", "GTC", price_micro=452_000, size_micro=10 * M))


# ----------------------------------------------------------------------------- finding 6: heartbeat ids
def test_heartbeat_adopts_the_expected_id_after_a_miss(sim, reader, live):
    live.heartbeat()
    live.heartbeat()
    # another process with the same key answers a heartbeat in between: the id we hold is stale
    twin = _live(
        sim,
        api_key=live._sdk.creds.api_key,
        api_secret=live._sdk.creds.api_secret,
        api_passphrase=live._sdk.creds.api_passphrase,
    )
    twin._heartbeat_id = live._heartbeat_id
    twin.heartbeat()
    stale = live._heartbeat_id
    live.heartbeat()  # 15cb2c7: RequestRejected, forever
    assert live._heartbeat_id != stale
    acct = _admin(sim, f"accounts?address={live.address}")
    assert acct["heartbeat_id"] == live._heartbeat_id and acct["heartbeat_active"]
    live.heartbeat()  # and the session goes on
    twin.close()


# ----------------------------------------------------------------------------- finding 7: positionIds markets
@pytest.mark.parametrize("declared", [None, "v2"])
def test_protocol_v2_positions_sign_for_exchange_v3(sim, reader, live, declared):
    """Finding 7: a positionIds market's order must be signed for ExchangeV3, domain "3"
    (RULES.md §1); 15cb2c7 signed ExchangeV2 → 400 invalid signature."""
    m = _markets(reader, "v2")[0]
    token = m.token_ids[0]
    _set_book(sim, token, [["0.40", "100"]], [["0.45", "100"]])
    req = OrderRequest(token, "BUY", "GTC", price_micro=380_000, size_micro=10 * M, market_version=declared)
    prepared = live.prepare(req)
    res = live.submit(prepared)
    assert res.status == "live", res
    assert res.exchange_order_id.lower() == prepared.order_hash.lower()  # our V3 hash = the sim's id
    bought = live.submit(
        live.prepare(
            OrderRequest(token, "BUY", "FAK", price_micro=450_000, size_micro=5 * M, market_version=declared)
        )
    )
    assert bought.status == "matched", bought
    live.cancel_all()


def test_a_v1_token_is_never_signed_for_exchange_v3(sim, reader, live):
    token = _plain_token(reader, sim)
    p = live.prepare(
        OrderRequest(token, "BUY", "GTC", price_micro=450_000, size_micro=10 * M, market_version="v2")
    )  # a wrong declaration is refused
    assert live.submit(p).status == "rejected"


# ----------------------------------------------------------------------------- finding 4: trade status
def test_fills_carry_the_trade_status_through_failed(sim, reader, live):
    token = _plain_token(reader, sim)
    _admin(sim, "lifecycle", {"mined_after": 2, "confirmed_after": 5})
    _admin(sim, f"accounts?address={live.address}")  # the sim meets the account
    _admin(sim, "trades/fail", {"address": live.address, "next": 1})
    bad = live.submit(live.prepare(OrderRequest(token, "BUY", "FAK", price_micro=530_000, size_micro=10 * M)))
    good = live.submit(
        live.prepare(OrderRequest(token, "BUY", "FAK", price_micro=530_000, size_micro=10 * M))
    )
    assert bad.status == good.status == "matched"
    assert {f.status for f in bad.fills + good.fills} == {"MATCHED"}
    assert not any(f.final for f in bad.fills + good.fills)
    _admin(sim, "advance", {"seconds": 6})
    st_bad, st_good = live.lookup(bad.exchange_order_id), live.lookup(good.exchange_order_id)
    assert {f.status for f in st_bad.fills} == {"FAILED"} and all(f.failed for f in st_bad.fills)
    assert {f.status for f in st_good.fills} == {"CONFIRMED"}
    assert all(f.final and f.updated_ts >= f.ts for f in st_good.fills)
    by_id = {f.trade_id: f.status for f in live.trades()}
    assert {by_id[f.trade_id] for f in bad.fills} == {"FAILED"}


# ----------------------------------------------------------------------------- finding 9: matched but unread
def test_matched_with_unreadable_trades_is_pending_not_nothing(sim, reader, live):
    """15cb2c7 returned status matched with size 0 and no fills; the engine recorded the
    order CANCELED and never read its fills. Now: the size the answer states, fills_pending."""
    token = _plain_token(reader, sim)
    p = live.prepare(OrderRequest(token, "BUY", "FAK", price_micro=530_000, size_micro=10 * M))
    shares = int(json.loads(p.payload_json)["order"]["takerAmount"])
    sim.sim.set_faults(burst="500:2", path="/clob/data/trades")
    try:
        res = live.submit(p)
    finally:
        sim.sim.clear_faults()
    assert res.status == "matched" and res.fills_pending and res.fills == ()
    assert 0 < res.size_matched_micro <= shares
    st = live.lookup(res.exchange_order_id)  # the caller polls; fills appear
    assert sum(f.size_micro for f in st.fills) == res.size_matched_micro


# ----------------------------------------------------------------------------- finding 9: maker fills
def test_maker_fill_in_maker_orders_is_attributed_to_our_order():
    """A /data/trades row where we are one of the makers (the shape in Polymarket's docs:
    ``maker_orders[]`` with order_id/owner/maker_address/matched_amount/price/side): only
    our entry becomes our fill, attributed to our order, at our price and size."""
    ex = LiveExchange(clob_url="http://127.0.0.1:9/clob", private_key=KEY, signature_type=0)
    ours = "0x" + "ab" * 32
    row = {
        "id": "t-1",
        "taker_order_id": "0x" + "cd" * 32,
        "market": "0x" + "01" * 32,
        "asset_id": "123",
        "side": "SELL",
        "size": "15",
        "fee_rate_bps": "0",
        "price": "0.45",
        "status": "TRADE_STATUS_MINED",
        "match_time": "1767225600",
        "last_update": "1767225610",
        "outcome": "Yes",
        "owner": "someone-else",
        "maker_address": "0x" + "99" * 20,
        "transaction_hash": "0x1",
        "trader_side": "MAKER",
        "maker_orders": [
            {
                "order_id": "0x" + "ee" * 32,
                "owner": "someone-else",
                "maker_address": "0x" + "99" * 20,
                "matched_amount": "5",
                "price": "0.45",
                "fee_rate_bps": "0",
                "asset_id": "123",
                "outcome": "Yes",
                "side": "BUY",
            },
            {
                "order_id": ours,
                "owner": "not-our-key",
                "maker_address": ex.address.lower(),
                "matched_amount": "10",
                "price": "0.44",
                "fee_rate_bps": "0",
                "asset_id": "123",
                "outcome": "Yes",
                "side": "BUY",
            },
        ],
    }
    [f] = ex._fills_of_trade(row)
    assert (f.order_id, f.side, f.size_micro, f.price_micro, f.liquidity) == (
        ours,
        "BUY",
        10 * M,
        440_000,
        "maker",
    )
    assert f.status == "MINED" and f.fee_micro == 0 and f.trade_id == f"t-1:{ours}"
    assert ex._fills_of_trade(row, ours) == [f] and ex._fills_of_trade(row, "0x" + "ee" * 32) == []
    ex.close()


def test_resting_order_filled_as_maker_shows_under_our_order(sim, reader, live):
    token = _plain_token(reader, sim, bids=(("0.40", "100"),), asks=(("0.45", "100"),))
    res = live.submit(live.prepare(OrderRequest(token, "BUY", "GTC", price_micro=420_000, size_micro=10 * M)))
    assert res.status == "live"
    other_key = LiveExchange(
        clob_url=sim.clob_url, private_key=OTHER_KEY, timeout_seconds=5, max_retries=2, sleep=lambda s: None
    )
    try:
        # the other account needs shares to sell: buy them first, then sell into our bid
        got = other_key.submit(
            other_key.prepare(OrderRequest(token, "BUY", "FAK", price_micro=450_000, size_micro=10 * M))
        )
        shares = sum(f.size_micro for f in got.fills)
        sold = other_key.submit(
            other_key.prepare(
                OrderRequest(token, "SELL", "FAK", price_micro=420_000, size_micro=min(shares, 4 * M))
            )
        )
        assert sold.status == "matched", sold
        st = _wait(lambda: (s := live.lookup(res.exchange_order_id)) and s.fills and s, "our maker fill")
        assert st.status == "live" and st.size_matched_micro == 4 * M
        assert [(f.liquidity, f.order_id.lower(), f.size_micro, f.price_micro) for f in st.fills] == [
            ("maker", res.exchange_order_id.lower(), 4 * M, 420_000)
        ]
    finally:
        live.cancel_all()
        other_key.close()


# ----------------------------------------------------------------------------- finding 9: lookup cost
def test_lookup_reads_trades_by_id_or_by_token_and_time_never_the_whole_history(sim, reader, live):
    token = _plain_token(reader, sim)
    res = live.submit(live.prepare(OrderRequest(token, "BUY", "FAK", price_micro=530_000, size_micro=10 * M)))
    calls = []
    real = live._sdk.get_trades

    def spy(params=None, *a, **kw):
        calls.append(params)
        return real(params, *a, **kw)

    live._sdk.get_trades = spy
    st = live.lookup(res.exchange_order_id)
    assert st is not None and st.fills
    assert calls and all(p.id or (p.asset_id and p.after) for p in calls), calls
    calls.clear()
    assert live.lookup("0x" + "77" * 32) is None  # unknown id: a bounded window only
    assert calls and all(p.id or p.after for p in calls), calls
    calls.clear()
    never_sent = live.prepare(OrderRequest(token, "BUY", "GTC", price_micro=450_000, size_micro=10 * M))
    assert live.resolve(never_sent) is None  # by hash, then by terms: both bounded
    assert calls and all(p.id or (p.asset_id and p.after) for p in calls), calls


# ----------------------------------------------------------------------------- finding 5: signature types
def test_signature_type_rules_are_one_sentence_each():
    from eth_account import Account

    eoa = Account.from_key(KEY).address
    safe = "0x" + "5a" * 20
    ok = PolymarketConfig.signing_problem
    assert ok(0, None, eoa) is None and ok(0, "", eoa) is None and ok(0, eoa.lower(), eoa) is None
    assert ok(2, safe, eoa) is None and ok(1, safe, eoa) is None and ok(3, safe, eoa) is None
    assert "signature_type 0" in ok(0, safe, eoa) and "funder_address" in ok(0, safe, eoa)
    for t in (1, 2, 3):
        assert "POLYMARKET_FUNDER_ADDRESS" in ok(t, None, eoa)
        assert "not the key's own address" in ok(t, eoa, eoa)
    assert "0x address" in ok(2, "0x1234", eoa)
    for t, f in ((2, None), (0, safe), (1, eoa)):
        with pytest.raises(ConfigError) as ei:
            LiveExchange(clob_url="http://127.0.0.1:9/clob", private_key=KEY, signature_type=t, funder=f)
        assert "11" * 32 not in str(ei.value) and str(ei.value).count(". ") == 0
    assert LiveExchange(clob_url="http://127.0.0.1:9/clob", private_key=KEY).address == eoa


def test_validate_config_shows_the_signature_type_sentence(tmp_path):
    from pathlib import Path

    from polybot.validation import validate

    text = (Path(__file__).resolve().parents[2] / "config.yaml.example").read_text(encoding="utf-8")
    text = text.replace("signature_type: 0", "signature_type: 2")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text, encoding="utf-8")
    env = {
        "POLYMARKET_PRIVATE_KEY": KEY,
        "POLYMARKET_API_KEY": "k",
        "POLYMARKET_API_SECRET": "c2VjcmV0c2VjcmV0",
        "POLYMARKET_API_PASSPHRASE": "p",
    }
    lines = [c.line() for c in validate(str(cfg), env=env)]
    assert any("signature_type 2" in ln and "POLYMARKET_FUNDER_ADDRESS" in ln for ln in lines), lines


@pytest.mark.parametrize("sig_type", [1, 2])
def test_proxy_and_safe_accounts_trade_with_their_funder(sim, reader, sig_type):
    """Types 1/2 sign with maker = the registered proxy/Safe (RULES.md §1 step 6); 15cb2c7's
    default 2 without a funder signed maker = EOA → 400 invalid signature."""
    probe = _live(sim)
    funder = _admin(sim, f"accounts?address={probe.address}")["funders"][str(sig_type)]
    probe.close()
    ex = _live(sim, reader, signature_type=sig_type, funder=funder)
    token = _plain_token(reader, sim)
    try:
        res = ex.submit(ex.prepare(OrderRequest(token, "BUY", "GTC", price_micro=450_000, size_micro=10 * M)))
        assert res.status == "live", res
        assert (
            json.loads(
                ex.prepare(
                    OrderRequest(token, "BUY", "GTC", price_micro=450_000, size_micro=10 * M)
                ).payload_json
            )["order"]["maker"]
            == funder
        )
    finally:
        ex.cancel_all()
        ex.close()


def test_type3_deposit_wallet_orders_are_signed_by_the_wallet_with_the_1271_wrap():
    """Finding 5, type 3 (POLY_1271), the signed order itself (the simulator verifies it over
    HTTP in test_sim_exchange_rules.py and test_live_end_to_end.py): signer = maker = the deposit wallet, the
    ERC-7739 wrap of 317 bytes (docs/dev/signature_types.md), and the order id is the digest of
    the domain embedded in the wrap (ExchangeV2 / neg-risk / ExchangeV3)."""
    from py_clob_client_v2.config import get_contract_config
    from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2

    from polybot.exchange.clob_sdk import eip712_order_hash

    wallet = "0x" + "d3" * 20
    ex = LiveExchange(clob_url="http://127.0.0.1:9/clob", private_key=KEY, signature_type=3, funder=wallet)
    cfg = get_contract_config(137)
    for neg_risk, position, (address, version) in (
        (False, False, (cfg.exchange_v2, "2")),
        (True, False, (cfg.neg_risk_exchange_v2, "2")),
        (False, True, (cfg.exchange_v3, "3")),
    ):
        signed = ex._sdk.sign_v2(
            token_id="123",
            side="BUY",
            maker_amount=4_500_000,
            taker_amount=10_000_000,
            neg_risk=neg_risk,
            position=position,
        )
        assert signed.maker.lower() == signed.signer.lower() == wallet and int(signed.signatureType) == 3
        assert len(signed.signature) == 2 + 2 * 317
        b = ExchangeOrderBuilderV2(address, 137, None, domain_version=version)
        assert b.app_domain_separator.hex() in signed.signature
        assert eip712_order_hash(signed, 137) == b.build_order_hash(b.build_order_typed_data(signed))
    ex.close()


@pytest.mark.parametrize("declared", [None, True])
def test_neg_risk_markets_sign_for_the_neg_risk_exchange(sim, reader, live, declared):
    m = next(m for m in _markets(reader, "v1") if m.neg_risk)
    token = m.token_ids[0]
    _set_book(sim, token, [["0.40", "100"]], [["0.45", "100"]])
    p = live.prepare(
        OrderRequest(token, "BUY", "GTC", price_micro=380_000, size_micro=10 * M, neg_risk=declared)
    )
    res = live.submit(p)
    assert res.status == "live" and res.exchange_order_id.lower() == p.order_hash.lower(), res
    live.cancel_all()


def test_market_buy_by_amount_spends_at_most_the_amount(sim, reader, live):
    """A FAK BUY by pUSD without a worst price: the SDK's book walk picks it; the signed
    amounts follow the market-order rule (maker 2 decimals = the amount, taker 4)."""
    token = _plain_token(reader, sim, bids=(("0.50", "500"),), asks=(("0.53", "500"),))
    before = live.balance_micro()
    p = live.prepare(OrderRequest(token, "BUY", "FAK", amount_micro=5_005_000))
    order = json.loads(p.payload_json)["order"]
    assert order["makerAmount"] == "5000000" and int(order["takerAmount"]) % 100 == 0
    assert p.request.price_micro == 530_000
    res = live.submit(p)
    assert res.status == "matched", res
    spent = before - live.balance_micro()
    assert 0 < spent <= 5_000_000 + sum(f.fee_micro for f in res.fills)


def test_market_orders_at_exactly_the_best_price_fill_on_a_fine_tick(sim, reader, live):
    """The rounding direction: a FAK priced exactly at the best ask / best bid must reach
    that level. Rounding the 4-decimal amount the other way (implied price strictly inside
    P) is read by the exchange as one tick worse (RULES.md §2) and kills the order."""
    m = next(m for m in _markets(reader, "v1") if not m.neg_risk)
    token = m.token_ids[0]
    _admin(sim, "ticks", {"token_id": token, "tick": "0.001"})
    _set_book(sim, token, [["0.953", "100"]], [["0.957", "100"]])
    buy = live.prepare(OrderRequest(token, "BUY", "FAK", price_micro=957_000, size_micro=10_130_000))
    a = json.loads(buy.payload_json)["order"]
    assert Decimal(a["makerAmount"]) / Decimal(a["takerAmount"]) != Decimal("0.957")  # not exact
    got = live.submit(buy)
    assert got.status == "matched", got
    shares = sum(f.size_micro for f in got.fills)
    assert shares > 0 and all(f.price_micro == 957_000 for f in got.fills)
    sell = live.submit(
        live.prepare(OrderRequest(token, "SELL", "FAK", price_micro=953_000, size_micro=shares))
    )
    assert sell.status == "matched", sell
    assert all(f.price_micro == 953_000 for f in sell.fills)


@pytest.mark.parametrize(
    "taking, want",
    [("4.599999", 4_599_999), ("10", 10_000_000), ("10000000", 10_000_000), ("99999999999", 0), ("", 0)],
)
def test_answer_amounts_read_as_decimals_or_base_units_never_above_the_signed_shares(taking, want):
    """Real POST /order answers state decimals ("4.599999"), the docs' example base units
    ("100000000"): either way the shares said matched never exceed the order's signed shares."""
    from polybot.exchange import parse as P
    from polybot.exchange.base import PreparedOrder
    from polybot.exchange.live import _answer_shares

    req = OrderRequest("1", "BUY", "FAK", price_micro=500_000, size_micro=10 * M)
    prepared = PreparedOrder(
        "h", "h", json.dumps({"order": {"takerAmount": "10000000", "makerAmount": "5000000"}}), req
    )
    parsed = P.parse_order_post_response(
        {"success": True, "status": "matched", "orderID": "h", "makingAmount": "", "takingAmount": taking}
    )
    assert _answer_shares(parsed, prepared) == want
