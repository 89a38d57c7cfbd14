"""correlation_pairs — trade the divergence of strongly correlated markets.

Every ``reselect_hours`` (on a fixed UTC grid, so replay and live agree) the
strategy picks pairs among the markets' YES (first outcome) tokens: Pearson
correlation of mid CHANGES over ``change_points`` grid points within
``lookback_hours`` (levels of trending series correlate spuriously), gaps
forward-filled for at most ``ffill_points``, at least ``min_overlap`` of the
points present for both. A pair is a candidate only when it is **significant**
by the same rule as the correlation report (:mod:`polybot.analysis.significance`):
at least ``min_shared_moves`` steps where both prices moved, Fisher-z p-value
with an autocorrelation-adjusted effective sample size, Benjamini–Hochberg
q ≤ ``fdr_q`` over ALL pairs examined, and r ≥ ``min_correlation`` (positive
only: buying the laggard needs two legs that move together). The hedge ratio
β = cov(ΔA, ΔB) / var(ΔB) (clipped to [0.2, 5]). The in-sample spread
A − β·B over the lookback must then **mean-revert**: augmented Dickey–Fuller
t ≤ MacKinnon's critical value at ``adf_level`` (``adf_lags`` lags) AND an AR(1)
half-life ≤ ``max_half_life_hours`` (:mod:`polybot.analysis.meanrev`). Greedy
by r among the pairs that pass, each market in at most one pair, at most
``max_pairs``. ``selection_log`` keeps why each candidate was kept or dropped.

At every step, for each pair: spread s = mid_A − β·mid_B; z = (s_now − mean) /
std over the last ``z_window_hours`` (the grid points before now). No z at all
(so no entry and no convergence exit) when that window's spread is degenerate:
fewer than ``min_distinct_spread_values`` distinct values or a standard
deviation below ``min_std`` — a flat spread that jumps once would otherwise
give z = +47.

- **Entry** when |z| ≥ ``entry_z``: the spread is stretched, so BUY THE LAGGARD —
  B when z > 0 (A rich relative to B), A when z < 0. Polymarket has no short
  selling; "short the rich leg" would mean buying its NO token, which doubles
  the fees and the capital for the same signal, so this strategy deliberately
  buys only the cheap leg. The expected catch-up of the bought leg (its share of
  the deviation, after paying the ask) must be at least ``min_edge``, and the
  catch-up must pay for the whole round trip — the bid-ask spread and the taker
  fees of the buy and of the sale (on a 0.07-fee market at 0.50 the two fees
  alone are 0.035 a share); a trade the strategy itself expects to lose money
  on is never entered. Entries are sized to the cash left (none when it cannot
  pay the market's minimum order).
- **Exit** when |z| ≤ ``exit_z`` or z changed sign (converged), after
  ``max_hold_hours`` (time stop), or ``exit_hours_before_end`` before the
  market's end date unless ``hold_to_resolution``; no entries within
  ``no_entry_hours_before_end`` of it.

The strategy remembers which pair (and β) each open position came from; that
memory is derived only from its own decisions on the views it saw. After a
restart (a position it did not open in this process) it adopts the current pair
containing the token, or else relies on the time stop and end-date exit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from polybot.analysis.meanrev import adf_test, degenerate_columns, half_life, hedge_ratio
from polybot.analysis.significance import pair_statistics
from polybot.analysis.stats import corr_pairwise, ffill_limited, upper_pairs

from .base import Holding, Intent, MarketView, PortfolioView, Strategy, limit_for_buy
from .common import (
    HOUR,
    CompletedRows,
    UniverseCache,
    affordable_usd,
    entry_intent,
    exit_intent,
    lifecycle_exit_reason,
    nan_stats,
    round_trip_cost,
    tradable_mask,
)


@dataclass(frozen=True)
class Pair:
    a: str  # token ids (YES tokens), a < b
    b: str
    beta: float
    r: float
    p: float = float("nan")  # Fisher-z p-value (effective sample size)
    q: float = float("nan")  # Benjamini–Hochberg q-value over all pairs examined
    half_life_hours: float = float("nan")  # AR(1) half-life of the in-sample spread
    adf_stat: float = float("nan")  # ADF t-statistic of the in-sample spread

    @cached_property
    def key(self) -> str:
        return f"{self.a}|{self.b}"


class CorrelationPairs(Strategy):
    name = "correlation_pairs"
    DESCRIPTION = "buy the laggard of a strongly correlated pair when their spread diverges"
    PARAMS = {
        "lookback_hours": 72.0,  # correlation / hedge-ratio window
        "reselect_hours": 6.0,  # how often pairs are re-chosen
        "min_correlation": 0.7,  # r of 5-minute changes
        "min_overlap": 0.6,  # share of lookback points present for both
        "ffill_points": 3,  # forward-fill gaps up to this many grid points
        "change_points": 6,  # correlate changes over this many grid points (6 × 5 min =
        # 30 min: tick-rounded 5-min changes are mostly noise)
        "max_pairs": 20,
        "z_window_hours": 24.0,  # spread mean/std window
        "entry_z": 2.0,
        "exit_z": 0.5,
        "min_edge": 0.01,  # expected catch-up after paying the ask (price units)
        "min_std": 0.002,  # a spread whose std is below this is degenerate: no z
        "min_distinct_spread_values": 5,  # ... and so is one with fewer distinct values in the z window
        "min_shared_moves": 20,  # steps where both prices moved, before a pair is tested
        "fdr_q": 0.05,  # Benjamini–Hochberg false discovery rate over all pairs
        "adf_level": 0.05,  # ADF significance level (0.01, 0.05 or 0.10)
        "adf_lags": 1,  # lagged differences in the ADF regression
        "max_half_life_hours": 24.0,  # the in-sample spread must revert at least this fast
        "require_mean_reversion": True,  # false only for research (e.g. calibrating the verdict on noise)
        "position_usd": 50.0,  # $ per entry (the risk manager may resize it)
        "max_entries_per_step": 2,
        "max_hold_hours": 48.0,  # time stop
        "min_price": 0.05,
        "max_price": 0.95,
        "max_spread": 0.05,
        "max_quote_age_seconds": 600,
        "no_entry_hours_before_end": 48.0,
        "exit_hours_before_end": 6.0,
        "hold_to_resolution": False,
        "slippage_ticks": 1,
    }

    def __init__(self, params=None):
        super().__init__(params)
        self._universe = UniverseCache()
        self._pairs: list[Pair] = []
        self._pairs_epoch: int | None = None
        self._open: dict[str, tuple[Pair, int]] = {}  # token → (pair, sign of z at entry)
        self.selection_log: list[tuple[str, str, str]] = []  # (token a, token b, kept / why dropped)
        self._columns_key: tuple | None = None  # _pair_columns' cache
        none = np.zeros(0, dtype=np.int64)
        self._columns = (none, none, np.zeros(0), none)
        self._z_rows = CompletedRows()  # the z-window of the pairs' columns, extended step by step

    def check_params(self) -> None:
        p = self.params
        for k in ("lookback_hours", "reselect_hours", "z_window_hours", "entry_z"):
            if p[k] <= 0:
                self.bad(k, "must be > 0")
        # (key, holds when valid, the problem otherwise), checked in this order
        rules: list[tuple[str, Callable[[], bool], str]] = [
            ("min_correlation", lambda: -1 < p["min_correlation"] < 1, "must be between -1 and 1 (e.g. 0.7)"),
            ("min_overlap", lambda: 0 < p["min_overlap"] <= 1, "must be between 0 and 1"),
            (
                "exit_z",
                lambda: not (p["exit_z"] < 0 or p["exit_z"] >= p["entry_z"]),
                f"must be ≥ 0 and below entry_z ({p['entry_z']})",
            ),
            (
                "position_usd",
                lambda: not p["position_usd"] < 1,
                "must be at least 1 (Polymarket's minimum marketable order)",
            ),
            ("max_pairs", lambda: not p["max_pairs"] < 1, "must be ≥ 1"),
            ("ffill_points", lambda: not p["ffill_points"] < 0, "must be ≥ 0"),
            ("change_points", lambda: not p["change_points"] < 1, "must be ≥ 1"),
            (
                "min_price",
                lambda: 0 <= p["min_price"] < p["max_price"] <= 1,
                "and max_price must satisfy 0 ≤ min_price < max_price ≤ 1",
            ),
            ("slippage_ticks", lambda: not p["slippage_ticks"] < 0, "must be ≥ 0"),
            ("max_entries_per_step", lambda: not p["max_entries_per_step"] < 1, "must be ≥ 1"),
            (
                "min_shared_moves",
                lambda: not p["min_shared_moves"] < 3,
                "must be ≥ 3 (Fisher's z needs more than 3 observations; default 20)",
            ),
            ("fdr_q", lambda: 0 < p["fdr_q"] < 1, "must be between 0 and 1 (e.g. 0.05)"),
            (
                "adf_level",
                lambda: p["adf_level"] in (0.01, 0.05, 0.1),
                "must be 0.01, 0.05 or 0.10 (MacKinnon's tabulated levels)",
            ),
            ("adf_lags", lambda: not p["adf_lags"] < 0, "must be ≥ 0"),
            ("max_half_life_hours", lambda: not p["max_half_life_hours"] <= 0, "must be > 0"),
            ("min_distinct_spread_values", lambda: not p["min_distinct_spread_values"] < 2, "must be ≥ 2"),
            ("min_std", lambda: not p["min_std"] <= 0, "must be > 0"),
        ]
        for key, holds, problem in rules:
            if not holds():
                self.bad(key, problem)

    @property
    def history_seconds(self) -> int:
        p = self.params
        return int(max(p["lookback_hours"], p["z_window_hours"]) * HOUR) + 3600

    @property
    def pairs(self) -> list[Pair]:
        return list(self._pairs)

    # ------------------------------------------------------------------ pair selection
    def _select_pairs(self, view: MarketView) -> None:
        p = self.params
        u = self._universe
        latest = view.latest()
        ok = tradable_mask(
            view,
            latest,
            u.indices,
            max_age=p["max_quote_age_seconds"],
            min_price=p["min_price"],
            max_price=p["max_price"],
            max_spread=1.0,
        )
        cand = np.flatnonzero(ok)
        self._pairs = []
        self.selection_log = []
        if len(cand) < 2:
            return
        points = int(p["lookback_hours"] * HOUR) // view.interval_seconds
        _, M = view.history_by_index(u.indices[cand], points + 1)
        if M.shape[0] < 3:
            return
        k = max(1, p["change_points"])
        if np.isnan(M).any():  # gaps: forward-filled first, at full resolution
            M = ffill_limited(M, p["ffill_points"])
        S = M[::-1][::k][::-1]  # every k-th point, ending now
        D = np.diff(S, axis=0)
        need = max(3, int(p["min_overlap"] * (points // k)))
        r, n = corr_pairwise(D, need)
        st = pair_statistics(D, r, n, min_shared_moves=p["min_shared_moves"], fdr_q=p["fdr_q"])
        iu, ju, upper, _ = upper_pairs(len(cand))
        rv = np.take(r, upper)
        sig = np.take(st.significant(), upper)
        good = np.flatnonzero(sig & (np.nan_to_num(rv, nan=-2) >= p["min_correlation"]))
        if not len(good):
            return
        toks = [u.token_ids[c] for c in cand]
        ranked = sorted(good, key=lambda g: (-rv[g], toks[iu[g]], toks[ju[g]]))
        used: set[int] = set()
        step_hours = k * view.interval_seconds / HOUR
        for g in ranked:
            i, j = int(iu[g]), int(ju[g])
            if i in used or j in used:
                continue
            ta, tb = toks[i], toks[j]
            ia, ib = (i, j) if ta < tb else (j, i)
            beta = hedge_ratio(S[:, ia], S[:, ib])
            if not 0.2 <= beta <= 5.0:
                self.selection_log.append(
                    (toks[ia], toks[ib], f"dropped: hedge ratio {beta:.2f} outside [0.2, 5]")
                )
                continue
            spread = S[:, ia] - beta * S[:, ib]
            adf = adf_test(spread, lags=p["adf_lags"], level=p["adf_level"], n_series=2)
            hl = half_life(spread) * step_hours
            if p["require_mean_reversion"] and not adf.stationary:
                self.selection_log.append(
                    (
                        toks[ia],
                        toks[ib],
                        f"dropped: spread not mean-reverting (ADF t "
                        f"{adf.stat:.2f} > {adf.critical:.2f} at {adf.level:.0%})",
                    )
                )
                continue
            if p["require_mean_reversion"] and not hl <= p["max_half_life_hours"]:
                self.selection_log.append(
                    (
                        toks[ia],
                        toks[ib],
                        f"dropped: spread half-life {hl:.1f} h > {p['max_half_life_hours']:g} h",
                    )
                )
                continue
            self._pairs.append(
                Pair(
                    toks[ia],
                    toks[ib],
                    beta,
                    float(rv[g]),
                    float(st.p[i, j]),
                    float(st.q[i, j]),
                    float(hl),
                    float(adf.stat),
                )
            )
            self.selection_log.append(
                (
                    toks[ia],
                    toks[ib],
                    f"kept: r {rv[g]:.2f}, q {st.q[i, j]:.2g}, "
                    f"shared moves {int(st.shared[i, j])}, half-life {hl:.1f} h",
                )
            )
            used.update((i, j))
            if len(self._pairs) >= p["max_pairs"]:
                break

    # ------------------------------------------------------------------ spread z-scores
    def _z_scores(self, view: MarketView, pairs: list[Pair], latest: dict) -> np.ndarray:
        """z of each pair's spread now (NaN when not computable)."""
        if not pairs:
            self._last_dev = np.zeros(0)
            return np.zeros(0)
        p = self.params
        ia, ib, beta, both = self._pair_columns(view, pairs)
        points = int(p["z_window_hours"] * HOUR) // view.interval_seconds
        M = self._z_rows.window(view, both, points, self._columns_key)  # the completed grid points
        if M.shape[0] < 2:
            self._last_dev = np.full(len(pairs), np.nan)
            return np.full(len(pairs), np.nan)
        complete = not np.isnan(M).any()
        if not complete:  # gaps: forward-filled (a complete window, the usual one, is as it is)
            M = ffill_limited(M, p["ffill_points"])
            complete = not np.isnan(M).any()
        k = len(pairs)
        S = M[:, :k] - beta * M[:, k:]
        min_count = int(p["min_overlap"] * points)
        mean, std, _ = nan_stats(S, min_count, complete=complete)
        # a degenerate window gives no z at all (no entry, no z-based exit)
        std[
            degenerate_columns(
                S,
                min_points=max(3, min_count),
                min_distinct=p["min_distinct_spread_values"],
                min_std=p["min_std"],
                std=std,
                complete=complete,
            )
        ] = np.nan
        # fresh: both legs quoted within max_quote_age_seconds (timestamp −1 = never quoted)
        ts = latest["timestamp"]
        fresh = np.minimum(ts[ia], ts[ib]) >= max(0, view.now - p["max_quote_age_seconds"])
        mid = latest["mid"]
        s_now = mid[ia] - beta * mid[ib]
        dev = s_now - mean
        with np.errstate(invalid="ignore"):
            z = dev / std
        z[~fresh] = np.nan
        self._last_dev = dev
        return z

    def _pair_columns(
        self, view: MarketView, pairs: list[Pair]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indices of the A legs, of the B legs, β, both legs' indices A then B) of
        ``pairs``; kept while the pairs and the market set are the same (they change every
        ``reselect_hours``, steps are 5 min)."""
        key = (self._universe.version, tuple(pr.key for pr in pairs))
        if self._columns_key != key:
            n = len(pairs)
            ia = np.fromiter((view.index_of(x.a) for x in pairs), dtype=np.int64, count=n)
            ib = np.fromiter((view.index_of(x.b) for x in pairs), dtype=np.int64, count=n)
            beta = np.fromiter((x.beta for x in pairs), dtype=np.float64, count=n)
            self._columns = (ia, ib, beta, np.concatenate([ia, ib]))
            self._columns_key = key
        return self._columns

    # ------------------------------------------------------------------ decide
    def decide(self, view: MarketView, portfolio: PortfolioView) -> list[Intent]:
        p = self.params
        u = self._universe
        u.update(view)
        epoch = view.now // int(p["reselect_hours"] * HOUR)
        if epoch != self._pairs_epoch:
            self._pairs_epoch = epoch
            self._select_pairs(view)
        latest = view.latest()
        held = self._sync_open(portfolio)

        # ---- z-scores of every pair we trade or hold, in one pass
        exit_pairs = [self._open[t][0] for t in sorted(held) if t in self._open]
        sel_keys = {pr.key for pr in self._pairs}
        all_pairs = self._pairs + [pr for pr in dict.fromkeys(exit_pairs) if pr.key not in sel_keys]
        z_all = self._z_scores(view, all_pairs, latest)  # one z per pair
        dev_all = self._last_dev
        z_by_key = dict(zip([pr.key for pr in all_pairs], z_all, strict=True))
        out = self._exits(view, held, z_by_key)

        # ---- entries
        if not self._pairs:
            return out
        z = z_all[: len(self._pairs)]
        dev = dev_all[: len(self._pairs)]
        cands = self._entry_candidates(held, z, dev)
        out += self._entries(view, portfolio, latest, cands, z)
        return out

    def _sync_open(self, portfolio: PortfolioView) -> dict[str, Holding]:
        """Our held positions by token; forget open pairs whose position is gone and adopt
        held tokens of a selected pair we did not know."""
        held = {
            t: h
            for t, h in portfolio.positions.items()
            if h.size_micro > 0 and (not h.strategy or h.strategy == self.name)
        }
        for t in list(self._open):
            if t not in held:
                del self._open[t]
        for t in held:
            if t not in self._open:
                for pr in self._pairs:
                    if t in (pr.a, pr.b):
                        self._open[t] = (pr, 1 if t == pr.b else -1)
                        break
        return held

    def _exits(self, view: MarketView, held: dict[str, Holding], z_exit: dict[str, float]) -> list[Intent]:
        """Exit a held token at the end of its life (lifecycle rules) or when its pair's spread
        converged (|z| ≤ exit_z) or crossed over."""
        p = self.params
        out: list[Intent] = []
        for t in sorted(held):
            h = held[t]
            if view.is_resolved(h.market_id):
                continue
            reason = lifecycle_exit_reason(
                view,
                h,
                view.market(h.market_id),
                max_hold_hours=p["max_hold_hours"],
                exit_hours_before_end=p["exit_hours_before_end"],
                hold_to_resolution=p["hold_to_resolution"],
            )
            if reason is None and t in self._open:
                pr, sign = self._open[t]
                z = z_exit.get(pr.key, np.nan)
                if not np.isnan(z) and (abs(z) <= p["exit_z"] or z * sign < 0):
                    reason = f"spread converged: z {z:+.2f} (pair r {pr.r:.2f})"
            if reason:
                it = exit_intent(self.name, view, h, reason, p["slippage_ticks"])
                if it is not None:
                    out.append(it)
        return out

    def _entry_candidates(
        self, held: dict[str, Holding], z: np.ndarray, dev: np.ndarray
    ) -> list[tuple[float, str, str, int, float]]:
        """(−|z|, token to buy, the other token, pair index, expected catch-up) of each selected
        pair diverged beyond entry_z with neither leg held, the most diverged first."""
        p = self.params
        cands: list[tuple[float, str, str, int, float]] = []
        for k in np.flatnonzero(np.abs(z) >= p["entry_z"]):  # NaN compares False
            pr = self._pairs[k]
            if pr.a in held or pr.b in held:
                continue
            # z > 0: A rich vs B → buy B (catch-up dev/β); z < 0: buy A (catch-up −dev)
            token, catch = (pr.b, dev[k] / pr.beta) if z[k] > 0 else (pr.a, -dev[k])
            other = pr.a if token == pr.b else pr.b
            cands.append((-abs(float(z[k])), token, other, int(k), float(catch)))
        cands.sort()
        return cands

    def _entries(
        self,
        view: MarketView,
        portfolio: PortfolioView,
        latest: dict,
        cands: list[tuple[float, str, str, int, float]],
        z: np.ndarray,
    ) -> list[Intent]:
        """Buy the laggard of the candidate pairs whose quote is fresh, in the price band, with
        an edge after spread and fees and cash left, at most max_entries_per_step."""
        p = self.params
        end_of = self._universe.end_of
        out: list[Intent] = []
        n = 0
        cash_left = portfolio.cash_micro
        for negz, token, other, k, catch in cands:
            if n >= p["max_entries_per_step"]:
                break
            m = view.market_of(token)
            if m is None or view.is_resolved(m.market_id):
                continue
            if end_of.get(m.market_id, np.inf) - view.now <= p["no_entry_hours_before_end"] * HOUR:
                continue
            i = view.index_of(token)
            bid, ask, mid, ts = latest["bid"][i], latest["ask"][i], latest["mid"][i], latest["timestamp"][i]
            if np.isnan(ask) or np.isnan(bid) or view.now - ts > p["max_quote_age_seconds"]:
                continue
            if not p["min_price"] <= mid <= p["max_price"] or ask - bid > p["max_spread"] + 1e-9:
                continue
            if catch - (ask - mid) < p["min_edge"]:
                continue
            if catch < round_trip_cost(m, float(bid), float(ask)):
                continue  # the expected catch-up would not even pay spread + fees
            usd = affordable_usd(
                cash_left, p["position_usd"], m, limit_for_buy(float(ask), m.tick_size, p["slippage_ticks"])
            )
            if usd is None:
                continue
            cash_left -= int(round(usd * 100)) * 10_000
            pr = self._pairs[k]
            other_market = view.market_of(other)
            out.append(
                entry_intent(
                    self.name,
                    view,
                    m,
                    token,
                    float(ask),
                    usd,
                    p["slippage_ticks"],
                    f"pair divergence: z {-negz if z[k] > 0 else negz:+.2f} vs "
                    f"{other_market.short_label(40) if other_market else other} "
                    f"(r {pr.r:.2f}, β {pr.beta:.2f}); buying the laggard",
                    tag=f"pair:{pr.key}",
                )
            )
            self._open[token] = (pr, 1 if token == pr.b else -1)
            n += 1
        return out
