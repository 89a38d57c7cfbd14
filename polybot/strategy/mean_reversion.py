"""mean_reversion — the single-market baseline.

For each market's YES (first outcome) token: z = (mid now − mean) / std of the
mids over the last ``window_hours`` (grid points before the current one). Buy
when z ≤ −entry_z and the ask is still at least ``min_edge`` below the mean (the
price fell well below its recent level, and what we pay leaves room for the
reversion after the spread), and a return to the mean pays for the whole round
trip (buy at the ask, sell at the mean minus the half-spread, the taker fee of
both trades). Entries are sized to the cash left. Exit when z ≥ −exit_z (it
came back), after ``max_hold_hours`` (time stop), or ``exit_hours_before_end`` before the market's
end date unless ``hold_to_resolution``. No entry within
``no_entry_hours_before_end`` of the end. Long only (no short selling on
Polymarket). Orders are marketable: BUY up to the ask + ``slippage_ticks``,
SELL down to the bid − ``slippage_ticks``.
"""

from __future__ import annotations

import numpy as np

from .base import Intent, MarketView, PortfolioView, Strategy, limit_for_buy
from .common import (
    HOUR,
    UniverseCache,
    affordable_usd,
    entry_intent,
    exit_intent,
    lifecycle_exit_reason,
    nan_stats,
    near_end_mask,
    taker_fee_per_share,
    tradable_mask,
)


class MeanReversion(Strategy):
    name = "mean_reversion"
    DESCRIPTION = "buy a market's YES token after a drop of entry_z standard deviations below its recent mean"
    PARAMS = {
        "window_hours": 12.0,  # mean/std window of mids
        "entry_z": 2.5,  # buy when z ≤ −entry_z
        "exit_z": 0.0,  # sell when z ≥ −exit_z
        "min_edge": 0.01,  # mean − ask must be at least this (price units)
        "min_std": 0.005,  # floor on the std (flat series give no signal)
        "min_history_fraction": 0.8,  # share of window points that must be present
        "position_usd": 50.0,  # $ per entry (the risk manager may resize it)
        "max_entries_per_step": 2,
        "max_hold_hours": 24.0,  # time stop
        "min_price": 0.10,  # only mids in [min_price, max_price]
        "max_price": 0.90,
        "max_spread": 0.04,
        "max_quote_age_seconds": 600,  # ignore quotes older than this
        "no_entry_hours_before_end": 48.0,
        "exit_hours_before_end": 6.0,
        "hold_to_resolution": False,
        "slippage_ticks": 1,
    }

    def check_params(self) -> None:
        p = self.params
        if p["window_hours"] <= 0:
            self.bad("window_hours", "must be > 0")
        if p["entry_z"] <= 0:
            self.bad("entry_z", "must be > 0")
        if p["exit_z"] >= p["entry_z"]:
            self.bad("exit_z", f"must be below entry_z ({p['entry_z']})")
        if p["position_usd"] < 1:
            self.bad("position_usd", "must be at least 1 (Polymarket's minimum marketable order)")
        if not 0 < p["min_history_fraction"] <= 1:
            self.bad("min_history_fraction", "must be between 0 and 1")
        if not 0 <= p["min_price"] < p["max_price"] <= 1:
            self.bad("min_price", "and max_price must satisfy 0 ≤ min_price < max_price ≤ 1")
        if p["slippage_ticks"] < 0:
            self.bad("slippage_ticks", "must be ≥ 0")
        if p["max_entries_per_step"] < 1:
            self.bad("max_entries_per_step", "must be ≥ 1")

    def __init__(self, params=None):
        super().__init__(params)
        self._universe = UniverseCache()

    @property
    def history_seconds(self) -> int:
        return int(self.params["window_hours"] * HOUR) + 3600

    def _exits(self, view: MarketView, portfolio: PortfolioView) -> list[Intent]:
        """Sell a held position at the end of its life (lifecycle rules) or once its price
        reverted to within exit_z of the mean."""
        p = self.params
        out: list[Intent] = []
        for token, h in sorted(portfolio.positions.items()):
            if h.size_micro <= 0 or (h.strategy and h.strategy != self.name):
                continue
            if view.is_resolved(h.market_id):
                continue  # settles at the payout, nothing to sell
            m = view.market(h.market_id)
            reason = lifecycle_exit_reason(
                view,
                h,
                m,
                max_hold_hours=p["max_hold_hours"],
                exit_hours_before_end=p["exit_hours_before_end"],
                hold_to_resolution=p["hold_to_resolution"],
            )
            if reason is None:
                z = self._z_of(view, token)
                if z is not None and z >= -p["exit_z"]:
                    reason = f"reverted: z {z:+.2f} ≥ {-p['exit_z']:+.2f}"
            if reason:
                it = exit_intent(self.name, view, h, reason, p["slippage_ticks"])
                if it is not None:
                    out.append(it)
        return out

    def decide(self, view: MarketView, portfolio: PortfolioView) -> list[Intent]:
        p = self.params
        out = self._exits(view, portfolio)
        # ---- entries
        u = self._universe
        u.update(view)
        if not len(u.indices):
            return out
        latest = view.latest()
        ok = tradable_mask(
            view,
            latest,
            u.indices,
            max_age=p["max_quote_age_seconds"],
            min_price=p["min_price"],
            max_price=p["max_price"],
            max_spread=p["max_spread"],
        )
        ok &= ~near_end_mask(view.now, u.end_dates, p["no_entry_hours_before_end"])
        if not ok.any():
            return out
        cand = np.flatnonzero(ok)
        points = int(p["window_hours"] * HOUR) // view.interval_seconds
        _, M = view.history_by_index(u.indices[cand], points + 1)
        if M.shape[0] < 3:
            return out
        mean, std, _ = nan_stats(M[:-1], int(p["min_history_fraction"] * points))
        std = np.maximum(std, p["min_std"])
        mid = latest["mid"][u.indices[cand]]
        ask = latest["ask"][u.indices[cand]]
        bid = latest["bid"][u.indices[cand]]
        with np.errstate(invalid="ignore"):
            z = (mid - mean) / std
            sig = (z <= -p["entry_z"]) & (mean - ask >= p["min_edge"])
            # a return to the mean sells at the mean minus the half-spread (fees below)
            gross = (mean - (mid - bid)) - ask
        order = sorted((float(z[k]), u.token_ids[cand[k]], k) for k in np.flatnonzero(sig))
        n = 0
        cash_left = portfolio.cash_micro
        for zk, token, k in order:
            if n >= p["max_entries_per_step"]:
                break
            if portfolio.holds(token):
                continue
            market = view.market(u.market_ids[cand[k]])
            if market is None or view.is_resolved(market.market_id):
                continue
            fees = taker_fee_per_share(market, float(ask[k])) + taker_fee_per_share(
                market, float(mean[k] - (mid[k] - bid[k]))
            )
            if gross[k] < fees:
                continue  # a return to the mean would not pay spread + fees
            usd = affordable_usd(
                cash_left,
                p["position_usd"],
                market,
                limit_for_buy(float(ask[k]), market.tick_size, p["slippage_ticks"]),
            )
            if usd is None:
                continue
            cash_left -= int(round(usd * 100)) * 10_000
            out.append(
                entry_intent(
                    self.name,
                    view,
                    market,
                    token,
                    float(ask[k]),
                    usd,
                    p["slippage_ticks"],
                    f"mean reversion: z {zk:+.2f} ≤ -{p['entry_z']:g}, mid {mid[k]:.3f} "
                    f"vs mean {mean[k]:.3f}",
                )
            )
            n += 1
        return out

    def _z_of(self, view: MarketView, token: str) -> float | None:
        p = self.params
        q = view.quote(token)
        if q is None or q.mid is None:
            return None
        points = int(p["window_hours"] * HOUR) // view.interval_seconds
        _, M = view.history_by_index(np.array([view.index_of(token)]), points + 1)
        if M.shape[0] < 3:
            return None
        mean, std, _ = nan_stats(M[:-1], int(p["min_history_fraction"] * points))
        if np.isnan(mean[0]):
            return None
        return float((q.mid - mean[0]) / max(std[0], p["min_std"]))
