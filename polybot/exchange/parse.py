"""JSON from Polymarket (or the simulator) → typed models, exactly per the real payloads.

Every single-record parser raises :class:`polybot.errors.DataError` with the record's
id in one sentence when the record is malformed (missing id, price outside [0,1],
unparsable number, ...). Every list/map parser skips bad records and returns
``(result, issues)`` with one :class:`ParseIssue` per skipped record, so one bad
market never aborts a cycle.

Wire facts this module relies on (docs/dev/api_notes.md §2, §3):
- Gamma ``outcomes``, ``outcomePrices``, ``clobTokenIds``, ``umaResolutionStatuses`` are
  JSON-encoded strings; Protocol-V2 markets (``version: "v2"``) carry ``positionIds`` as
  a real array instead of ``clobTokenIds``.
- Fees come from ``feesEnabled`` + ``feeSchedule{rate,exponent,takerOnly,rebateRate}``;
  ``makerBaseFee``/``takerBaseFee`` are legacy bps and are ignored.
- CLOB books send prices/sizes as strings, bids ascending and asks descending (best
  LAST): :func:`parse_book` returns them best FIRST.

Resolution rule for Gamma markets (``payouts``), decided from docs/dev/api_notes.md §12:
1. ``umaResolutionStatus`` present (non-empty): settled only if it is ``"resolved"``
   (``proposed``/``disputed``/anything else = not settled, even when ``closed``);
2. else ``umaResolutionStatuses`` non-empty: settled only if its LAST entry is ``"resolved"``;
3. else (no status information at all, e.g. ``samples/gamma_market_resolved.json``):
   settled only if ``closed`` is true AND ``outcomePrices`` is an exact payout vector.
In every case the payouts are taken from ``outcomePrices``, which must be an exact payout
vector (each price 0, 0.5 or 1 and summing to 1: ``["1","0"]``, ``["0","1"]``,
``["0.5","0.5"]``); otherwise payouts stay None (unknown) — this is how legacy
``["0","0"]`` markets come out unsettled.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from polybot.errors import DataError
from polybot.exchange.models import (
    BookLevel,
    Event,
    FeeSchedule,
    LastTrade,
    Market,
    OrderBook,
    OutcomeToken,
    Page,
    ParseIssue,
    PricePoint,
)
from polybot.exchange.parse_util import (
    END_CURSORS,
    Bad,
    as_list,
    collect,
    epoch,
    flag,
    guarded,
    next_cursor,
    num,
    opt_text,
    payout_vector,
    price,
    record_id,
    records_of,
    req_num,
    req_price,
    tag_labels,
    text,
)

# ----------------------------------------------------------------------------- Gamma


def _fees(obj: dict) -> FeeSchedule:
    fs = obj.get("feeSchedule")
    enabled_raw = obj.get("feesEnabled")
    if fs is None:
        if flag(enabled_raw):
            raise Bad("feesEnabled is true but feeSchedule is missing, so the taker fee rate is unknown")
        return FeeSchedule()
    if not isinstance(fs, dict):
        raise Bad("feeSchedule is not an object")
    rate = num(fs.get("rate"), "feeSchedule.rate", 0.0)
    exponent = num(fs.get("exponent"), "feeSchedule.exponent", 1.0)
    rebate = num(fs.get("rebateRate"), "feeSchedule.rebateRate", 0.0)
    if not 0.0 <= rate <= 1.0:
        raise Bad(f"feeSchedule.rate {rate} is outside [0, 1]")
    if not 0.0 <= rebate <= 1.0:
        raise Bad(f"feeSchedule.rebateRate {rebate} is outside [0, 1]")
    if exponent <= 0:
        raise Bad(f"feeSchedule.exponent {exponent} is not positive")
    # feesEnabled absent (trimmed payloads): a schedule with a positive rate means enabled.
    enabled = flag(enabled_raw) if enabled_raw is not None else rate > 0
    return FeeSchedule(
        rate=rate,
        exponent=exponent,
        taker_only=flag(fs.get("takerOnly"), True),
        rebate_rate=rebate,
        enabled=enabled,
    )


def _gamma_payouts(
    obj: dict, closed: bool, token_ids: list[str], prices_raw: list
) -> tuple[dict | None, str | None, tuple[str, ...]]:
    status = opt_text(obj.get("umaResolutionStatus"))
    statuses = tuple(
        str(s).strip().lower() for s in as_list(obj.get("umaResolutionStatuses"), "umaResolutionStatuses")
    )
    vector = payout_vector(prices_raw) if len(prices_raw) == len(token_ids) else None
    if status is not None:
        settled = status.strip().lower() == "resolved"
    elif statuses:
        settled = statuses[-1] == "resolved"
    else:
        settled = closed and vector is not None
    # vector is None unless it has one payout per token (checked above)
    payouts = dict(zip(token_ids, vector, strict=True)) if settled and vector is not None else None
    return payouts, status, statuses


def _gamma_market(obj: dict, mid: str, event: dict | None) -> Market:
    condition_id = text(obj.get("conditionId"))
    if not condition_id:
        raise Bad("conditionId is missing")
    version = text(obj.get("version") or "v1").lower()
    if version == "v2":
        token_ids = as_list(obj.get("positionIds"), "positionIds")
        if not token_ids:
            raise Bad('version is "v2" but positionIds is empty')
    else:
        token_ids = as_list(obj.get("clobTokenIds"), "clobTokenIds")
    token_ids = [str(t) for t in token_ids]
    if not token_ids or any(not t for t in token_ids):
        raise Bad("it has no token ids (clobTokenIds is empty)")
    outcomes = [str(o) for o in as_list(obj.get("outcomes"), "outcomes")]
    if len(outcomes) != len(token_ids):
        raise Bad(f"{len(outcomes)} outcomes but {len(token_ids)} token ids")
    prices_raw = as_list(obj.get("outcomePrices"), "outcomePrices")
    prices = (
        [price(p, "outcomePrices") for p in prices_raw]
        if len(prices_raw) == len(token_ids)
        else [None] * len(token_ids)
    )
    closed = flag(obj.get("closed"))
    payouts, status, statuses = _gamma_payouts(obj, closed, token_ids, prices_raw)
    tokens = tuple(
        OutcomeToken(
            token_id=t, outcome=o, index=i, price=p, winner=None if payouts is None else payouts[t] == 1.0
        )
        for i, (t, o, p) in enumerate(zip(token_ids, outcomes, prices, strict=True))  # lengths checked above
    )

    events = obj.get("events")
    ev = (
        event
        if event is not None
        else (events[0] if isinstance(events, list) and events and isinstance(events[0], dict) else {})
    )
    tick = num(obj.get("orderPriceMinTickSize"), "orderPriceMinTickSize", 0.01)
    if not 0.0 < tick < 1.0:
        raise Bad(f"orderPriceMinTickSize {tick} is outside (0, 1)")
    min_size = num(obj.get("orderMinSize"), "orderMinSize", 5.0)
    if min_size < 0:
        raise Bad(f"orderMinSize {min_size} is negative")
    liquidity = num(obj.get("liquidityNum"), "liquidityNum")
    if liquidity is None:
        liquidity = num(obj.get("liquidity"), "liquidity")
    if liquidity is None:
        liquidity = num(obj.get("liquidityClob"), "liquidityClob", 0.0)
    volume = num(obj.get("volumeNum"), "volumeNum")
    if volume is None:
        volume = num(obj.get("volume"), "volume", 0.0)
    neg_risk = obj.get("negRisk")
    tags = tag_labels(obj.get("tags")) or tag_labels(ev.get("tags"))
    return Market(
        id=mid,
        condition_id=condition_id,
        question=text(obj.get("question")),
        slug=text(obj.get("slug")),
        tokens=tokens,
        version=version,
        event_id=opt_text(ev.get("id")),
        event_title=opt_text(ev.get("title")),
        neg_risk=flag(neg_risk) if neg_risk is not None else flag(ev.get("negRisk")),
        neg_risk_market_id=opt_text(obj.get("negRiskMarketID")) or opt_text(ev.get("negRiskMarketID")),
        end_date=epoch(obj.get("endDate"), "endDate") or epoch(obj.get("endDateIso"), "endDateIso"),
        active=flag(obj.get("active"), True),
        closed=closed,
        archived=flag(obj.get("archived")),
        accepting_orders=flag(obj.get("acceptingOrders"), True),
        enable_order_book=flag(obj.get("enableOrderBook"), True),
        tick_size=tick,
        min_order_size=min_size,
        fees=_fees(obj),
        volume_24h=num(obj.get("volume24hr"), "volume24hr", 0.0),
        liquidity=liquidity,
        best_bid=price(obj.get("bestBid"), "bestBid"),
        best_ask=price(obj.get("bestAsk"), "bestAsk"),
        last_trade_price=price(obj.get("lastTradePrice"), "lastTradePrice"),
        uma_resolution_status=status,
        payouts=payouts,
        tags=tags,
        question_id=opt_text(obj.get("questionID")),
        start_date=epoch(obj.get("startDate"), "startDate"),
        closed_time=epoch(obj.get("closedTime"), "closedTime"),
        volume=volume,
        fee_type=opt_text(obj.get("feeType")),
        uma_resolution_statuses=statuses,
    )


def parse_gamma_market(obj: Any, *, event: dict | None = None) -> Market:
    """One Gamma market object → Market (``event``: parent event when nested in an event)."""
    if not isinstance(obj, dict):
        raise DataError(
            "Gamma market record is not a JSON object; it is skipped — check "
            "that the Gamma base URL points at the Gamma API."
        )
    mid = opt_text(obj.get("id"))
    if mid is None:
        raise DataError(
            f"Gamma market without an id (conditionId "
            f"{obj.get('conditionId') or '?'}) is malformed; it is skipped."
        )
    return guarded("Gamma market", mid, lambda: _gamma_market(obj, mid, event))


def parse_gamma_markets(records: Any) -> tuple[list[Market], list[ParseIssue]]:
    """A list of Gamma markets (bare array or keyset envelope) → (markets, issues)."""
    return collect(records_of(records, "markets"), parse_gamma_market, record_id("id", "conditionId", "slug"))


def parse_gamma_event(obj: Any) -> tuple[Event, list[ParseIssue]]:
    """One Gamma event with its embedded markets → (Event, issues of skipped markets)."""
    if not isinstance(obj, dict) or opt_text(obj.get("id")) is None:
        raise DataError("Gamma event without an id is malformed; it is skipped.")
    eid = str(obj["id"])

    def build() -> tuple[Event, list[ParseIssue]]:
        markets, issues = collect(
            as_list(obj.get("markets"), "markets"),
            lambda m: parse_gamma_market(m, event=obj),
            record_id("id", "conditionId", "slug"),
        )
        liquidity = num(obj.get("liquidity"), "liquidity")
        if liquidity is None:
            liquidity = num(obj.get("liquidityClob"), "liquidityClob", 0.0)
        ev = Event(
            id=eid,
            slug=text(obj.get("slug")),
            title=text(obj.get("title")),
            markets=tuple(markets),
            neg_risk=flag(obj.get("negRisk")),
            neg_risk_market_id=opt_text(obj.get("negRiskMarketID")),
            active=flag(obj.get("active"), True),
            closed=flag(obj.get("closed")),
            end_date=epoch(obj.get("endDate"), "endDate"),
            volume_24h=num(obj.get("volume24hr"), "volume24hr", 0.0),
            liquidity=liquidity,
            tags=tag_labels(obj.get("tags")),
        )
        return ev, issues

    return guarded("Gamma event", eid, build)


def parse_gamma_events(records: Any) -> tuple[list[Event], list[ParseIssue]]:
    """A list of events (bare array or keyset envelope) → (events, issues); issues include
    skipped events and skipped markets inside good events."""
    events: list[Event] = []
    issues: list[ParseIssue] = []
    for i, rec in enumerate(records_of(records, "events")):
        try:
            ev, sub = parse_gamma_event(rec)
        except DataError as exc:
            issues.append(ParseIssue(record_id("id", "slug")(rec, i), str(exc)))
            continue
        events.append(ev)
        issues.extend(sub)
    return events, issues


# ----------------------------------------------------------------------------- CLOB market data


def _clob_market(obj: dict, cid: str) -> Market:
    raw_tokens = obj.get("tokens")
    if not isinstance(raw_tokens, list) or not raw_tokens:
        raise Bad("tokens is missing or empty")
    tokens = []
    for i, t in enumerate(raw_tokens):
        tid = text(t.get("token_id"))
        if not tid:
            raise Bad(f"tokens[{i}] has no token_id")
        w = t.get("winner")
        tokens.append(
            OutcomeToken(
                token_id=tid,
                outcome=text(t.get("outcome")),
                index=i,
                price=price(t.get("price"), f"tokens[{i}].price"),
                winner=None if w is None else flag(w),
            )
        )
    closed = flag(obj.get("closed"))
    payouts = None
    if any(t.winner for t in tokens):
        payouts = {t.token_id: 1.0 if t.winner else 0.0 for t in tokens}
    elif closed and flag(obj.get("is_50_50_outcome")):
        payouts = {t.token_id: 0.5 for t in tokens}
    tick = num(obj.get("minimum_tick_size"), "minimum_tick_size", 0.01)
    if not 0.0 < tick < 1.0:
        raise Bad(f"minimum_tick_size {tick} is outside (0, 1)")
    return Market(
        id=cid,
        condition_id=cid,
        question=text(obj.get("question")),
        slug=text(obj.get("market_slug")),
        tokens=tuple(tokens),
        neg_risk=flag(obj.get("neg_risk")),
        neg_risk_market_id=opt_text(obj.get("neg_risk_market_id")),
        end_date=epoch(obj.get("end_date_iso"), "end_date_iso"),
        active=flag(obj.get("active"), True),
        closed=closed,
        archived=flag(obj.get("archived")),
        accepting_orders=flag(obj.get("accepting_orders"), True),
        enable_order_book=flag(obj.get("enable_order_book"), True),
        tick_size=tick,
        min_order_size=num(obj.get("minimum_order_size"), "minimum_order_size", 5.0),
        payouts=payouts,
        tags=tag_labels(obj.get("tags")),
        question_id=opt_text(obj.get("question_id")),
    )


def parse_clob_market(obj: Any) -> Market:
    """CLOB ``GET /markets/{condition_id}`` → Market.

    The CLOB has no Gamma id, so ``id`` is the condition id. ``tokens[].winner`` gives the
    payouts (winner 1.0, others 0.0; ``is_50_50_outcome`` on a closed market → 0.5 each).
    Fees are NOT in this payload (``maker_base_fee``/``taker_base_fee`` are legacy bps), so
    ``fees`` is the disabled default — read fees from the Gamma market.
    """
    if not isinstance(obj, dict) or not obj.get("condition_id"):
        raise DataError("CLOB market without a condition_id is malformed; it is skipped.")
    cid = str(obj["condition_id"])
    return guarded("CLOB market", cid, lambda: _clob_market(obj, cid))


def parse_clob_markets_page(obj: Any) -> Page:
    """CLOB ``/markets``, ``/sampling-markets`` page ``{data, next_cursor, ...}`` → Page."""
    items, issues = collect(
        records_of(obj, "data"), parse_clob_market, record_id("condition_id", "market_slug")
    )
    return Page(items=tuple(items), next_cursor=next_cursor(obj), issues=tuple(issues))


def _levels(raw: Any, side: str, best_high: bool) -> tuple[BookLevel, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise Bad(f"{side} is not a list")
    levels = []
    for lv in raw:
        p = float(lv["price"])
        s = float(lv["size"])
        if not 0.0 <= p <= 1.0:
            raise Bad(f"{side} price {lv['price']} is outside [0, 1]")
        if not s >= 0.0 or not math.isfinite(s):
            raise Bad(f"{side} size {lv['size']} is negative or not finite")
        levels.append(BookLevel(p, s))
    # The wire sends bids ascending / asks descending (best LAST). Reversing the wire
    # order gives best first; sorting does the same for a well-formed book (timsort is
    # linear on reversed runs) and stays correct if a server ever sends another order.
    levels.reverse()
    levels.sort(key=lambda lv: lv.price, reverse=best_high)
    return tuple(levels)


def _book(obj: dict, token: str) -> OrderBook:
    ltp = obj.get("last_trade_price")
    return OrderBook(
        token_id=token,
        market=text(obj.get("market")),
        timestamp_ms=int(num(obj.get("timestamp"), "timestamp", 0.0)),
        bids=_levels(obj.get("bids"), "bids", best_high=True),
        asks=_levels(obj.get("asks"), "asks", best_high=False),
        tick_size=num(obj.get("tick_size"), "tick_size", 0.01),
        min_order_size=num(obj.get("min_order_size"), "min_order_size", 5.0),
        neg_risk=flag(obj.get("neg_risk")),
        last_trade_price=price(ltp, "last_trade_price"),
        hash=text(obj.get("hash")),
    )


def parse_book(obj: Any) -> OrderBook:
    """A CLOB book (``GET /book``, an item of ``POST /books``, or a WS ``book`` event)."""
    if not isinstance(obj, dict) or not obj.get("asset_id"):
        market = obj.get("market") if isinstance(obj, dict) else None
        raise DataError(
            f"Order book without an asset_id (market {market or '?'}) is malformed; it is skipped."
        )
    token = str(obj["asset_id"])
    return guarded("Order book", f"{token} (market {obj.get('market') or '?'})", lambda: _book(obj, token))


def parse_books(obj: Any) -> tuple[dict[str, OrderBook], list[ParseIssue]]:
    """``POST /books`` answer (array of books) → ({token_id: OrderBook}, issues)."""
    books, issues = collect(records_of(obj, "books"), parse_book, record_id("asset_id", "market"))
    return {b.token_id: b for b in books}, issues


def parse_price_history(obj: Any, token_id: str = "?") -> list[PricePoint]:
    """``{"history":[{"t":<s>,"p":<price>}]}`` → PricePoints sorted by time (``p`` may be a
    number or a string)."""

    def build() -> list[PricePoint]:
        rows = records_of(obj, "history")
        pts = []
        for r in rows:
            t = int(req_num(r["t"], "t"))
            pts.append(PricePoint(t=t, p=req_price(r["p"], f"p at t={t}")))
        pts.sort(key=lambda pt: pt.t)
        return pts

    return guarded("Price history of token", token_id, build)


def _scalar(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else obj


def parse_midpoint(obj: Any, token_id: str = "?") -> float:
    """``GET /midpoint`` → ``{"mid": "0.5"}`` → 0.5."""
    return guarded("Midpoint of token", token_id, lambda: req_price(_scalar(obj, "mid"), "mid"))


def _token_map(obj: Any, kind: str, value: Callable[[Any], Any]) -> tuple[dict, list[ParseIssue]]:
    """``{token: value}`` or ``[{"token_id": ..., ...}]`` → ({token: parsed}, issues)."""
    out: dict = {}
    issues: list[ParseIssue] = []
    if isinstance(obj, list):
        items = [
            (text(r.get("token_id") or r.get("asset_id")) if isinstance(r, dict) else "", r) for r in obj
        ]
    elif isinstance(obj, dict):
        items = list(obj.items())
    else:
        raise DataError(f"{kind} response is not a JSON object or list; check the CLOB base URL.")
    for i, (tok, raw) in enumerate(items):
        tok = tok or f"#{i}"
        try:
            out[tok] = guarded(kind + " of token", tok, functools.partial(value, raw))
        except DataError as exc:
            issues.append(ParseIssue(tok, str(exc)))
    return out, issues


def parse_midpoints(obj: Any) -> tuple[dict[str, float], list[ParseIssue]]:
    """``POST /midpoints`` → ({token_id: mid}, issues)."""
    return _token_map(obj, "Midpoint", lambda v: req_price(_scalar(v, "mid"), "mid"))


def parse_price(obj: Any, token_id: str = "?") -> float:
    """``GET /price`` → ``{"price": "0.5"}`` → 0.5."""
    return guarded("Price of token", token_id, lambda: req_price(_scalar(obj, "price"), "price"))


def _sides(v: Any) -> dict[str, float]:
    if isinstance(v, dict) and "price" in v and "side" in v:
        return {str(v["side"]).upper(): req_price(v["price"], "price")}
    if not isinstance(v, dict):
        raise Bad("value is not an object of side → price")
    return {str(side).upper(): req_price(p, f"{side} price") for side, p in v.items()}


def parse_prices(obj: Any) -> tuple[dict[str, dict[str, float]], list[ParseIssue]]:
    """``POST /prices`` ``{token: {"BUY": 0.5, "SELL": "0.49"}}`` → ({token: {side: price}}, issues).
    BUY = best ask (what a buyer pays), SELL = best bid."""
    if isinstance(obj, list):  # [{"token_id","side","price"}] variant: merge sides per token
        merged: dict = {}
        for r in obj:
            if isinstance(r, dict) and r.get("token_id") and r.get("side"):
                merged.setdefault(str(r["token_id"]), {})[str(r["side"])] = r.get("price")
        obj = merged
    return _token_map(obj, "Price", _sides)


def parse_last_trade_price(obj: Any, token_id: str) -> LastTrade:
    """``GET /last-trade-price`` → ``{"price": "0.5", "side": "BUY"}``."""
    return guarded(
        "Last trade price of token",
        token_id,
        lambda: LastTrade(
            token_id=token_id, price=req_price(obj["price"], "price"), side=opt_text(obj.get("side"))
        ),
    )


def parse_last_trade_prices(obj: Any) -> tuple[dict[str, LastTrade], list[ParseIssue]]:
    """``POST /last-trades-prices`` ``[{"token_id","price","side"}]`` → ({token: LastTrade}, issues).
    Never-traded tokens are omitted by the server."""
    out: dict[str, LastTrade] = {}
    issues: list[ParseIssue] = []
    rows = (
        obj
        if isinstance(obj, list)
        else [
            dict(v, token_id=k) if isinstance(v, dict) else {"token_id": k, "price": v}
            for k, v in (obj or {}).items()
        ]
    )
    for i, r in enumerate(rows):
        tok = text(r.get("token_id")) if isinstance(r, dict) else ""
        try:
            if not tok:
                raise DataError("Last trade price row without a token_id is malformed; it is skipped.")
            out[tok] = parse_last_trade_price(r, tok)
        except DataError as exc:
            issues.append(ParseIssue(tok or f"#{i}", str(exc)))
    return out, issues


def parse_tick_size(obj: Any, token_id: str = "?") -> float:
    """``GET /tick-size`` → ``{"minimum_tick_size": 0.01}`` (number or string) → 0.01."""

    def build() -> float:
        t = num(_scalar(obj, "minimum_tick_size"), "minimum_tick_size")
        if t is None or not 0.0 < t < 1.0:
            raise Bad(f"minimum_tick_size {t} is outside (0, 1)")
        return t

    return guarded("Tick size of token", token_id, build)


def parse_server_time(obj: Any) -> int:
    """``GET /time`` → epoch seconds (accepts seconds, milliseconds or ``{"time": ...}``)."""

    def build() -> int:
        v = obj.get("time", obj.get("timestamp")) if isinstance(obj, dict) else obj
        t = epoch(v, "time")
        if t is None:
            raise Bad("time is empty")
        return t

    return guarded("Server time", "answer", build)


# Account-side parsers (Data API, orders, trades, errors) live in parse_account.py;
# re-exported here so callers have one import path.
from polybot.exchange.parse_account import (  # noqa: E402 — re-exports, kept below this module's own parsers
    parse_cancel_response,
    parse_clob_trade,
    parse_error_body,
    parse_open_order,
    parse_open_orders_page,
    parse_order_post_response,
    parse_position,
    parse_positions,
    parse_trades_page,
    parse_user_trade,
    parse_user_trades,
    parse_value,
)

__all__ = [
    "END_CURSORS",
    "next_cursor",
    "records_of",
    "parse_gamma_market",
    "parse_gamma_markets",
    "parse_gamma_event",
    "parse_gamma_events",
    "parse_clob_market",
    "parse_clob_markets_page",
    "parse_book",
    "parse_books",
    "parse_price_history",
    "parse_midpoint",
    "parse_midpoints",
    "parse_price",
    "parse_prices",
    "parse_last_trade_price",
    "parse_last_trade_prices",
    "parse_tick_size",
    "parse_server_time",
    "parse_position",
    "parse_positions",
    "parse_user_trade",
    "parse_user_trades",
    "parse_value",
    "parse_open_order",
    "parse_open_orders_page",
    "parse_clob_trade",
    "parse_trades_page",
    "parse_order_post_response",
    "parse_cancel_response",
    "parse_error_body",
]
