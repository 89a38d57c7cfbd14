"""Emergency close-out: sell every open position with marketable orders (best effort).

Each position gets one FAK SELL of the whole holding with the worst price at one tick
(it takes whatever the book bids, as the checklist's "close all positions" asks);
what filled, what did not and why is returned line by line for the log and the halt
record. A position below the market's minimum order size, or whose market has an
unresolved order, is reported and left alone.
"""
from __future__ import annotations

import logging

from polybot.engine import ledger
from polybot.errors import ExchangeError
from polybot.exchange.base import SELL, OrderRequest
from polybot.money import MICRO, round_size_down

log = logging.getLogger("polybot.engine")


def close_all_positions(engine) -> list[str]:
    positions = [p for p in ledger.open_positions(engine.conn, engine.mode) if p.size_micro > 0]
    if not positions:
        return ["close-out: no open positions"]
    report = []
    try:
        books = engine.client.get_books([p.token_id for p in positions])
        engine.md.books.update(books)
    except ExchangeError as exc:
        report.append(f"close-out: fresh books unavailable ({exc}); using the last ones")
    unresolved = engine.executor.unresolved_markets() if engine.executor else set()
    for p in positions:
        label = f"token {p.token_id[:12]}… ({p.size_micro / MICRO:g} shares, market {p.market_id})"
        if engine.executor is None:
            report.append(f"close-out: {label} not closed: the exchange was not set up")
            continue
        if p.market_id in unresolved:
            report.append(f"close-out: {label} not closed: an order in this market is unresolved")
            continue
        m = engine.md.info(p.market_id)
        tick = int(round((m.tick_size if m else 0.01) * MICRO))
        size = round_size_down(p.size_micro)
        if m is not None and size < m.min_size_micro:
            report.append(f"close-out: {label} not closed: below the market's minimum order size "
                          f"{m.min_order_size:g}")
            continue
        try:
            req = OrderRequest(token_id=p.token_id, side=SELL, order_type="FAK", price_micro=tick,
                               size_micro=size, client_tag="emergency_stop",
                               tick_size=format(tick / MICRO, "g"), neg_risk=bool(m.neg_risk) if m else None)
            out = engine.executor.place(req, market_id=p.market_id, strategy="emergency_stop",
                                        reason="emergency stop: close position", closing=True)
        except Exception as exc:  # noqa: BLE001 — best effort: report and go on
            report.append(f"close-out: {label} not closed: {exc}")
            continue
        left = ledger.get_position(engine.conn, engine.mode, p.token_id)
        remaining = left.size_micro if left is not None and left.status == "open" else 0
        report.append(f"close-out: {label}: order {out.order_id} {out.status}, sold {out.filled_micro / MICRO:g}"
                      f", {remaining / MICRO:g} shares left" + (f" ({out.error})" if out.error else ""))
    return report
