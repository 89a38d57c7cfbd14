"""Gamma's ``/markets/keyset`` listing with the next page requested while the current one
is parsed.

The listing is the critical path of a cycle: every page needs the previous page's
cursor, and turning a page of 100 markets into models (the JSON-encoded ``outcomes``,
``clobTokenIds``, ... fields) costs about half as long as the exchange takes to serve it.
The cursor is known as soon as the page's JSON is decoded, so a producer thread walks the
cursors (request, decode, next request) while the caller parses the pages it has queued. Same semantics as
``PolymarketClient.iter_markets`` (identical filters on every page, ``after_cursor``
paging, each market once, skipped records collected in :attr:`PrefetchListing.issues`,
a repeated cursor stops the walk), built from the client's public HTTP layer and parser.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..exchange import parse as P
from ..exchange.models import Market, ParseIssue

if TYPE_CHECKING:
    from ..exchange.client import PolymarketClient

PAGE_LIMIT = 100  # /markets/keyset maximum
PATH = "/markets/keyset"


class PrefetchListing:
    def __init__(
        self,
        client: PolymarketClient,
        *,
        closed: bool | None = False,
        order: str | None = None,
        ascending: bool | None = None,
        queue_pages: int = 4,
        **filters: Any,
    ):
        self.client = client
        params = {k: v for k, v in filters.items() if v is not None}
        params["limit"] = PAGE_LIMIT
        for key, value in (("closed", closed), ("order", order), ("ascending", ascending)):
            if value is not None:
                params[key] = value
        self.params = params
        self.queue_pages = max(1, int(queue_pages))
        self.issues: list[ParseIssue] = []
        self.pages = 0

    def _get(self, cursor: str | None) -> Any:
        p = dict(self.params)
        if cursor:
            p["after_cursor"] = cursor
        return self.client.gamma.get(PATH, p, family="markets")

    def _walk(self, out: queue.Queue, stop: threading.Event) -> None:
        """Producer: follow the cursors as fast as the exchange answers (at most
        ``queue_pages`` decoded pages waiting to be parsed)."""
        cursor: str | None = None
        seen: set[str] = set()
        try:
            while not stop.is_set():
                body = self._get(cursor)
                cursor = P.next_cursor(body)
                loop = cursor is not None and cursor in seen
                out.put(("page", body, loop and cursor))
                if cursor is None or loop:
                    break
                seen.add(cursor)
        except BaseException as exc:  # handed to the consumer, raised there
            out.put(("error", exc, None))
            return
        out.put(("end", None, None))

    def __iter__(self) -> Iterator[Market]:
        pages: queue.Queue = queue.Queue(maxsize=self.queue_pages)
        stop = threading.Event()
        walker = threading.Thread(target=self._walk, args=(pages, stop), name="gamma-listing", daemon=True)
        walker.start()
        seen_ids: set[str] = set()
        try:
            while True:
                kind, body, loop_cursor = pages.get()
                if kind == "error":
                    raise body
                if kind == "end":
                    return
                self.pages += 1
                if loop_cursor:
                    self.issues.append(
                        ParseIssue(
                            PATH,
                            f"Gamma returned the cursor {loop_cursor!r} "
                            "twice; listing stopped to avoid a loop",
                        )
                    )
                markets, issues = P.parse_gamma_markets(body)
                self.issues.extend(issues)
                for m in markets:
                    if m.id not in seen_ids:
                        seen_ids.add(m.id)
                        yield m
                if loop_cursor:
                    return
        finally:
            stop.set()
            while walker.is_alive():  # unblock a producer waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    pages.get_nowait()
                walker.join(timeout=0.05)
