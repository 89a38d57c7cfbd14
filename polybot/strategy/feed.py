"""The shared view builder: plain ``snapshot_values`` rows → point-in-time MarketViews.

Both the backtester and the trading engine feed a :class:`MarketFeed` and ask it
for ``view(now)``; that is what makes a strategy decide identically in a replay
and in the paper/live loop.

- ``add_rows(rows)``: rows are mappings with the ``snapshot_values`` columns
  (sqlite3.Row or dict: ``timestamp, token_id, market_id, best_bid, best_ask,
  mid, last_trade_price, bids, asks, source``; missing keys are None). They must
  come in non-decreasing timestamp order across calls (a row older than one
  already fed raises ``DataError``: it would rewrite the past).
- ``ingest(timestamp, idx, bid, ask, mid, ...)``: the same, column-wise for one
  timestamp (the backtester's fast path; ``add_rows`` calls it).
- ``view(now)``: a :class:`~polybot.strategy.base.MarketView`; ``now`` must be at
  or after the newest row fed, so a view can never contain the future.

What the feed keeps, per token: the latest top of book (bid, ask, mid, time,
backfill flag), the latest depth strings (or a ``depth_loader`` callback that
fetches them for a (token, timestamp) — the backtester's way of not loading
every book), and a ring buffer of mids on a fixed grid of
``interval_seconds`` buckets covering ``history_seconds`` (the last mid seen in
each bucket; NaN when none; no forward fill).

Backfilled rows (source 'backfill'; without that flag: no bid/ask but a price): the price is
``mid`` else ``last_trade_price``; bid/ask are synthesised as price ∓ the token's half
spread, rounded outward to the tick and clamped to [tick, 1 − tick]; their book is one
level each side of the token's depth. The token's half spread and depth are those of
``backfill_books`` (token id → an object with ``half_spread`` and ``depth``, e.g.
:func:`polybot.backtest.data.estimate_backfill_books`: the market's own RECORDED median
spread and top-of-book depth), else ``backfill_half_spread`` / ``backfill_depth_shares``
(conservative defaults: config ``backtest.backfill_half_spread`` /
``backtest.backfill_default_depth``). Set them at construction or with
:meth:`MarketFeed.set_backfill_books`.

Point-in-time metadata: ``metadata_history`` (market id → changes oldest first, each with
``effective_from``, ``tick_size``, ``min_order_size``, ``fee`` and ``end_date``; e.g.
:func:`polybot.backtest.data.load_metadata_history`) makes :attr:`markets` (and
:meth:`market`, :meth:`book`'s tick and minimum size, the backfill tick rounding) hold the
values in force at the newest time fed: before a market's first recorded change its
earliest known values, then each change from its ``effective_from`` on — never a later
value applied to earlier history.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from polybot.errors import DataError
from polybot.exchange.models import BookLevel, OrderBook

from .base import BACKFILL, COLLECTED, History, MarketInfo, MarketView, Quote, parse_levels

DepthLoader = Callable[[str, int], tuple[str | bytes | None, str | bytes | None]]  # text or packed BLOB

_COLUMNS = (
    "timestamp",
    "token_id",
    "market_id",
    "best_bid",
    "best_ask",
    "mid",
    "last_trade_price",
    "bids",
    "asks",
    "source",
)


def _get(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError):
        return None


class MarketFeed:
    _H: np.ndarray  # (n_slots, capacity) mid-price history; allocated by _alloc

    def __init__(
        self,
        markets: Iterable[MarketInfo],
        *,
        history_seconds: int = 86_400,
        interval_seconds: int = 300,
        backfill_half_spread: float = 0.02,
        backfill_depth_shares: float = 100.0,
        resolved_at: Mapping[str, int | None] | None = None,
        depth_loader: DepthLoader | None = None,
        backfill_books: Mapping[str, Any] | None = None,
        metadata_history: Mapping[str, Sequence[Any]] | None = None,
    ):
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.interval = int(interval_seconds)
        self.history_seconds = int(history_seconds)
        self.half_spread = float(backfill_half_spread)
        self.backfill_depth = float(backfill_depth_shares)
        self.depth_loader = depth_loader
        self.markets: dict[str, MarketInfo] = {}
        self.resolved_at: dict[str, int] = {
            k: int(v) for k, v in (resolved_at or {}).items() if v is not None
        }
        self.tokens: list[str] = []
        self.token_index: dict[str, int] = {}
        self.token_market: dict[str, str] = {}
        self._cap = 0
        self._n = 0
        self.n_slots = max(2, self.history_seconds // self.interval + 2)
        self._slot_ts = np.full(self.n_slots, -1, dtype=np.int64)
        self._cur_bucket: int | None = None
        self._cur_slot = -1
        self._version = 0
        self._raw_depth = False  # whether any row ever came with depth strings (bids/asks)
        self.markets_version = 0  # bumped whenever market metadata changes
        self.last_timestamp: int | None = None
        self._books: dict[str, tuple[float, float]] = {}  # token → (half spread, depth) of backfill
        self._meta_queue: list[tuple[int, str, Any]] = []  # (effective_from, market id, change)
        self._meta_pos = 0
        self._alloc(
            max(16, sum(len(m.token_ids) for m in markets) if isinstance(markets, (list, tuple)) else 16)
        )
        for m in sorted(markets, key=lambda m: m.market_id):
            self.add_market(m)
        if backfill_books:
            self.set_backfill_books(backfill_books)
        if metadata_history:
            self.set_metadata_history(metadata_history)

    # ------------------------------------------------------------------ registry
    def _alloc(self, cap: int) -> None:
        old = self._cap
        if cap <= old:
            return

        def grow(arr, fill, dtype):
            new = np.full(cap, fill, dtype=dtype)
            if old:
                new[:old] = arr
            return new

        self._ts = grow(getattr(self, "_ts", None), -1, np.int64)
        self._bid = grow(getattr(self, "_bid", None), np.nan, np.float64)
        self._ask = grow(getattr(self, "_ask", None), np.nan, np.float64)
        self._mid = grow(getattr(self, "_mid", None), np.nan, np.float64)
        self._bf = grow(getattr(self, "_bf", None), False, np.bool_)
        self._tick = grow(getattr(self, "_tick", None), 0.01, np.float64)
        self._bf_half = grow(getattr(self, "_bf_half", None), np.nan, np.float64)  # NaN: the default
        self._bf_depth = grow(getattr(self, "_bf_depth", None), np.nan, np.float64)
        self._bids_raw = grow(getattr(self, "_bids_raw", None), None, object)
        self._asks_raw = grow(getattr(self, "_asks_raw", None), None, object)
        H = np.full((self.n_slots, cap), np.nan, dtype=np.float64)
        if old:
            H[:, :old] = self._H
        self._H = H
        self._cap = cap

    def add_market(self, m: MarketInfo) -> None:
        """Register a market (and its tokens); re-registering updates the metadata."""
        self.markets[m.market_id] = m
        self.markets_version += 1
        for t in m.token_ids:
            self._add_token(t, m.market_id, m.tick_size)

    def _add_token(self, token_id: str, market_id: str, tick: float = 0.01) -> int:
        i = self.token_index.get(token_id)
        if i is not None:
            return i
        if self._n >= self._cap:
            self._alloc(max(16, self._cap * 2))
        i = self._n
        self._n += 1
        self.tokens.append(token_id)
        self.token_index[token_id] = i
        self.token_market[token_id] = market_id
        self._tick[i] = tick if tick > 0 else 0.01
        book = self._books.get(token_id)
        if book is not None:
            self._bf_half[i], self._bf_depth[i] = book
        if market_id not in self.markets:
            self.markets[market_id] = MarketInfo(market_id=market_id, token_ids=(token_id,))
            self.markets_version += 1
        return i

    def market(self, market_id: str) -> MarketInfo | None:
        """The market's metadata in force at the newest time fed (point-in-time)."""
        return self.markets.get(market_id)

    # ------------------------------------------------------------------ backfilled books
    def set_backfill_books(self, books: Mapping[str, Any]) -> None:
        """Per token: the synthetic book of its backfilled rows — an object with
        ``half_spread`` and ``depth`` (or a (half_spread, depth) pair). Tokens not given
        keep the defaults. Applies to rows fed from now on."""
        for token_id, b in books.items():
            half, depth = (b.half_spread, b.depth) if hasattr(b, "half_spread") else b
            half, depth = float(half), float(depth)
            if not (half >= 0 and depth >= 0):
                raise ValueError(f"backfill book of {token_id}: half spread and depth must be ≥ 0")
            self._books[str(token_id)] = (half, depth)
            i = self.token_index.get(str(token_id))
            if i is not None:
                self._bf_half[i], self._bf_depth[i] = half, depth

    # ------------------------------------------------------------------ point-in-time metadata
    def set_metadata_history(self, history: Mapping[str, Sequence[Any]]) -> None:
        """Market id → metadata changes (``effective_from``, ``tick_size``,
        ``min_order_size``, ``fee``, ``end_date``). Each market starts from its EARLIEST
        change (the oldest values known) and takes every later one once a row at or after
        its ``effective_from`` is fed (or a view at or after it is asked for)."""
        queue = []
        for mid, changes in history.items():
            ordered = sorted(changes, key=lambda c: int(c.effective_from))
            if not ordered or mid not in self.markets:
                continue
            self._apply_change(str(mid), ordered[0])
            queue += [(int(c.effective_from), str(mid), c) for c in ordered[1:]]
        queue.sort(key=lambda q: (q[0], q[1]))
        self._meta_queue, self._meta_pos = queue, 0
        if self.last_timestamp is not None:
            self._advance_metadata(self.last_timestamp)

    def _apply_change(self, market_id: str, c: Any) -> None:
        m = self.markets[market_id]
        new = dataclasses.replace(
            m,
            tick_size=float(c.tick_size),
            min_order_size=float(c.min_order_size),
            fee=c.fee,
            end_date=c.end_date,
        )
        if new == m:
            return
        self.markets[market_id] = new
        self.markets_version += 1
        tick = new.tick_size if new.tick_size > 0 else 0.01
        for t in new.token_ids:
            i = self.token_index.get(t)
            if i is not None:
                self._tick[i] = tick

    def _advance_metadata(self, now: int) -> None:
        q = self._meta_queue
        while self._meta_pos < len(q) and q[self._meta_pos][0] <= now:
            _, mid, c = q[self._meta_pos]
            self._meta_pos += 1
            self._apply_change(mid, c)

    def index_array(self, token_ids: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.token_index[t] for t in token_ids), dtype=np.int64, count=len(token_ids))

    def set_resolved(self, market_id: str, resolved_at: int | None) -> None:
        if resolved_at is None:
            self.resolved_at.pop(market_id, None)
        else:
            self.resolved_at[market_id] = int(resolved_at)

    # ------------------------------------------------------------------ input
    def add_rows(self, rows: Iterable[Any]) -> int:
        """Feed plain snapshot rows (see the module docstring); returns how many."""
        groups: dict[int, list] = {}
        for r in rows:
            groups.setdefault(int(r["timestamp"]), []).append(r)
        count = 0
        for ts in sorted(groups):
            grp = groups[ts]
            n = len(grp)
            idx = np.empty(n, dtype=np.int64)
            bid = np.empty(n)
            ask = np.empty(n)
            mid = np.empty(n)
            bf = np.zeros(n, dtype=np.bool_)
            bids: list = [None] * n
            asks: list = [None] * n
            for k, r in enumerate(grp):
                token = str(r["token_id"])
                i = self.token_index.get(token)
                if i is None:
                    market = _get(r, "market_id")
                    i = self._add_token(token, str(market) if market is not None else token)
                idx[k] = i
                b, a, m = _get(r, "best_bid"), _get(r, "best_ask"), _get(r, "mid")
                if m is None:
                    m = _get(r, "last_trade_price")
                bid[k] = np.nan if b is None else float(b)
                ask[k] = np.nan if a is None else float(a)
                mid[k] = np.nan if m is None else float(m)
                bf[k] = _get(r, "source") == BACKFILL
                bids[k] = _get(r, "bids")
                asks[k] = _get(r, "asks")
            self.ingest(
                ts, idx, bid, ask, mid, bf, np.array(bids, dtype=object), np.array(asks, dtype=object)
            )
            count += n
        return count

    def ingest(
        self,
        timestamp: int,
        idx: np.ndarray,
        bid: np.ndarray,
        ask: np.ndarray,
        mid: np.ndarray,
        backfill: np.ndarray | None = None,
        bids: np.ndarray | None = None,
        asks: np.ndarray | None = None,
        *,
        micro_exact: bool = False,
    ) -> None:
        """Column-wise input for ONE timestamp (token indices from :attr:`token_index`).

        ``mid`` holds the price of backfilled rows (mid, else last trade). ``bids``/
        ``asks``: depth strings, or None to rely on ``depth_loader``. ``micro_exact``: every
        price is already ``micro / 1e6`` (the backtester's reader), which rounding to 6
        decimals would give back unchanged, so it is skipped.
        """
        timestamp = int(timestamp)
        if self.last_timestamp is not None and timestamp < self.last_timestamp:
            raise DataError(
                f"snapshot rows went back in time ({timestamp} after {self.last_timestamp}); "
                f"feed them in timestamp order."
            )
        self.last_timestamp = timestamp
        self._version += 1
        if self._meta_pos < len(self._meta_queue):
            self._advance_metadata(timestamp)
        # prices are kept to the micro-unit (what the backtester's reader delivers)
        if not micro_exact:
            bid, ask, mid = np.round(bid, 6), np.round(ask, 6), np.round(mid, 6)
        # backfill / derived prices
        no_bid, no_ask, no_mid = np.isnan(bid), np.isnan(ask), np.isnan(mid)
        # With a backfill flag, only backfilled rows get a synthetic book: a RECORDED empty book
        # means nobody was quoting, and inventing 100 shares at ±2¢ there would let paper and the
        # replay fill where live could not (e.g. a closed market's last price). Without one,
        # every price without a book is.
        bf = (backfill if backfill is not None else no_bid & no_ask) & ~no_mid
        derive = no_mid & ~no_bid & ~no_ask  # a mid from both sides (rarely: readers give one)
        if derive.any():
            mid = np.where(derive, np.round((bid + ask) / 2.0, 6), mid)
        if bf.any():
            h = self._bf_half[idx[bf]]
            h = np.where(np.isnan(h), self.half_spread, h)
            ticks = self._tick[idx[bf]]
            p = mid[bf]
            lo = np.floor(np.round((p - h) / ticks, 6)) * ticks
            hi = np.ceil(np.round((p + h) / ticks, 6)) * ticks
            bid = bid.copy()
            ask = ask.copy()
            bid[bf] = np.round(np.clip(lo, ticks, 1 - ticks), 6)
            ask[bf] = np.round(np.clip(hi, ticks, 1 - ticks), 6)
        self._ts[idx] = timestamp
        self._bid[idx] = bid
        self._ask[idx] = ask
        self._mid[idx] = mid
        self._bf[idx] = bf
        if bids is not None:
            self._bids_raw[idx] = bids
            self._asks_raw[idx] = asks
            self._raw_depth = True
        elif self._raw_depth:  # these rows' depth comes from depth_loader, not older strings
            self._bids_raw[idx] = None
            self._asks_raw[idx] = None
        # history grid
        bucket = timestamp // self.interval
        if self._cur_bucket is None or bucket > self._cur_bucket:
            steps = self.n_slots if self._cur_bucket is None else min(bucket - self._cur_bucket, self.n_slots)
            for k in range(steps, 0, -1):
                self._cur_slot = (self._cur_slot + 1) % self.n_slots
                self._H[self._cur_slot, :] = np.nan
                self._slot_ts[self._cur_slot] = (bucket - k + 1) * self.interval
            self._cur_bucket = bucket
        self._H[self._cur_slot, idx] = mid

    # ------------------------------------------------------------------ output
    def view(self, now: int) -> MarketView:
        now = int(now)
        if self.last_timestamp is not None and now < self.last_timestamp:
            raise ValueError(
                f"view({now}) is older than rows already fed ({self.last_timestamp}); "
                f"a view cannot go back in time"
            )
        if self._meta_pos < len(self._meta_queue) and self._meta_queue[self._meta_pos][0] <= now:
            self._advance_metadata(now)
            self._version += 1  # metadata moved: earlier views are stale
        return MarketView(self, now, self._version)

    def quote(self, token_id: str) -> Quote | None:
        i = self.token_index.get(token_id)
        if i is None or self._ts[i] < 0:
            return None

        def f(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return Quote(
            token_id,
            self.token_market[token_id],
            int(self._ts[i]),
            f(self._bid[i]),
            f(self._ask[i]),
            f(self._mid[i]),
            BACKFILL if self._bf[i] else COLLECTED,
        )

    def book(self, token_id: str) -> OrderBook | None:
        i = self.token_index.get(token_id)
        if i is None or self._ts[i] < 0:
            return None
        market = self.markets.get(self.token_market[token_id])
        tick = float(self._tick[i])
        min_size = market.min_order_size if market else 5.0
        ts = int(self._ts[i])
        bid, ask = self._bid[i], self._ask[i]
        bids: tuple[BookLevel, ...]
        asks: tuple[BookLevel, ...]
        if self._bf[i]:
            depth = float(self._bf_depth[i]) if not math.isnan(self._bf_depth[i]) else self.backfill_depth
            bids = (BookLevel(float(bid), depth),) if not math.isnan(bid) and depth > 0 else ()
            asks = (BookLevel(float(ask), depth),) if not math.isnan(ask) and depth > 0 else ()
        else:
            braw, araw = self._bids_raw[i], self._asks_raw[i]
            if braw is None and araw is None and self.depth_loader is not None:
                braw, araw = self.depth_loader(token_id, ts)
            bids, asks = parse_levels(braw), parse_levels(araw)
            if not bids and not math.isnan(bid):
                bids = (BookLevel(float(bid), self.backfill_depth),)
            if not asks and not math.isnan(ask):
                asks = (BookLevel(float(ask), self.backfill_depth),)
        return OrderBook(
            token_id=token_id,
            market=market.market_id if market else "",
            timestamp_ms=ts * 1000,
            bids=bids,
            asks=asks,
            tick_size=tick,
            min_order_size=min_size,
            neg_risk=bool(market.neg_risk) if market else False,
        )

    def latest_arrays(self) -> dict[str, np.ndarray]:
        n = self._n
        return {
            "timestamp": self._ts[:n].copy(),
            "bid": self._bid[:n].copy(),
            "ask": self._ask[:n].copy(),
            "mid": self._mid[:n].copy(),
            "backfill": self._bf[:n].copy(),
        }

    def history_by_index(self, indices: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cur_bucket is None:
            return np.zeros(0, dtype=np.int64), np.zeros((0, len(indices)))
        points = max(1, min(int(points), self.n_slots))
        cols = np.asarray(indices, dtype=np.int64)
        cur, first = self._cur_slot, self._cur_slot - points + 1
        if first >= 0:  # one run of slots: a slice of rows, then the columns
            ts, M = self._slot_ts[first : cur + 1].copy(), self._H[first : cur + 1, cols]
        else:  # the window wraps around the ring: its two runs, oldest first
            ts = np.concatenate((self._slot_ts[first:], self._slot_ts[: cur + 1]))
            M = np.concatenate((self._H[first:, cols], self._H[: cur + 1, cols]))
        if ts[0] < 0:  # slots never filled (times grow along the window: only at its start)
            keep = ts >= 0
            ts, M = ts[keep], M[keep]
        return ts, M

    def history(self, token_ids: Sequence[str] | None = None, seconds: int | None = None) -> History:
        ids = tuple(self.tokens) if token_ids is None else tuple(token_ids)
        points = self.n_slots if seconds is None else int(seconds) // self.interval + 1
        ts, mids = self.history_by_index(self.index_array(ids), points)
        return History(ts, mids, ids)
