"""CLOB public market data (``/clob``): books, prices, history, market metadata.

Books follow the live shape: prices/sizes are strings, bids ascending and asks
descending (best = last element), ``timestamp`` in ms, ``hash`` = SHA-1 of the
compact JSON with ``hash`` blank (the SDK's ``generate_orderbook_summary_hash``).
Resting orders of simulator users are shown in their token's book.
An empty side counts as best bid 0 / best ask 1 for /price, /midpoint and /spread
(the WebSocket convention). ``/prices-history`` ``interval=1m`` means one month.
"""

from __future__ import annotations

import hashlib
import json

from ..timefmt import iso_seconds
from .api import (
    END_CURSOR,
    ApiError,
    Request,
    Response,
    Route,
    decode_cursor,
    encode_cursor,
    micro_str,
    num_str,
    price_str,
    price_table,
)
from .simulator import Simulator

NO_BOOK = "No orderbook exists for the requested token id"
MAX_BATCH = 500
INTERVALS = {"1h": 3600, "6h": 21_600, "1d": 86_400, "1w": 604_800, "1m": 2_592_000}


def _token(sim: Simulator, token):
    m, k = sim.world.market_by_token(str(token or ""))
    if m is None:
        raise ApiError(404, NO_BOOK)
    return m, k


def _batch(req: Request) -> list:
    body = req.json()
    if not isinstance(body, list) or not all(isinstance(x, dict) and x.get("token_id") for x in body):
        raise ApiError(400, "Invalid payload")
    if len(body) > MAX_BATCH:
        raise ApiError(400, "Payload exceeds the limit")
    return body


def _levels_json(levels, nt: int) -> str:
    """[[ticks, micro], ...] (already in wire order) -> the compact JSON array body."""
    table = price_table(nt)
    return ",".join(['{"price":"' + table[p] + '","size":"' + micro_str(q) + '"}' for p, q in levels])


def books_json(sim: Simulator, tokens, t: float) -> list:
    """Compact JSON text of each known token's book (unknown tokens are skipped).

    Built as text directly (this is the hot path of POST /books); the result is
    byte-identical to ``json.dumps(book, separators=(",", ":"))`` with the keys in the
    live order, and ``hash`` is the SHA-1 of that text with ``hash`` blank."""
    w = sim.world
    hits = [(str(tok),) + w.market_by_token(str(tok)) for tok in tokens]
    hits = [h for h in hits if h[1] is not None]
    mis = list(dict.fromkeys(m.index for _, m, _ in hits))
    yes = sim.yes_levels(mis, t)
    probs = dict(zip(mis, sim.prices.yes_prices(mis, t).tolist(), strict=True)) if mis else {}
    ts = str(int(t * 1000))
    strs = sim.__dict__.setdefault("_book_strs", {})  # market index -> constant tail of the JSON
    live = sim.exchange.live
    out = []
    for tok, m, k in hits:
        nt = int(w.col_nt[m.index])
        bids, asks = sim.token_levels(m.index, k, t, yes[m.index])
        mine = live.get(tok)
        if mine:
            bid_map, ask_map = dict(map(tuple, bids)), dict(map(tuple, asks))
            for o in mine:
                target = bid_map if o.side == "BUY" else ask_map
                target[o.ticks] = target.get(o.ticks, 0) + o.remaining
            bids_w, asks_w = sorted(bid_map.items()), sorted(ask_map.items(), reverse=True)
        else:
            bids_w, asks_w = bids[::-1], asks[::-1]  # best first -> best last
        lt = sim.last_trade.get(tok)
        if lt:
            ltp = price_str(lt[0], nt)
        elif m.never_traded:
            ltp = ""
        else:
            p = probs[m.index] if k == 0 else 1 - probs[m.index]
            ltp = price_str(min(max(round(p * nt), 1), nt - 1), nt)
        tail = strs.get(m.index)
        if tail is None:
            tail = strs[m.index] = (
                f'"min_order_size":"{num_str(m.min_size)}","tick_size":"{num_str(m.tick, 4)}",'
                f'"neg_risk":{"true" if m.neg_risk else "false"},"last_trade_price":"'
            )
        head = f'{{"market":"{m.condition_id}","asset_id":"{tok}","timestamp":"{ts}","hash":"'
        body = f'","bids":[{_levels_json(bids_w, nt)}],"asks":[{_levels_json(asks_w, nt)}],{tail}{ltp}"}}'
        digest = hashlib.sha1((head + body).encode()).hexdigest()
        out.append(head + digest + body)
    return out


def books_for(sim: Simulator, tokens, t: float) -> list:
    """Book dicts for known tokens (unknown tokens are skipped)."""
    return [json.loads(x) for x in books_json(sim, tokens, t)]


def _bbo(sim: Simulator, tokens, t: float) -> dict:
    """token -> (best bid ticks or 0, best ask ticks or nt, nt) from the full books."""
    out = {}
    for b in books_for(sim, tokens, t):
        m, _ = sim.world.market_by_token(b["asset_id"])
        nt = int(sim.world.col_nt[m.index])
        bb = round(float(b["bids"][-1]["price"]) * nt) if b["bids"] else 0
        ba = round(float(b["asks"][-1]["price"]) * nt) if b["asks"] else nt
        out[b["asset_id"]] = (bb, ba, nt)
    return out


def _side_price(bbo, side: str) -> str:
    bb, ba, nt = bbo
    return price_str(ba if side == "BUY" else bb, nt)


def _mid(bbo) -> str:
    bb, ba, nt = bbo
    return num_str((bb + ba) / (2 * nt), len(str(nt)))


# ----------------------------------------------------------------------------- handlers
def book(sim: Simulator, req: Request, t: float):
    tok = req.q("token_id")
    if not tok:
        raise ApiError(400, "Invalid token id")
    _token(sim, tok)
    return books_for(sim, [tok], t)[0]


def books(sim: Simulator, req: Request, t: float):
    return Response(
        raw=("[" + ",".join(books_json(sim, [x["token_id"] for x in _batch(req)], t)) + "]").encode()
    )


def price(sim: Simulator, req: Request, t: float):
    tok, side = req.q("token_id"), (req.q("side") or "").upper()
    _token(sim, tok)
    if side not in ("BUY", "SELL"):
        raise ApiError(400, "Invalid side")
    return {"price": _side_price(_bbo(sim, [tok], t)[tok], side)}


def prices(sim: Simulator, req: Request, t: float):
    items = _batch(req)
    bbo = _bbo(sim, [x["token_id"] for x in items], t)
    out: dict = {}
    for x in items:
        tok, side = str(x["token_id"]), str(x.get("side") or "BUY").upper()
        if tok in bbo:
            out.setdefault(tok, {})[side] = _side_price(bbo[tok], side)
    return out


def midpoint(sim: Simulator, req: Request, t: float):
    tok = req.q("token_id")
    _token(sim, tok)
    return {"mid": _mid(_bbo(sim, [tok], t)[tok])}


def midpoints(sim: Simulator, req: Request, t: float):
    return {tok: _mid(v) for tok, v in _bbo(sim, [x["token_id"] for x in _batch(req)], t).items()}


def spread(sim: Simulator, req: Request, t: float):
    tok = req.q("token_id")
    _token(sim, tok)
    bb, ba, nt = _bbo(sim, [tok], t)[tok]
    return {"spread": price_str(ba - bb, nt)}


def spreads(sim: Simulator, req: Request, t: float):
    return {
        tok: price_str(ba - bb, nt)
        for tok, (bb, ba, nt) in _bbo(sim, [x["token_id"] for x in _batch(req)], t).items()
    }


def _last(sim: Simulator, tok, t: float):
    b = books_for(sim, [tok], t)[0]
    lt = sim.last_trade.get(tok)
    return b["last_trade_price"], (lt[1] if lt else ("BUY" if b["last_trade_price"] else ""))


def last_trade_price(sim: Simulator, req: Request, t: float):
    tok = req.q("token_id")
    _token(sim, tok)
    p, side = _last(sim, tok, t)
    return {"price": p, "side": side}


def last_trades_prices(sim: Simulator, req: Request, t: float):
    out = []
    for x in _batch(req):
        tok = str(x["token_id"])
        if sim.world.market_by_token(tok)[0] is not None:
            p, side = _last(sim, tok, t)
            if p:
                out.append({"token_id": tok, "price": p, "side": side})
    return out


def prices_history(sim: Simulator, req: Request, t: float):
    tok = req.q("market")
    if not tok:
        raise ApiError(400, "market (the token id) is required")
    m, k = sim.world.market_by_token(tok)
    if m is None:
        return {"history": []}
    fidelity = req.q_int("fidelity", 1)
    if fidelity < 1:
        raise ApiError(400, "fidelity must be a positive number of minutes")
    interval = req.q("interval")
    start_ts, end_ts = req.q_int("startTs"), req.q_int("endTs")
    now = float(int(t))
    end_cap = min(now, sim.end_of(m.index))
    if interval:
        if interval in ("max", "all"):
            if sim.phase(m.index, t) == "resolved" and fidelity < 720:
                return {"history": []}  # the live API's quirk for resolved markets
            start, end = m.start_ts, end_cap
        elif interval in INTERVALS:
            start, end = now - INTERVALS[interval], end_cap
        else:
            raise ApiError(400, f"invalid interval '{interval}'; use 1h, 6h, 1d, 1w, 1m or max")
    elif start_ts is not None:
        start, end = start_ts, min(end_ts if end_ts is not None else now, end_cap)
    else:
        raise ApiError(400, "either interval or startTs/endTs is required")
    start = max(start, m.start_ts)
    if end >= start and (end - start) / (fidelity * 60) > 100_000:
        need = int((end - start) / 60 / 100_000) + 1
        raise ApiError(400, f"minimum 'fidelity' for this range is {need}")
    return {
        "history": [{"t": ts, "p": p} for ts, p in sim.prices.history(m.index, k, start, end, fidelity * 60)]
    }


def tick_size(sim: Simulator, req: Request, t: float):
    m, _ = _token(sim, req.q("token_id"))
    return {"minimum_tick_size": m.tick}


def neg_risk(sim: Simulator, req: Request, t: float):
    m, _ = _token(sim, req.q("token_id"))
    return {"neg_risk": m.neg_risk}


def fee_rate(sim: Simulator, req: Request, t: float):
    _token(sim, req.q("token_id"))
    return {"base_fee": 0}


def _num(x: float):
    return int(x) if float(x).is_integer() else x


def _market_by_cid(sim: Simulator, cid):
    m = sim.world.by_condition.get(str(cid).lower())
    if m is None:
        raise ApiError(404, "market not found")
    return m


def clob_market(sim: Simulator, m, t: float) -> dict:
    phase = sim.phase(m.index, t)
    p = float(sim.prices.yes_prices([m.index], t)[0])
    pays = sim.payouts(m.index) if phase == "resolved" else (round(p, 4), round(1 - p, 4))
    fee_bps = 1000 if m.fees_enabled else 0
    return {
        "accepting_order_timestamp": iso_seconds(m.start_ts),
        "accepting_orders": phase == "open",
        "active": True,
        "archived": False,
        "closed": phase != "open",
        "condition_id": m.condition_id,
        "description": f"Synthetic market: {m.question}",
        "enable_order_book": phase == "open",
        "end_date_iso": iso_seconds(sim.end_of(m.index)),
        "fpmm": "",
        "game_start_time": None,
        "icon": f"https://polymarket-upload.s3.us-east-2.amazonaws.com/sim-{m.slug}.png",
        "image": f"https://polymarket-upload.s3.us-east-2.amazonaws.com/sim-{m.slug}.png",
        "is_50_50_outcome": phase == "resolved" and sim.outcome_of(m.index) == "50-50",
        "maker_base_fee": fee_bps,
        "market_slug": m.slug,
        "minimum_order_size": _num(m.min_size),
        "minimum_tick_size": m.tick,
        "neg_risk": m.neg_risk,
        "neg_risk_market_id": m.neg_risk_market_id,
        "neg_risk_request_id": m.neg_risk_request_id,
        "notifications_enabled": True,
        "question": m.question,
        "question_id": m.question_id,
        "rewards": {"max_spread": 0, "min_size": 0, "rates": None},
        "seconds_delay": 0,
        "tags": [m.category],
        "taker_base_fee": fee_bps,
        "tokens": [
            {
                "outcome": m.outcomes[k],
                "price": pays[k],
                "token_id": m.token_ids[k],
                "winner": phase == "resolved" and pays[k] == 1.0,
            }
            for k in (0, 1)
        ],
    }


def market(sim: Simulator, req: Request, t: float, cid):
    return clob_market(sim, _market_by_cid(sim, cid), t)


def clob_market_v2(sim: Simulator, req: Request, t: float, cid):
    m = _market_by_cid(sim, cid)
    phase = sim.phase(m.index, t)
    return {
        "c": m.condition_id,
        "t": [{"t": m.token_ids[k], "o": m.outcomes[k]} for k in (0, 1)],
        "mts": m.tick,
        "mos": _num(m.min_size),
        "nr": m.neg_risk,
        "fd": {"r": m.fee_rate, "e": 1, "to": True},
        "mbf": 0,
        "tbf": 0,
        "rfqe": False,
        "itode": False,
        "ao": phase == "open",
        "cl": phase != "open",
    }


def market_by_token(sim: Simulator, req: Request, t: float, token):
    m, _ = sim.world.market_by_token(token)
    if m is None:
        raise ApiError(404, "market not found")
    return {
        "condition_id": m.condition_id,
        "primary_token_id": m.token_ids[0],
        "secondary_token_id": m.token_ids[1],
    }


def _market_pages(simplified: bool):
    def handler(sim: Simulator, req: Request, t: float):
        start = decode_cursor(req.q("next_cursor") or "MA==")
        if start < 0:
            return {"limit": MAX_BATCH, "count": 0, "next_cursor": END_CURSOR, "data": []}
        ms = sim.world.markets[start : start + MAX_BATCH]
        data = [clob_market(sim, m, t) for m in ms]
        if simplified:
            keep = ("condition_id", "rewards", "tokens", "active", "closed", "archived", "accepting_orders")
            data = [{k: d[k] for k in keep} for d in data]
        nxt = start + MAX_BATCH
        return {
            "limit": MAX_BATCH,
            "count": len(data),
            "next_cursor": encode_cursor(nxt) if nxt < len(sim.world.markets) else END_CURSOR,
            "data": data,
        }

    return handler


ROUTES: list[Route] = [
    ("GET", r"/?", lambda s, r, t: "OK"),
    ("GET", r"/ok", lambda s, r, t: "OK"),
    ("GET", r"/time", lambda s, r, t: int(t)),
    ("GET", r"/version", lambda s, r, t: {"version": 2}),
    ("GET", r"/book", book),
    ("POST", r"/books", books),
    ("GET", r"/price", price),
    ("POST", r"/prices", prices),
    ("GET", r"/midpoint", midpoint),
    ("POST", r"/midpoints", midpoints),
    ("GET", r"/spread", spread),
    ("POST", r"/spreads", spreads),
    ("GET", r"/last-trade-price", last_trade_price),
    ("POST", r"/last-trades-prices", last_trades_prices),
    ("GET", r"/prices-history", prices_history),
    ("GET", r"/tick-size", tick_size),
    ("GET", r"/neg-risk", neg_risk),
    ("GET", r"/fee-rate", fee_rate),
    ("GET", r"/markets", _market_pages(False)),
    ("GET", r"/sampling-markets", _market_pages(False)),
    ("GET", r"/simplified-markets", _market_pages(True)),
    ("GET", r"/sampling-simplified-markets", _market_pages(True)),
    ("GET", r"/markets/live-activity/(?P<cid>[^/]+)", lambda s, r, t, cid: []),
    ("GET", r"/markets/(?P<cid>[^/]+)", market),
    ("GET", r"/clob-markets/(?P<cid>[^/]+)", clob_market_v2),
    ("GET", r"/markets-by-token/(?P<token>[^/]+)", market_by_token),
]
