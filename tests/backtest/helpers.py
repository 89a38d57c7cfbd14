"""Helpers for the analysis / strategy / backtest tests: build small databases with INSERTs."""

from __future__ import annotations

import json
from pathlib import Path

from polybot.db import connect, migrate

T0 = 1_767_225_600  # 2026-01-01 00:00 UTC
DAY = 86_400
M = 1_000_000


def new_db(path: Path):
    conn = connect(path, create=True)
    migrate(conn, now=T0)
    return conn


def add_market(
    conn,
    mid: str,
    tokens=None,
    *,
    question=None,
    fee_rate=0.0,
    tick=0.01,
    min_size=5.0,
    end_date=None,
    event_id=None,
    neg_risk_id=None,
    tracked=1,
    payouts=None,
    resolved_at=None,
):
    tokens = tokens or [f"{mid}-yes", f"{mid}-no"]
    conn.execute(
        "INSERT INTO markets (id, condition_id, question, event_id, neg_risk, neg_risk_market_id, token_ids, outcomes, "
        "end_date, tick_size, min_order_size, fees_enabled, fee_rate, fee_exponent, tracked, payouts, resolved_at, "
        "first_seen, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            mid,
            f"0x{mid}",
            question or f"Will {mid} happen?",
            event_id,
            1 if neg_risk_id else 0,
            neg_risk_id,
            json.dumps(tokens),
            json.dumps(["Yes", "No"][: len(tokens)]),
            end_date,
            tick,
            min_size,
            1 if fee_rate else 0,
            fee_rate,
            1.0,
            tracked,
            json.dumps(payouts) if payouts else None,
            resolved_at,
            T0,
            T0,
        ),
    )
    for i, t in enumerate(tokens):
        conn.execute("INSERT INTO market_tokens VALUES (?,?,?,?)", (t, mid, ["Yes", "No"][i % 2], i))
    return tokens


def snap(
    conn,
    ts,
    token,
    market,
    bid=None,
    ask=None,
    *,
    bids=None,
    asks=None,
    mid=None,
    last=None,
    source="collected",
):
    """One snapshot_values row; bids/asks default to one level of 1000 shares at bid/ask."""
    if bids is None and bid is not None:
        bids = f"{bid}:1000"
    if asks is None and ask is not None:
        asks = f"{ask}:1000"
    if mid is None and bid is not None and ask is not None:
        mid = round((bid + ask) / 2, 6)
    conn.execute(
        "INSERT INTO snapshot_values (timestamp, token_id, market_id, best_bid, best_ask, mid, spread, "
        "last_trade_price, bids, asks, source) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            ts,
            token,
            market,
            bid,
            ask,
            mid,
            None if bid is None or ask is None else round(ask - bid, 6),
            last,
            bids,
            asks,
            source,
        ),
    )
