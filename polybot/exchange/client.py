"""PolymarketClient: the read side of the exchange (Gamma, CLOB public data, Data API).

Three :class:`HttpClient` s, one per host (``self.gamma``, ``self.clob``, ``self.data``),
so each has its own pool, rate limits and stats. Records that fail to parse are skipped
and collected in ``self.last_issues`` (reset at the start of each public list call), so
one bad market never aborts a cycle; a single-object call raises ``DataError`` instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polybot.config import Config, PolymarketConfig
from polybot.domain import BUY, SELL
from polybot.errors import RequestRejected
from polybot.exchange import parse as P
from polybot.exchange.http import HttpClient
from polybot.exchange.models import (
    Event,
    LastTrade,
    Market,
    OrderBook,
    ParseIssue,
    Position,
    PricePoint,
    UserTrade,
)

log = logging.getLogger(__name__)

BATCH_MAX = 500  # POST /books, /prices, /midpoints, /last-trades-prices
GAMMA_PAGE_MAX = 100  # /markets/keyset max limit
EVENTS_PAGE_MAX = 500  # /events/keyset max limit (nautilus docs; unverified officially)
DATA_PAGE_MAX = 500  # Data API /positions, /trades page size we use
DATA_OFFSET_MAX = 10_000  # Data API rejects deeper offsets


@dataclass(frozen=True)
class ClientStats:
    """Aggregate over the three hosts (a snapshot; read ``client.stats`` again to refresh)."""

    total_seconds: float
    request_count: int
    failure_count: int
    wait_seconds: float
    slowest: tuple[float, str, str] | None  # (seconds, "host/family", "GET /path")
    last_rate_limit_headers: dict = field(default_factory=dict)  # host name -> headers
    by_host: dict = field(default_factory=dict)  # host name -> HttpStats.snapshot()


def _chunks(items: Sequence[str], n: int) -> list[list[str]]:
    return [list(items[i : i + n]) for i in range(0, len(items), n)]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(i) for i in items))


class PolymarketClient:
    """Read-side client. ``timeout`` is (connect, read) seconds or one number; ``max_retries``
    is the number of attempts per call before ``ExchangeUnavailable``; ``rate_limits`` maps
    ``"gamma" | "clob" | "data"`` to an HttpClient ``rate_limits`` dict (None = documented
    defaults, ``{}`` = no client-side limiting); ``book_workers`` threads overlap batched
    POST calls (1 = sequential)."""

    def __init__(
        self,
        gamma_url: str,
        clob_url: str,
        data_url: str,
        *,
        timeout: Any = (3.05, 10),
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        rate_limits: dict[str, dict | None] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        book_workers: int = 4,
    ):
        rl = rate_limits or {}
        common = dict(
            timeout=timeout,
            max_retries=max_retries,
            sleep=sleep,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        self.gamma = HttpClient(gamma_url, name="Gamma", rate_limits=rl.get("gamma"), **common)
        self.clob = HttpClient(clob_url, name="CLOB", rate_limits=rl.get("clob"), **common)
        self.data = HttpClient(data_url, name="Data", rate_limits=rl.get("data"), **common)
        self.book_workers = max(1, int(book_workers))
        self.last_issues: list[ParseIssue] = []
        self._issues_lock = threading.Lock()

    @classmethod
    def from_config(
        cls, cfg: Config | PolymarketConfig | Mapping[str, Any], **overrides: Any
    ) -> PolymarketClient:
        """Build from the config object: ``cfg.polymarket.gamma_url``, ``.base_url`` (the
        CLOB), ``.data_url``, ``.timeout_seconds`` (read timeout; connect = min(3.05, it))
        and ``.max_retries``. Missing attributes fall back to the production hosts and the
        defaults; ``cfg`` may also be the ``polymarket`` section itself."""
        pm = getattr(cfg, "polymarket", cfg)

        def attr(*names: str, default: Any = None) -> Any:
            for n in names:
                v = getattr(pm, n, None)
                if v is None and isinstance(pm, dict):
                    v = pm.get(n)
                if v not in (None, ""):
                    return v
            return default

        t = attr("timeout_seconds", "timeout", default=10)
        timeout = tuple(t) if isinstance(t, (list, tuple)) else (min(3.05, float(t)), float(t))
        kwargs: dict[str, Any] = dict(timeout=timeout, max_retries=int(attr("max_retries", default=3)))
        kwargs.update(overrides)
        return cls(
            attr("gamma_url", default="https://gamma-api.polymarket.com"),
            attr("base_url", "clob_url", default="https://clob.polymarket.com"),
            attr("data_url", default="https://data-api.polymarket.com"),
            **kwargs,
        )

    def close(self) -> None:
        for h in (self.gamma, self.clob, self.data):
            h.close()

    def __enter__(self) -> PolymarketClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ stats / issues
    @property
    def stats(self) -> ClientStats:
        snaps = {h.name: h.stats.snapshot() for h in (self.gamma, self.clob, self.data)}
        slowest = None
        for name, s in snaps.items():
            if s["slowest"] and (slowest is None or s["slowest"][0] > slowest[0]):
                secs, fam, what = s["slowest"]
                slowest = (secs, f"{name}/{fam}", what)
        return ClientStats(
            total_seconds=sum(s["total_seconds"] for s in snaps.values()),
            request_count=sum(s["request_count"] for s in snaps.values()),
            failure_count=sum(s["failure_count"] for s in snaps.values()),
            wait_seconds=sum(s["wait_seconds"] for s in snaps.values()),
            slowest=slowest,
            last_rate_limit_headers={
                n: s["last_rate_limit_headers"] for n, s in snaps.items() if s["last_rate_limit_headers"]
            },
            by_host=snaps,
        )

    def reset_stats(self) -> None:
        for h in (self.gamma, self.clob, self.data):
            h.stats.reset()

    def _issues(self, issues: Iterable[ParseIssue]) -> None:
        issues = list(issues)
        if issues:
            with self._issues_lock:
                self.last_issues.extend(issues)
            for i in issues:
                log.debug("skipped %s", i)

    # ------------------------------------------------------------------ Gamma
    def _keyset(self, path: str, key: str, params: dict, family: str) -> Iterator[list]:
        """Raw record pages of a Gamma keyset listing (``after_cursor`` paging)."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            p = dict(params)
            if cursor:
                p["after_cursor"] = cursor
            body = self.gamma.get(path, p, family=family)
            yield P.records_of(body, key)
            cursor = P.next_cursor(body)
            if cursor is None:
                return
            if cursor in seen:
                self._issues(
                    [
                        ParseIssue(
                            path,
                            f"Gamma returned the cursor {cursor!r} twice; listing stopped to avoid a loop",
                        )
                    ]
                )
                return
            seen.add(cursor)

    @staticmethod
    def _list_params(
        closed: bool | None, limit: int, order: str | None, ascending: bool | None, filters: dict
    ) -> dict:
        params = {k: v for k, v in filters.items() if v is not None}
        params["limit"] = limit
        if closed is not None:
            params["closed"] = closed
        if order is not None:
            params["order"] = order
        if ascending is not None:
            params["ascending"] = ascending
        return params

    def iter_markets(
        self,
        *,
        closed: bool | None = False,
        limit: int = 100,
        order: str | None = None,
        ascending: bool | None = None,
        **filters: Any,
    ) -> Iterator[Market]:
        """Every market matching the filters, via ``GET /markets/keyset`` (each id once).
        Extra keyword filters are sent as-is (lists become repeated params), identically on
        every page. Skipped records go to ``self.last_issues``."""
        params = self._list_params(closed, min(int(limit), GAMMA_PAGE_MAX), order, ascending, filters)
        self.last_issues = []
        seen: set[str] = set()
        for records in self._keyset("/markets/keyset", "markets", params, "markets"):
            markets, issues = P.parse_gamma_markets(records)
            self._issues(issues)
            for m in markets:
                if m.id not in seen:
                    seen.add(m.id)
                    yield m

    def list_markets(self, **kwargs: Any) -> tuple[list[Market], list[ParseIssue]]:
        markets = list(self.iter_markets(**kwargs))
        return markets, list(self.last_issues)

    def get_market(self, market_id: str | int) -> Market:
        return P.parse_gamma_market(self.gamma.get(f"/markets/{market_id}", family="markets"))

    def get_market_by_slug(self, slug: str) -> Market:
        body = self.gamma.get(f"/markets/slug/{slug}", family="markets")
        if isinstance(body, list):
            if not body:
                raise RequestRejected(
                    f"Gamma API has no market with slug {slug!r}; check the slug.", status=404
                )
            body = body[0]
        return P.parse_gamma_market(body)

    def iter_events(
        self,
        *,
        closed: bool | None = False,
        limit: int = 100,
        order: str | None = None,
        ascending: bool | None = None,
        **filters: Any,
    ) -> Iterator[Event]:
        """Every event via ``GET /events/keyset`` (markets embedded), each id once."""
        params = self._list_params(closed, min(int(limit), EVENTS_PAGE_MAX), order, ascending, filters)
        self.last_issues = []
        seen: set[str] = set()
        for records in self._keyset("/events/keyset", "events", params, "events"):
            events, issues = P.parse_gamma_events(records)
            self._issues(issues)
            for e in events:
                if e.id not in seen:
                    seen.add(e.id)
                    yield e

    def list_events(self, **kwargs: Any) -> tuple[list[Event], list[ParseIssue]]:
        events = list(self.iter_events(**kwargs))
        return events, list(self.last_issues)

    def get_event(self, event_id: str | int) -> Event:
        self.last_issues = []
        event, issues = P.parse_gamma_event(self.gamma.get(f"/events/{event_id}", family="events"))
        self._issues(issues)
        return event

    # ------------------------------------------------------------------ CLOB batched
    def _batched(
        self,
        path: str,
        token_ids: Iterable[str],
        body_of: Callable[[list], list],
        parse_one_batch: Callable[[Any], tuple[dict, list]],
        batch_size: int = BATCH_MAX,
    ) -> dict:
        """POST ``path`` in batches of ≤500 (overlapped on ``book_workers`` threads).
        A batch the server rejects (4xx) is split in halves to isolate the bad token(s),
        which become issues; ExchangeUnavailable propagates."""
        tokens = _unique(token_ids)
        result: dict = {}
        lock = threading.Lock()
        family = path.strip("/")

        def run(batch: list[str]) -> None:
            try:
                body = self.clob.post(path, json=body_of(batch), family=family)
            except RequestRejected as exc:
                if len(batch) == 1:
                    self._issues([ParseIssue(batch[0], str(exc))])
                    return
                mid = len(batch) // 2
                run(batch[:mid])
                run(batch[mid:])
                return
            parsed, issues = parse_one_batch(body)
            self._issues(issues)
            with lock:
                result.update(parsed)

        batches = _chunks(tokens, batch_size)
        if self.book_workers == 1 or len(batches) <= 1:
            for b in batches:
                run(b)
            return result
        pool = ThreadPoolExecutor(
            max_workers=min(self.book_workers, len(batches)), thread_name_prefix="clob-batch"
        )
        try:
            for fut in [pool.submit(run, b) for b in batches]:
                fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return result

    def get_books(self, token_ids: Iterable[str]) -> dict[str, OrderBook]:
        """Order books for many tokens via ``POST /books`` (≤500 per call). Tokens the
        server returns no book for are recorded in ``last_issues``."""
        self.last_issues = []
        tokens = _unique(token_ids)
        books = self._batched("/books", tokens, lambda b: [{"token_id": t} for t in b], P.parse_books)
        reported = {i.record_id for i in self.last_issues}
        missing = [t for t in tokens if t not in books and t not in reported]
        if missing:
            self._issues(ParseIssue(t, "no order book returned for this token") for t in missing[:1000])
        return books

    def get_midpoints(self, token_ids: Iterable[str]) -> dict[str, float]:
        self.last_issues = []
        return self._batched(
            "/midpoints", token_ids, lambda b: [{"token_id": t} for t in b], P.parse_midpoints
        )

    def get_prices(
        self, token_ids: Iterable[str], sides: Sequence[str] = (BUY, SELL)
    ) -> dict[str, dict[str, float]]:
        """``POST /prices`` → {token: {"BUY": best ask, "SELL": best bid}}."""
        self.last_issues = []
        per_call = max(1, BATCH_MAX // max(1, len(sides)))  # ≤500 items per POST
        return self._batched(
            "/prices",
            token_ids,
            lambda b: [{"token_id": t, "side": s} for t in b for s in sides],
            P.parse_prices,
            batch_size=per_call,
        )

    def get_last_trade_prices(self, token_ids: Iterable[str]) -> dict[str, LastTrade]:
        """``POST /last-trades-prices``; never-traded tokens are absent from the result."""
        self.last_issues = []
        return self._batched(
            "/last-trades-prices",
            token_ids,
            lambda b: [{"token_id": t} for t in b],
            P.parse_last_trade_prices,
        )

    # ------------------------------------------------------------------ CLOB single
    def get_book(self, token_id: str) -> OrderBook:
        return P.parse_book(self.clob.get("/book", {"token_id": token_id}, family="book"))

    def get_midpoint(self, token_id: str) -> float:
        return P.parse_midpoint(
            self.clob.get("/midpoint", {"token_id": token_id}, family="midpoint"), token_id
        )

    def get_price(self, token_id: str, side: str) -> float:
        return P.parse_price(
            self.clob.get("/price", {"token_id": token_id, "side": side}, family="price"), token_id
        )

    def get_prices_history(
        self,
        token_id: str,
        start_ts: int | None = None,
        end_ts: int | None = None,
        fidelity_minutes: int = 1,
        *,
        interval: str | None = None,
    ) -> list[PricePoint]:
        """``GET /prices-history`` for one token: a ``startTs``/``endTs`` window (epoch s)
        or an ``interval`` (1m, 1h, 6h, 1d, 1w, max), bucketed by ``fidelity_minutes``."""
        params: dict[str, Any] = {"market": token_id, "fidelity": int(fidelity_minutes)}
        if interval is not None:
            params["interval"] = interval
        else:
            params["startTs"] = int(start_ts) if start_ts is not None else None
            params["endTs"] = int(end_ts) if end_ts is not None else None
        body = self.clob.get("/prices-history", params, family="prices-history")
        return P.parse_price_history(body, token_id)

    def get_tick_size(self, token_id: str) -> float:
        return P.parse_tick_size(
            self.clob.get("/tick-size", {"token_id": token_id}, family="tick-size"), token_id
        )

    def get_server_time(self) -> int:
        return P.parse_server_time(self.clob.get("/time", family="time"))

    def health(self) -> float:
        """``GET /`` on the CLOB; returns the response time in seconds (raises
        ExchangeUnavailable when it cannot be reached)."""
        t0 = time.perf_counter()
        self.clob.request("GET", "/", family="root", parse_json=False)
        return time.perf_counter() - t0

    def get_clob_market(self, condition_id: str) -> Market:
        return P.parse_clob_market(self.clob.get(f"/markets/{condition_id}", family="markets"))

    # ------------------------------------------------------------------ Data API
    def _data_pages(
        self, path: str, params: dict, family: str, parse_page: Callable[[Any], tuple[list, list]]
    ) -> list:
        """Offset-paged Data-API list (v1 bare arrays; a v2 envelope's cursor is followed)."""
        out: list = []
        offset = 0
        cursor: str | None = None
        while True:
            p = dict(params, limit=DATA_PAGE_MAX)
            if cursor:
                p["cursor"] = cursor
            else:
                p["offset"] = offset
            body = self.data.get(path, p, family=family)
            rows, issues = parse_page(body)
            self._issues(issues)
            out.extend(rows)
            n = len(P.records_of(body, "data"))
            if isinstance(body, dict) and "pagination" in body:
                cursor = P.next_cursor(body)
                if cursor is None:
                    return out
                continue
            offset += n
            if n < DATA_PAGE_MAX or offset >= DATA_OFFSET_MAX:
                return out

    def get_positions(self, user: str, *, size_threshold: float = 0.0, **filters: Any) -> list[Position]:
        """Every position of ``user`` (proxy wallet) from Data-API ``/positions``; dust is
        included (``sizeThreshold=0``) unless ``size_threshold`` says otherwise."""
        self.last_issues = []
        params = dict(filters, user=user, sizeThreshold=size_threshold)
        return self._data_pages("/positions", params, "positions", P.parse_positions)

    def get_user_trades(
        self,
        user: str,
        *,
        taker_only: bool = False,
        start: int | None = None,
        end: int | None = None,
        **filters: Any,
    ) -> list[UserTrade]:
        """Trades of ``user`` from Data-API ``/trades`` (maker and taker unless
        ``taker_only``), newest first as served."""
        self.last_issues = []
        params = dict(filters, user=user, takerOnly=taker_only, start=start, end=end)
        return self._data_pages("/trades", params, "trades", P.parse_user_trades)

    def get_value(self, user: str) -> int:
        """Total position value of ``user`` (``/value``) in micro-USDC."""
        return P.parse_value(self.data.get("/value", {"user": user}, family="value"), user)
