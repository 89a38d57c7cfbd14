"""The simulator's independent exchange rules (polybot/sim/RULES.md §0-§2), over real
HTTP with orders signed by tests/sim/helpers.py (eth_account's EIP-712 encoder: neither
polybot.exchange, nor py_clob_client_v2, nor the simulator's own encoder).

Each rule: a bad order is rejected with the real CLOB's message and a good one is accepted.
Lifecycle rules (heartbeats, modes, partial fills, trade statuses, run-time ticks) are in
test_sim_exchange_lifecycle.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.sim.helpers import EXCHANGE_V2, EXCHANGE_V3, NEG_RISK_EXCHANGE_V2, SimTrader, order_id

ROOT = Path(__file__).resolve().parents[2]
SIGNER_NOT_KEY = "the order signer address has to be the address of the API KEY"
KEY_A = "0x" + "a1" * 32
KEY_B = "0x" + "b2" * 32
M = 1_000_000


def open_market(sim, *, tick=0.01, neg_risk=False, v2=False, kind=None):
    s = sim.sim
    return next(
        m
        for m in s.world.markets
        if m.tick == tick
        and m.neg_risk == neg_risk
        and m.is_v2 == v2
        and not m.empty_side
        and not m.resolution
        and s.phase(m.index) == "open"
        and (kind is None or m.kind == kind)
    )


def best(sim, token):
    b = requests.get(sim.clob_url + "/book", params={"token_id": token}, timeout=10).json()
    return float(b["bids"][-1]["price"]), float(b["asks"][-1]["price"]), b


def micro(x: float) -> int:
    return int(round(x * M))


def resting_buy(trader, m, token, shares=10, **kw):
    """A GTC BUY of ``shares`` 5 ticks under the best bid (rests)."""
    bid, _, _ = best_from(trader, token)
    nt = round(1 / m.tick)
    ticks = round(bid * nt) - 5
    return trader.sign(token, shares * ticks * M // nt, shares * M, "BUY", market=m, **kw)


def best_from(trader, token):
    b = requests.get(trader.url + "/book", params={"token_id": token}, timeout=10).json()
    return float(b["bids"][-1]["price"]), float(b["asks"][-1]["price"]), b


def error(r) -> str:
    return r.json().get("error", "")


@pytest.fixture
def a(sim):
    return SimTrader(sim.clob_url, KEY_A)


@pytest.fixture
def http_session():
    with requests.Session() as s:
        yield s


# ----------------------------------------------------------------------------- §1 order id, signature


def test_order_id_is_the_eip712_digest_and_a_tampered_order_is_an_invalid_signature(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    good = resting_buy(a, m, tok)
    r = a.post_order(good)
    assert r.status_code == 200 and r.json()["success"] and r.json()["status"] == "live", r.text
    assert r.json()["orderID"] == order_id(good, EXCHANGE_V2, "2")  # computed by eth_account here
    tampered = resting_buy(a, m, tok)
    tampered["makerAmount"] = str(int(tampered["makerAmount"]) - 10_000)  # edited after signing
    r = a.post_order(tampered)
    assert r.status_code == 400 and error(r) == "invalid signature"
    other_chain = a.sign(
        tok, int(good["makerAmount"]), int(good["takerAmount"]), "BUY", market=m, chain_id=80002
    )
    assert error(a.post_order(other_chain)) == "invalid signature"
    garbage = dict(resting_buy(a, m, tok), signature="0x" + "12" * 65)
    assert error(a.post_order(garbage)) == "invalid signature"
    # signed by B's key while claiming A as signer: the recovered address differs
    forged = a.sign(tok, int(good["makerAmount"]), int(good["takerAmount"]), "BUY", market=m, key=KEY_B)
    assert error(a.post_order(forged)) == "invalid signature"


def test_neg_risk_market_orders_must_be_signed_for_the_neg_risk_exchange(sim, a):
    m = open_market(sim, neg_risk=True)
    tok = m.token_ids[0]
    plain = resting_buy(a, m, tok, contract=EXCHANGE_V2, version="2")
    r = a.post_order(plain)
    assert r.status_code == 400 and error(r) == "invalid signature"  # py-clob-client #79
    good = resting_buy(a, m, tok, contract=NEG_RISK_EXCHANGE_V2, version="2")
    r = a.post_order(good)
    assert r.status_code == 200 and r.json()["status"] == "live", r.text
    assert r.json()["orderID"] == order_id(good, NEG_RISK_EXCHANGE_V2, "2")


def test_positionids_market_orders_are_signed_for_exchange_v3_by_position_id(sim, a):
    m = open_market(sim, v2=True)
    g = requests.get(sim.gamma_url + f"/markets/{m.id}", timeout=10).json()
    assert g["version"] == "v2" and "clobTokenIds" not in g
    pos_id = g["positionIds"][0]
    bid, ask, book = best(sim, pos_id)
    assert book["asset_id"] == pos_id
    v2_domain = a.sign(pos_id, 10 * micro(ask), 10 * M, "BUY", contract=EXCHANGE_V2, version="2")
    assert error(a.post_order(v2_domain)) == "invalid signature"
    wrong_version = a.sign(pos_id, 10 * micro(ask), 10 * M, "BUY", contract=EXCHANGE_V3, version="2")
    assert error(a.post_order(wrong_version)) == "invalid signature"
    good = a.sign(pos_id, 10 * micro(ask), 10 * M, "BUY", contract=EXCHANGE_V3, version="3")
    r = a.post_order(good)
    assert r.status_code == 200 and r.json()["status"] == "matched", r.text
    assert r.json()["orderID"] == order_id(good, EXCHANGE_V3, "3")
    (trade,) = a.trades()
    assert trade["asset_id"] == pos_id and a.balance(pos_id) == 10 * M


def test_signer_must_be_the_api_keys_owner(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    b = SimTrader(sim.clob_url, KEY_B)
    bs_order = resting_buy(b, m, tok)  # B's valid order ...
    r = a.post_order(bs_order)  # ... posted with A's API key
    assert (
        r.status_code == 400 and error(r) == "the order signer address has to be the address of the API KEY"
    )
    r = a.request("POST", "/order", b.body(resting_buy(a, m, tok)))  # owner = B's key, auth = A's
    assert error(r) == "the order owner has to be the owner of the API KEY"
    assert b.post_order(bs_order).json()["success"] is True


# ----------------------------------------------------------------------------- §1 maker / funder binding


def test_maker_must_be_the_funder_of_the_signature_type(sim, a, http_session):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    acct = http_session.get(sim.url + "/_sim/accounts", params={"address": a.address}).json()
    proxy, safe = acct["funders"]["1"], acct["funders"]["2"]
    assert acct["funders"]["0"] == a.address.lower() and len({proxy, safe, a.address.lower()}) == 3
    # type 0 (EOA): maker must be the signer
    assert error(a.post_order(resting_buy(a, m, tok, maker=proxy))) == "invalid signature"
    assert a.post_order(resting_buy(a, m, tok)).json()["success"]
    # type 1 (POLY_PROXY): maker must be the proxy wallet (py-clob-client-v2 #104)
    assert (
        error(a.post_order(resting_buy(a, m, tok, signature_type=1, maker=safe)))
        == "invalid POLY_PROXY signature"
    )
    assert error(a.post_order(resting_buy(a, m, tok, signature_type=1))) == "invalid POLY_PROXY signature"
    r = a.post_order(resting_buy(a, m, tok, signature_type=1, maker=proxy))
    assert r.json()["success"], r.text
    # type 2 (POLY_GNOSIS_SAFE): maker must be the Safe (py-clob-client #277)
    assert error(a.post_order(resting_buy(a, m, tok, signature_type=2, maker=proxy))) == "invalid signature"
    assert a.post_order(resting_buy(a, m, tok, signature_type=2, maker=safe)).json()["success"]
    # a registered funder replaces the default one
    mine = "0x" + "5a" * 20
    acct = http_session.post(
        sim.url + "/_sim/accounts", json={"address": a.address, "funders": {"2": mine}}
    ).json()
    assert acct["funders"]["2"] == mine
    assert error(a.post_order(resting_buy(a, m, tok, signature_type=2, maker=safe))) == "invalid signature"
    assert a.post_order(resting_buy(a, m, tok, signature_type=2, maker=mine)).json()["success"]
    # the Data API finds the account by its funder
    assert http_session.get(sim.data_url + "/value", params={"user": mine}).status_code == 200
    # type 3 (POLY_1271) with a proxy/Safe as the wallet: not the key's deposit wallet
    r = a.post_order(resting_buy(a, m, tok, signature_type=3, maker=mine))
    assert r.status_code == 400 and error(r) == SIGNER_NOT_KEY


def test_admin_accounts_rejects_bad_input(sim, http_session):
    url = sim.url + "/_sim/accounts"
    assert http_session.post(url, json={"address": "0x12"}).status_code == 400
    r = http_session.post(url, json={"address": "0x" + "ab" * 20, "funders": {"0": "0x" + "cd" * 20}})
    assert r.status_code == 400 and "types 1, 2 and 3" in r.json()["error"]
    # a wallet has one owner: another account's wallet (or EOA) cannot be registered, nothing changes
    other = http_session.get(url, params={"address": "0x" + "ef" * 20}).json()
    r = http_session.post(
        url,
        json={"address": "0x" + "ab" * 20, "funders": {"2": "0x" + "99" * 20, "3": other["funders"]["3"]}},
    )
    assert r.status_code == 400 and "already belongs to account 0x" + "ef" * 20 in r.json()["error"]
    assert (
        http_session.get(url, params={"address": "0x" + "ab" * 20}).json()["funders"]["2"] != "0x" + "99" * 20
    )
    r = http_session.post(url, json={"address": "0x" + "ab" * 20, "funders": {"1": "0x" + "ef" * 20}})
    assert r.status_code == 400


# ----------------------------------------------------------------------------- §1 type 3 (deposit wallet)


def deposit_wallet(sim, trader) -> str:
    return requests.get(sim.url + "/_sim/accounts", params={"address": trader.address}, timeout=10).json()[
        "funders"
    ]["3"]


def tamper(order: dict, start: int, end: int = None) -> dict:
    """The order with the signature's bytes [start, end) replaced by other bytes."""
    raw = bytearray(bytes.fromhex(order["signature"][2:]))
    end = start + 1 if end is None else end
    raw[start:end] = bytes((b ^ 0x5A) for b in raw[start:end])
    return dict(order, signature="0x" + raw.hex())


def test_type3_deposit_wallet_order_is_accepted_and_fills_for_the_owner(sim, a, http_session):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    wallet = deposit_wallet(sim, a)
    acct = http_session.get(sim.url + "/_sim/accounts", params={"address": a.address}).json()
    assert len({wallet, acct["funders"]["1"], acct["funders"]["2"], a.address.lower()}) == 4
    good = resting_buy(a, m, tok, signature_type=3, maker=wallet)
    assert good["maker"] == good["signer"] == wallet
    assert len(good["signature"]) == 2 + 2 * 317  # 65 + 32 + 32 + 186 + 2 bytes
    r = a.post_order(good)
    assert r.status_code == 200 and r.json()["status"] == "live", r.text
    assert r.json()["orderID"] == order_id(good, EXCHANGE_V2, "2")  # the plain EIP-712 order hash
    assert sim.sim.exchange.orders[r.json()["orderID"]].maker == wallet
    # a taker order fills; the account (found by its wallet too) owns the shares
    _, ask, _ = best(sim, tok)
    fak = a.sign(tok, 10 * micro(ask), 10 * M, "BUY", market=m, signature_type=3, maker=wallet)
    r = a.post_order(fak, "FAK")
    assert r.status_code == 200 and r.json()["status"] == "matched", r.text
    assert a.balance(tok) == 10 * M
    rows = http_session.get(sim.data_url + "/positions", params={"user": wallet}).json()
    assert [(p["asset"], p["size"]) for p in rows] == [(tok, 10)]
    r = http_session.post(sim.url + "/_sim/fund", json={"address": wallet, "amount": 321})
    assert r.json() == {"address": a.address.lower(), "balance": "321000000"}


def test_type3_wrap_parsing_follows_erc7739_contents_description_rules():
    """signing.split_1271 / recover_1271_owner as pure functions: Solady's implicit mode
    (description = contentsType) and explicit mode (contentsType ‖ contentsName) nest the same
    typehash; an empty or lower-case contentsName, or a wrong length field, is no signature."""
    from eth_account import Account

    from polybot.sim import signing
    from tests.sim.helpers import ORDER_TYPE_STRING, wrap_1271

    owner = Account.from_key(KEY_A).address
    wallet = signing.default_funder(owner, 3)
    o = {
        "salt": 7,
        "maker": wallet,
        "signer": wallet,
        "tokenId": "42",
        "makerAmount": "4500000",
        "takerAmount": "10000000",
        "side": "BUY",
        "signatureType": 3,
        "timestamp": "1765000000000",
        "metadata": "0x" + "00" * 32,
        "builder": "0x" + "00" * 32,
    }
    sig = bytes.fromhex(wrap_1271(o, EXCHANGE_V2, "2", KEY_A)[2:])
    head = sig[:129]

    def with_desc(desc: str) -> dict:
        d = desc.encode()
        return dict(o, signature="0x" + (head + d + len(d).to_bytes(2, "big")).hex())

    assert signing.recover_1271_owner(with_desc(ORDER_TYPE_STRING), EXCHANGE_V2, "2") == owner.lower()
    assert (
        signing.recover_1271_owner(with_desc(ORDER_TYPE_STRING + "Order"), EXCHANGE_V2, "2") == owner.lower()
    )
    for bad in ("o" + ORDER_TYPE_STRING[1:], ORDER_TYPE_STRING[5:], ORDER_TYPE_STRING + "Ord er"):
        assert signing.split_1271(with_desc(bad)["signature"]) is None, bad
    other_name = "Trade" + ORDER_TYPE_STRING[5:]  # a valid shape, another typehash
    assert signing.recover_1271_owner(with_desc(other_name), EXCHANGE_V2, "2") not in (None, owner.lower())
    good = with_desc(ORDER_TYPE_STRING)
    assert signing.recover_1271_owner(good, NEG_RISK_EXCHANGE_V2, "2") is None  # another exchange
    assert signing.recover_1271_owner(good, EXCHANGE_V2, "2", chain_id=80002) is None
    assert signing.split_1271(good["signature"][:-4] + "00bb") is None  # length ≠ contentsType
    assert signing.split_1271("0x1234") is None and signing.split_1271("0xzz") is None


def test_type3_signer_and_maker_must_be_the_keys_deposit_wallet(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    b = SimTrader(sim.clob_url, KEY_B)
    wallet, b_wallet = deposit_wallet(sim, a), deposit_wallet(sim, b)
    safe = requests.get(sim.url + "/_sim/accounts", params={"address": a.address}, timeout=10).json()[
        "funders"
    ]["2"]
    for maker, signer in [
        (b_wallet, b_wallet),  # another owner's deposit wallet
        (a.address, a.address),  # the EOA itself
        (wallet, a.address),  # signer = EOA (types 0-2's rule)
        (safe, wallet),  # maker ≠ signer
        ("0x" + "c3" * 20, "0x" + "c3" * 20),
    ]:  # an unknown wallet
        r = a.post_order(resting_buy(a, m, tok, signature_type=3, maker=maker, signer=signer))
        assert r.status_code == 400 and error(r) == SIGNER_NOT_KEY, (maker, signer, r.text)
    # B's valid type-3 order posted with A's API key: the wallet is not A's
    bs_order = resting_buy(b, m, tok, signature_type=3, maker=b_wallet)
    assert error(a.post_order(bs_order)) == SIGNER_NOT_KEY
    assert b.post_order(bs_order).json()["success"] is True  # the control


def test_type3_signature_must_be_the_wallet_owners_wrap_of_this_order(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    wallet = deposit_wallet(sim, a)

    def order(**kw):
        return resting_buy(a, m, tok, signature_type=3, maker=wallet, **kw)

    bad = {
        "signed by another key (not the wallet's owner)": order(key=KEY_B),
        "an order field edited after signing": dict(
            order(), makerAmount=str(int(order()["makerAmount"]) - 10_000)
        ),
        "owner signature bytes": tamper(order(), 10),
        "appDomainSeparator in the trailer": tamper(order(), 65 + 5),
        "contentsHash in the trailer": tamper(order(), 97 + 5),
        "contentsType in the trailer": tamper(order(), 129 + 40),
        "contentsType length": tamper(order(), 315, 317),
        "the trailer cut off (a plain 65-byte signature)": None,
        "a plain EIP-712 owner signature": None,
    }
    full = order()
    bad["the trailer cut off (a plain 65-byte signature)"] = dict(
        full, signature=full["signature"][: 2 + 130]
    )
    plain = a.sign(
        tok, int(full["makerAmount"]), int(full["takerAmount"]), "BUY", market=m, maker=wallet, signer=wallet
    )  # type-0 style signature ...
    bad["a plain EIP-712 owner signature"] = dict(plain, signatureType=3)  # ... claimed as type 3
    for what, o in bad.items():
        r = a.post_order(o)
        assert r.status_code == 400 and error(r) == "invalid signature", (what, r.text)
    assert a.post_order(full).json()["success"] is True  # the control


def test_type3_wrap_must_name_the_markets_exchange_and_the_wallets_domain(sim, a):
    wallet = deposit_wallet(sim, a)
    nr = open_market(sim, neg_risk=True)
    tok = nr.token_ids[0]
    wrong_exchange = resting_buy(
        a, nr, tok, signature_type=3, maker=wallet, contract=EXCHANGE_V2, version="2"
    )
    assert error(a.post_order(wrong_exchange)) == "invalid signature"
    other_chain = resting_buy(a, nr, tok, signature_type=3, maker=wallet, chain_id=80002)
    assert error(a.post_order(other_chain)) == "invalid signature"
    for wrap in (
        {"wallet_name": "Polymarket CTF Exchange"},
        {"wallet_version": "2"},
        {"wallet": a.address},
        {"wallet_chain_id": 80002},
    ):
        r = a.post_order(resting_buy(a, nr, tok, signature_type=3, maker=wallet, wrap=wrap))
        assert error(r) == "invalid signature", (wrap, r.text)
    good = resting_buy(a, nr, tok, signature_type=3, maker=wallet)
    r = a.post_order(good)
    assert r.status_code == 200 and r.json()["orderID"] == order_id(good, NEG_RISK_EXCHANGE_V2, "2"), r.text
    # a positionIds market: ExchangeV3, domain version "3"
    v3 = open_market(sim, v2=True)
    pos = requests.get(sim.gamma_url + f"/markets/{v3.id}", timeout=10).json()["positionIds"][0]
    _, ask, _ = best(sim, pos)
    v2_wrap = a.sign(
        pos, 10 * micro(ask), 10 * M, "BUY", contract=EXCHANGE_V2, version="2", signature_type=3, maker=wallet
    )
    assert error(a.post_order(v2_wrap)) == "invalid signature"
    good = a.sign(
        pos, 10 * micro(ask), 10 * M, "BUY", contract=EXCHANGE_V3, version="3", signature_type=3, maker=wallet
    )
    r = a.post_order(good)
    assert r.status_code == 200 and r.json()["orderID"] == order_id(good, EXCHANGE_V3, "3"), r.text


def test_type3_registered_wallet_replaces_the_default(sim, a, http_session):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    default = deposit_wallet(sim, a)
    mine = "0x" + "7e" * 20
    acct = http_session.post(
        sim.url + "/_sim/accounts", json={"address": a.address, "funders": {"3": mine}}
    ).json()
    assert acct["funders"]["3"] == mine
    assert error(a.post_order(resting_buy(a, m, tok, signature_type=3, maker=default))) == SIGNER_NOT_KEY
    assert a.post_order(resting_buy(a, m, tok, signature_type=3, maker=mine)).json()["success"]
    acct = http_session.post(
        sim.url + "/_sim/accounts", json={"address": a.address, "funders": {"3": None}}
    ).json()
    assert acct["funders"]["3"] == default


def test_the_sdks_type3_order_is_accepted(sim):
    """py_clob_client_v2 1.2.1 (the live client's signer) against the simulator's independent
    type-3 rules: its order is the same wire format SimTrader builds."""
    from py_clob_client_v2 import ClobClient, OrderArgs, OrderType

    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    a = SimTrader(sim.clob_url, KEY_A)
    wallet = deposit_wallet(sim, a)
    c = ClobClient(host=sim.clob_url, chain_id=137, key=KEY_A, signature_type=3, funder=wallet)
    c.set_api_creds(c.create_or_derive_api_key())
    bid, _, _ = best(sim, tok)
    order = c.create_order(OrderArgs(token_id=tok, price=round(bid - 0.05, 2), size=10, side="BUY"))
    assert order.maker.lower() == order.signer.lower() == wallet and int(order.signatureType) == 3
    res = c.post_order(order, OrderType.GTC)
    assert res["success"] is True and res["orderID"] == order_id(
        {**order.__dict__, "side": "BUY", "signatureType": 3}, EXCHANGE_V2, "2"
    )


# ----------------------------------------------------------------------------- §2 amounts, tick, size


def test_market_order_amounts_are_2_and_4_decimals(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    _, ask, _ = best(sim, tok)
    # issue 13 finding 1: BUY 37.72 @ 0.53-style limit amounts sent as FAK → 4-decimal maker
    bad = a.sign(tok, 19_991_600, 37_720_000, "BUY", market=m)
    r = a.post_order(bad, "FAK")
    assert r.status_code == 400 and error(r) == (
        "invalid amounts, the market buy orders maker amount supports a "
        "max accuracy of 2 decimals, taker amount a max of 4 decimals"
    )
    five_dp_taker = a.sign(tok, 20 * M, 20 * M * 10_000 // micro(ask) * 100 + 10, "BUY", market=m)
    assert "market buy orders" in error(a.post_order(five_dp_taker, "FOK"))
    good = a.sign(tok, 20 * M, (20 * M * M // micro(ask)) // 100 * 100, "BUY", market=m)
    r = a.post_order(good, "FAK")
    assert r.status_code == 200 and r.json()["status"] == "matched", r.text


def test_market_sell_on_a_fine_tick_rejects_a_5_decimal_taker(sim, a):
    m = open_market(sim, tick=0.001, kind="ladder")
    tok = m.token_ids[0]
    bid, ask, _ = best(sim, tok)
    buy = a.sign(tok, 10 * micro(ask), 10 * M, "BUY", market=m)  # limit: 5 decimals allowed
    assert a.post_order(buy).json()["status"] == "matched"
    bad = a.sign(tok, 10 * M, 10 * micro(bid) - 50, "SELL", market=m)  # 9.97805-style taker
    r = a.post_order(bad, "FAK")
    assert r.status_code == 400 and error(r) == (
        "invalid amounts, the market sell orders maker amount supports "
        "a max accuracy of 2 decimals, taker amount a max of 4 decimals"
    )
    three_dp_shares = a.sign(tok, 9_995_000, 9 * micro(bid), "SELL", market=m)
    assert "market sell orders" in error(a.post_order(three_dp_shares, "FOK"))
    good = a.sign(tok, 10 * M, 10 * micro(bid), "SELL", market=m)
    r = a.post_order(good, "FOK")
    assert r.status_code == 200 and r.json()["status"] == "matched", r.text
    assert a.balance(tok) == 0


def test_limit_order_precision_and_exact_tick(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    bid, _, _ = best(sim, tok)
    px = round(bid - 0.05, 2)
    r = a.post_order(a.sign(tok, 10_005_000 * micro(px) // M, 10_005_000, "BUY", market=m))  # 10.005 shares
    assert r.status_code == 400 and error(r) == (
        "invalid amounts, the buy orders maker amount supports a max "
        "accuracy of 4 decimals, taker amount a max of 2 decimals"
    )
    r = a.post_order(a.sign(tok, 10 * M, 10 * micro(px) + 50, "SELL", market=m))  # 5-decimal pUSD
    assert error(r) == (
        "invalid amounts, the sell orders maker amount supports a max accuracy of 2 decimals, "
        "taker amount a max of 4 decimals"
    )
    off = a.sign(tok, 10 * micro(px) + 5_000, 10 * M, "BUY", market=m)  # 0.0005 off the tick: exact check
    r = a.post_order(off)
    assert r.status_code == 400 and error(r) == (
        f"order {order_id(off, EXCHANGE_V2, '2')} is invalid. "
        f"Price ({px + 0.0005:.6g}) breaks minimum tick size rule: 0.01"
    )
    r = a.post_order(a.sign(tok, 10 * micro(px), 10 * M, "BUY", market=m))
    assert r.status_code == 200 and r.json()["status"] == "live", r.text


def test_fine_tick_limit_orders_allow_5_decimal_pusd_not_6(sim, a):
    m = open_market(sim, tick=0.001, kind="ladder")
    tok = m.token_ids[0]
    bid, _, _ = best(sim, tok)
    px_micro = micro(bid) - 200_000 if bid > 0.3 else micro(bid) - 5_000  # well under the bid
    shares = 10_010_000  # 10.01
    usd = shares * px_micro // M  # 10.01 × a 3-decimal price: 5 decimals, exact
    assert usd * M == shares * px_micro and usd % 10 == 0
    r = a.post_order(a.sign(tok, usd + 1, shares, "BUY", market=m))
    assert r.status_code == 400 and "maker amount supports a max accuracy of 5 decimals" in error(r)
    r = a.post_order(a.sign(tok, usd, shares, "BUY", market=m))
    assert r.status_code == 200 and r.json()["status"] == "live", r.text


def test_minimum_size_applies_to_limit_orders_not_to_market_orders(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    bid, ask, _ = best(sim, tok)
    px = micro(round(bid - 0.05, 2))
    small = a.sign(tok, 4_990_000 * px // M, 4_990_000, "BUY", market=m)
    r = a.post_order(small)
    assert r.status_code == 400 and error(r).endswith("is invalid. Size (4.99) lower than the minimum: 5")
    assert a.post_order(a.sign(tok, 5 * px, 5 * M, "BUY", market=m)).json()["status"] == "live"
    one_dollar = a.sign(tok, 1 * M, (M * M // micro(ask)) // 100 * 100, "BUY", market=m)
    r = a.post_order(one_dollar, "FOK")
    assert r.status_code == 200 and r.json()["status"] == "matched", r.text


def test_the_sdks_fine_tick_market_buy_is_rejected_like_on_the_real_clob(sim):
    """py-clob-client-v2 #99: on a 0.001 tick the SDK signs a 5-decimal taker for a market BUY,
    which the CLOB rejects; the simulator must reject it too (it accepted it before issue 13)."""
    from py_clob_client_v2 import ClobClient, OrderType
    from py_clob_client_v2.clob_types import MarketOrderArgsV2
    from py_clob_client_v2.exceptions import PolyApiException

    m = open_market(sim, tick=0.001, kind="ladder")
    tok = m.token_ids[0]
    _, ask, _ = best(sim, tok)
    c = ClobClient(host=sim.clob_url, chain_id=137, key=KEY_A, signature_type=0)
    c.set_api_creds(c.create_or_derive_api_key())
    amount = next(x / 100 for x in range(998, 1100) if (x * 10**4 * M // micro(ask)) % 10)  # 5th decimal
    order = c.create_market_order(
        MarketOrderArgsV2(token_id=tok, amount=amount, side="BUY", price=ask, order_type=OrderType.FAK)
    )
    assert int(order.takerAmount) % 100 != 0  # the SDK signed > 4 decimals
    with pytest.raises(PolyApiException) as exc:
        c.post_order(order, OrderType.FAK)
    assert (
        exc.value.status_code == 400
        and "market buy orders maker amount supports a max accuracy of 2" in str(exc.value.error_msg)
    )


def test_batch_orders_report_each_rule_failure_in_its_own_result(sim, a):
    m = open_market(sim, kind="single")
    tok = m.token_ids[0]
    good = resting_buy(a, m, tok)
    forged = resting_buy(a, m, tok, key=KEY_B)
    r = a.request("POST", "/orders", [a.body(good), a.body(forged)])
    assert r.status_code == 200
    ok, bad = r.json()
    assert ok["success"] and ok["orderID"] == order_id(good, EXCHANGE_V2, "2")
    assert bad["success"] is False and bad["errorMsg"] == "invalid signature" and bad["orderID"] == ""


def test_funding_a_funder_address_funds_its_account(sim, a, http_session):
    safe = http_session.get(sim.url + "/_sim/accounts", params={"address": a.address}).json()["funders"]["2"]
    r = http_session.post(sim.url + "/_sim/fund", json={"address": safe, "amount": 123.45})
    assert r.json() == {"address": a.address.lower(), "balance": "123450000"}
    assert a.balance() == 123_450_000
