"""Parsers for account-side payloads: Data-API positions/trades/value (v1 camelCase and v2
snake_case), CLOB open orders and trades pages, the order-post and cancel answers, and
error bodies. Money that settles comes out as integer micro-units (polybot/money.py).

Import these from :mod:`polybot.exchange.parse` (re-exported there).
"""

from __future__ import annotations

from typing import Any

from polybot.domain import BUY, SELL
from polybot.errors import DataError
from polybot.exchange.models import (
    ApiErrorBody,
    CancelResult,
    ClobTrade,
    OpenOrder,
    OrderPostResult,
    Page,
    ParseIssue,
    Position,
    UserTrade,
)
from polybot.exchange.parse_util import (
    Bad,
    collect,
    epoch,
    flag,
    guarded,
    micro,
    next_cursor,
    num,
    opt_int,
    opt_text,
    price,
    price_micro,
    record_id,
    records_of,
    text,
)

# ----------------------------------------------------------------------------- Data API


def _pick(rec: dict, v2_key: str, v1_key: str) -> Any:
    v = rec.get(v2_key)
    return rec.get(v1_key) if v is None else v


def _position(rec: dict, tok: str) -> Position:
    v2 = "token_id" in rec or "current_size" in rec
    size = micro(rec.get("current_size" if v2 else "size"), "size")
    if size < 0:
        raise Bad(f"size {from_m(size)} is negative")
    cond = text(_pick(rec, "condition_id", "conditionId"))
    if not cond:
        raise Bad("condition id is missing")
    return Position(
        token_id=tok,
        condition_id=cond,
        size=size,
        avg_price=price_micro(_pick(rec, "avg_price", "avgPrice") or 0, "avg price"),
        initial_value=micro(rec.get("entry_cost_usdc") if v2 else rec.get("initialValue"), "initial value"),
        current_value=micro(_pick(rec, "current_value", "currentValue"), "current value"),
        cash_pnl=micro(rec.get("unrealized_pnl") if v2 else rec.get("cashPnl"), "cash pnl"),
        realized_pnl=micro(_pick(rec, "realized_pnl", "realizedPnl"), "realized pnl"),
        total_bought=micro(rec.get("total_size") if v2 else rec.get("totalBought"), "total bought"),
        cur_price=price(_pick(rec, "current_price", "curPrice"), "current price"),
        redeemable=flag(rec.get("redeemable")),
        mergeable=flag(rec.get("mergeable")),
        outcome=text(rec.get("outcome")),
        outcome_index=opt_int(_pick(rec, "outcome_index", "outcomeIndex"), "outcome index"),
        opposite_token_id=opt_text(_pick(rec, "opposite_token_id", "oppositeAsset")),
        title=text(rec.get("title")),
        slug=text(rec.get("slug")),
        event_slug=text(_pick(rec, "event_slug", "eventSlug")),
        end_date=epoch(_pick(rec, "end_date", "endDate"), "end date"),
        negative_risk=flag(_pick(rec, "negative_risk", "negativeRisk")),
        status=opt_text(rec.get("status")),
        proxy_wallet=text(_pick(rec, "proxy_wallet", "proxyWallet")),
    )


def from_m(m: int) -> str:
    return f"{m / 1_000_000:g}"


def parse_position(rec: Any) -> Position:
    """One Data-API position row, v1 (``asset``, ``avgPrice`` ...) or v2 (``token_id``,
    ``current_size`` ...)."""
    if not isinstance(rec, dict):
        raise DataError("Position row is not a JSON object; it is skipped.")
    tok = opt_text(_pick(rec, "token_id", "asset"))
    if tok is None:
        raise DataError(
            f"Position row without a token id (condition "
            f"{_pick(rec, 'condition_id', 'conditionId') or '?'}) is malformed; "
            "it is skipped."
        )
    return guarded("Position in token", tok, lambda: _position(rec, tok))


def parse_positions(obj: Any) -> tuple[list[Position], list[ParseIssue]]:
    """``/positions`` (bare v1 array) or ``/v2/positions`` (``{data, pagination}``) →
    (positions, issues)."""
    return collect(
        records_of(obj, "positions"),
        parse_position,
        record_id("token_id", "asset", "condition_id", "conditionId"),
    )


def _user_trade(rec: dict, tok: str) -> UserTrade:
    side = text(rec.get("side")).upper()
    if side not in (BUY, SELL):
        raise Bad(f"side {rec.get('side')!r} is not BUY or SELL")
    size = micro(rec.get("size"), "size")
    if size < 0:
        raise Bad("size is negative")
    ts = epoch(rec.get("timestamp"), "timestamp")
    if ts is None:
        raise Bad("timestamp is missing")
    return UserTrade(
        token_id=tok,
        condition_id=text(_pick(rec, "condition_id", "conditionId")),
        side=side,
        size=size,
        price=price_micro(rec.get("price"), "price"),
        timestamp=ts,
        outcome=text(rec.get("outcome")),
        outcome_index=opt_int(_pick(rec, "outcome_index", "outcomeIndex"), "outcome index"),
        transaction_hash=text(_pick(rec, "transaction_hash", "transactionHash")),
        proxy_wallet=text(_pick(rec, "proxy_wallet", "proxyWallet")),
        title=text(rec.get("title")),
        slug=text(rec.get("slug")),
    )


def parse_user_trade(rec: Any) -> UserTrade:
    """One Data-API ``/trades`` (v1) or ``/v2/trades`` row."""
    if not isinstance(rec, dict):
        raise DataError("Trade row is not a JSON object; it is skipped.")
    tok = opt_text(_pick(rec, "token_id", "asset"))
    if tok is None:
        raise DataError(
            f"Trade row without a token id (transaction "
            f"{_pick(rec, 'transaction_hash', 'transactionHash') or '?'}) is "
            "malformed; it is skipped."
        )
    return guarded("Trade in token", tok, lambda: _user_trade(rec, tok))


def parse_user_trades(obj: Any) -> tuple[list[UserTrade], list[ParseIssue]]:
    return collect(
        records_of(obj, "trades"),
        parse_user_trade,
        record_id("transaction_hash", "transactionHash", "token_id", "asset"),
    )


def parse_value(obj: Any, user: str = "?") -> int:
    """``/value?user=`` → ``[{"user","value"}]`` (or ``{"value"}`` / v2 ``{data:{...}}``) →
    micro USDC."""

    def build() -> int:
        v = obj
        if isinstance(v, dict) and "data" in v:
            v = v["data"]
        if isinstance(v, list):
            if not v:
                return 0
            v = v[0]
        if isinstance(v, dict):
            v = v.get("value")
        return micro(v, "value")

    return guarded("Portfolio value of user", user, build)


# ----------------------------------------------------------------------------- CLOB account


def _open_order(rec: dict, oid: str) -> OpenOrder:
    trades = rec.get("associate_trades") or ()
    return OpenOrder(
        id=oid,
        status=text(rec.get("status")).upper(),
        market=text(rec.get("market")),
        asset_id=text(rec["asset_id"]),
        side=text(rec.get("side")).upper(),
        original_size=micro(rec.get("original_size"), "original_size"),
        size_matched=micro(rec.get("size_matched"), "size_matched"),
        price=price_micro(rec.get("price"), "price"),
        outcome=text(rec.get("outcome")),
        order_type=text(rec.get("order_type")).upper(),
        expiration=epoch(rec.get("expiration"), "expiration"),
        created_at=epoch(rec.get("created_at"), "created_at"),
        maker_address=text(rec.get("maker_address")),
        owner=text(rec.get("owner")),
        associate_trades=tuple(str(t) for t in trades),
    )


def parse_open_order(rec: Any) -> OpenOrder:
    """One CLOB ``/data/orders`` row (also ``GET /data/order/{id}``)."""
    if not isinstance(rec, dict) or not rec.get("id"):
        raise DataError("Open order without an id is malformed; it is skipped.")
    oid = str(rec["id"])
    return guarded("Open order", oid, lambda: _open_order(rec, oid))


def parse_open_orders_page(obj: Any) -> Page:
    """``{data:[orders], next_cursor}`` → Page (``next_cursor`` None after ``LTE=``)."""
    items, issues = collect(records_of(obj, "orders"), parse_open_order, record_id("id"))
    return Page(items=tuple(items), next_cursor=next_cursor(obj), issues=tuple(issues))


def _clob_trade(rec: dict, tid: str) -> ClobTrade:
    status = text(rec.get("status")).upper()
    if status.startswith("TRADE_STATUS_"):
        status = status[len("TRADE_STATUS_") :]
    fee = num(rec.get("fee_rate_bps"), "fee_rate_bps", 0.0)
    return ClobTrade(
        id=tid,
        market=text(rec.get("market")),
        asset_id=text(rec["asset_id"]),
        side=text(rec.get("side")).upper(),
        size=micro(rec.get("size"), "size"),
        price=price_micro(rec.get("price"), "price"),
        status=status,
        match_time=epoch(rec.get("match_time"), "match_time"),
        last_update=epoch(rec.get("last_update"), "last_update"),
        fee_rate_bps=int(fee),
        outcome=text(rec.get("outcome")),
        taker_order_id=text(rec.get("taker_order_id")),
        trader_side=text(rec.get("trader_side")).upper(),
        owner=text(rec.get("owner")),
        maker_address=text(rec.get("maker_address")),
        transaction_hash=text(rec.get("transaction_hash")),
        bucket_index=opt_int(rec.get("bucket_index"), "bucket_index"),
        maker_orders=tuple(rec.get("maker_orders") or ()),
    )


def parse_clob_trade(rec: Any) -> ClobTrade:
    """One CLOB ``/data/trades`` row (also a WS user ``trade`` event)."""
    if not isinstance(rec, dict) or not rec.get("id"):
        raise DataError("CLOB trade without an id is malformed; it is skipped.")
    tid = str(rec["id"])
    return guarded("CLOB trade", tid, lambda: _clob_trade(rec, tid))


def parse_trades_page(obj: Any) -> Page:
    items, issues = collect(records_of(obj, "trades"), parse_clob_trade, record_id("id"))
    return Page(items=tuple(items), next_cursor=next_cursor(obj), issues=tuple(issues))


def parse_order_post_response(obj: Any) -> OrderPostResult:
    """``POST /order`` answer → OrderPostResult.

    ``makingAmount``/``takingAmount`` are read as DECIMAL amounts (USDC or shares, e.g.
    ``"4.599999"`` in real matched answers) and converted to micro-units; the docs example
    (``"100000000"``) looks like base units — check against the live API before relying
    on these amounts for fills (poll trades instead).
    """
    if not isinstance(obj, dict):
        raise DataError(
            "Order answer is not a JSON object; treat the order outcome as unknown and reconcile open orders."
        )
    oid = text(obj.get("orderID") or obj.get("orderId") or obj.get("id"))

    def build() -> OrderPostResult:
        return OrderPostResult(
            success=flag(obj.get("success")),
            order_id=oid,
            status=text(obj.get("status")).lower(),
            making_amount=micro(obj.get("makingAmount"), "makingAmount"),
            taking_amount=micro(obj.get("takingAmount"), "takingAmount"),
            error_msg=text(obj.get("errorMsg") or obj.get("error")),
            trade_ids=tuple(str(t) for t in (obj.get("tradeIDs") or ())),
            transaction_hashes=tuple(str(t) for t in (obj.get("transactionsHashes") or ())),
            raw_making_amount=text(obj.get("makingAmount")),
            raw_taking_amount=text(obj.get("takingAmount")),
        )

    return guarded("Order answer for order", oid or "?", build)


def parse_cancel_response(obj: Any) -> CancelResult:
    """``{"canceled":[ids], "not_canceled"|"notCanceled":{id: reason}}`` → CancelResult."""

    def build() -> CancelResult:
        if not isinstance(obj, dict):
            raise Bad("it is not a JSON object")
        nc = obj.get("not_canceled")
        if nc is None:
            nc = obj.get("notCanceled")
        return CancelResult(
            canceled=tuple(str(i) for i in (obj.get("canceled") or ())),
            not_canceled={str(k): text(v) for k, v in (nc or {}).items()},
        )

    return guarded("Cancel", "answer", build)


def parse_error_body(obj: Any) -> ApiErrorBody:
    """An error body ``{"error": msg, "code"?, "retry_after_seconds"?}`` (also plain text).
    Never raises: an unreadable body becomes its text."""
    if isinstance(obj, dict):
        msg = obj.get("error") or obj.get("message") or obj.get("errorMsg") or ""
        try:
            retry = num(obj.get("retry_after_seconds"), "retry_after_seconds")
        except Bad:
            retry = None
        return ApiErrorBody(message=text(msg), code=opt_text(obj.get("code")), retry_after_seconds=retry)
    return ApiErrorBody(message=text(obj).strip()[:300])
