"""The one HTTP layer every Polymarket call goes through.

:class:`HttpClient` wraps a pooled ``requests.Session`` for ONE base URL (Gamma, CLOB or
Data API, or the simulator's prefix) and adds:

- retries with exponential backoff and full jitter on connection errors, timeouts, 5xx,
  425 and 429, and on a 200 whose body is not valid JSON; ``Retry-After`` (seconds or
  HTTP date) is honoured, capped at ``backoff_max``;
- no retry on other 4xx: 401/403 → :class:`AuthenticationError`, anything else →
  :class:`RequestRejected` (``status`` set) with the server's ``error`` message;
- after ``max_retries`` failed attempts in a row, ONE :class:`ExchangeUnavailable`
  (``attempts`` = how many attempts failed) — the engine's breaker counts those;
- a 425/429 that carries ``Retry-After`` is throttling, not failure: it is waited out and
  does not use up ``max_retries``; at most ``max_throttle_waits`` such waits per call;
- client-side sliding-window rate limiting per endpoint family (thread-safe; it sleeps,
  never fails), defaulting to the documented Cloudflare limits (docs/dev/api_notes.md §9);
- per-call statistics (:class:`HttpStats`).

Only paths (never query strings, bodies or headers) are logged, at DEBUG.
``sleep`` is injectable so tests can count waits without waiting.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from polybot.errors import AuthenticationError, ExchangeUnavailable, RequestRejected
from polybot.exchange.json_decode import loads

log = logging.getLogger(__name__)

# Documented Cloudflare limits (requests per window seconds), docs/dev/api_notes.md §9.
# "general" applies to every call of that host; a family applies to its endpoint.
# (Gamma's combined /markets+/events listing limit, 900/10s, can never be hit because
# 300 + 500 < 900, so it is not modelled.)
DEFAULT_RATE_LIMITS: dict[str, dict[str, tuple[int, float]]] = {
    "gamma": {
        "general": (4000, 10.0),
        "markets": (300, 10.0),
        "events": (500, 10.0),
        "comments": (200, 10.0),
        "tags": (200, 10.0),
        "public-search": (350, 10.0),
    },
    "clob": {
        "general": (9000, 10.0),
        "book": (1500, 10.0),
        "books": (500, 10.0),
        "price": (1500, 10.0),
        "prices": (500, 10.0),
        "midpoint": (1500, 10.0),
        "midpoints": (500, 10.0),
        "prices-history": (1000, 10.0),
        "tick-size": (200, 10.0),
        "data/orders": (500, 10.0),
        "data/trades": (500, 10.0),
        "ok": (100, 10.0),
        "balance-allowance": (200, 10.0),
        "balance-allowance/update": (50, 10.0),
        "auth": (100, 10.0),
    },
    "data": {
        "general": (1000, 10.0),
        "trades": (200, 10.0),
        "positions": (150, 10.0),
        "closed-positions": (150, 10.0),
    },
}

RETRYABLE_STATUSES = frozenset({425, 429, 500, 502, 503, 504})
_RATE_HEADER_PREFIXES = ("x-ratelimit-", "poly-ratelimit-", "ratelimit-")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if
    absent or unreadable. Never negative."""
    if value is None or not str(value).strip():
        return None
    v = str(value).strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class SlidingWindowLimiter:
    """At most ``limit`` calls in any ``period`` seconds. Thread-safe.

    Each call reserves a send slot under the lock (the k-th call may go no earlier than
    ``period`` after the (k−limit)-th), then the caller sleeps until its slot. Reserving
    instead of polling means a fake ``sleep`` in tests never spins.
    """

    def __init__(self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or period <= 0:
            raise ValueError(f"bad rate limit {limit}/{period}s")
        self.limit = int(limit)
        self.period = float(period)
        self._clock = clock
        self._slots: deque[float] = deque(maxlen=self.limit)
        self._lock = threading.Lock()

    def reserve(self, earliest: float | None = None) -> float:
        """Reserve the next slot no earlier than ``earliest``; returns the slot time."""
        with self._lock:
            t = self._clock() if earliest is None else max(earliest, self._clock())
            if len(self._slots) == self.limit:
                t = max(t, self._slots[0] + self.period)
            self._slots.append(t)
            return t


class CallRecord(NamedTuple):
    """One attempt: (family, seconds, status)."""

    family: str
    seconds: float
    status: int | None  # None = no HTTP answer (connection error / timeout)


class HttpStats:
    """Per-client call statistics (thread-safe). ``calls`` is a rolling list of
    (family, seconds, status); ``total_seconds`` sums every attempt's response time."""

    def __init__(self, keep: int = 1000):
        self._lock = threading.Lock()
        self.calls: deque[CallRecord] = deque(maxlen=keep)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.total_seconds = 0.0
            self.request_count = 0
            self.failure_count = 0
            self.last_response_seconds: float | None = None
            self.slowest: tuple[float, str, str] | None = None  # (seconds, family, "GET /path")
            self.last_rate_limit_headers: dict[str, str] = {}
            self.wait_seconds = 0.0  # slept in the limiter, backoff and Retry-After

    def record(
        self, family: str, what: str, seconds: float, status: int | None, headers: dict | None = None
    ) -> None:
        with self._lock:
            self.calls.append(CallRecord(family, seconds, status))
            self.total_seconds += seconds
            self.request_count += 1
            if status is None or status >= 400:
                self.failure_count += 1
            self.last_response_seconds = seconds
            if self.slowest is None or seconds > self.slowest[0]:
                self.slowest = (seconds, family, what)
            if headers:
                self.last_rate_limit_headers = dict(headers)

    def add_wait(self, seconds: float) -> None:
        with self._lock:
            self.wait_seconds += seconds

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "total_seconds": self.total_seconds,
                "request_count": self.request_count,
                "failure_count": self.failure_count,
                "last_response_seconds": self.last_response_seconds,
                "slowest": self.slowest,
                "wait_seconds": self.wait_seconds,
                "last_rate_limit_headers": dict(self.last_rate_limit_headers),
            }


def _rate_headers(resp: requests.Response) -> dict[str, str]:
    return {
        k: v
        for k, v in resp.headers.items()
        if k.lower().startswith(_RATE_HEADER_PREFIXES) or k.lower() == "retry-after"
    }


def _error_message(resp: requests.Response) -> str:
    """The server's ``error`` message (or a short text excerpt), one line."""
    try:
        body = loads(resp.content) if resp.content else None
    except ValueError:
        body = None
    msg = ""
    if isinstance(body, dict):
        msg = str(body.get("error") or body.get("message") or body.get("errorMsg") or "")
    elif isinstance(body, str):
        msg = body
    if not msg:
        msg = resp.reason or "no message"
        if resp.text and "<html" not in resp.text[:200].lower():
            msg = resp.text
    return " ".join(msg.split())[:200]


def _param(v: Any) -> Any:
    """Query values as the APIs expect them: booleans lower-case, lists repeated."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple, set)):
        return [_param(x) for x in v]
    return v


class HttpClient:
    """JSON over HTTP for one base URL, with retries, rate limiting and stats.

    ``max_retries`` is the total number of attempts for transient failures (3 → three
    tries, then ``ExchangeUnavailable(attempts=3)``). ``rate_limits`` maps a family name
    to ``(calls, seconds)``; None → the documented defaults for ``name`` (gamma / clob /
    data, case-insensitive), ``{}`` → no client-side limiting.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        timeout: Any = (3.05, 10),
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        rate_limits: dict[str, tuple[int, float]] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_throttle_waits: int = 10,
        pool_maxsize: int = 32,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.timeout = timeout
        self.max_retries = max(1, int(max_retries))
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_throttle_waits = max(0, int(max_throttle_waits))
        self.sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        if rate_limits is None:
            rate_limits = DEFAULT_RATE_LIMITS.get(name.lower(), {})
        self._limiters = {
            fam: SlidingWindowLimiter(n, per, clock=clock) for fam, (n, per) in rate_limits.items()
        }
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(20, pool_maxsize), max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers.update({"User-Agent": "polybot/1.0", "Accept": "application/json"})
        self.session = session
        self.stats = HttpStats()
        self._host = urlsplit(self.base_url).netloc or self.base_url

    # ------------------------------------------------------------------ public verbs
    def get(
        self,
        path: str,
        params: Any = None,
        *,
        family: str | None = None,
        retries: int | None = None,
        headers: dict | None = None,
    ) -> Any:
        return self.request("GET", path, params=params, family=family, retries=retries, headers=headers)

    def post(
        self,
        path: str,
        json: Any = None,
        *,
        params: Any = None,
        family: str | None = None,
        retries: int | None = None,
        headers: dict | None = None,
        data: bytes | str | None = None,
    ) -> Any:
        return self.request(
            "POST", path, params=params, json=json, data=data, family=family, retries=retries, headers=headers
        )

    def delete(
        self,
        path: str,
        json: Any = None,
        *,
        params: Any = None,
        family: str | None = None,
        retries: int | None = None,
        headers: dict | None = None,
        data: bytes | str | None = None,
    ) -> Any:
        return self.request(
            "DELETE",
            path,
            params=params,
            json=json,
            data=data,
            family=family,
            retries=retries,
            headers=headers,
        )

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def family_of(self, path: str) -> str:
        """Endpoint family of a path: ``/markets/keyset`` → markets, ``/data/orders`` →
        data/orders, ``/v2/positions`` → positions, ``/`` → root."""
        segs = [s for s in path.split("?")[0].split("/") if s]
        if segs and segs[0] in ("v1", "v2"):
            segs = segs[1:]
        if not segs:
            return "root"
        two = "/".join(segs[:2])
        if two in self._limiters:
            return two
        return segs[0]

    def _wait_for_slot(self, family: str) -> None:
        fam = self._limiters.get(family)
        general = self._limiters.get("general") if family != "general" else None
        if fam is None and general is None:
            return
        now = self._clock()
        slot = fam.reserve(now) if fam is not None else now
        if general is not None:
            slot = general.reserve(slot)
        wait = slot - self._clock()
        if wait > 0.001:  # a free slot reserved "now" is not worth a sleep call
            log.debug("%s rate limiter: waiting %.3fs for family %s", self.name, wait, family)
            self.stats.add_wait(wait)
            self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1))))

    def _read_timeout(self) -> float:
        t = self.timeout
        return float(t[1] if isinstance(t, (tuple, list)) else t)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: bytes | str | None = None,
        family: str | None = None,
        retries: int | None = None,
        headers: dict | None = None,
        parse_json: bool = True,
    ) -> Any:
        """Send one logical request (with retries) and return the parsed JSON (or the text
        when ``parse_json`` is False; None for an empty non-GET answer)."""
        if not path.startswith("/"):
            path = "/" + path
        family = family or self.family_of(path)
        what = f"{method} {path}"
        url = self.base_url + path
        if isinstance(params, dict):
            params = {k: _param(v) for k, v in params.items() if v is not None}
        if data is not None and headers is None:
            headers = {"Content-Type": "application/json"}
        send = _Send(method, url, what, family, params, json, data, headers, parse_json)
        max_attempts = self.max_retries if retries is None else max(1, int(retries))
        failures = 0
        throttle_waits = 0
        last = _Attempt(problem="no attempt made")
        while True:
            self._wait_for_slot(family)
            last = self._attempt(send)
            if last.done:
                return last.value
            delay = last.retry_after
            if delay is not None and last.status in (425, 429) and throttle_waits < self.max_throttle_waits:
                throttle_waits += 1
                log.debug("%s %s throttled (HTTP %s): waiting %.3fs", self.name, what, last.status, delay)
                self.stats.add_wait(delay)
                self.sleep(delay)
                continue
            failures += 1
            if failures >= max_attempts:
                break
            if delay is None:
                delay = self._backoff(failures)
            log.debug(
                "%s %s attempt %d failed (%s); retrying in %.3fs",
                self.name,
                what,
                failures,
                last.problem,
                delay,
            )
            self.stats.add_wait(delay)
            self.sleep(delay)
        raise self._unavailable(last, failures)

    def _attempt(self, send: _Send) -> _Attempt:
        """One HTTP exchange: the answer, or why it failed and may be retried. Raises
        AuthenticationError for 401/403 and RequestRejected for any other 4xx."""
        what, family = send.what, send.family
        t0 = time.perf_counter()
        try:
            resp = self.session.request(
                send.method,
                send.url,
                params=send.params,
                json=send.json,
                data=send.data,
                headers=send.headers,
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            self.stats.record(family, what, time.perf_counter() - t0, None)
            return _Attempt(
                problem=f"{what} got no answer within {self._read_timeout():g}s ({type(exc).__name__})"
            )
        except requests.RequestException as exc:
            self.stats.record(family, what, time.perf_counter() - t0, None)
            return _Attempt(problem=f"connection to {self._host} failed ({type(exc).__name__})")
        seconds = time.perf_counter() - t0
        status = resp.status_code
        self.stats.record(family, what, seconds, status, _rate_headers(resp))
        log.debug("%s %s -> %s in %.3fs", self.name, what, status, seconds)
        if 200 <= status < 300:
            return _answer(resp, send)
        if status in (401, 403):
            raise AuthenticationError(
                f"{self.name} API refused {what} (HTTP {status}: {_error_message(resp)}); "
                "check the API key, secret and passphrase in the environment "
                "(a 403 can also mean a geoblocked or datacenter IP)."
            )
        if status in RETRYABLE_STATUSES or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            return _Attempt(
                status=status,
                problem=f"{what} answered HTTP {status} ({_error_message(resp)})",
                retry_after=None if retry_after is None else min(retry_after, self.backoff_max),
            )
        raise RequestRejected(
            f"{self.name} API rejected {what} (HTTP {status}): {_error_message(resp)}; "
            "check the request parameters (ids, token ids, filters).",
            status=status,
        )

    def _unavailable(self, last: _Attempt, failures: int) -> ExchangeUnavailable:
        """The ONE error after ``failures`` failed attempts in a row (``last``: the last one)."""
        if last.problem.endswith("was not valid JSON"):
            # The server answered (HTTP 2xx) but not with JSON: not a network outage; most often
            # a wrong base URL, a proxy or a captive portal answering HTML (issue 15 #10).
            err = ExchangeUnavailable(
                f"{self.name} API answered but {last.problem} ({failures} attempts); check the "
                f"{self.name} base URL in config.yaml (a proxy or a wrong host answers HTML)",
                attempts=failures,
                last_status=last.status,
            )
        else:
            err = ExchangeUnavailable(
                f"{self.name} API unreachable after {failures} attempts: {last.problem}; "
                f"check the network or the {self.name} base URL in config.yaml",
                attempts=failures,
                last_status=last.status,  # None: the last attempt got no HTTP answer
            )
        return err


class _Send(NamedTuple):
    """One logical request, as every attempt of it sends it."""

    method: str
    url: str
    what: str  # "GET /path": what the logs and errors name
    family: str
    params: Any
    json: Any
    data: bytes | str | None
    headers: dict | None
    parse_json: bool


@dataclass(frozen=True)
class _Attempt:
    """What one attempt got: ``done`` with its ``value``, or the ``problem`` (and the HTTP
    ``status``, None without an answer; ``retry_after``: the server's wait, capped)."""

    done: bool = False
    value: Any = None
    status: int | None = None
    problem: str = ""
    retry_after: float | None = None


def _answer(resp: requests.Response, send: _Send) -> _Attempt:
    """A 2xx answer: its JSON (or text when not ``parse_json``; None when empty and not a
    GET, or a 204); a body that is not JSON is a failed attempt."""
    if not send.parse_json:
        return _Attempt(done=True, value=resp.text)
    if not resp.content and (resp.status_code == 204 or send.method != "GET"):
        return _Attempt(done=True, value=None)
    try:
        return _Attempt(done=True, value=loads(resp.content))
    except ValueError:
        return _Attempt(status=resp.status_code, problem=f"the response to {send.what} was not valid JSON")
