"""Helpers shared by the built-in strategies (pure functions of the view)."""

from __future__ import annotations

import math

import numpy as np

from polybot.domain import BUY, ENTER, EXIT, SELL, Holding, Intent, MarketInfo
from polybot.money import MICRO
from polybot.risk import sellable

from .base import (
    MarketView,
    limit_for_buy,
    limit_for_sell,
)

HOUR = 3600


class UniverseCache:
    """The primary (YES / first outcome) token of every known market, as feed indices.
    Rebuilt only when the set of markets changes."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self.market_ids: list[str] = []
        self.token_ids: list[str] = []
        self.indices = np.zeros(0, dtype=np.int64)
        self.end_dates = np.zeros(0, dtype=np.float64)
        self.end_of: dict[str, float] = {}

    @property
    def version(self) -> tuple | None:
        """Changes whenever the cache is rebuilt (feed indices may have changed)."""
        return self._key

    def update(self, view: MarketView) -> None:
        markets = view.markets
        key = (view.markets_version, len(markets))
        if key == self._key:
            return
        self._key = key
        mids, toks, ends = [], [], []
        for mid in sorted(markets):
            m = markets[mid]
            t = m.primary_token
            if t is None:
                continue
            try:
                view.index_of(t)
            except KeyError:
                continue
            mids.append(mid)
            toks.append(t)
            ends.append(float(m.end_date) if m.end_date is not None else math.inf)
        self.market_ids, self.token_ids = mids, toks
        self.indices = np.fromiter((view.index_of(t) for t in toks), dtype=np.int64, count=len(toks))
        self.end_dates = np.asarray(ends, dtype=np.float64)
        self.end_of = dict(zip(mids, ends, strict=True))  # built in step above


class CompletedRows:
    """The last ``points`` completed grid points (the current bucket excluded) of a fixed set
    of token columns, as ``view.history_by_index(cols, points + 1)[1][:-1]`` gives them, read
    in full once and then extended by the points completed since the last call.

    Sound because a grid point before the current one never changes in the feed: only the
    current bucket receives rows (the feed refuses rows older than its last one), and the
    ring only reuses a slot for a NEW current bucket. Each call reads the last three points
    and checks the one before the newly completed point against the copy kept here; any
    mismatch, a skipped point or another set of columns (``key``) reads the window in full.
    The window returned is a read-only view, C-ordered like the full read (the sums over it
    are the same, bit for bit)."""

    def __init__(self) -> None:
        self._key: object = None
        self._buf = np.zeros((0, 0))
        self._n = 0  # rows of _buf in use, oldest first
        self._last_ts = -1  # grid time of the last completed row kept

    def window(self, view: MarketView, cols: np.ndarray, points: int, key: object) -> np.ndarray:
        key = (key, points)
        if key == self._key and self._n:
            ts, M = view.history_by_index(cols, 3)
            if len(ts) == 3:  # [the point before, the last completed one, the current one]
                at = 1 if ts[1] == self._last_ts else 0 if ts[0] == self._last_ts else -1
                # bit for bit (NaNs included): the kept row is a copy of the feed's
                if at >= 0 and M[at].tobytes() == self._buf[self._n - 1].tobytes():
                    if at == 0:  # one point completed since the last call
                        self._append(M[1], points)
                        self._last_ts = int(ts[1])
                    return self._view(points)
        ts, M = view.history_by_index(cols, points + 1)
        M = M[:-1]
        self._key = key
        self._buf = np.empty((max(2 * points, len(M), 1), M.shape[1]))
        self._n = len(M)
        self._buf[: self._n] = M
        self._last_ts = int(ts[-2]) if len(ts) >= 2 else -1
        return self._view(points)

    def _append(self, row: np.ndarray, points: int) -> None:
        if self._n == len(self._buf):  # full: keep the newest points − 1 rows at the front
            keep = points - 1
            self._buf[:keep] = self._buf[self._n - keep : self._n]
            self._n = keep
        self._buf[self._n] = row
        self._n += 1

    def _view(self, points: int) -> np.ndarray:
        out = self._buf[max(0, self._n - points) : self._n]
        out.flags.writeable = False
        return out


def tradable_mask(
    view: MarketView,
    latest: dict,
    idx: np.ndarray,
    *,
    max_age: int,
    min_price: float,
    max_price: float,
    max_spread: float,
) -> np.ndarray:
    """Fresh two-sided quotes with a mid in [min_price, max_price] and a spread ≤ max_spread."""
    ts = latest["timestamp"][idx]
    bid, ask, mid = latest["bid"][idx], latest["ask"][idx], latest["mid"][idx]
    with np.errstate(invalid="ignore"):
        return (
            (ts >= 0)
            & (view.now - ts <= max_age)
            & ~np.isnan(bid)
            & ~np.isnan(ask)
            & (mid >= min_price)
            & (mid <= max_price)
            & ((ask - bid) <= max_spread + 1e-9)
        )


def entry_intent(
    name: str,
    view: MarketView,
    market: MarketInfo,
    token_id: str,
    ask: float,
    usd: float,
    slippage_ticks: int,
    reason: str,
    tag: str = "",
) -> Intent:
    return Intent(
        action=ENTER,
        token_id=token_id,
        market_id=market.market_id,
        side=BUY,
        notional_micro=int(round(usd * 100)) * 10_000,
        limit_price_micro=limit_for_buy(ask, market.tick_size, slippage_ticks),
        reason=reason,
        strategy=name,
        tag=tag,
    )


def taker_fee_per_share(market: MarketInfo | None, price: float) -> float:
    """The market's taker fee for one share at ``price`` (price units): rate × (p(1−p))^exponent."""
    if market is None or not market.fee.effective_rate or not 0 < price < 1:
        return 0.0
    return market.fee.effective_rate * (price * (1 - price)) ** market.fee.exponent


def round_trip_cost(market: MarketInfo | None, bid: float, ask: float) -> float:
    """What buying one share at the ask and selling it back at the bid costs, taker fees of
    both trades included (price units). An entry's expected move must beat this, not just
    the half-spread: on a 0.07-fee market at 0.50 the two fees alone are 0.035 a share."""
    return (ask - bid) + taker_fee_per_share(market, ask) + taker_fee_per_share(market, bid)


def affordable_usd(
    cash_left_micro: int, usd: float, market: MarketInfo, limit_price_micro: int
) -> float | None:
    """The $ an entry can ask for with the cash left (at most ``usd``), or None when the cash
    cannot pay the market's minimum order (min shares at the limit price and $1) plus its fee.
    The risk manager still checks the exact amount; this keeps a strategy from asking for
    entries it cannot pay for."""
    p = max(limit_price_micro, 1) / MICRO
    fee_frac = taker_fee_per_share(market, p) / p
    cash = cash_left_micro / MICRO / (1 + fee_frac)
    minimum = max(1.0, market.min_order_size * p)
    if cash < minimum:
        return None
    return min(float(usd), math.floor(cash * 100) / 100)


def exit_intent(
    name: str, view: MarketView, h: Holding, reason: str, slippage_ticks: int, tag: str = ""
) -> Intent | None:
    """A SELL of the whole holding at the bid minus slippage; None without a bid, and None
    for a holding smaller than the market's minimum order size (after rounding down to the
    exchange's 2 decimals): the exchange rejects such a SELL ("Size (…) lower than the
    minimum", shared/polymarket/API_NOTES.md), so the remnant of a partial fill is held to
    resolution instead of being offered again at every step."""
    m = view.market(h.market_id)
    if not sellable(h, m):  # first: the cheap test (a dust holding is asked about at every step)
        return None
    q = view.quote(h.token_id)
    limit = None
    if q is not None and q.best_bid is not None and m is not None:
        limit = limit_for_sell(q.best_bid, m.tick_size, slippage_ticks)
    elif q is None or q.best_bid is None:
        return None
    return Intent(
        action=EXIT,
        token_id=h.token_id,
        market_id=h.market_id,
        side=SELL,
        size_micro=h.size_micro,
        limit_price_micro=limit,
        reason=reason,
        strategy=name,
        tag=tag,
    )


def lifecycle_exit_reason(
    view: MarketView,
    h: Holding,
    market: MarketInfo | None,
    *,
    max_hold_hours: float,
    exit_hours_before_end: float,
    hold_to_resolution: bool,
) -> str | None:
    """Time stop / end-date exit reasons common to the built-ins (None = keep)."""
    held = view.now - h.opened_at
    if max_hold_hours > 0 and held >= max_hold_hours * HOUR:
        return f"time stop: held {held / HOUR:.1f} h ≥ {max_hold_hours:g} h"
    if market is not None and market.end_date is not None and not hold_to_resolution:
        left = market.end_date - view.now
        if left <= exit_hours_before_end * HOUR:
            return f"market ends in {left / HOUR:.1f} h (exit {exit_hours_before_end:g} h before the end)"
    return None


def near_end_mask(now: int, end_dates: np.ndarray, hours: float) -> np.ndarray:
    """True where no new entry may be made (end date within ``hours``)."""
    return end_dates - now <= hours * HOUR


def nan_stats(
    M: np.ndarray, min_count: int, *, complete: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column mean, std (ddof 0) and count ignoring NaNs; NaN where count < min_count.
    ``complete``: the caller knows whether ``M`` has any NaN (None: look)."""
    if complete is None:
        complete = not np.isnan(M).any()
    n, k = M.shape
    if complete:  # no gaps: the same sums without the masks (the usual window of a step)
        cnt = np.full(k, n)
        if n < max(2, min_count):
            return np.full(k, np.nan), np.full(k, np.nan), cnt
        mean = M.sum(axis=0) / n
        d = M - mean
        return mean, np.sqrt((d * d).sum(axis=0) / n), cnt
    valid = ~np.isnan(M)
    cnt = valid.sum(axis=0)
    Z = np.where(valid, M, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = Z.sum(axis=0) / cnt
        var = (np.where(valid, M - mean, 0.0) ** 2).sum(axis=0) / cnt
    ok = cnt >= max(2, min_count)
    return np.where(ok, mean, np.nan), np.where(ok, np.sqrt(var), np.nan), cnt


def micro(price: float) -> int:
    return int(round(price * MICRO))
