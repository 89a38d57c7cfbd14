"""Order books for the tracked tokens, fetched while the universe is still being listed.

Gamma's keyset listing is sequential (each page needs the previous page's cursor) and the
exchange spends most of a cycle producing those pages. Markets that are certain to be
tracked (Gamma sorts by ``order_by``, so a passing market inside the cap is final as soon
as it is seen) have their books requested at once, on a few threads, in ``POST /books``
batches of ``books_batch_size`` — so parsing and book fetching overlap the listing instead
of following it.

Uses the client's HTTP layer (retries, rate limits, stats) and the shared parser directly
(``client.get_books`` keeps per-call state in ``client.last_issues``, which the concurrent
listing also uses). A batch the server rejects (4xx) is split in halves to isolate the bad
token(s); ``ExchangeUnavailable`` from any batch propagates from :meth:`BookFetcher.result`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..errors import DataError, RequestRejected
from ..exchange import parse as P
from ..exchange.models import Market, OrderBook

if TYPE_CHECKING:
    from ..exchange.client import PolymarketClient


class BookFetcher:
    def __init__(
        self,
        client: PolymarketClient,
        *,
        batch_size: int = 500,
        workers: int = 4,
        progress: Callable[[str], None] | None = None,
        row_of: Callable[[Market, OrderBook], tuple] | None = None,
    ):
        """``row_of(market, book)``: built on the worker thread for each book as it arrives
        (the snapshot row), so little work is left once the listing ends. A book whose row
        was built is not kept (only that the token had one): a whole-universe cycle would
        otherwise hold ~100,000 books of every level, several hundred MB, for nothing."""
        self.client = client
        self.row_of = row_of
        self._market_of: dict[str, Market] = {}
        self.rows: dict[str, tuple] = {}
        self.batch_size = max(1, min(500, int(batch_size)))
        self.progress = progress
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="books")
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._requested: set[str] = set()
        self._futures: list[Future] = []
        self.books: dict[str, OrderBook] = {}  # those without a row built on arrival
        self._booked: set[str] = set()  # tokens that had a book
        self.problems: list[str] = []
        self._reported: set[str] = set()
        self._done_tokens = 0

    # ------------------------------------------------------------------ feeding
    def want_market(self, market: Market) -> None:
        """Queue a market's tokens (their rows are built as the books arrive)."""
        tokens = market.token_ids
        for t in tokens:
            self._market_of.setdefault(t, market)
        self.want(tokens)

    def want(self, token_ids: Iterable[str]) -> None:
        """Queue tokens (each fetched once); full batches are sent at once."""
        for t in token_ids:
            if t not in self._requested:
                self._requested.add(t)
                self._pending.append(t)
        while len(self._pending) >= self.batch_size:
            self._submit(self._pending[: self.batch_size])
            del self._pending[: self.batch_size]

    def _submit(self, batch: list[str]) -> None:
        self._futures.append(self._pool.submit(self._fetch, list(batch)))

    def _fetch(self, batch: list[str]) -> None:
        try:
            body = self.client.clob.post("/books", json=[{"token_id": t} for t in batch], family="books")
        except RequestRejected as exc:
            if len(batch) == 1:
                with self._lock:
                    self.problems.append(f"book {batch[0]}: {exc}")
                    self._reported.add(batch[0])
                return
            mid = len(batch) // 2
            self._fetch(batch[:mid])
            self._fetch(batch[mid:])
            return
        try:
            parsed, issues = P.parse_books(body)
        except DataError as exc:
            parsed, issues = {}, []
            with self._lock:
                self.problems.append(f"books batch of {len(batch)} tokens: {exc}")
        wanted = set(batch)
        rows = {}
        if self.row_of is not None:
            for t, b in parsed.items():
                m = self._market_of.get(t)
                if m is not None and t in wanted:
                    rows[t] = self.row_of(m, b)
        with self._lock:
            got = [t for t in parsed if t in wanted]
            self._booked.update(got)
            # a book whose row is built here is not kept; one whose market was not known
            # yet (a token asked for by result()) waits for rows_for
            self.books.update({t: parsed[t] for t in got if t not in rows})
            self.rows.update(rows)
            self.problems.extend(f"book {i.record_id}: {i.reason}" for i in issues)
            self._reported.update(i.record_id for i in issues)
            self._done_tokens += len(batch)
            done = self._done_tokens
        if self.progress:
            self.progress(f"books {done:,} tokens fetched")

    # ------------------------------------------------------------------ results
    def result(self, token_ids: list[str]) -> tuple[dict[str, OrderBook], list[str]]:
        """Books of ``token_ids`` (fetching any not requested yet; with ``row_of`` only those
        whose row was not built on arrival) and the problems: one per token without a
        book. Raises the first batch failure (e.g. ExchangeUnavailable)."""
        self.want(token_ids)
        if self._pending:
            for i in range(0, len(self._pending), self.batch_size):
                self._submit(self._pending[i : i + self.batch_size])
            self._pending = []
        for fut in self._futures:
            fut.result()
        books = {t: self.books[t] for t in token_ids if t in self.books}
        problems = list(self.problems)
        problems += [
            f"book {t}: no order book returned for this token"
            for t in token_ids
            if t not in self._booked and t not in self._reported
        ]
        return books, problems

    def rows_for(self, markets: Iterable[Market]) -> list[tuple]:
        """Snapshot rows of ``markets``' tokens that have a book (after :meth:`result`)."""
        out = []
        for m in markets:
            for t in m.token_ids:
                row = self.rows.get(t)
                if row is None and t in self.books and self.row_of is not None:
                    row = self.row_of(m, self.books[t])
                if row is not None:
                    out.append(row)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BookFetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
