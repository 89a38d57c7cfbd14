"""HTTP front of the simulator and its Python API (``start_simulator``).

One ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, exact Content-Length, daemon
threads) serves, on 127.0.0.1 only:

  /gamma/...  Gamma API (gamma.py)        /clob/...  CLOB (clob.py, clob_trading.py)
  /data/...   Data API (data.py)          /_sim/...  admin (never faulted)

Admin: ``GET /_sim/state``; ``GET|POST /_sim/faults`` (body: ``{"spec": "..."}``,
``{"rules": [{...}]}``, one rule object, or ``{}`` to clear; ``"append": true``
adds instead of replacing); ``POST /_sim/advance {"seconds": N}``; ``POST /_sim/speed {"speed": X}`` (0 = manual);
``POST /_sim/resolve {"market_id", "outcome": "YES"|"NO"|"50-50", "proposed": false}``;
``POST /_sim/fund {"address", "amount"}`` (sets an account's USDC balance; ``address`` = its
EOA or one of its funders);
``GET /_sim/world`` (latent structure: which markets share a driver).
Exchange-rule admin (admin.py, contract in RULES.md): ``/_sim/accounts`` (funders),
``/_sim/mode`` (cancel-only / post-only / disabled), ``/_sim/ticks``, ``/_sim/book``,
``/_sim/lifecycle`` and ``/_sim/trades/fail``.

Every API response carries ``X-RateLimit-Limit/-Remaining/-Reset`` (fixed 10-second
windows per endpoint family with the documented limits; Reset = whole seconds until
the window ends; informational, never enforced); trading endpoints (POST/DELETE
order(s), cancel-all, cancel-market-orders, heartbeats) also carry
``Poly-RateLimit-Remaining/-Reset/-Tier`` (a per-API-key token bucket, burst 60,
refill 40/s, tier "standard"; Reset = seconds until full; ``Poly-RateLimit-Warning:
true`` when it runs dry — warning mode, like the live exchange since 2026-07-24).
Outage faults close the connection without any response; the listener stays up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from polybot.errors import ConfigError
from polybot.money import to_micro

from . import admin, clob, clob_trading, data, gamma
from .api import ApiError, Request, Response
from .faults import parse_spec, rule_from_dict
from .simulator import Simulator

log = logging.getLogger("polybot.sim")

_ROUTES: dict[str, list[tuple[str, re.Pattern[str], Callable[..., Any]]]] = {
    family: [(method, re.compile("^" + pattern + "$"), handler) for method, pattern, handler in routes]
    for family, routes in (
        ("gamma", gamma.ROUTES),
        ("clob", clob.ROUTES + clob_trading.ROUTES),
        ("data", data.ROUTES),
    )
}
_LIMITS = (
    ("/gamma/markets", 300),
    ("/gamma/events", 500),
    ("/gamma", 4000),
    ("/data/trades", 200),
    ("/data/positions", 150),
    ("/data", 1000),
    ("/clob/books", 500),
    ("/clob/book", 1500),
    ("/clob/prices-history", 1000),
    ("/clob/prices", 500),
    ("/clob/price", 1500),
    ("/clob/midpoints", 500),
    ("/clob/midpoint", 1500),
    ("/clob/tick-size", 200),
    ("/clob/balance-allowance", 200),
    ("/clob/data/orders", 500),
    ("/clob/data/trades", 500),
    ("/clob/auth", 100),
    ("/clob/ok", 100),
    ("/clob/orders", 2000),
    ("/clob/order", 5000),
    ("/clob/cancel-all", 250),
    ("/clob/cancel-market-orders", 1500),
    ("/clob", 9000),
)
_REASONS = {
    429: "Too Many Requests",
    425: "Too Early",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _RateLimits:
    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict = {}
        self._buckets: dict = {}

    def headers(self, path: str, method: str, api_key: str | None) -> dict:
        now = time.time()
        prefix, limit = next(((p, n) for p, n in _LIMITS if path.startswith(p)), (path, 1000))
        with self._lock:
            start = math.floor(now / 10) * 10
            w_start, count = self._windows.get(prefix, (start, 0))
            count = count + 1 if w_start == start else 1
            self._windows[prefix] = (start, count)
            out = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(max(0, limit - count)),
                "X-RateLimit-Reset": str(max(1, int(math.ceil(start + 10 - now)))),
            }
            sub = path[len("/clob") :]
            if (
                path.startswith("/clob")
                and method in ("POST", "DELETE")
                and sub in clob_trading.TRADING_PATHS
            ):
                tokens, last = self._buckets.get(api_key or "-", (60.0, now))
                tokens = min(60.0, tokens + (now - last) * 40.0) - 1.0
                self._buckets[api_key or "-"] = (tokens, now)
                out.update(
                    {
                        "Poly-RateLimit-Remaining": str(max(0, int(tokens))),
                        "Poly-RateLimit-Reset": str(max(0, int(math.ceil((60.0 - tokens) / 40.0)))),
                        "Poly-RateLimit-Tier": "standard",
                    }
                )
                if tokens < 0:
                    out["Poly-RateLimit-Warning"] = "true"
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, sim: Simulator):
        super().__init__(addr, _Handler)
        self.sim = sim
        self.limits = _RateLimits()
        self.stopping = threading.Event()
        self.conns: set = set()
        self.conns_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # the server that made this handler (socketserver sets it)
    protocol_version = "HTTP/1.1"
    server_version = "polybot-sim/1.0"

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without NODELAY, Nagle holds the body for the
        # client's delayed ACK (~40 ms)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self):
        with self.server.conns_lock:
            self.server.conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, fmt, *args):  # quiet: tests and demos do not want access logs
        log.debug("%s - %s", self.address_string(), fmt % args)

    def do_GET(self):
        self._serve()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    # ------------------------------------------------------------------ dispatch
    def _serve(self):
        server: _Server = self.server
        sim = server.sim
        split = urlsplit(self.path)
        path = split.path or "/"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = path.split("/", 2)
        family = parts[1] if len(parts) > 1 else ""
        sub = "/" + parts[2] if len(parts) > 2 else ""
        req = Request(
            method=self.command,
            path=sub,
            full_path=path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        if family == "_sim":
            return self._send(self._admin(sim, req), {})
        if family not in _ROUTES:
            return self._send(
                Response({"error": f"unknown API prefix '/{family}'; use /gamma, /clob or /data"}, 404), {}
            )
        sim.count_request(family, path)
        decision = sim.faults.decide(path)
        if decision.outage:
            self.close_connection = True  # hang up without a response
            return
        if decision.sleep_s > 0 and server.stopping.wait(decision.sleep_s):
            self.close_connection = True
            return
        limits = server.limits.headers(path, self.command, self.headers.get("POLY_API_KEY"))
        if decision.status:
            headers = dict(limits)
            if decision.retry_after is not None:
                headers["Retry-After"] = str(decision.retry_after)
            msg = _REASONS.get(decision.status, "injected fault")
            return self._send(Response({"error": msg}, decision.status), headers)
        resp = self._dispatch(sim, family, req)
        self._send(resp, limits, malformed=decision.malformed)

    def _dispatch(self, sim: Simulator, family: str, req: Request) -> Response:
        path_matched = False
        for method, rx, handler in _ROUTES[family]:
            mt = rx.match(req.path)
            if not mt:
                continue
            path_matched = True
            if method != req.method:
                continue
            try:
                with sim.lock:
                    sim.sync()
                    out = handler(sim, req, sim.now_float(), **mt.groupdict())
                return out if isinstance(out, Response) else Response(out)
            except ApiError as exc:
                return Response(exc.body, exc.status, exc.headers)
            except Exception as exc:  # a simulator bug: answer 500, keep serving
                log.exception("simulator handler failed for %s %s", req.method, req.full_path)
                return Response({"error": f"internal simulator error: {type(exc).__name__}: {exc}"}, 500)
        if path_matched:
            return Response({"error": f"method {req.method} not allowed on {req.full_path}"}, 405)
        return Response({"error": f"not found: {req.full_path}"}, 404)

    def _send(self, resp: Response, headers: dict, malformed: bool = False) -> None:
        payload = resp.raw if resp.raw is not None else json.dumps(resp.body, separators=(",", ":")).encode()
        if malformed and resp.status == 200:
            payload = payload[: max(1, len(payload) // 2)] + b'\x00{"'
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in {**headers, **resp.headers}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    # ------------------------------------------------------------------ admin
    def _admin(self, sim: Simulator, req: Request) -> Response:
        try:
            body = req.json() if req.body else {}
            endpoint = _ADMIN.get(req.path)
            if endpoint is not None and req.method in endpoint[0]:
                return endpoint[1](sim, req, body)
            hit = admin.handle(sim, req, body if isinstance(body, dict) else {})
            if hit is not None:
                return hit
            return Response({"error": f"unknown admin endpoint {req.method} {req.full_path}"}, 404)
        except ApiError as exc:
            return Response(exc.body, exc.status)
        except KeyError as exc:
            return Response({"error": str(exc).strip("'\"")}, 404)
        except (ValueError, TypeError) as exc:
            return Response({"error": str(exc)}, 400)


# The simulator-level admin endpoints: path -> (methods, handler(sim, req, JSON body));
# the exchange-rule ones are admin.py's.
def _admin_state(sim: Simulator, req: Request, body: Any) -> Response:
    return Response(sim.state())


def _admin_world(sim: Simulator, req: Request, body: Any) -> Response:
    w = sim.world
    return Response(
        {
            "groups": w.groups,
            "kinds": {m.id: m.kind for m in w.markets},
            "neg_risk_events": {
                e.id: [w.markets[i].id for i in e.market_indices] for e in w.neg_risk_events()
            },
        }
    )


def _admin_faults(sim: Simulator, req: Request, body: Any) -> Response:
    if req.method == "POST":
        _set_faults(sim, body or {})
    return Response({"faults": sim.faults.describe()})


def _admin_advance(sim: Simulator, req: Request, body: Any) -> Response:
    return Response({"now": sim.advance(float(body.get("seconds", 0)))})


def _admin_speed(sim: Simulator, req: Request, body: Any) -> Response:
    return Response({"now": sim.set_speed(float(body.get("speed", 0))), "speed": sim.speed})


def _admin_resolve(sim: Simulator, req: Request, body: Any) -> Response:
    return Response(
        sim.resolve(
            str(body.get("market_id")),
            str(body.get("outcome")),
            proposed=bool(body.get("proposed", False)),
        )
    )


def _admin_fund(sim: Simulator, req: Request, body: Any) -> Response:
    with sim.lock:
        addr = str(body["address"])  # an EOA, or a funder (proxy/Safe/deposit wallet) of a known account
        acct = sim.exchange.find_account(addr) or sim.exchange.account(addr)
        acct.cash = to_micro(body["amount"])
        return Response({"address": acct.address, "balance": str(acct.cash)})


_ADMIN: dict[str, tuple[tuple[str, ...], Callable[[Simulator, Request, Any], Response]]] = {
    "/state": (("GET",), _admin_state),
    "/world": (("GET",), _admin_world),
    "/faults": (("GET", "POST"), _admin_faults),
    "/advance": (("POST",), _admin_advance),
    "/speed": (("POST",), _admin_speed),
    "/resolve": (("POST",), _admin_resolve),
    "/fund": (("POST",), _admin_fund),
}


def _set_faults(sim: Simulator, body: dict) -> None:
    append = bool(body.pop("append", False))
    if body.pop("clear", False) or not body:
        sim.clear_faults()
        return
    if "spec" in body:
        rules = parse_spec(str(body["spec"]))
    elif "rules" in body:
        rules = [rule_from_dict(r) for r in body["rules"]]
    else:
        rules = [rule_from_dict(body)]
    if append:
        for r in rules:
            sim.faults.add(r)
    else:
        sim.faults.set(rules)


class SimulatorHandle:
    """A running simulator: URLs, the ``Simulator`` object (``.sim``) and ``stop()``."""

    def __init__(self, server: _Server, thread: threading.Thread, sim: Simulator):
        self._server, self._thread, self.sim = server, thread, sim
        host, self.port = server.server_address[:2]
        self.host = host if isinstance(host, str) else host.decode()
        self.url = f"http://{self.host}:{self.port}"
        self.gamma_url = self.url + "/gamma"
        self.clob_url = self.url + "/clob"
        self.data_url = self.url + "/data"

    def stop(self) -> None:
        srv = self._server
        if srv.stopping.is_set():
            return
        srv.stopping.set()
        self.sim.stop_background()
        srv.shutdown()
        with srv.conns_lock:
            conns = list(srv.conns)
        for c in conns:  # drop idle keep-alive connections too
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        srv.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SimulatorHandle {self.url}>"


def start_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 42,
    n_markets: int = 60,
    speed: float = 0.0,
    faults=None,
    start_time=None,
    initial_balance: float = 10000.0,
    **options,
) -> SimulatorHandle:
    """Start the simulator in a background thread and return its handle.

    ``faults``: a spec string, a rule dict or a list of rule dicts (see faults.py).
    ``start_time``: ISO-8601 or epoch seconds (default 2026-11-01T00:00:00Z).
    ``options`` go to :class:`Simulator` (n_resolving, resolve_days, proposal_seconds,
    redeem_delay, heartbeat_timeout, chain_id, trade_delays=(mined, confirmed)).
    """
    if host not in ("127.0.0.1", "localhost"):
        raise ConfigError(f"The simulator binds 127.0.0.1 only; '{host}' is refused — use host 127.0.0.1.")
    sim = Simulator(
        seed=seed,
        n_markets=n_markets,
        speed=speed,
        start_time=start_time,
        initial_balance=initial_balance,
        faults=faults,
        **options,
    )
    server = _Server(("127.0.0.1", int(port)), sim)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="polybot-sim-http", daemon=True
    )
    thread.start()
    sim.start_background()
    return SimulatorHandle(server, thread, sim)
