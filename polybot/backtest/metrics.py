"""Backtest metrics, computed from the ledger and the equity curve.

Sharpe ratio (stated in every report): daily equity returns, not per-trade —
``r_d = E_d / E_{d−1} − 1`` where ``E_d`` is the equity (cash + positions marked
at the best bid) at the end of UTC day d and ``E_0`` the starting capital;
``Sharpe = mean(r) / stdev(r, ddof=1) × √365`` (0 when fewer than 2 days or no
variation). Max drawdown is measured on every step of the curve.

The verdict (PASS / FAIL / INSUFFICIENT_DATA), its reasons and its uncertainty come from
:func:`polybot.backtest.verdict.judge`; ``compute_metrics`` gathers its inputs (daily returns,
closed trades, the data coverage measured by :func:`polybot.backtest.coverage.data_coverage`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polybot.config import BacktestConfig
from polybot.money import MICRO
from polybot.timefmt import utc_day

from .engine import DAY, BacktestResult
from .verdict import judge

SHARPE_FORMULA = (
    "mean(daily return) / stdev(daily return, ddof=1) × √365; daily return = equity at the "
    "end of a UTC day / equity at the end of the previous day − 1 (equity = cash + positions "
    "marked at the best bid; day 0 = starting capital)"
)


def daily_equity(res: BacktestResult) -> tuple[np.ndarray, np.ndarray]:
    """(day start timestamps, equity at the end of each UTC day in micro-units)."""
    first_day = res.start_ts // DAY
    last_day = res.end_ts // DAY
    days = np.arange(first_day, last_day + 1, dtype=np.int64) * DAY
    ends = days + DAY - 1
    pos = np.searchsorted(res.curve_ts, ends, side="right") - 1
    eq = np.where(pos >= 0, res.curve_equity[np.maximum(pos, 0)], res.capital_micro)
    return days, eq.astype(np.int64)


def sharpe_ratio(daily_eq: np.ndarray, capital_micro: int) -> float:
    series = np.concatenate(([capital_micro], daily_eq)).astype(np.float64)
    r = series[1:] / series[:-1] - 1.0
    if len(r) < 2:
        return 0.0
    sd = float(np.std(r, ddof=1))
    if sd <= 1e-15:
        return 0.0
    return float(np.mean(r) / sd * math.sqrt(365.0))


def max_drawdown(equity: np.ndarray, capital_micro: int) -> float:
    series = np.concatenate(([capital_micro], equity)).astype(np.float64)
    peak = np.maximum.accumulate(series)
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = np.where(peak > 0, 1.0 - series / peak, 0.0)
    return float(dd.max()) if len(dd) else 0.0


def daily_returns(daily_eq: np.ndarray, capital_micro: int) -> np.ndarray:
    """Return of each UTC day: equity at its end / equity at the previous day's end − 1 (day 0 =
    the starting capital) — the series the Sharpe ratio, the PSR and the bootstrap use."""
    series = np.concatenate(([capital_micro], daily_eq)).astype(np.float64)
    return series[1:] / series[:-1] - 1.0


def compute_metrics(
    res: BacktestResult,
    thresholds: BacktestConfig,
    *,
    coverage: dict[str, Any] | None = None,
    n_trials: int = 1,
    trials_sharpe_variance: float | None = None,
    for_go_live: bool = False,
) -> dict[str, Any]:
    """Every number of the report, the checklist's criteria and the verdict.

    ``coverage`` is :func:`polybot.backtest.coverage.data_coverage`'s answer for the replayed
    universe and window; without it the coverage is unknown and the verdict INSUFFICIENT_DATA.
    ``n_trials`` / ``trials_sharpe_variance``: parameter sets tried (a sweep) for the deflated
    Sharpe ratio.
    """
    L = res.ledger
    trips = L.closed_trips
    pnls = [t.pnl_micro for t in trips]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    n = len(trips)
    final = int(res.curve_equity[-1]) if len(res.curve_equity) else res.capital_micro
    days, deq = daily_equity(res)
    sharpe = sharpe_ratio(deq, res.capital_micro)
    mdd = max_drawdown(res.curve_equity, res.capital_micro)
    total_return = final / res.capital_micro - 1.0
    win_rate = len(wins) / n if n else 0.0
    gross_win, gross_loss = sum(wins), -sum(losses)
    profit_factor = (gross_win / gross_loss) if gross_loss else (math.inf if gross_win else None)
    exp = res.curve_exposure[:-1] if len(res.curve_exposure) > 1 else res.curve_exposure
    avg_exposure = float(exp.mean()) / res.capital_micro if len(exp) else 0.0
    max_exposure = float(exp.max()) / res.capital_micro if len(exp) else 0.0

    def label(mid: str) -> str:
        m = res.markets.get(mid)
        return m.question if m and m.question else mid

    per_market: dict[str, dict] = {}
    for t in trips:
        d = per_market.setdefault(
            t.market_id, {"question": label(t.market_id), "trades": 0, "pnl": 0.0, "wins": 0}
        )
        d["trades"] += 1
        d["pnl"] = round(d["pnl"] + t.pnl_micro / MICRO, 6)
        d["wins"] += t.pnl_micro > 0
    per_market = dict(sorted(per_market.items(), key=lambda kv: (-kv[1]["trades"], kv[0])))
    best = max(trips, key=lambda t: (t.pnl_micro, -t.opened_at), default=None)
    worst = min(trips, key=lambda t: (t.pnl_micro, t.opened_at), default=None)
    rows = res.counts.get("rows", 0)
    bf_rows = res.counts.get("backfill_rows", 0)

    fills = len(L.fills)
    fills_bf = res.counts.get("fills_on_backfill", 0)
    cov = coverage or {}
    judged = judge(
        {
            "total_trades": n,
            "win_rate": win_rate,
            "sharpe_ratio": sharpe,
            "max_drawdown": mdd,
            "total_return": total_return,
        },
        daily_returns(deq, res.capital_micro),
        [(t.closed_at if t.closed_at is not None else res.end_ts, t.pnl_micro / MICRO) for t in trips],
        thresholds=thresholds,
        coverage=cov.get("coverage"),
        recorded_share=cov.get("recorded_share"),
        recorded_days=cov.get("recorded_days"),
        n_trials=n_trials,
        trials_sharpe_variance=trials_sharpe_variance,
        for_go_live=for_go_live,
        first_day=res.start_ts // DAY,
    )

    def trip_summary(t):
        if t is None:
            return None
        d = t.to_dict()
        d["question"] = label(t.market_id)
        return d

    return {
        "total_trades": n,
        "win_rate": win_rate,
        "sharpe_ratio": sharpe,
        "sharpe_formula": SHARPE_FORMULA,
        "max_drawdown": mdd,
        "initial_capital": res.capital_micro / MICRO,
        "final_capital": final / MICRO,
        "total_return": total_return,
        "profit_factor": profit_factor,
        "average_trade": (sum(pnls) / n / MICRO) if n else 0.0,
        "average_trade_return": (sum(t.return_fraction for t in trips) / n) if n else 0.0,
        "wins": len(wins),
        "losses": len(losses),
        "fees_paid": L.fees_micro / MICRO,
        "exposure_average": avg_exposure,
        "exposure_max": max_exposure,
        "best_trade": trip_summary(best),
        "worst_trade": trip_summary(worst),
        "trades_per_market": per_market,
        "fills": fills,
        "settlements": res.counts.get("settlements", 0),
        "orders_not_filled": dict(res.unfilled),
        "risk_rejections": dict(res.rejections),
        "risk_resized": res.counts.get("resized", 0),
        "intents": res.counts.get("intents", 0),
        "data": {
            "snapshot_rows": rows,
            "backfilled_rows": bf_rows,
            "backfilled_fraction": (bf_rows / rows) if rows else 0.0,
            "fills_on_backfilled_books": fills_bf,
            "steps": res.counts.get("steps", 0),
            **({"coverage_detail": {k: v for k, v in cov.items()}} if cov else {}),
        },
        "daily_equity": [
            {"day": utc_day(int(d)), "equity": int(e) / MICRO} for d, e in zip(days, deq, strict=True)
        ],
        "backfilled_share": cov.get("backfilled_share"),
        "fills_on_backfilled_books": (fills_bf / fills) if fills else 0.0,
        **judged,
    }
