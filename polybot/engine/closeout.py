"""Emergency close-out: sell every open position with marketable orders (best effort).

Each position gets one FAK SELL of the whole holding with the worst price at one tick
(it takes whatever the book bids, as the checklist's "close all positions" asks);
what filled, what did not and why is returned line by line for the log and the halt
record. A position below the market's minimum order size, or whose market has an
unresolved order, is reported and left alone.

Live: the exchange's own positions (Data API) decide how much is sold — the bot's part of
a token is the exchange's position minus the external holding (polybot/engine/external.py),
and the bot never sells more than its ledger holds. External holdings are sold only when
the operator started the bot with ``--close-external``; otherwise they are listed and left.
If the Data API cannot be read, the ledger's sizes are used and the report says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from polybot.domain import SELL
from polybot.engine import external, ledger
from polybot.engine.marketdata import market_version
from polybot.engine.order_fills import CLOSE_EXTERNAL
from polybot.engine.orders import PlaceOutcome
from polybot.errors import ExchangeError
from polybot.exchange.base import OrderRequest
from polybot.money import MICRO, round_size_down
from polybot.strategy.base import MarketInfo

if TYPE_CHECKING:  # the loop imports this module (through stop); only the type is needed
    from polybot.engine.loop import Engine

log = logging.getLogger("polybot.engine")


@dataclass(frozen=True)
class ToSell:
    token_id: str
    market_id: str
    size_micro: int
    what: str  # "position" | "external holding"


def _plan(engine: Engine, report: list[str]) -> list[ToSell]:
    bot = {p.token_id: p for p in ledger.open_positions(engine.conn, engine.mode) if p.size_micro > 0}
    if engine.paper:
        return [ToSell(p.token_id, p.market_id, p.size_micro, "position") for p in bot.values()]
    try:
        xpos = {p.token_id: int(p.size) for p in engine.require_exchange().positions()}
    except Exception as exc:  # noqa: BLE001 — best effort: the ledger's sizes, said so
        report.append(
            f"close-out: the exchange's positions are unreadable ({exc}); selling the ledger's sizes"
        )
        return [ToSell(p.token_id, p.market_id, p.size_micro, "position") for p in bot.values()]
    ext = external.sizes(engine.conn, engine.mode)
    close_ext = bool(getattr(engine, "close_external", False))
    out = []
    for token in sorted(set(bot) | set(xpos)):
        at_exchange = xpos.get(token, 0)
        theirs = max(0, ext.get(token, 0))
        mine = min(bot[token].size_micro, max(0, at_exchange - theirs)) if token in bot else 0
        if token in bot and mine < bot[token].size_micro:
            report.append(
                f"close-out: token {token[:12]}…: the ledger holds {bot[token].size_micro / MICRO:g} "
                f"shares, the exchange shows {max(0, at_exchange - theirs) / MICRO:g} of the bot's; "
                f"selling {mine / MICRO:g}"
            )
        others = max(0, at_exchange - mine)
        market = (
            bot[token].market_id
            if token in bot
            else (external.market_of(engine.conn, token) or f"external:{token[:16]}")
        )
        if mine > 0:
            out.append(ToSell(token, market, mine, "position"))
        if close_ext and others > 0:
            out.append(ToSell(token, market, others, "external holding"))
        if others > 0 and not close_ext:
            report.append(
                f"close-out: {others / MICRO:g} shares of token {token[:12]}… are not the bot's "
                f"(external); left alone (python trading_bot.py --close-external sells them too)"
            )
    return out


def close_all_positions(engine: Engine) -> list[str]:
    report: list[str] = []
    plan = _plan(engine, report)
    if not plan:
        return report + ["close-out: no open positions"]
    try:
        books = engine.client.get_books([p.token_id for p in plan])
        engine.md.books.update(books)
    except ExchangeError as exc:
        report.append(f"close-out: fresh books unavailable ({exc}); using the last ones")
    unresolved = engine.executor.unresolved_markets() if engine.executor else set()
    for p in plan:
        label = f"token {p.token_id[:12]}… ({p.what}, {p.size_micro / MICRO:g} shares, market {p.market_id})"
        if engine.executor is None:
            report.append(f"close-out: {label} not closed: the exchange was not set up")
            continue
        if p.market_id in unresolved:
            report.append(f"close-out: {label} not closed: an order in this market is unresolved")
            continue
        m = engine.md.info(p.market_id)
        tick_size = _tick(engine, p.token_id, m)
        size = round_size_down(p.size_micro)
        if m is not None and size < m.min_size_micro:
            report.append(
                f"close-out: {label} not closed: below the market's minimum order size {m.min_order_size:g}"
            )
            continue
        try:
            out = _sell(engine, p, m, tick_size, size)
            if out.status == "REJECTED" and "tick" in (out.error or "").lower():
                # the tick changed under us (0.001 below 0.04 / above 0.96): read it again, once
                engine.md.books.update(engine.client.get_books([p.token_id]))
                report.append(
                    f"close-out: {label}: the tick changed ({out.error}); selling again at the new tick"
                )
                out = _sell(engine, p, m, _tick(engine, p.token_id, m), size)
        except Exception as exc:  # noqa: BLE001 — best effort: report and go on
            report.append(f"close-out: {label} not closed: {exc}")
            continue
        left = ledger.get_position(engine.conn, engine.mode, p.token_id)
        remaining = left.size_micro if left is not None and left.status == "open" else 0
        report.append(
            f"close-out: {label}: order {out.order_id} {out.status}, sold {out.filled_micro / MICRO:g}"
            f", {remaining / MICRO:g} shares of the bot's left" + (f" ({out.error})" if out.error else "")
        )
    return report


def _sell(engine: Engine, p: ToSell, m: MarketInfo | None, tick_size: float, size: int) -> PlaceOutcome:
    """One FAK SELL of ``size`` shares at any price down to one tick."""
    req = OrderRequest(
        token_id=p.token_id,
        side=SELL,
        order_type="FAK",
        price_micro=int(round(tick_size * MICRO)),
        size_micro=size,
        client_tag="emergency_stop",
        tick_size=format(tick_size, "g"),
        neg_risk=bool(m.neg_risk) if m else None,
        market_version=market_version(engine.conn, p.market_id),
    )
    return engine.require_executor().place(
        req,
        market_id=p.market_id,
        strategy=CLOSE_EXTERNAL if p.what == "external holding" else "emergency_stop",
        reason=f"emergency stop: close {p.what}",
        closing=True,
    )


def _tick(engine: Engine, token_id: str, m: MarketInfo | None) -> float:
    """The token's tick now: the fresh book's (it changes at run time near 0 and 1), else the market's."""
    book = engine.md.books.get(token_id) if hasattr(engine.md, "books") else None
    t: float | None = getattr(book, "tick_size", None) if book is not None else None
    if t:
        return float(t)
    return float(m.tick_size) if m else 0.01
