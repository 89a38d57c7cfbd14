"""Data API (``/data``): positions, trades and portfolio value of a user.

Trades whose settlement FAILED (lifecycle.py) never happened on chain: they are left out.
``user`` is the maker/funder address of the orders (or the signer address); an
address the simulator never saw gets empty answers. v1 routes answer bare arrays
in camelCase; ``/v2/...`` answer ``{"data": ..., "pagination": {...}}`` in
snake_case. Positions use ``sizeThreshold`` (default 1 share; 0 shows dust and
closed positions). Resolved positions are redeemable until the simulated
auto-redeem pays them (see simulator.py).
"""

from __future__ import annotations

from ..timefmt import iso_seconds
from .api import ApiError, Request, Route, decode_cursor, encode_cursor
from .simulator import Simulator

_SORT = {
    "CURRENT": "currentValue",
    "INITIAL": "initialValue",
    "TOKENS": "size",
    "CASHPNL": "cashPnl",
    "PERCENTPNL": "percentPnl",
    "TITLE": "title",
    "PRICE": "curPrice",
    "AVGPRICE": "avgPrice",
    "RESOLVING": "endDate",
}


def _user(sim: Simulator, req: Request):
    user = req.q("user") or req.q("address")
    if not user:
        raise ApiError(400, "user is required")
    return sim.exchange.find_account(user), user


def _position_rows(sim: Simulator, acct, t: float) -> list:
    w = sim.world
    rows = []
    for tok in sorted(set(acct.positions) | set(acct.bought)):
        size = acct.positions.get(tok, 0)
        mi, k = w.token_index[tok]
        m = w.markets[mi]
        phase = sim.phase(mi, t)
        if phase == "resolved":
            cur = sim.payouts(mi)[k]
        else:
            p = float(sim.prices.yes_prices([mi], t)[0])
            cur = round(p if k == 0 else 1 - p, 4)
        cost = acct.cost.get(tok, 0)
        avg = cost / size if size > 0 else 0.0
        shares = size / 1e6
        initial, current = cost / 1e6, shares * cur
        realized = acct.realized.get(tok, 0) / 1e6
        bought = acct.bought.get(tok, 0) / 1e6
        other = m.token_ids[1 - k]
        rows.append(
            {
                "proxyWallet": acct.funder,
                "asset": tok,
                "conditionId": m.condition_id,
                "size": shares,
                "avgPrice": round(avg, 6),
                "initialValue": round(initial, 6),
                "currentValue": round(current, 6),
                "cashPnl": round(current - initial, 6),
                "percentPnl": round(100 * (current - initial) / initial, 2) if initial else 0.0,
                "totalBought": bought,
                "realizedPnl": round(realized, 6),
                "percentRealizedPnl": round(100 * realized / (bought * avg), 2) if bought and avg else 0.0,
                "curPrice": cur,
                "redeemable": phase == "resolved" and size > 0,
                "mergeable": phase == "open" and size > 0 and acct.positions.get(other, 0) > 0,
                "title": m.question,
                "slug": m.slug,
                "icon": f"https://polymarket-upload.s3.us-east-2.amazonaws.com/sim-{m.slug}.png",
                "eventId": w.events[m.event_index].id,
                "eventSlug": w.events[m.event_index].slug,
                "outcome": m.outcomes[k],
                "outcomeIndex": k,
                "oppositeOutcome": m.outcomes[1 - k],
                "oppositeAsset": other,
                "endDate": iso_seconds(sim.end_of(mi)),
                "negativeRisk": m.neg_risk,
            }
        )
    return rows


def _filtered_positions(sim: Simulator, req: Request, t: float):
    acct, _ = _user(sim, req)
    if acct is None:
        return []
    threshold = req.q_float("sizeThreshold", 1.0)
    rows = [
        r
        for r in _position_rows(sim, acct, t)
        if (r["size"] >= threshold and r["size"] > 0) or threshold <= 0
    ]
    markets = {c.lower() for c in req.qs("market")}
    if markets:
        rows = [r for r in rows if r["conditionId"].lower() in markets]
    if req.q("eventId"):
        rows = [r for r in rows if r["eventId"] == req.q("eventId")]
    for flag in ("redeemable", "mergeable"):
        want = req.q_bool(flag)
        if want is not None:
            rows = [r for r in rows if r[flag] == want]
    key = _SORT.get((req.q("sortBy") or "TOKENS").upper(), "size")
    rows.sort(key=lambda r: r[key], reverse=(req.q("sortDirection") or "DESC").upper() == "DESC")
    return rows


def _window(req: Request, rows, max_limit: int, default: int = 100):
    limit = req.q_int("limit", default)
    offset = req.q_int("offset", 0)
    if req.q("cursor"):
        offset = decode_cursor(req.q("cursor"))
    if not 0 <= offset <= 10_000 or not 0 < limit <= max_limit:
        raise ApiError(400, f"limit must be 1..{max_limit} and offset 0..10000")
    return rows[offset : offset + limit], limit, offset


def positions(sim: Simulator, req: Request, t: float):
    return _window(req, _filtered_positions(sim, req, t), 500)[0]


_V2_POS = {
    "proxyWallet": "proxy_wallet",
    "asset": "token_id",
    "conditionId": "condition_id",
    "size": "current_size",
    "avgPrice": "avg_price",
    "initialValue": "entry_cost_usdc",
    "currentValue": "current_value",
    "cashPnl": "unrealized_pnl",
    "percentPnl": "percent_pnl",
    "totalBought": "total_size",
    "realizedPnl": "realized_pnl",
    "curPrice": "current_price",
    "redeemable": "redeemable",
    "mergeable": "mergeable",
    "title": "title",
    "slug": "slug",
    "icon": "icon",
    "eventSlug": "event_slug",
    "outcome": "outcome",
    "outcomeIndex": "outcome_index",
    "oppositeOutcome": "opposite_outcome",
    "oppositeAsset": "opposite_token_id",
    "endDate": "end_date",
    "negativeRisk": "negative_risk",
}


def _envelope(req: Request, rows, max_limit: int) -> dict:
    page, limit, offset = _window(req, rows, max_limit)
    more = offset + limit < len(rows)
    return {
        "data": page,
        "pagination": {
            "limit": limit,
            "offset": offset,
            "has_more": more,
            "next_cursor": encode_cursor(offset + limit) if more else None,
        },
    }


def positions_v2(sim: Simulator, req: Request, t: float):
    out = []
    for r in _filtered_positions(sim, req, t):
        d = {v: r[k] for k, v in _V2_POS.items()}
        d["end_date"] = r["endDate"][:10]
        if r["size"] == 0:
            d["status"] = "CLOSED"
        elif r["redeemable"]:
            d["status"] = "REDEEMABLE" if r["curPrice"] > 0 else "REDEEMABLE_LOST"
        else:
            d["status"] = "MERGEABLE" if r["mergeable"] else "OPEN"
        want = (req.q("status") or "").upper()
        if not want or d["status"] == want:
            out.append(d)
    return _envelope(req, out, 500)


_TRADE_V1 = (
    "proxyWallet",
    "side",
    "asset",
    "conditionId",
    "size",
    "price",
    "timestamp",
    "title",
    "slug",
    "icon",
    "eventSlug",
    "outcome",
    "outcomeIndex",
    "name",
    "pseudonym",
    "bio",
    "profileImage",
    "profileImageOptimized",
    "transactionHash",
)
_TRADE_V2 = (
    "proxy_wallet",
    "side",
    "token_id",
    "condition_id",
    "size",
    "price",
    "timestamp",
    "title",
    "slug",
    "icon",
    "event_slug",
    "outcome",
    "outcome_index",
    "name",
    "pseudonym",
    "bio",
    "profile_image",
    "profile_image_optimized",
    "transaction_hash",
)


def _trade_rows(sim: Simulator, req: Request, v2: bool):
    acct, _ = _user(sim, req)
    if acct is None:
        return []
    taker_only = req.q_bool("takerOnly", True)
    markets = {c.lower() for c in req.qs("market")}
    side = (req.q("side") or "").upper()
    start, end = req.q_int("start"), req.q_int("end")
    w = sim.world
    rows = []
    for tr in reversed(sim.exchange.trades):
        m = w.markets[tr.mi]
        if (
            tr.account is not acct
            or tr.status == "FAILED"
            or (taker_only and tr.trader_side != "TAKER")
            or (markets and m.condition_id.lower() not in markets)
            or (side and tr.side != side)
            or (start is not None and tr.match_time < start)
            or (end is not None and tr.match_time > end)
        ):
            continue
        ev = w.events[m.event_index]
        icon = f"https://polymarket-upload.s3.us-east-2.amazonaws.com/sim-{m.slug}.png"
        vals = [
            acct.funder,
            tr.side,
            tr.token,
            m.condition_id,
            tr.size / 1e6,
            tr.ticks / tr.nt,
            int(tr.match_time),
            m.question,
            m.slug,
            icon,
            ev.slug,
            m.outcomes[tr.outcome],
            tr.outcome,
            "",
            f"sim-{acct.address[2:10]}",
            "",
            "",
            "",
            tr.tx_hash,
        ]
        rows.append(dict(zip(_TRADE_V2 if v2 else _TRADE_V1, vals, strict=True)))  # one value per column
    return rows


def trades(sim: Simulator, req: Request, t: float):
    return _window(req, _trade_rows(sim, req, False), 10_000)[0]


def trades_v2(sim: Simulator, req: Request, t: float):
    return _envelope(req, _trade_rows(sim, req, True), 10_000)


def _value(sim: Simulator, req: Request, t: float) -> tuple[str, float]:
    acct, user = _user(sim, req)
    rows = _position_rows(sim, acct, t) if acct else []
    return user, round(sum(r["currentValue"] for r in rows), 6)


def value(sim: Simulator, req: Request, t: float):
    user, v = _value(sim, req, t)
    return [{"user": user, "value": v}]


def value_v2(sim: Simulator, req: Request, t: float):
    user, v = _value(sim, req, t)
    return {"data": {"user": user, "value": v}}


ROUTES: list[Route] = [
    ("GET", r"/positions", positions),
    ("GET", r"/trades", trades),
    ("GET", r"/value", value),
    ("GET", r"/v2/positions", positions_v2),
    ("GET", r"/v2/trades", trades_v2),
    ("GET", r"/v2/value", value_v2),
]
