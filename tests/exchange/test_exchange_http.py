"""HttpClient and PolymarketClient over real HTTP to local servers on free ports.

A tiny scripted ``http.server`` (below) serves the sample payloads and scripted failures
(429 with Retry-After, 5xx, malformed JSON, hangs); tests against the project's simulator
(polybot/sim) are at the end. Waits are counted through an injected ``sleep``.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import logging
import socket
import threading
import time
from collections import defaultdict, deque
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from polybot.errors import (
    AuthenticationError,
    ExchangeUnavailable,
    RequestRejected,
)
from polybot.exchange.client import PolymarketClient
from polybot.exchange.http import HttpClient, SlidingWindowLimiter, parse_retry_after
from tests.conftest import SAMPLES_DIR

SAMPLES = SAMPLES_DIR


def sample(name: str):
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- fixture server


def R(status=200, body=None, headers=None, delay=0.0, raw=None):
    """One scripted response. ``raw`` (bytes/str) is sent verbatim instead of JSON."""
    return {"status": status, "body": body, "headers": headers or {}, "delay": delay, "raw": raw}


class FakeServer:
    """Scripted responses per path (consumed first), then route functions
    ``fn(method, query, body) -> R(...)``; records every request."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict, object]] = []
        self.queues: dict[str, deque] = defaultdict(deque)
        self.routes: dict[str, callable] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                raw_body = self.rfile.read(n) if n else b""
                body = json.loads(raw_body) if raw_body else None
                query = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(parts.query).items()}
                resp = server.respond(self.command, parts.path, query, body)
                if resp["delay"]:
                    time.sleep(resp["delay"])
                payload = resp["raw"] if resp["raw"] is not None else json.dumps(resp["body"])
                payload = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(resp["status"])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in resp["headers"].items():
                        self.send_header(k, str(v))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def script(self, path, *responses):
        self.queues[path].extend(responses)

    def respond(self, method, path, query, body):
        with self.lock:
            self.requests.append((method, path, query, body))
            if self.queues[path]:
                return self.queues[path].popleft()
        fn = self.routes.get(path)
        if fn is None:
            for prefix in sorted((p for p in self.routes if p.endswith("/")), key=len, reverse=True):
                if path.startswith(prefix):
                    fn = self.routes[prefix]
                    break
        if fn is None:
            return R(404, {"error": "not found"})
        return fn(method, query, body, path)

    def hits(self, path):
        return [r for r in self.requests if r[1] == path]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
    try:
        yield s
    finally:
        s.stop()


class Sleeps(list):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds):
        self.append(seconds)


def http(server, **kw):
    kw.setdefault("rate_limits", {})
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("timeout", (1.0, 2.0))
    return HttpClient(server.url, name=kw.pop("name", "Gamma"), **kw)


# ----------------------------------------------------------------------------- retries


def test_429_burst_with_retry_after_is_waited_out(server):
    server.script(
        "/x",
        R(429, {"error": "slow down"}, {"Retry-After": "2"}),
        R(429, {"error": "slow down"}, {"Retry-After": "1"}),
        R(425, {"error": "engine restart"}, {"Retry-After": "3"}),
        R(200, {"ok": True}),
    )
    c = http(server)
    assert c.get("/x") == {"ok": True}
    assert c.sleep == [2.0, 1.0, 3.0]
    assert len(server.hits("/x")) == 4


def test_retry_after_http_date_and_cap(server):
    when = formatdate(time.time() + 6, usegmt=True)
    server.script("/x", R(429, {}, {"Retry-After": when}), R(429, {}, {"Retry-After": "100"}), R(200, [1]))
    c = http(server, backoff_max=30)
    assert c.get("/x") == [1]
    assert 3.0 < c.sleep[0] <= 6.0
    assert c.sleep[1] == 30.0  # capped at backoff_max


def test_three_straight_failures_are_one_exchange_unavailable(server):
    server.routes["/x"] = lambda *a: R(500, {"error": "internal"})
    c = http(server, max_retries=3, backoff_base=0.5)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get("/x", {"a": 1})
    assert ei.value.attempts == 3
    msg = str(ei.value)
    assert msg.startswith("Gamma API unreachable after 3 attempts: GET /x answered HTTP 500")
    assert "check the network or the Gamma base URL in config.yaml" in msg
    assert len(server.hits("/x")) == 3
    assert len(c.sleep) == 2  # no sleep after the last attempt
    assert 0 <= c.sleep[0] <= 0.5 and 0 <= c.sleep[1] <= 1.0  # full jitter bounds


def test_transient_failures_then_success(server):
    server.script("/x", R(500), R(502, raw="<html>bad gateway</html>"), R(200, {"v": 1}))
    c = http(server)
    assert c.get("/x") == {"v": 1}
    assert len(c.sleep) == 2 and c.stats.failure_count == 2


def test_429_without_retry_after_uses_the_failure_budget(server):
    server.routes["/x"] = lambda *a: R(429, {"error": "too many"})
    c = http(server, max_retries=3)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get("/x")
    assert ei.value.attempts == 3 and "HTTP 429" in str(ei.value)


def test_throttle_waits_are_bounded(server):
    server.routes["/x"] = lambda *a: R(429, {}, {"Retry-After": "1"})
    c = http(server, max_retries=3, max_throttle_waits=2)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get("/x")
    assert ei.value.attempts == 3
    assert len(server.hits("/x")) == 5  # 2 throttle waits + 3 counted failures
    assert c.sleep == [1.0] * 4


@pytest.mark.parametrize(
    "status,error",
    [
        (400, "Invalid order payload"),
        (404, "market not found"),
        (422, "offset too large, use /markets/keyset"),
    ],
)
def test_4xx_is_not_retried(server, status, error):
    server.routes["/markets/1"] = lambda *a: R(status, {"error": error})
    c = http(server)
    with pytest.raises(RequestRejected) as ei:
        c.get("/markets/1", {"offset": 5000})
    assert ei.value.status == status
    assert error in str(ei.value) and f"HTTP {status}" in str(ei.value)
    assert "offset=5000" not in str(ei.value)  # never the query string
    assert len(server.hits("/markets/1")) == 1 and c.sleep == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures(server, status):
    server.routes["/data/orders"] = lambda *a: R(status, {"error": "Unauthorized/Invalid api key"})
    c = http(server, name="CLOB")
    with pytest.raises(AuthenticationError, match="Invalid api key"):
        c.get("/data/orders")
    assert len(server.hits("/data/orders")) == 1 and c.sleep == []


def test_malformed_json_is_retried_then_unavailable(server):
    server.routes["/x"] = lambda *a: R(200, raw='{"markets": [')
    c = http(server, max_retries=3)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get("/x")
    assert ei.value.attempts == 3
    assert "the response to GET /x was not valid JSON" in str(ei.value)
    assert "unreachable" not in str(ei.value) and "base URL" in str(ei.value)  # issue 15 #10
    server.script("/y", R(200, raw="<html>"), R(200, {"fine": 1}))
    assert c.get("/y") == {"fine": 1}


def test_hang_times_out_and_is_retried(server):
    server.routes["/slow"] = lambda *a: R(200, {"late": True}, delay=1.5)
    c = http(server, timeout=(1.0, 0.2), max_retries=2)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get("/slow")
    assert ei.value.attempts == 2
    assert "no answer within 0.2s" in str(ei.value)
    assert [s for _, _, s in c.stats.calls] == [None, None]


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens
    c = HttpClient(f"http://127.0.0.1:{port}", name="Data", sleep=Sleeps(), rate_limits={}, max_retries=3)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get("/positions", {"user": "0xabc"})
    assert ei.value.attempts == 3
    assert f"connection to 127.0.0.1:{port} failed" in str(ei.value)
    assert "Data base URL" in str(ei.value)


def test_per_call_retries_override(server):
    server.routes["/order"] = lambda *a: R(500, {"error": "order timed out"})
    c = http(server, name="CLOB", max_retries=3)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.post("/order", {"o": 1}, retries=1)
    assert ei.value.attempts == 1 and len(server.hits("/order")) == 1


def test_post_delete_and_raw_body(server):
    server.routes["/books"] = lambda m, q, body, p: R(200, {"method": m, "body": body})
    c = http(server, name="CLOB")
    assert c.post("/books", [{"token_id": "1"}]) == {"method": "POST", "body": [{"token_id": "1"}]}
    assert c.delete("/books", {"orderID": "x"})["method"] == "DELETE"
    exact = json.dumps({"a": 1}, separators=(",", ":"))
    assert c.post("/books", data=exact)["body"] == {"a": 1}
    server.routes["/gone"] = lambda *a: R(200, raw="")
    assert c.delete("/gone") is None


# ----------------------------------------------------------------------------- limiter, stats


def test_retry_after_parsing():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


def test_sliding_window_reserves_slots():
    now = [100.0]
    lim = SlidingWindowLimiter(3, 10.0, clock=lambda: now[0])
    assert [lim.reserve() for _ in range(7)] == [100, 100, 100, 110, 110, 110, 120]
    now[0] = 200.0
    assert lim.reserve() == 200.0  # window long passed


def test_sliding_window_is_thread_safe():
    lim = SlidingWindowLimiter(5, 1.0, clock=lambda: 0.0)
    slots: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(40):
            t = lim.reserve()
            with lock:
                slots.append(t)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slots) == 320
    counts = defaultdict(int)
    for t in slots:
        counts[t] += 1
    assert max(counts.values()) == 5 and len(counts) == 64  # never 6 in one window


def test_client_rate_limiter_sleeps_rather_than_fails(server):
    server.routes["/markets/keyset"] = lambda *a: R(200, {"markets": []})
    server.routes["/tags"] = lambda *a: R(200, [])
    clock = [0.0]
    c = http(server, rate_limits={"general": (3, 10.0), "markets": (2, 10.0)}, clock=lambda: clock[0])
    for _ in range(4):
        c.get("/markets/keyset")
    assert c.sleep == [10.0, 10.0]  # markets family: 2 per 10 s
    # general (3 per 10 s) now holds slots 0, 10, 10: the next two calls go at 10 and 20
    c.get("/tags")
    c.get("/tags")
    assert c.sleep == [10.0, 10.0, 10.0, 20.0]
    assert c.stats.snapshot()["wait_seconds"] == 50.0


def test_default_limits_follow_the_docs():
    c = HttpClient("http://127.0.0.1:9", name="Gamma")
    assert c._limiters["markets"].limit == 300 and c._limiters["events"].limit == 500
    d = HttpClient("http://127.0.0.1:9", name="CLOB")
    assert d._limiters["books"].limit == 500 and d._limiters["book"].limit == 1500
    assert d._limiters["prices-history"].limit == 1000
    assert d.family_of("/data/orders") == "data/orders" and d.family_of("/") == "root"
    e = HttpClient("http://127.0.0.1:9", name="Data")
    assert e._limiters["positions"].limit == 150 and e._limiters["trades"].limit == 200
    assert e.family_of("/v2/positions?user=x") == "positions"


def test_stats_and_rate_limit_headers_without_secrets_in_logs(server, caplog):
    server.routes["/x"] = lambda *a: R(
        200, {"ok": 1}, {"X-RateLimit-Remaining": "42", "Poly-RateLimit-Tier": "standard", "X-Other": "no"}
    )
    c = http(server)
    caplog.set_level(logging.DEBUG, logger="polybot.exchange.http")
    c.get("/x", {"api_key": "s3cr3t-value"})
    c.get("/x", {"api_key": "s3cr3t-value"})
    s = c.stats.snapshot()
    assert s["request_count"] == 2 and s["total_seconds"] > 0
    assert s["last_rate_limit_headers"] == {"X-RateLimit-Remaining": "42", "Poly-RateLimit-Tier": "standard"}
    assert s["slowest"][1:] == ("x", "GET /x")
    assert [(f, st) for f, _, st in c.stats.calls] == [("x", 200), ("x", 200)]
    assert "GET /x -> 200" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_boolean_params_are_lowercase(server):
    server.routes["/markets/keyset"] = lambda m, q, b, p: R(200, {"markets": [], "echo": q})
    c = http(server)
    assert c.get("/markets/keyset", {"closed": False, "x": None})["echo"] == {"closed": "false"}


# ----------------------------------------------------------------------------- fake Polymarket


def gamma_market(i: int) -> dict:
    m = copy.deepcopy(GAMMA_TEMPLATE)
    m.pop("events", None)
    m["id"] = str(1000 + i)
    m["conditionId"] = f"0x{i:064x}"
    m["clobTokenIds"] = json.dumps([f"{i}1", f"{i}2"])
    return m


GAMMA_TEMPLATE = sample("gamma_market.json") if SAMPLES.is_dir() else {}


def book(token: str) -> dict:
    return {
        "market": f"0xm{token}",
        "asset_id": token,
        "timestamp": "1785734468581",
        "hash": "h",
        "bids": [{"price": "0.10", "size": "5"}, {"price": "0.20", "size": "3"}],
        "asks": [{"price": "0.90", "size": "1"}, {"price": "0.80", "size": "2"}],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
        "last_trade_price": "0.5",
    }


class FakePolymarket:
    """Keyset listing of ``n`` markets (+ one corrupt record), /books, Data API pages."""

    def __init__(self, server: FakeServer, n: int = 250, n_positions: int = 1200):
        self.server = server
        self.markets = [gamma_market(i) for i in range(n)]
        self.markets.insert(n // 2, dict(gamma_market(99_999), id="bad", outcomePrices='["9", "0"]'))
        self.positions = []
        for i in range(n_positions):
            row = dict(sample("data_api_positions.json")[0])
            row["asset"] = f"pos{i}"
            self.positions.append(row)
        self.book_batches: list[int] = []
        r = server.routes
        r["/markets/keyset"] = self.keyset
        r["/books"] = self.books
        r["/positions"] = self.positions_page
        r["/markets/"] = lambda m, q, b, p: R(200, self.markets[0])
        r["/book"] = lambda m, q, b, p: R(200, book(q["token_id"]))
        r["/time"] = lambda *a: R(200, 1764612536)
        r["/"] = lambda *a: R(200, raw="OK")
        r["/tick-size"] = lambda *a: R(200, {"minimum_tick_size": 0.001})
        r["/prices-history"] = lambda *a: R(200, sample("clob_prices_history.json"))
        r["/value"] = lambda *a: R(200, [{"user": "0xu", "value": 123.45}])
        r["/midpoints"] = lambda m, q, b, p: R(200, {x["token_id"]: "0.5" for x in b})
        r["/prices"] = lambda m, q, b, p: R(200, self._prices(b))
        r["/last-trades-prices"] = lambda m, q, b, p: R(
            200, [{"token_id": x["token_id"], "price": "0.4", "side": "BUY"} for x in b]
        )

    @staticmethod
    def _prices(body):
        out: dict = {}
        for x in body:
            out.setdefault(x["token_id"], {})[x["side"]] = 0.6 if x["side"] == "BUY" else 0.4
        return out

    def keyset(self, method, q, body, path):
        if "offset" in q:
            return R(422, {"error": "offset is not supported on keyset"})
        limit = int(q.get("limit", 20))
        start = int(base64.b64decode(q["after_cursor"]).decode()) if "after_cursor" in q else 0
        page = self.markets[start : start + limit]
        out = {"markets": page}
        if start + limit < len(self.markets):
            out["next_cursor"] = base64.b64encode(str(start + limit).encode()).decode()
        return R(200, out)

    def books(self, method, q, body, path):
        tokens = [x["token_id"] for x in body]
        self.book_batches.append(len(tokens))
        if len(tokens) > 500:
            return R(400, {"error": f"Too many items in payload: {len(tokens)}, max allowed: 500"})
        if "BAD" in tokens:
            return R(400, {"error": "Invalid token id"})
        return R(200, [book(t) for t in tokens if t != "NOBOOK"])

    def positions_page(self, method, q, body, path):
        off, lim = int(q.get("offset", 0)), int(q.get("limit", 100))
        return R(200, self.positions[off : off + lim])


def pm_client(server, **kw):
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("rate_limits", {"gamma": {}, "clob": {}, "data": {}})
    return PolymarketClient(server.url, server.url, server.url, **kw)


def test_keyset_pagination_returns_each_market_once(server):
    fake = FakePolymarket(server, n=250)
    c = pm_client(server)
    markets = list(c.iter_markets(closed=False, order="volume24hr", ascending=False, tag_id=5))
    ids = [m.id for m in markets]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == {m["id"] for m in fake.markets} - {"bad"}
    assert [i.record_id for i in c.last_issues] == ["bad"]
    reqs = server.hits("/markets/keyset")
    assert len(reqs) == 3
    for i, (_, _, q, _) in enumerate(reqs):
        filters = {k: v for k, v in q.items() if k != "after_cursor"}
        assert filters == {
            "closed": "false",
            "order": "volume24hr",
            "ascending": "false",
            "tag_id": "5",
            "limit": "100",
        }
        assert ("after_cursor" in q) == (i > 0)
    assert base64.b64decode(reqs[2][2]["after_cursor"]) == b"200"
    markets2, issues = c.list_markets(limit=37)
    assert len(markets2) == 250 and len(issues) == 1
    assert len(server.hits("/markets/keyset")) == 3 + 7


def test_repeated_cursor_stops_the_listing(server):
    server.routes["/markets/keyset"] = lambda *a: R(
        200, {"markets": [gamma_market(1)], "next_cursor": "SAME"}
    )
    c = pm_client(server)
    markets, issues = c.list_markets()
    assert len(markets) == 1
    assert len(server.hits("/markets/keyset")) == 2
    assert "twice" in issues[0].reason


@pytest.mark.parametrize("workers", [1, 4])
def test_books_for_ten_thousand_tokens_in_batches(server, workers):
    fake = FakePolymarket(server, n=1)
    c = pm_client(server, book_workers=workers)
    tokens = [f"t{i}" for i in range(10_000)]
    books = c.get_books(tokens + tokens[:50])  # duplicates are sent once
    assert len(books) == 10_000 and c.last_issues == []
    assert sorted(fake.book_batches) == [500] * 20
    b = books["t1234"]
    assert (b.best_bid, b.best_ask) == (0.20, 0.80)  # best first after reversal
    assert c.stats.request_count == 20


def test_books_isolate_a_rejected_token_and_report_missing_ones(server):
    fake = FakePolymarket(server, n=1)
    c = pm_client(server)
    tokens = [f"t{i}" for i in range(600)] + ["BAD", "NOBOOK"]
    books = c.get_books(tokens)
    assert len(books) == 600
    by_id = {i.record_id: i.reason for i in c.last_issues}
    assert set(by_id) == {"BAD", "NOBOOK"}
    assert "Invalid token id" in by_id["BAD"] and "no order book" in by_id["NOBOOK"]
    assert max(fake.book_batches) <= 500


def test_books_unreachable_propagates(server):
    server.routes["/books"] = lambda *a: R(503, {"error": "down"})
    c = pm_client(server, max_retries=3)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get_books([f"t{i}" for i in range(1500)])
    assert ei.value.attempts == 3 and "CLOB API unreachable" in str(ei.value)


def test_other_read_endpoints(server):
    FakePolymarket(server, n=3, n_positions=1200)
    c = pm_client(server)
    assert c.get_book("tok").best_bid == 0.20
    assert c.get_server_time() == 1764612536
    assert c.health() >= 0.0  # "OK" is not JSON: not parsed
    assert c.get_tick_size("tok") == 0.001
    pts = c.get_prices_history("tok", 1000, 2000, 5)
    assert [p.t for p in pts] == [1000, 1500, 2000]
    q = server.hits("/prices-history")[0][2]
    assert q == {"market": "tok", "startTs": "1000", "endTs": "2000", "fidelity": "5"}
    assert c.get_market("1000").id == "1000"
    assert c.get_midpoints(["a", "b"]) == {"a": 0.5, "b": 0.5}
    assert c.get_prices(["a"]) == {"a": {"BUY": 0.6, "SELL": 0.4}}
    assert c.get_last_trade_prices(["a"])["a"].price == 0.4
    positions = c.get_positions("0xu")
    assert len(positions) == 1200 and positions[0].size == 150_500_000
    offs = [r[2]["offset"] for r in server.hits("/positions")]
    assert offs == ["0", "500", "1000"]
    assert server.hits("/positions")[0][2]["sizeThreshold"] == "0.0"
    assert c.get_value("0xu") == 123_450_000
    st = c.stats
    assert st.request_count == len(server.requests) and st.total_seconds > 0
    assert st.slowest is not None and st.by_host["CLOB"]["request_count"] > 0


def test_events_slug_and_clob_market(server):
    ev = sample("gamma_market.json")["events"][0]
    mk = {k: v for k, v in sample("gamma_market.json").items() if k != "events"}
    pages = [
        {"events": [dict(ev, markets=[mk])], "next_cursor": "c1"},
        {"events": [dict(ev, id="2", markets=[dict(mk, id="x", clobTokenIds="[]")])], "next_cursor": ""},
    ]
    server.script("/events/keyset", R(200, pages[0]), R(200, pages[1]))
    server.routes["/events/"] = lambda *a: R(200, dict(ev, markets=[mk]))
    server.routes["/markets/slug/"] = lambda *a: R(200, [mk])
    server.routes["/markets/0xd57e"] = lambda *a: R(200, sample("clob_market.json"))
    c = pm_client(server)
    events, issues = c.list_events(limit=1000)
    assert [e.id for e in events] == ["30829", "2"] and len(events[0].markets) == 1
    assert [i.record_id for i in issues] == ["x"]
    qs = [r[2] for r in server.hits("/events/keyset")]
    assert qs[0]["limit"] == "500" and qs[1]["after_cursor"] == "c1"
    assert c.get_event("30829").markets[0].event_id == "30829"
    assert c.get_market_by_slug("some-slug").id == "559652"
    assert c.get_clob_market("0xd57e").resolved


def test_from_config_reads_the_polymarket_section(server):
    cfg = SimpleNamespace(
        polymarket=SimpleNamespace(
            gamma_url=server.url + "/gamma",
            base_url=server.url + "/clob",
            data_url=server.url + "/data",
            timeout_seconds=5,
            max_retries=4,
        )
    )
    c = PolymarketClient.from_config(cfg, sleep=Sleeps())
    assert c.gamma.base_url.endswith("/gamma") and c.clob.base_url.endswith("/clob")
    assert c.data.base_url.endswith("/data")
    assert c.clob.timeout == (3.05, 5.0) and c.clob.max_retries == 4
    from polybot.config import Config

    real = PolymarketClient.from_config(Config())
    assert real.clob.base_url == "https://clob.polymarket.com" and real.clob.max_retries == 3


# ----------------------------------------------------------------------------- simulator


def _sim_module():
    try:
        from polybot.sim import server as sim_server
    except ImportError:
        return None
    return sim_server


needs_sim = pytest.mark.skipif(_sim_module() is None, reason="polybot/sim/server.py not written yet")


@pytest.fixture
def sim_client(sim):
    sleeps = Sleeps()
    c = PolymarketClient(
        sim.gamma_url,
        sim.clob_url,
        sim.data_url,
        sleep=sleeps,
        timeout=(2.0, 5.0),
        rate_limits={"gamma": {}, "clob": {}, "data": {}},
    )
    yield sim, c, sleeps
    c.close()


@needs_sim
def test_sim_keyset_lists_every_market_exactly_once(sim_client):
    h, c, _ = sim_client
    open_, issues = c.list_markets(closed=False, limit=7)  # several pages
    closed, issues2 = c.list_markets(closed=True, limit=7)
    assert issues == [] and issues2 == []
    ids = [m.id for m in open_ + closed]
    assert len(ids) == len(set(ids))
    assert set(ids) == {m.id for m in h.sim.world.markets}
    assert all(not m.closed for m in open_) and all(m.closed for m in closed)
    assert h.sim.path_count["/gamma/markets/keyset"] >= len(open_) // 7


@needs_sim
def test_sim_bad_markets_are_skipped_not_fatal(sim_client):
    h, c, _ = sim_client
    h.sim.set_faults(bad_market="all")
    markets, issues = c.list_markets(limit=50)
    assert len(issues) == 3 and len(markets) == sum(
        1 for m in h.sim.world.markets if h.sim.phase(m.index) == "open"
    )
    assert all("malformed" in i.reason or "without an id" in i.reason for i in issues)


@needs_sim
def test_sim_books_and_market_data(sim_client):
    h, c, _ = sim_client
    markets, _ = c.list_markets()
    tokens = [t for m in markets for t in m.token_ids]
    books = c.get_books(tokens)
    assert set(books) == set(tokens) and c.last_issues == []
    for b in books.values():
        assert all(x.price > y.price for x, y in itertools.pairwise(b.bids))
        assert all(x.price < y.price for x, y in itertools.pairwise(b.asks))
        if b.bids and b.asks:
            assert b.best_bid < b.best_ask
    t = tokens[0]
    assert c.get_book(t).hash == books[t].hash
    assert set(c.get_midpoints(tokens[:10])) <= set(tokens[:10])
    assert c.get_server_time() == h.sim.now()
    assert c.get_tick_size(t) == markets[0].tick_size
    assert c.health() >= 0.0
    assert c.stats.last_rate_limit_headers["CLOB"]["X-RateLimit-Limit"]


@needs_sim
def test_sim_429_burst_with_retry_after_is_waited_out(sim_client):
    h, c, sleeps = sim_client
    h.sim.set_faults(burst="429:5:1", path="/clob/books")
    markets, _ = c.list_markets(limit=10)
    tokens = [t for m in markets[:10] for t in m.token_ids]
    books = c.get_books(tokens)
    assert len(books) == len(tokens)
    assert sleeps == [1.0] * 5
    assert [s.status for s in c.clob.stats.calls] == [429] * 5 + [200]


@needs_sim
def test_sim_failures_surface_as_one_exchange_unavailable(sim_client):
    h, c, sleeps = sim_client
    h.sim.set_faults(burst="500:3", path="/clob/time")
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get_server_time()
    assert ei.value.attempts == 3 and "HTTP 500" in str(ei.value)
    assert c.get_server_time() == h.sim.now()  # the burst is used up
    h.sim.set_faults(outage=True)
    with pytest.raises(ExchangeUnavailable) as ei:
        c.get_books(["1", "2"])
    assert ei.value.attempts == 3 and "connection to" in str(ei.value)
    assert ei.value.last_status is None
    h.sim.clear_faults()
    assert c.get_server_time() == h.sim.now()


@needs_sim
def test_sim_malformed_json_and_hangs(sim_client):
    h, c, _ = sim_client
    h.sim.set_faults(malformed=1.0, path="/gamma")
    with pytest.raises(ExchangeUnavailable, match="not valid JSON"):
        c.list_markets()
    h.sim.set_faults(timeout="1.0:2", path="/clob/time")
    c.clob.timeout = (2.0, 0.3)
    assert c.get_server_time() == h.sim.now()  # 2 hangs, 3rd attempt answers
    assert [s.status for s in c.clob.stats.calls][-3:] == [None, None, 200]


@needs_sim
def test_sim_4xx_is_not_retried(sim_client):
    h, c, sleeps = sim_client
    with pytest.raises(RequestRejected) as ei:
        c.get_market("999999999")
    assert ei.value.status == 404 and sleeps == []
    assert c.gamma.stats.request_count == 1


@needs_sim
def test_sim_books_for_many_tokens_come_in_batches_of_500():
    # 1,400 tokens: two full batches and a partial one. The 10,000-token scale is a figure, not a
    # rule: benchmarks/bench_exchange_books.py (--tokens 10000) measures it.
    sim_server = _sim_module()
    h = sim_server.start_simulator(port=0, seed=7, n_markets=700, speed=0.0)
    try:
        c = PolymarketClient(
            h.gamma_url,
            h.clob_url,
            h.data_url,
            sleep=Sleeps(),
            rate_limits={"gamma": {}, "clob": {}, "data": {}},
        )
        markets, issues = c.list_markets()
        tokens = [t for m in markets for t in m.token_ids]
        assert len(tokens) > 1_000 and len(tokens) % 500 and issues == []
        c.reset_stats()
        books = c.get_books(tokens)
        assert set(books) == set(tokens)
        assert c.stats.request_count == -(-len(tokens) // 500)
        c.close()
    finally:
        h.stop()
