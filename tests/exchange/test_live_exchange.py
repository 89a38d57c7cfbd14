"""LiveExchange (py_clob_client_v2 underneath) against the local simulator over real HTTP:
sign once, persist, post the same payload; timeouts are resolved by lookup, never by
re-signing."""

import json
import socket
import time

import pytest

from polybot.errors import AuthenticationError, OrderOutcomeUnknown, OrderRejected, TemporaryExchangeError
from polybot.exchange.base import OrderRequest, PreparedOrder
from polybot.exchange.client import PolymarketClient
from polybot.exchange.live import LiveExchange, eip712_order_hash

PRIVATE_KEY = "0x" + "11" * 32  # test-only key
M = 1_000_000


def _live(sim, **kw):
    kw.setdefault("timeout_seconds", 5)
    return LiveExchange(
        clob_url=sim.clob_url,
        private_key=PRIVATE_KEY,
        chain_id=137,
        signature_type=0,
        max_retries=2,
        sleep=lambda s: None,
        **kw,
    )


@pytest.fixture
def live(sim, reader):
    ex = _live(sim, reader=reader)
    yield ex
    ex.close()


def _two_sided(reader):
    """A token whose book has bids and asks, with its book."""
    markets, _ = reader.list_markets(limit=50)
    tokens = [t for m in markets if m.accepting_orders and not m.closed for t in m.token_ids]
    books = reader.get_books(tokens)
    for t in tokens:
        b = books.get(t)
        if b and len(b.bids) >= 1 and len(b.asks) >= 1 and b.bids[0].price > 3 * b.tick_size:
            return t, b
    raise AssertionError("the simulator has no two-sided book")


def _m(x: float) -> int:
    return round(x * M)


def _resting_buy(token, book, size=None):
    tick = _m(book.tick_size)
    price = max(tick, _m(book.bids[0].price) - 3 * tick)
    return OrderRequest(
        token,
        "BUY",
        "GTC",
        price_micro=price,
        size_micro=size or max(10 * M, _m(book.min_order_size)),
        tick_size=str(book.tick_size),
    )


def _open_ids(live):
    return [o.order_id.lower() for o in live.open_orders()]


def test_prepare_signs_once_and_hash_matches_payload(live, reader):
    token, book = _two_sided(reader)
    p = live.prepare(_resting_buy(token, book))
    assert p.order_hash.startswith("0x") and len(p.order_hash) == 66
    assert p.client_order_id == p.order_hash
    payload = json.loads(p.payload_json)
    assert payload["orderType"] == "GTC" and payload["order"]["tokenId"] == token
    assert payload["order"]["signer"] == live.address
    # the hash is a pure function of the persisted payload (recomputable after a restart)
    assert eip712_order_hash(payload["order"], 137) == p.order_hash
    # preparing the same request again signs a DIFFERENT order (fresh salt/timestamp)
    time.sleep(0.002)
    assert live.prepare(_resting_buy(token, book)).order_hash != p.order_hash
    # the round trip through the database text keeps everything
    assert PreparedOrder.from_json(p.to_json()) == p


def test_order_id_is_the_local_eip712_hash(live, reader):
    """The real CLOB's orderID is the order's EIP-712 hash, so an order whose POST timed
    out can be found by the hash persisted before sending. The simulator computes the id
    with its OWN encoder (polybot/sim/signing.py, RULES.md §1), so the equality below is a
    real check of our local hash (it was a tautology when the simulator called ours)."""
    token, book = _two_sided(reader)
    p = live.prepare(_resting_buy(token, book))
    res = live.submit(p)
    try:
        assert res.status == "live", res
        assert res.exchange_order_id.lower() == p.order_hash.lower()
        assert live.lookup(p.order_hash) is not None
    finally:
        live.cancel_all()


def test_resting_gtc_list_lookup_cancel(live, reader):
    token, book = _two_sided(reader)
    p = live.prepare(_resting_buy(token, book))
    res = live.submit(p)
    assert res.status == "live", res
    oid = res.exchange_order_id.lower()
    assert oid in _open_ids(live)
    st = live.lookup(oid)
    assert st.status == "live" and st.is_open and st.token_id == token and st.side == "BUY"
    assert st.original_size_micro == p.request.size_micro and st.price_micro == p.request.price_micro
    c = live.cancel(oid)
    assert [i.lower() for i in c.canceled] == [oid]
    assert oid not in _open_ids(live)
    assert live.lookup(oid).status == "canceled"
    assert live.cancel(oid).not_canceled


def test_crossing_order_fills_shows_in_trades_and_balance(live, reader):
    token, book = _two_sided(reader)
    before = live.balance_micro()
    ask = _m(book.asks[0].price)
    size = max(5 * M, _m(book.min_order_size))
    p = live.prepare(
        OrderRequest(token, "BUY", "FOK", price_micro=ask, size_micro=size, tick_size=str(book.tick_size))
    )
    res = live.submit(p)
    assert res.status == "matched", res
    assert sum(f.size_micro for f in res.fills) == size  # read back at placement
    fills = [f for f in live.trades() if f.order_id.lower() == res.exchange_order_id.lower()]
    assert sum(f.size_micro for f in fills) == size
    assert all(f.price_micro <= ask and f.side == "BUY" and f.liquidity == "taker" for f in fills)
    notional = sum(f.notional_micro for f in fills)
    after = live.balance_micro()
    assert before - after >= notional
    st = live.lookup(res.exchange_order_id)
    assert st is not None and st.status == "matched" and st.size_matched_micro == size
    assert sorted(f.trade_id for f in st.fills) == sorted(f.trade_id for f in fills)
    [pos] = [x for x in live.positions() if x.token_id == token]
    assert pos.size == size


def test_timeout_is_unknown_then_resolved_and_repost_is_not_a_second_order(sim, reader):
    live = _live(sim, reader=reader, timeout_seconds=1)
    try:
        token, book = _two_sided(reader)
        p = live.prepare(_resting_buy(token, book))
        stored = p.to_json()  # what the engine committed before sending
        sim.sim.set_faults(timeout="3:1", path="/clob/order")
        with pytest.raises(OrderOutcomeUnknown):
            live.submit(p)
        # resolve it (by hash, else by its terms) — the server answers the hung request
        # late, so give it a grace period, as the engine does
        st = None
        deadline = time.monotonic() + 15
        while st is None and time.monotonic() < deadline:
            st = live.resolve(PreparedOrder.from_json(stored))
            if st is None:
                time.sleep(0.2)
        assert st is not None and st.status == "live"
        assert st.token_id == token and st.original_size_micro == p.request.size_micro
        # a retry re-posts the SAME persisted payload: the exchange says "Duplicated",
        # submit resolves that to the existing order — still exactly one order
        again = live.submit(PreparedOrder.from_json(stored))
        assert again.status == "live"
        assert again.exchange_order_id.lower() == st.order_id.lower()
        mine = [o for o in live.open_orders() if o.token_id == token]
        assert [o.order_id for o in mine] == [st.order_id]
    finally:
        sim.sim.clear_faults()
        live.cancel_all()
        live.close()


def test_resolve_never_claims_an_order_the_engine_already_knows(live, reader):
    token, book = _two_sided(reader)
    first = live.submit(live.prepare(_resting_buy(token, book)))
    twin = live.prepare(_resting_buy(token, book))  # same terms, never sent
    try:
        # without the engine's records the twin would look like the first order...
        assert live.resolve(twin, known_ids=[first.exchange_order_id]) is None
    finally:
        live.cancel_all()


def test_persisted_order_is_posted_by_a_new_process(sim, reader, live):
    token, book = _two_sided(reader)
    stored = live.prepare(_resting_buy(token, book)).to_json()
    fresh = _live(sim, reader=reader)  # e.g. after a restart
    try:
        res = fresh.submit(PreparedOrder.from_json(stored))
        assert res.status == "live"
        assert res.exchange_order_id.lower() in _open_ids(live)
    finally:
        fresh.cancel_all()
        fresh.close()


def test_connection_refused_is_not_sent(sim, reader, live):
    token, book = _two_sided(reader)
    p = live.prepare(_resting_buy(token, book))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    dead = LiveExchange(
        clob_url=f"http://127.0.0.1:{port}/clob",
        private_key=PRIVATE_KEY,
        api_key=live._sdk.creds.api_key,
        api_secret=live._sdk.creds.api_secret,
        api_passphrase=live._sdk.creds.api_passphrase,
        signature_type=0,
    )
    with pytest.raises(TemporaryExchangeError) as ei:
        dead.submit(p)
    assert not isinstance(ei.value, OrderOutcomeUnknown)
    assert live.resolve(p) is None  # really never placed
    dead.close()


def test_server_error_after_send_is_unknown(sim, reader, live):
    token, book = _two_sided(reader)
    p = live.prepare(_resting_buy(token, book))
    sim.sim.set_faults(burst="502:1", path="/clob/order")
    try:
        with pytest.raises(OrderOutcomeUnknown):
            live.submit(p)
    finally:
        sim.sim.clear_faults()
    # never retried automatically: resubmitting the same payload is the engine's decision
    assert live.submit(p).status == "live"
    live.cancel_all()


def test_rejections_are_definitive(live, reader):
    token, book = _two_sided(reader)
    tick = _m(book.tick_size)
    # off-tick price: refused before signing (the SDK would silently round it)
    with pytest.raises(OrderRejected):
        live.prepare(
            OrderRequest(
                token,
                "BUY",
                "GTC",
                price_micro=_m(book.bids[0].price) - tick // 2,
                size_micro=10 * M,
                tick_size=str(book.tick_size),
            )
        )
    # below the market's minimum size: the exchange says no → rejected result, nothing rests
    tiny = max(1, _m(book.min_order_size) // 2) if book.min_order_size >= 1 else 10_000
    p = live.prepare(_resting_buy(token, book, size=(tiny // 10_000) * 10_000 or 10_000))
    r = live.submit(p)
    assert r.status == "rejected" and "minimum" in r.error
    assert live.resolve(p) is None
    # a FOK larger than the whole book at its limit price is killed
    huge = sum(_m(lv.size) for lv in book.asks) + 1000 * M
    r = live.submit(
        live.prepare(
            OrderRequest(
                token,
                "BUY",
                "FOK",
                price_micro=_m(book.asks[0].price),
                size_micro=(huge // 10_000) * 10_000,
                tick_size=str(book.tick_size),
            )
        )
    )
    assert r.status in ("rejected", "unmatched")


def test_bad_credentials_raise_authentication_error(sim):
    ex = LiveExchange(
        clob_url=sim.clob_url,
        private_key=PRIVATE_KEY,
        api_key="not-a-key",
        api_secret="c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MDE=",
        api_passphrase="nope",
        signature_type=0,
    )
    with pytest.raises(AuthenticationError) as ei:
        ex.open_orders()
    assert "c2VjcmV0" not in str(ei.value) and "11" * 32 not in str(ei.value)
    assert "11" * 32 not in repr(ex)
    ex.close()


def test_heartbeat_and_cancel_all(live, reader):
    token, book = _two_sided(reader)
    live.heartbeat()
    live.heartbeat()
    p = live.submit(live.prepare(_resting_buy(token, book)))
    assert p.status == "live"
    c = live.cancel_all()
    assert p.exchange_order_id.lower() in [i.lower() for i in c.canceled]
    assert live.open_orders() == []


def test_missed_heartbeats_cancel_resting_orders():
    """The dead-man switch: after heartbeat() starts it, silence cancels our orders."""
    from polybot.sim.server import start_simulator

    h = start_simulator(port=0, seed=7, n_markets=20, speed=0.0, heartbeat_timeout=0.5)
    reader = PolymarketClient(h.gamma_url, h.clob_url, h.data_url, max_retries=2)
    ex = _live(h, reader=reader)
    try:
        token, book = _two_sided(reader)
        res = ex.submit(ex.prepare(_resting_buy(token, book)))
        assert res.status == "live"
        ex.heartbeat()
        deadline = time.monotonic() + 10
        while ex.open_orders() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ex.open_orders() == []
        assert ex.lookup(res.exchange_order_id).status == "canceled"
    finally:
        ex.close()
        reader.close()
        h.stop()


def test_unusable_private_key_is_a_config_error_without_echo():
    from polybot.errors import ConfigError

    with pytest.raises(ConfigError) as ei:
        LiveExchange(clob_url="http://127.0.0.1:9/clob", private_key="0xnot-a-key-zz")
    assert "not-a-key" not in str(ei.value)
    with pytest.raises(ConfigError):
        LiveExchange(clob_url="http://127.0.0.1:9/clob", private_key="")
