"""The shared domain types are their stored strings: old rows, SQL literals and JSON keep working."""

from __future__ import annotations

import json
import re

import pytest

from polybot import db
from polybot.config import default_config
from polybot.domain import (
    BUY,
    ENTER,
    EXIT,
    SELL,
    Action,
    ExchangeOrderStatus,
    Intent,
    OrderState,
    Side,
)
from polybot.engine.orders import INFLIGHT, OPEN, TERMINAL
from polybot.exchange.base import ACCEPTED_STATUSES, OPEN_STATUSES, RESULT_STATUSES, OrderResult
from polybot.schema import MIGRATIONS


@pytest.fixture
def conn(tmp_path):
    cfg = default_config(tmp_path)
    db.initialize(cfg.database_path)
    c = db.open_database(cfg)
    yield c
    c.close()


def _order(conn, coid: str, status) -> None:
    with db.atomic(conn):
        conn.execute(
            "INSERT INTO orders(client_order_id, mode, token_id, market_id, side, order_type, price_micro, "
            "size_micro, status, created_at, updated_at) VALUES (?,'paper','t1','m1',?,'GTC',500000,?,?,0,0)",
            (coid, BUY, 10_000_000, status),
        )


def test_the_order_states_are_the_ones_the_schema_documents():
    v2 = dict((v, sql) for v, _, sql in MIGRATIONS)[2]
    documented = re.search(r"status\s+TEXT NOT NULL,\s+-- ([A-Z_|]+)", v2).group(1).split("|")
    assert {s.value for s in OrderState} <= set(documented)
    assert set(OPEN) | set(INFLIGHT) | set(TERMINAL) == set(OrderState)


def test_rows_written_as_plain_text_are_found_with_the_enums(conn):
    # a database written before the enums existed holds plain text
    _order(conn, "old-live", "LIVE")
    _order(conn, "old-pending", "PENDING_SUBMIT")
    _order(conn, "old-filled", "FILLED")
    q = ",".join("?" * len(OPEN))
    found = conn.execute(f"SELECT client_order_id FROM orders WHERE status IN ({q})", OPEN).fetchall()
    assert [r[0] for r in found] == ["old-live"]
    row = conn.execute("SELECT status, side FROM orders WHERE client_order_id='old-pending'").fetchone()
    assert (
        row["status"] in INFLIGHT and row["status"] == OrderState.PENDING_SUBMIT and row["side"] == Side.BUY
    )


def test_enums_are_stored_as_the_same_text(conn):
    _order(conn, "new", OrderState.PARTIALLY_FILLED)
    with db.atomic(conn):
        conn.execute(
            "UPDATE orders SET exchange_status=? WHERE client_order_id='new'", (ExchangeOrderStatus.MATCHED,)
        )
    row = conn.execute(
        "SELECT status, typeof(status), exchange_status, typeof(exchange_status), side FROM orders"
    ).fetchone()
    assert tuple(row) == ("PARTIALLY_FILLED", "text", "matched", "text", "BUY")
    assert type(row["status"]) is str  # read back as plain str, as before
    # SQL written with literals elsewhere (dashboard, reports) still matches
    n = conn.execute("SELECT COUNT(*) FROM orders WHERE status='PARTIALLY_FILLED' AND side='BUY'").fetchone()[
        0
    ]
    assert n == 1


def test_json_and_formatting_give_the_plain_words():
    payload = {"side": SELL, "status": ExchangeOrderStatus.LIVE, "state": OrderState.LIVE}
    assert json.dumps(payload) == '{"side": "SELL", "status": "live", "state": "LIVE"}'
    assert f"{BUY}/{ExchangeOrderStatus.REJECTED}/{OrderState.CANCELED}" == "BUY/rejected/CANCELED"
    assert {"live": 1}[ExchangeOrderStatus.LIVE] == 1  # dict keys from the API are found


def test_the_exchange_words_and_our_states_are_different_facts():
    # same name, different value: the reason they are two types
    assert ExchangeOrderStatus.LIVE != OrderState.LIVE
    assert OrderResult(status="live").accepted and not OrderResult(status="LIVE").accepted
    assert set(ACCEPTED_STATUSES) < set(RESULT_STATUSES) <= set(ExchangeOrderStatus)
    assert set(OPEN_STATUSES) <= set(ACCEPTED_STATUSES)
    assert not {s.value for s in ExchangeOrderStatus} & {s.value for s in OrderState}


def test_intent_rules_use_the_shared_names():
    Intent(ENTER, "t", "m", BUY, notional_micro=1_000_000)
    Intent(Action.EXIT, "t", "m", "SELL", size_micro=5_000_000)  # plain strings still accepted
    with pytest.raises(ValueError, match="ENTER intent must be a BUY"):
        Intent(ENTER, "t", "m", SELL, size_micro=5_000_000)
    with pytest.raises(ValueError, match="EXIT intent must be a SELL"):
        Intent(EXIT, "t", "m", BUY, size_micro=5_000_000)
    with pytest.raises(ValueError, match="must be ENTER or EXIT"):
        Intent("HOLD", "t", "m", BUY, size_micro=5_000_000)


def test_trade_statuses_are_the_exchange_words_and_the_stored_words():
    from polybot.domain import FINAL_TRADE_STATUSES, PROVISIONAL_TRADE_STATUSES, TradeStatus
    from polybot.engine.ledger import trade_status_of

    # the CLOB's trade lifecycle (py-sdk models/clob/account.py), stored verbatim in trades.trade_status
    words = ["MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "CONFIRMED", "RETRYING", "FAILED"]
    assert [s.value for s in TradeStatus] == words
    assert set(PROVISIONAL_TRADE_STATUSES) | set(FINAL_TRADE_STATUSES) == set(TradeStatus)
    assert not set(PROVISIONAL_TRADE_STATUSES) & set(FINAL_TRADE_STATUSES)
    assert [trade_status_of(f"TRADE_STATUS_{w.lower()}") for w in words] == words  # REST's prefixed form
    v3 = dict((v, sql) for v, _, sql in MIGRATIONS)[3]
    assert "trade_status TEXT NOT NULL DEFAULT 'CONFIRMED'" in v3  # paper fills: final at once
