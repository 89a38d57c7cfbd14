"""Price paths and synthetic order books (pure functions of the world and a time).

Model (all latent paths come from :func:`noise.fbm`, so any instant is computed
directly, O(1) per market, with no stored history):

- single market:  logit(p) = base + vol * I_m(t)
- ladder market:  logit(p) = base + vol * (w * D_event(t) + sqrt(1 - w^2) * I_m(t))
- negRisk market: p_k = softmax_k(base_k + vol_k * I_k(t)) over the event's outcomes

A market planned to resolve converges towards its outcome during the last day
before its end date; after the end date its path is frozen at the closing value.
The NO token's price is 1 - YES. Current prices are cached per whole sim-second.

Books: around the YES path price p the best bid is ceil(p/tick - h) ticks and the
best ask floor(p/tick + h) ticks (h = the market's half-spread in ticks, 1-3),
then 5-10 levels per side (1-3 for thin markets) with some gaps and sizes that
vary per minute. The NO book mirrors it (NO bids = 1 - YES asks). Everything is
integer ticks here; the CLOB layer formats strings.
"""

from __future__ import annotations

import numpy as np

from . import noise

RAMP_SECONDS = 86_400.0  # convergence towards the planned outcome before the end date
MAX_CANDIDATE_LEVELS = 14  # depth 10 + room for gaps
_LEVEL_KEY = np.uint64(0x5BD1E995)
_MINUTE_KEY = np.uint64(0xC2B2AE3D27D4EB4F)


class PriceModel:
    def __init__(self, world):
        self.w = world
        self._cache_t: int | None = None
        self._cache: dict[int, float] = {}

    # ------------------------------------------------------------------ paths
    def probs(self, market_indices, times) -> np.ndarray:
        """YES probability for each market (rows) at each time in seconds (columns).

        Times after a market's end date are clamped to it (the path is frozen at close)."""
        w = self.w
        mis = np.asarray(market_indices, dtype=np.int64).reshape(-1)
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if mis.size == 0:
            return np.empty((0, times.size))
        kinds = w.col_kind[mis]
        # negRisk outcomes need every sibling's score (siblings share the event's end date)
        events = np.unique(w.col_event[mis[kinds == 2]])
        siblings = (
            np.nonzero(np.isin(w.col_event, events) & (w.col_kind == 2))[0]
            if events.size
            else np.zeros(0, dtype=np.int64)
        )
        need = np.union1d(mis, siblings)
        need_kinds = w.col_kind[need]
        t_need = np.minimum(times[None, :], w.col_end[need][:, None])  # (N, T)
        lad = np.nonzero(need_kinds == 1)[0]
        keys = np.concatenate([w.col_idio_key[need], w.col_driver_key[need[lad]]])
        rows = np.concatenate([np.arange(need.size), lad])
        ukeys, first = np.unique(keys, return_index=True)
        same_t = bool((t_need == t_need[:1]).all())
        t_keys = t_need[:1] if same_t else t_need[rows[first]]
        paths = noise.fbm(ukeys, t_keys / 60.0)
        idio = paths[np.searchsorted(ukeys, w.col_idio_key[need])]
        x = w.col_base[need][:, None] + w.col_vol[need][:, None] * idio
        if lad.size:
            drv = paths[np.searchsorted(ukeys, w.col_driver_key[need[lad]])]
            ld = w.col_loading[need[lad]][:, None]
            x[lad] = w.col_base[need[lad]][:, None] + w.col_vol[need[lad]][:, None] * (
                ld * drv + np.sqrt(1 - ld**2) * idio[lad]
            )
        p = np.empty_like(x)
        binary = need_kinds != 2
        p[binary] = 1.0 / (1.0 + np.exp(-x[binary]))
        if events.size:
            # softmax per event; an event's outcome markets are contiguous rows of ``need``
            r = np.nonzero(need_kinds == 2)[0]
            ev_of = w.col_event[need[r]]
            starts = np.concatenate([[0], np.nonzero(np.diff(ev_of))[0] + 1])
            counts = np.diff(np.append(starts, r.size))
            xr = x[r]
            e = np.exp(xr - np.repeat(np.maximum.reduceat(xr, starts, axis=0), counts, axis=0))
            p[r] = e / np.repeat(np.add.reduceat(e, starts, axis=0), counts, axis=0)
        sel = np.searchsorted(need, mis)
        res, t_res = p[sel], t_need[sel]
        target = w.col_target[mis]
        planned = ~np.isnan(target)
        if planned.any():
            left = w.col_end[mis][planned][:, None] - t_res[planned]
            wt = 0.97 * np.clip(1.0 - left / RAMP_SECONDS, 0.0, 1.0) ** 2
            res[planned] = (1 - wt) * res[planned] + wt * target[planned][:, None]
        return np.clip(res, 0.0005, 0.9995)

    def yes_prices(self, market_indices, t: float) -> np.ndarray:
        """Current YES probability of each market (cached per whole sim-second)."""
        sec = int(t)
        if sec != self._cache_t:
            self._cache_t, self._cache = sec, {}
        mis = [int(m) for m in market_indices]
        missing = [m for m in dict.fromkeys(mis) if m not in self._cache]
        if missing:
            vals = self.probs(missing, [float(sec)])[:, 0]
            self._cache.update(zip(missing, vals.tolist(), strict=True))
        return np.array([self._cache[m] for m in mis], dtype=np.float64)

    # ------------------------------------------------------------------ books
    def top_of_book(self, market_indices, t: float):
        """(best bid ticks, best ask ticks, nt) arrays for the YES books (no depth, no gaps)."""
        w = self.w
        mis = np.asarray(market_indices, dtype=np.int64).reshape(-1)
        p = self.yes_prices(mis, t)
        nt = w.col_nt[mis]
        h = w.col_half[mis]
        pt = p * nt
        bb = np.ceil(pt - h - 1e-9).astype(np.int64)
        ba = np.floor(pt + h + 1e-9).astype(np.int64)
        return bb, ba, nt, p

    def synthetic_levels(self, market_indices, t: float, p=None):
        """Per market: (bids, asks) of the YES book as lists of [price ticks, micro-shares], best first.

        ``p`` optionally overrides the YES price (e.g. a historical instant)."""
        w = self.w
        mis = np.asarray(market_indices, dtype=np.int64).reshape(-1)
        if mis.size == 0:
            return []
        if p is None:
            bb, ba, nt, _ = self.top_of_book(mis, t)
        else:
            nt = w.col_nt[mis]
            h = w.col_half[mis]
            bb = np.ceil(np.asarray(p) * nt - h - 1e-9).astype(np.int64)
            ba = np.floor(np.asarray(p) * nt + h + 1e-9).astype(np.int64)
        minute = np.uint64(int(t // 60))
        k = np.arange(MAX_CANDIDATE_LEVELS, dtype=np.uint64)
        with np.errstate(over="ignore"):
            base = noise.mix64(w.col_idio_key[mis] ^ (minute * _MINUTE_KEY))[:, None, None]
            keys = base ^ (
                np.array([0, 1], dtype=np.uint64)[None, :, None] * _LEVEL_KEY
                + k[None, None, :] * np.uint64(0x9E37)
            )
        depth_mult = 1 + 0.3 * np.arange(MAX_CANDIDATE_LEVELS)
        scale = w.col_scale[mis]
        cents = np.round(scale[:, None, None] * np.exp(0.7 * noise.normal(keys)) * depth_mult * 100)
        micro = (np.maximum(cents, 100).astype(np.int64) * 10_000).tolist()  # (M, 2, L) micro-shares
        gap = noise.uniform(keys ^ np.uint64(0xABCDEF)) < 0.2
        gap[:, :, 0] = False
        gap = gap.tolist()
        bb, ba, nt = bb.tolist(), ba.tolist(), nt.tolist()
        out = []
        for r, mi in enumerate(mis.tolist()):
            m = w.markets[mi]
            n = nt[r]
            sides = []
            for side, best, depth, step in ((0, bb[r], m.depth_bid, -1), (1, ba[r], m.depth_ask, 1)):
                levels: list[list[int]] = []
                if m.empty_side != ("bid" if side == 0 else "ask"):
                    price, g, sz = best, gap[r][side], micro[r][side]
                    for lvl in range(MAX_CANDIDATE_LEVELS):
                        if len(levels) >= depth or price <= 0 or price >= n:
                            break
                        if not g[lvl]:
                            levels.append([price, sz[lvl]])
                        price += step
                sides.append(levels)
            out.append((sides[0], sides[1]))
        return out

    # ------------------------------------------------------------------ history
    def history(self, mi: int, outcome: int, start: float, end: float, step_seconds: int):
        """[(t, p)] on a grid aligned to ``step_seconds`` within [start, end] (clipped to the path)."""
        first = int(np.ceil(start / step_seconds)) * step_seconds
        if end < first:
            return []
        times = np.arange(first, int(end) + 1, step_seconds, dtype=np.float64)
        p = self.probs([mi], times)[0]
        if outcome == 1:
            p = 1.0 - p
        return list(zip(times.astype(np.int64).tolist(), np.round(p, 4).tolist(), strict=True))
