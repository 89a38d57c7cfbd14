"""Admin endpoints for the exchange rules (``/_sim/...``; contract in RULES.md).

``handle`` answers the rule-related admin paths (accounts and funders, trading mode,
ticks, book overrides, trade lifecycle) and returns None for any other path, which
server.py handles. Errors: ValueError/TypeError → 400, KeyError → 404 (server.py).
"""

from __future__ import annotations

from collections.abc import Callable

from . import lifecycle, sessions, signing, ticks
from .api import Request, Response
from .simulator import Simulator


def account_json(ex, acct) -> dict:
    return {
        "address": acct.address,
        "cash": str(acct.cash),
        "funders": {str(k): ex.funder_of(acct, k) for k in sorted(acct.funders)},
        "heartbeat_id": acct.heartbeat_id,
        "heartbeat_active": acct.heartbeat_at is not None,
    }


def _address(value, name: str = "address") -> str:
    s = str(value or "")
    if len(s) != 42 or not s.startswith("0x") or any(c not in "0123456789abcdefABCDEF" for c in s[2:]):
        raise ValueError(f"{name} must be a 0x-prefixed 20-byte hex address, got {value!r}")
    return s.lower()


def _accounts(sim: Simulator, req: Request, body: dict) -> Response:
    ex = sim.exchange
    if req.method == "GET":
        addr = req.q("address")
        if addr:
            return Response(account_json(ex, ex.account(_address(addr))))
        return Response({"accounts": [account_json(ex, a) for a in ex.accounts.values()]})
    acct = ex.account(_address(body.get("address")))
    funders = body.get("funders") or {}
    if not isinstance(funders, dict):
        raise ValueError('funders must be an object like {"1": "0x...", "2": "0x...", "3": "0x..."}')
    changes = {}
    for k, v in funders.items():
        kind = int(k) if str(k).strip().isdigit() else -1
        if kind not in (signing.SIG_PROXY, signing.SIG_SAFE, signing.SIG_1271):
            raise ValueError(
                f"funders can be set for signature types 1, 2 and 3 only (type 0's funder is the "
                f"EOA itself), got {k!r}"
            )
        wallet = signing.default_funder(acct.address, kind) if v is None else _address(v, "funder")
        owner = ex.find_account(wallet)
        if wallet == acct.address or (owner is not None and owner is not acct):
            raise ValueError(
                f"funder {wallet} already belongs to account {owner.address if owner else wallet}; "
                f"a wallet has one owner"
            )
        changes[kind] = wallet
    acct.funders.update(changes)  # all or nothing
    return Response(account_json(ex, acct))


def _mode(sim: Simulator, req: Request, body: dict) -> Response:
    with sim.lock:
        t = sim.now_float()
        if req.method == "POST":
            return Response(
                sessions.set_mode(sim.exchange, str(body.get("mode", "")), body.get("seconds"), t)
            )
        return Response(sessions.mode_json(sim.exchange, t))


def _ticks(sim: Simulator, req: Request, body: dict) -> Response:
    with sim.lock:
        sim.sync()
        if req.method == "POST":
            if "token_id" not in body or "tick" not in body:
                raise ValueError('POST /_sim/ticks needs {"token_id": ..., "tick": "0.001" | "0.01" | null}')
            return Response(ticks.force(sim, str(body["token_id"]), body["tick"]))
        return Response(ticks.state(sim))


def _book(sim: Simulator, req: Request, body: dict) -> Response:
    if req.method == "POST":
        if not body.get("token_id"):
            raise ValueError(
                'POST /_sim/book needs {"token_id": ..., "bids": [[price, size]], "asks": [...]}'
                ' or {"token_id": ..., "clear": true}'
            )
        return Response(
            sim.set_book(
                str(body["token_id"]), body.get("bids"), body.get("asks"), clear=bool(body.get("clear"))
            )
        )
    with sim.lock:
        return Response(
            {"overrides": [sim.world.markets[mi].token_ids[0] for mi in sorted(sim.book_override)]}
        )


def _lifecycle(sim: Simulator, req: Request, body: dict) -> Response:
    ex = sim.exchange
    with sim.lock:
        if req.method == "POST":
            return Response(lifecycle.set_delays(ex, body.get("mined_after"), body.get("confirmed_after")))
        return Response(lifecycle.delays_json(ex))


def _trades_fail(sim: Simulator, req: Request, body: dict) -> Response:
    ex = sim.exchange
    with sim.lock:
        sim.sync()
        acct = ex.find_account(_address(body.get("address")))
        if acct is None:
            raise KeyError(f"account {body.get('address')} does not exist in the simulator")
        ids = body.get("trade_ids") or []
        if not isinstance(ids, list):
            raise ValueError("trade_ids must be a list of trade ids")
        return Response(lifecycle.mark_failing(ex, acct, ids, int(body.get("next", 0) or 0)))


def _accounts_locked(sim: Simulator, req: Request, body: dict) -> Response:
    with sim.lock:
        return _accounts(sim, req, body)


# path -> (methods, handler(sim, req, JSON body))
_ENDPOINTS: dict[str, tuple[tuple[str, ...], Callable[[Simulator, Request, dict], Response]]] = {
    "/accounts": (("GET", "POST"), _accounts_locked),
    "/mode": (("GET", "POST"), _mode),
    "/ticks": (("GET", "POST"), _ticks),
    "/book": (("GET", "POST"), _book),
    "/lifecycle": (("GET", "POST"), _lifecycle),
    "/trades/fail": (("POST",), _trades_fail),
}


def handle(sim: Simulator, req: Request, body: dict) -> Response | None:
    """The answer of an exchange-rule admin endpoint, or None when ``req`` is not one."""
    endpoint = _ENDPOINTS.get(req.path)
    if endpoint is None or req.method not in endpoint[0]:
        return None
    return endpoint[1](sim, req, body)
