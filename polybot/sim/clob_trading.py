"""Authenticated CLOB endpoints (``/clob``): API keys, orders, cancels, account data.

L1 (``/auth/api-key``, ``/auth/derive-api-key``): POLY_ADDRESS, POLY_SIGNATURE,
POLY_TIMESTAMP and POLY_NONCE must be present and well-formed, and POLY_SIGNATURE must
be POLY_ADDRESS's EIP-712 signature of ``ClobAuth(address, timestamp, nonce, message)``
(domain ClobAuthDomain / "1" / the sim's chain id; signing.clob_auth_signer), else 401
``Invalid L1 Request headers``; the answer is deterministic credentials for (address, nonce).
L2 (everything else here): POLY_ADDRESS, POLY_SIGNATURE, POLY_TIMESTAMP,
POLY_API_KEY, POLY_PASSPHRASE must be present, the key issued by this simulator
for that address, and POLY_SIGNATURE =
urlsafe_b64(HMAC_SHA256(urlsafe_b64decode(secret), timestamp + METHOD + path + body))
with ``path`` the request path WITHOUT the ``/clob`` prefix and without the query,
and ``body`` the raw request body with ``'`` replaced by ``"`` (what
py_clob_client_v2's ``build_hmac_signature`` signs). Else 401.

POST /order errors answer 400 ``{"error": msg}``; POST /orders (1-15 orders)
answers 200 with one result per order, failures as
``{"success": false, "status": "unmatched", "errorMsg": msg, ...}``. The order,
heartbeat, trading-mode and trade-status rules are in RULES.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from ..timefmt import iso_seconds
from . import sessions, signing
from .api import END_CURSOR, ApiError, Request, Route, decode_cursor, encode_cursor, micro_str, price_str
from .exchange import _is_address
from .simulator import Simulator

UNAUTHORIZED = "Unauthorized/Invalid api key"
PAGE = 100
MAX_UINT = str(2**256 - 1)


def l1_auth(req: Request, chain_id: int = 137):
    h = req.headers
    addr, sig, ts, nonce = (
        h.get(k) for k in ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_NONCE")
    )
    if (
        not (addr and sig and ts and nonce is not None)
        or not _is_address(addr)
        or not sig.startswith("0x")
        or not ts.strip().isdigit()
        or not nonce.strip().isdigit()
    ):
        raise ApiError(401, "Invalid L1 Request headers")
    if signing.clob_auth_signer(addr, ts.strip(), int(nonce), sig.strip(), chain_id) != addr.lower():
        raise ApiError(401, "Invalid L1 Request headers")
    return addr, int(nonce)


def l2_auth(sim: Simulator, req: Request):
    h = req.headers
    addr, sig, ts, key, phrase = (
        h.get(k)
        for k in ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_API_KEY", "POLY_PASSPHRASE")
    )
    if not (addr and sig and ts and key and phrase):
        raise ApiError(401, UNAUTHORIZED)
    entry = sim.exchange.keys.get(key)
    if entry is None:
        raise ApiError(401, UNAUTHORIZED)
    acct, secret, passphrase = entry
    if not hmac.compare_digest(passphrase, phrase) or addr.lower() != acct.address:
        raise ApiError(401, UNAUTHORIZED)
    message = f"{ts}{req.method}{req.path}" + (req.text.replace("'", '"') if req.body else "")
    digest = hmac.new(base64.urlsafe_b64decode(secret), message.encode("utf-8"), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.urlsafe_b64encode(digest).decode(), sig.strip()):
        raise ApiError(401, UNAUTHORIZED)
    return acct, key


def order_json(sim: Simulator, o) -> dict:
    m = sim.world.markets[o.mi]
    return {
        "associate_trades": list(o.trade_ids),
        "id": o.id,
        "status": o.status,
        "market": m.condition_id,
        "original_size": micro_str(o.size),
        "outcome": m.outcomes[o.outcome],
        "maker_address": o.maker,
        "owner": o.owner,
        "price": price_str(o.ticks, o.nt),
        "side": o.side,
        "size_matched": micro_str(o.matched),
        "asset_id": o.token,
        "expiration": str(o.expiration) if o.expiration else None,
        "order_type": o.order_type,
        "created_at": o.created_at,
    }


def trade_json(sim: Simulator, tr) -> dict:
    m = sim.world.markets[tr.mi]
    return {
        "id": tr.id,
        "taker_order_id": tr.taker_order_id,
        "market": m.condition_id,
        "asset_id": tr.token,
        "side": tr.side,
        "size": micro_str(tr.size),
        "fee_rate_bps": tr.fee_rate_bps,
        "price": price_str(tr.ticks, tr.nt),
        "status": tr.status,
        "match_time": iso_seconds(tr.match_time),
        "last_update": iso_seconds(tr.last_update),
        "outcome": m.outcomes[tr.outcome],
        "bucket_index": 0,
        "owner": tr.owner,
        "maker_address": tr.maker_address,
        "transaction_hash": tr.tx_hash,
        "maker_orders": list(tr.maker_orders),
        "trader_side": tr.trader_side,
    }


def _page(req: Request, items: list) -> dict:
    start = decode_cursor(req.q("next_cursor") or "MA==")
    if start < 0:
        return {"data": [], "next_cursor": END_CURSOR, "limit": PAGE, "count": 0}
    page = items[start : start + PAGE]
    nxt = start + PAGE
    return {
        "data": page,
        "next_cursor": encode_cursor(nxt) if nxt < len(items) else END_CURSOR,
        "limit": PAGE,
        "count": len(page),
    }


# ----------------------------------------------------------------------------- handlers
def create_api_key(sim: Simulator, req: Request, t: float):
    addr, nonce = l1_auth(req, sim.chain_id)
    return sim.exchange.creds(addr, nonce)


def list_api_keys(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    return {"apiKeys": [k for k, v in sim.exchange.keys.items() if v[0] is acct]}


def delete_api_key(sim: Simulator, req: Request, t: float):
    _, key = l2_auth(sim, req)
    sim.exchange.keys.pop(key, None)
    return "OK"


def post_order(sim: Simulator, req: Request, t: float):
    acct, key = l2_auth(sim, req)
    body = req.json("Invalid order payload")
    sessions.require_orders_allowed(sim.exchange, t, [body])
    return sim.exchange.place(acct, key, body, t)


def post_orders(sim: Simulator, req: Request, t: float):
    acct, key = l2_auth(sim, req)
    body = req.json("Invalid order payload")
    if not isinstance(body, list) or not body:
        raise ApiError(400, "Invalid order payload")
    if len(body) > 15:
        raise ApiError(400, f"Too many orders in payload: {len(body)}, max allowed: 15")
    sessions.require_orders_allowed(sim.exchange, t, body)
    out = []
    for item in body:
        try:
            out.append(sim.exchange.place(acct, key, item, t))
        except ApiError as exc:
            out.append(
                {
                    "success": False,
                    "orderID": "",
                    "status": "unmatched",
                    "makingAmount": "0",
                    "takingAmount": "0",
                    "errorMsg": exc.message,
                    "tradeIDs": [],
                }
            )
    return out


def cancel_order(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    sessions.require_not_disabled(sim.exchange, t)
    body = req.json()
    if not isinstance(body, dict) or not body.get("orderID"):
        raise ApiError(400, "Invalid payload")
    return sim.exchange.cancel(acct, [body["orderID"]])


def cancel_orders(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    sessions.require_not_disabled(sim.exchange, t)
    body = req.json()
    if not isinstance(body, list):
        raise ApiError(400, "Invalid payload")
    if len(body) > 1000:
        raise ApiError(400, f"Too many orders in payload: {len(body)}, max allowed: 1000")
    return sim.exchange.cancel(acct, body)


def cancel_all(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    sessions.require_not_disabled(sim.exchange, t)
    ids = [o.id for lst in sim.exchange.live.values() for o in lst if o.account is acct]
    return sim.exchange.cancel(acct, ids)


def cancel_market_orders(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    sessions.require_not_disabled(sim.exchange, t)
    body = req.json() or {}
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid payload")
    market, asset = str(body.get("market") or "").lower(), str(body.get("asset_id") or "")
    ids = [
        o.id
        for lst in sim.exchange.live.values()
        for o in lst
        if o.account is acct
        and (not market or sim.world.markets[o.mi].condition_id.lower() == market)
        and (not asset or o.token == asset)
    ]
    return sim.exchange.cancel(acct, ids)


def open_orders(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    oid, market, asset = req.q("id"), (req.q("market") or "").lower(), req.q("asset_id")
    rows = [
        o
        for o in sim.exchange.orders.values()
        if o.account is acct
        and o.status == "LIVE"
        and (not oid or o.id == oid)
        and (not asset or o.token == asset)
        and (not market or sim.world.markets[o.mi].condition_id.lower() == market)
    ]
    rows.sort(key=lambda o: (o.created_at, o.id))
    return _page(req, [order_json(sim, o) for o in rows])


def get_order(sim: Simulator, req: Request, t: float, oid):
    acct, _ = l2_auth(sim, req)
    o = sim.exchange.orders.get(oid)
    if o is None or o.account is not acct:
        raise ApiError(404, "order not found")
    return order_json(sim, o)


def trades(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    tid, market, asset = req.q("id"), (req.q("market") or "").lower(), req.q("asset_id")
    maker = (req.q("maker_address") or "").lower()
    before, after = req.q_int("before"), req.q_int("after")
    rows = [
        tr
        for tr in reversed(sim.exchange.trades)
        if tr.account is acct
        and (not tid or tr.id == tid)
        and (not asset or tr.token == asset)
        and (not market or sim.world.markets[tr.mi].condition_id.lower() == market)
        and (not maker or tr.maker_address.lower() == maker)
        and (before is None or tr.match_time < before)
        and (after is None or tr.match_time > after)
    ]
    return _page(req, [trade_json(sim, tr) for tr in rows])


def balance_allowance(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    kind = (req.q("asset_type") or "COLLATERAL").upper()
    if kind == "COLLATERAL":
        bal = acct.cash
    elif kind in ("CONDITIONAL", "CONDITIONAL-V2"):
        tok = req.q("token_id")
        if not tok or sim.world.market_by_token(tok)[0] is None:
            raise ApiError(400, "invalid token_id for a CONDITIONAL balance")
        bal = acct.positions.get(tok, 0)
    else:
        raise ApiError(400, f"invalid asset_type '{kind}'; use COLLATERAL, CONDITIONAL or CONDITIONAL-V2")
    spenders = (
        "0xE111180000d2663C0091e4f400237545B87B996B",
        "0xe2222d279d744050d28e00520010520000310F59",
        "0xadA2005600Dec949baf300f4C6120000bDB6eAab",
    )
    return {"balance": str(bal), "allowances": {s: MAX_UINT for s in spenders}}


def heartbeat(sim: Simulator, req: Request, t: float):
    acct, _ = l2_auth(sim, req)
    sessions.require_not_disabled(sim.exchange, t)
    body = req.json() or {}
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid payload")
    return sim.exchange.heartbeat(acct, body.get("heartbeat_id"), time.monotonic())


def _l2_const(value):
    def handler(sim: Simulator, req: Request, t: float, **_):
        l2_auth(sim, req)
        return value

    return handler


def order_scoring(sim: Simulator, req: Request, t: float):
    l2_auth(sim, req)
    return {"scoring": False}


def orders_scoring(sim: Simulator, req: Request, t: float):
    l2_auth(sim, req)
    ids = req.json() or []
    return {str(i): False for i in ids} if isinstance(ids, list) else {}


ROUTES: list[Route] = [
    ("POST", r"/auth/api-key", create_api_key),
    ("GET", r"/auth/derive-api-key", create_api_key),
    ("GET", r"/auth/api-keys", list_api_keys),
    ("DELETE", r"/auth/api-key", delete_api_key),
    ("GET", r"/auth/ban-status/closed-only", _l2_const({"closed_only": False})),
    ("POST", r"/order", post_order),
    ("POST", r"/orders", post_orders),
    ("DELETE", r"/order", cancel_order),
    ("DELETE", r"/orders", cancel_orders),
    ("DELETE", r"/cancel-all", cancel_all),
    ("DELETE", r"/cancel-market-orders", cancel_market_orders),
    ("GET", r"/data/orders", open_orders),
    ("GET", r"/data/order/(?P<oid>[^/]+)", get_order),
    ("GET", r"/data/pre-migration-orders", _l2_const({"data": [], "next_cursor": END_CURSOR})),
    ("GET", r"/data/trades", trades),
    ("GET", r"/balance-allowance", balance_allowance),
    ("GET", r"/balance-allowance/update", balance_allowance),
    ("POST", r"/v1/heartbeats", heartbeat),
    ("GET", r"/order-scoring", order_scoring),
    ("POST", r"/orders-scoring", orders_scoring),
    ("GET", r"/notifications", _l2_const([])),
    ("DELETE", r"/notifications", _l2_const("OK")),
    (
        "GET",
        r"/fees/builder-fees/(?P<code>[^/]+)",
        lambda s, r, t, code: {"builder_maker_fee_rate_bps": 0, "builder_taker_fee_rate_bps": 0},
    ),
]

TRADING_PATHS = ("/order", "/orders", "/cancel-all", "/cancel-market-orders", "/v1/heartbeats")
