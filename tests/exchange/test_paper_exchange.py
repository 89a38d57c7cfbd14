"""PaperExchange: fills against the current book, resting orders, cash/positions in
micro-units, idempotent submit, restart from state or from the engine's records."""

import pytest

from polybot.errors import DataError
from polybot.exchange.base import OrderRequest, PreparedOrder
from polybot.exchange.models import BookLevel, FeeSchedule, OrderBook
from polybot.exchange.paper import PaperExchange, PaperState

TOK = "111"
FEE5 = FeeSchedule(rate=0.05, exponent=1, enabled=True)


def book(bids=(), asks=(), token=TOK):
    return OrderBook(
        token_id=token,
        market="0xm",
        timestamp_ms=0,
        bids=tuple(BookLevel(p, s) for p, s in bids),
        asks=tuple(BookLevel(p, s) for p, s in asks),
        tick_size=0.01,
        min_order_size=5,
    )


class Books:
    """A settable book source (what the engine passes: token → current book)."""

    def __init__(self, **by_token):
        self.by_token = dict(by_token)
        self.calls = 0

    def __call__(self, token_id):
        self.calls += 1
        return self.by_token[token_id]


class Clock:
    def __init__(self, t=1_800_000_000):
        self.t = t

    def __call__(self):
        return self.t


def make(books, cash=1_000_000_000, clock=None, state=None):
    return PaperExchange(
        books,
        fees_by_token={TOK: FEE5, "222": FeeSchedule()},
        clock=clock or Clock(),
        initial_cash_micro=cash,
        state=state,
    )


def test_market_buy_fills_against_current_book_with_fees():
    books = Books(**{TOK: book(asks=[(0.50, 100), (0.52, 200)])})
    ex = make(books)
    p = ex.prepare(OrderRequest(TOK, "BUY", "FOK", size_micro=250_000_000, price_micro=520_000))
    assert p.client_order_id == "paper-1" == p.order_hash
    res = ex.submit(p)
    assert res.status == "matched" and res.exchange_order_id == "paper-1"
    assert [(f.price_micro, f.size_micro, f.fee_micro) for f in res.fills] == [
        (500_000, 100_000_000, 1_250_000),
        (520_000, 150_000_000, 1_872_000),
    ]
    # cash = 1000 − 128 − 3.122
    assert ex.balance_micro() == 1_000_000_000 - 128_000_000 - 3_122_000
    [pos] = ex.positions()
    assert pos.token_id == TOK and pos.size == 250_000_000
    assert pos.initial_value == 131_122_000  # cost including fees
    st = ex.lookup("paper-1")
    assert st.status == "matched" and st.size_matched_micro == 250_000_000
    assert len(ex.trades()) == 2


def test_submit_is_idempotent_for_the_same_prepared_order():
    books = Books(**{TOK: book(asks=[(0.50, 100)])})
    ex = make(books)
    p = ex.prepare(OrderRequest(TOK, "BUY", "FAK", size_micro=10_000_000, price_micro=500_000))
    first = ex.submit(p)
    again = ex.submit(PreparedOrder.from_json(p.to_json()))  # e.g. after a crash
    assert again.status == first.status == "matched"
    assert again.fills == first.fills
    assert ex.balance_micro() == 1_000_000_000 - 5_000_000 - 125_000  # charged once
    assert len(ex.trades()) == 1


def test_rejections_fok_tick_min_size_and_balance():
    books = Books(**{TOK: book(bids=[(0.40, 50)], asks=[(0.50, 100)])})
    ex = make(books, cash=20_000_000)
    r = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "FOK", size_micro=200_000_000, price_micro=500_000)))
    assert r.status == "rejected" and "FOK" in r.error
    r = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "GTC", size_micro=10_000_000, price_micro=455_000)))
    assert r.status == "rejected" and "tick" in r.error
    r = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "GTC", size_micro=4_000_000, price_micro=450_000)))
    assert r.status == "rejected" and "minimum" in r.error
    # $20 cash cannot pay for 50 shares at 0.50 (+ fee)
    r = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "FOK", size_micro=50_000_000, price_micro=500_000)))
    assert r.status == "rejected" and "not enough balance" in r.error
    # no shares to sell: no short selling
    r = ex.submit(ex.prepare(OrderRequest(TOK, "SELL", "FAK", size_micro=10_000_000, price_micro=400_000)))
    assert r.status == "rejected" and "not enough balance" in r.error
    assert ex.balance_micro() == 20_000_000 and ex.positions() == [] and ex.trades() == []
    assert ex.lookup("paper-1") is None  # refused orders are unknown, like the CLOB


def test_gtc_rests_reserves_cash_then_fills_as_maker_on_poll():
    clock = Clock()
    books = Books(**{TOK: book(bids=[(0.40, 100)], asks=[(0.50, 100)])})
    ex = make(books, cash=100_000_000, clock=clock)
    res = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "GTC", size_micro=100_000_000, price_micro=450_000)))
    assert res.status == "live" and res.fills == ()
    assert ex.available_cash_micro() == 100_000_000 - 45_000_000
    # a second resting BUY that would need more than the unreserved cash is refused
    r = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "GTC", size_micro=130_000_000, price_micro=450_000)))
    assert r.status == "rejected"
    assert [o.order_id for o in ex.open_orders()] == ["paper-1"]
    # the book moves: asks at 0.45 for 60 shares → maker fill 60 @0.45, no fee
    clock.t += 300
    new = ex.poll({TOK: book(asks=[(0.44, 20), (0.45, 40), (0.47, 500)])})
    assert [(f.price_micro, f.size_micro, f.fee_micro, f.liquidity) for f in new] == [
        (450_000, 60_000_000, 0, "maker")
    ]
    assert new[0].ts == clock.t
    st = ex.lookup("paper-1")
    assert st.status == "live" and st.size_matched_micro == 60_000_000
    assert ex.balance_micro() == 100_000_000 - 27_000_000
    assert ex.available_cash_micro() == 100_000_000 - 27_000_000 - 18_000_000
    # poll without a mapping fetches through the book source
    books.by_token[TOK] = book(asks=[(0.45, 100)])
    ex.poll()
    assert ex.lookup("paper-1").status == "matched" and ex.open_orders() == []
    assert ex.positions()[0].size == 100_000_000


def test_gtc_partial_cross_then_cancel():
    ex = make(Books(**{TOK: book(asks=[(0.50, 30)])}))
    res = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "GTC", size_micro=50_000_000, price_micro=500_000)))
    assert res.status == "live" and res.size_matched_micro == 30_000_000
    c = ex.cancel("paper-1")
    assert c.canceled == ("paper-1",)
    assert ex.cancel("paper-1").not_canceled == {"paper-1": "the order is already canceled"}
    assert ex.lookup("paper-1").status == "canceled"
    assert ex.available_cash_micro() == ex.balance_micro()


def test_gtd_expires_and_post_only_refuses_to_cross():
    clock = Clock()
    ex = make(Books(**{TOK: book(bids=[(0.40, 100)], asks=[(0.50, 100)])}), clock=clock)
    r = ex.submit(
        ex.prepare(
            OrderRequest(TOK, "BUY", "GTC", size_micro=10_000_000, price_micro=500_000, post_only=True)
        )
    )
    assert r.status == "rejected" and "post-only" in r.error
    r = ex.submit(
        ex.prepare(
            OrderRequest(
                TOK, "BUY", "GTD", size_micro=10_000_000, price_micro=450_000, expiration=clock.t + 30
            )
        )
    )
    assert r.status == "rejected" and "expiration" in r.error
    r = ex.submit(
        ex.prepare(
            OrderRequest(
                TOK, "BUY", "GTD", size_micro=10_000_000, price_micro=450_000, expiration=clock.t + 600
            )
        )
    )
    assert r.status == "live"
    clock.t += 539
    ex.poll({})
    assert ex.lookup(r.exchange_order_id).status == "live"
    clock.t += 1  # expiration − 60 s reached
    ex.poll({})
    assert ex.lookup(r.exchange_order_id).status == "expired"


def test_sell_reduces_position_and_settlement_pays_out():
    books = Books(**{TOK: book(bids=[(0.60, 100)], asks=[(0.50, 100)])})
    ex = make(books)
    ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "FOK", size_micro=100_000_000, price_micro=500_000)))
    # cost 50 + fee 1.25 = 51.25 for 100 shares; sell 40 @0.60 = 24.00 − fee 40×.05×.24 = 0.48
    r = ex.submit(ex.prepare(OrderRequest(TOK, "SELL", "FAK", size_micro=40_000_000, price_micro=600_000)))
    assert r.status == "matched" and r.fills[0].fee_micro == 480_000
    [pos] = ex.positions()
    assert pos.size == 60_000_000 and pos.initial_value == 30_750_000  # 51.25 × 60/100
    cash_before = ex.balance_micro()
    assert cash_before == 1_000_000_000 - 51_250_000 + 24_000_000 - 480_000
    rec = ex.settle(TOK, 1_000_000)
    assert rec["amount_micro"] == 60_000_000 and rec["size_micro"] == 60_000_000
    assert ex.balance_micro() == cash_before + 60_000_000 and ex.positions() == []
    assert ex.settle(TOK, 1_000_000) is None


def test_restart_from_state_json_and_from_records():
    clock = Clock()
    books = Books(
        **{TOK: book(bids=[(0.60, 100)], asks=[(0.50, 100)]), "222": book(token="222", asks=[(0.30, 100)])}
    )
    ex = make(books, clock=clock)
    ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "FOK", size_micro=100_000_000, price_micro=500_000)))
    clock.t += 60
    ex.submit(ex.prepare(OrderRequest(TOK, "SELL", "GTC", size_micro=50_000_000, price_micro=700_000)))
    ex.submit(
        ex.prepare(
            OrderRequest("222", "BUY", "FAK", size_micro=20_000_000, amount_micro=None, price_micro=300_000)
        )
    )
    clock.t += 60
    settlement = ex.settle("222", 0)
    unsent = ex.prepare(OrderRequest(TOK, "BUY", "GTC", size_micro=10_000_000, price_micro=400_000))

    # 1) the whole state as JSON
    again = make(books, clock=clock, state=PaperState.from_json(ex.state.to_json()))
    assert again.balance_micro() == ex.balance_micro()
    assert again.positions() == ex.positions()
    assert again.open_orders() == ex.open_orders()
    assert (
        again.prepare(
            OrderRequest(TOK, "BUY", "GTC", size_micro=10_000_000, price_micro=400_000)
        ).client_order_id
        == "paper-5"
    )

    # 2) rebuilt from the engine's own records
    rebuilt = PaperExchange.from_records(
        books,
        fees_by_token={TOK: FEE5, "222": FeeSchedule()},
        clock=clock,
        initial_cash_micro=1_000_000_000,
        fills=ex.trades(),
        open_orders=ex.open_orders(),
        settlements=[settlement],
        known_order_ids=[unsent.client_order_id],
    )
    assert rebuilt.balance_micro() == ex.balance_micro()
    assert rebuilt.positions() == ex.positions()
    assert [(o.order_id, o.remaining_size_micro) for o in rebuilt.open_orders()] == [("paper-2", 50_000_000)]
    assert rebuilt.available_cash_micro() == ex.available_cash_micro()
    assert (
        rebuilt.prepare(
            OrderRequest(TOK, "BUY", "GTC", size_micro=10_000_000, price_micro=400_000)
        ).client_order_id
        == "paper-5"
    )
    # the reserved shares survive the restart: only 50 of the 100 are free to sell
    r = rebuilt.submit(
        rebuilt.prepare(OrderRequest(TOK, "SELL", "FOK", size_micro=60_000_000, price_micro=600_000))
    )
    assert r.status == "rejected" and "not enough balance" in r.error


def test_buy_by_usd_amount_and_unknown_fee_schedule():
    ex = make(
        Books(**{TOK: book(asks=[(0.50, 100), (0.52, 200)]), "999": book(token="999", asks=[(0.5, 9)])})
    )
    r = ex.submit(ex.prepare(OrderRequest(TOK, "BUY", "FOK", amount_micro=60_000_000)))
    assert r.status == "matched" and r.size_matched_micro == 119_230_769
    assert ex.lookup(r.exchange_order_id).original_size_micro == 119_230_769
    with pytest.raises(DataError):
        ex.submit(ex.prepare(OrderRequest("999", "BUY", "FOK", size_micro=5_000_000, price_micro=500_000)))


def test_paper_against_simulator_books(sim):
    """The engine's book source: PolymarketClient.get_book over real HTTP to the simulator."""
    from polybot.exchange.client import PolymarketClient

    client = PolymarketClient(sim.gamma_url, sim.clob_url, sim.data_url, max_retries=1)
    markets, _ = client.list_markets(limit=20)
    tokens = [t for m in markets for t in m.token_ids]
    books = client.get_books(tokens)
    token = next(t for t in tokens if books[t].asks and books[t].bids)
    ex = PaperExchange(
        client.get_book,
        fees_by_token=lambda t: FEE5,
        clock=lambda: sim.sim.now(),
        initial_cash_micro=500_000_000,
    )
    b = books[token]
    best_ask = round(b.asks[0].price * 1_000_000)
    size = max(5_000_000, round(b.min_order_size * 1_000_000))
    r = ex.submit(
        ex.prepare(
            OrderRequest(
                token, "BUY", "FAK", size_micro=size, price_micro=best_ask, tick_size=str(b.tick_size)
            )
        )
    )
    assert r.status == "matched", r.error
    assert r.fills[0].price_micro <= best_ask
    assert ex.balance_micro() == 500_000_000 + sum(f.cash_delta_micro for f in r.fills)
    # a resting bid far below the market stays open
    low = round(b.tick_size * 1_000_000)
    r2 = ex.submit(
        ex.prepare(
            OrderRequest(token, "BUY", "GTC", size_micro=size, price_micro=low, tick_size=str(b.tick_size))
        )
    )
    assert r2.status == "live" and r2.fills == ()
    assert ex.poll() == []  # fresh books fetched over HTTP; nothing crosses 1 tick
    assert ex.lookup(r2.exchange_order_id).is_open
    client.close()
