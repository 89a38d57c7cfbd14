"""The backtest verdict: PASS, FAIL or INSUFFICIENT_DATA, with its reasons and its uncertainty.

:func:`judge` is the one place a verdict is decided (``backtest.py``, the walk-forward, the
calibration benchmark all call it). In order:

1. **INSUFFICIENT_DATA** when the evidence is too thin to judge — fewer than
   ``backtest.min_trades`` closed trades (30), data covering less than ``backtest.min_coverage``
   of the window (95 %), or, for the go-live check, fewer than ``backtest.min_recorded_days`` (7)
   days of recorded (not backfilled) books. Too little evidence is its own answer, never a PASS.
2. **PASS** needs every checklist criterion (win rate, Sharpe, max drawdown, positive return —
   :func:`checklist_criteria`) **and** a probabilistic Sharpe ratio ≥ ``backtest.min_psr``
   (0.95: the daily returns make a true Sharpe ratio above 0 at least 95 % likely), and, when
   several parameter sets were tried, the deflated Sharpe ratio ≥ ``min_psr`` as well. Both are
   computed without the skewness credit (positive skew never narrows the uncertainty: one
   lucky day in 30 must not pass).
3. Otherwise **FAIL**.

Every reason is one sentence for the operator. The report also carries day-block bootstrap 95 %
intervals for the total return, the Sharpe ratio, the win rate and the mean daily return
(:mod:`polybot.backtest.stats`).

:func:`config_hash` fingerprints what a backtest result depends on (strategy name, its full
parameters, the risk limits, the backtest settings); ``pre_launch_check.py`` recomputes it from
config.yaml and accepts only a report with the same hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

import numpy as np

from ..config import BacktestConfig, Config
from ..ledger_queries import equity_series, realized_pnl_by_day
from .stats import (
    block_bootstrap_ci,
    deflated_sharpe_ratio,
    mean_of,
    probabilistic_sharpe_ratio,
    sharpe_of,
    total_return_of,
    win_rate_of,
)

PASS, FAIL, INSUFFICIENT = "PASS", "FAIL", "INSUFFICIENT_DATA"
VERDICTS = (PASS, FAIL, INSUFFICIENT)
# backtest.py's exit code per verdict (2 = bad arguments / no data, 3 = database problem, as before)
EXIT_CODES = {PASS: 0, FAIL: 1, INSUFFICIENT: 6}
DAY = 86_400

# BacktestConfig keys that only decide whether an existing report is acceptable for going live
# (not what a backtest computes): changing them must not invalidate a report.
GO_LIVE_ONLY_KEYS = frozenset({"max_report_age_days", "min_recorded_days"})
# trading: keys that change how the replay fills orders (the rest only pace the live loop)
TRADING_KEYS = ("order_type", "fill_latency_seconds", "stale_order_seconds")


# --------------------------------------------------------------------------- criteria
def checklist_criteria(metrics: dict[str, Any], thresholds: BacktestConfig) -> list[dict[str, Any]]:
    """The checklist's acceptance criteria, each ``{"name", "passed", "value"}``."""
    n = int(metrics.get("total_trades") or 0)
    win_rate = float(metrics.get("win_rate") or 0.0)
    sharpe = float(metrics.get("sharpe_ratio") or 0.0)
    mdd = float(metrics.get("max_drawdown") or 0.0)
    total_return = float(metrics.get("total_return") or 0.0)
    return [
        {
            "name": f"Win rate > {thresholds.min_win_rate:.0%}",
            "passed": bool(n and win_rate > thresholds.min_win_rate),
            "value": f"{win_rate:.1%}" + ("" if n else " (no trades)"),
        },
        {
            "name": f"Sharpe ratio > {thresholds.min_sharpe:g}",
            "passed": sharpe > thresholds.min_sharpe,
            "value": f"{sharpe:.2f}",
        },
        {
            "name": f"Max drawdown < {thresholds.max_drawdown:.0%}",
            "passed": mdd < thresholds.max_drawdown,
            "value": f"{mdd:.1%}",
        },
        {"name": "Positive total return", "passed": total_return > 0, "value": f"{total_return:+.2%}"},
    ]


def _criterion_reason(c: dict[str, Any], metrics: dict[str, Any], thresholds: BacktestConfig) -> str:
    name = c["name"]
    if name.startswith("Win rate"):
        if not metrics.get("total_trades"):
            return "There was no closed trade, so there is no win rate."
        return (
            f"The win rate {c['value']} is not above the checklist's {thresholds.min_win_rate:.0%} "
            f"(backtest.min_win_rate)."
        )
    if name.startswith("Sharpe"):
        return f"The Sharpe ratio {c['value']} is not above the checklist's {thresholds.min_sharpe:g} (backtest.min_sharpe)."
    if name.startswith("Max drawdown"):
        return (
            f"The maximum drawdown {c['value']} is not below the checklist's {thresholds.max_drawdown:.0%} "
            f"(backtest.max_drawdown)."
        )
    if name.startswith("Positive"):
        return f"The total return {c['value']} is not positive."
    return f"{name} failed ({c['value']})."


# --------------------------------------------------------------------------- inputs
def _trade_rows(trade_pnls: Sequence, n_days: int, first_day: int | None) -> np.ndarray:
    """Rows [wins, trades] per day for the win-rate bootstrap.

    ``trade_pnls`` holds plain P&L numbers (then each trade is its own row: an i.i.d. bootstrap
    over trades) or ``(close timestamp, pnl)`` pairs (then trades are grouped by UTC day, the
    same unit the returns are resampled in)."""
    items = list(trade_pnls)
    if not items:
        return np.zeros((0, 2))
    if isinstance(items[0], (tuple, list)):
        days = np.array([int(ts) // DAY for ts, _ in items], dtype=np.int64)
        wins = np.array([float(p) > 0 for _, p in items], dtype=np.float64)
        base = int(days.min()) if first_day is None else min(int(first_day), int(days.min()))
        span = max(int(days.max()) - base + 1, n_days)
        rows = np.zeros((span, 2))
        np.add.at(rows[:, 0], days - base, wins)
        np.add.at(rows[:, 1], days - base, 1.0)
        return rows
    return np.array([[float(p) > 0, 1.0] for p in items], dtype=np.float64)


def _ci(lo_hi: tuple[float, float], digits: int = 6) -> list[float] | None:
    lo, hi = lo_hi
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return [round(lo, digits), round(hi, digits)]


def confidence_intervals(
    daily_returns: Sequence[float] | np.ndarray,
    trade_pnls: Sequence[float | tuple[int, float]],
    *,
    n_boot: int = 2000,
    block_days: int = 1,
    alpha: float = 0.05,
    seed: int = 0,
    first_day: int | None = None,
) -> dict[str, Any]:
    """Day-block bootstrap intervals: total_return, sharpe, win_rate, mean_daily_return
    (``None`` where there is not enough data for an interval)."""
    r = np.asarray(daily_returns, dtype=np.float64)

    def interval(data: np.ndarray, statistic: Callable[[np.ndarray], float]) -> tuple[float, float]:
        return block_bootstrap_ci(
            data, statistic, n_boot=n_boot, block_days=block_days, alpha=alpha, seed=seed
        )

    rows = _trade_rows(trade_pnls, len(r), first_day)
    return {
        "total_return": _ci(interval(r, total_return_of)),
        "sharpe": _ci(interval(r, sharpe_of), 4),
        "win_rate": _ci(interval(rows, win_rate_of), 4) if len(rows) >= 2 else None,
        "mean_daily_return": _ci(interval(r, mean_of), 8),
    }


# --------------------------------------------------------------------------- the verdict
def judge(
    metrics: dict[str, Any],
    daily_returns: Sequence[float] | np.ndarray,
    trade_pnls: Sequence[float | tuple[int, float]],
    *,
    thresholds: BacktestConfig,
    coverage: float | None,
    recorded_share: float | None,
    recorded_days: float | None,
    n_trials: int = 1,
    trials_sharpe_variance: float | None = None,
    for_go_live: bool = False,
    first_day: int | None = None,
) -> dict[str, Any]:
    """Decide PASS / FAIL / INSUFFICIENT_DATA for one backtest (or one out-of-sample record).

    ``metrics``: ``total_trades``, ``win_rate``, ``sharpe_ratio``, ``max_drawdown``,
    ``total_return`` (as :func:`polybot.backtest.metrics.compute_metrics` gives them).
    ``daily_returns``: equity return of each UTC day of the window. ``trade_pnls``: closed trades'
    P&L, plain numbers or ``(close ts, pnl)`` pairs. ``coverage``: share of the window the data
    covers (``None`` = not measured → INSUFFICIENT_DATA). ``n_trials`` > 1 (parameter sets tried)
    needs ``trials_sharpe_variance``: the variance of the trials' per-day Sharpe ratios.
    """
    n_trials = int(n_trials)
    if n_trials < 1:
        raise ValueError("n_trials must be at least 1")
    if n_trials > 1 and (trials_sharpe_variance is None or not math.isfinite(trials_sharpe_variance)):
        raise ValueError(
            "n_trials > 1 needs trials_sharpe_variance (variance of the trials' per-day Sharpe ratios)"
        )
    t = thresholds
    r = np.asarray(daily_returns, dtype=np.float64)
    n_trades = int(metrics.get("total_trades") or 0)
    criteria = checklist_criteria(metrics, t)
    # skewness may widen the uncertainty but never narrow it (stats.probabilistic_sharpe_ratio)
    psr = probabilistic_sharpe_ratio(r, 0.0, skew_credit=False)
    dsr = (  # trials_sharpe_variance is set whenever n_trials > 1 (checked above)
        deflated_sharpe_ratio(r, n_trials, float(trials_sharpe_variance), skew_credit=False)
        if n_trials > 1 and trials_sharpe_variance is not None
        else None
    )
    cis = confidence_intervals(
        r,
        trade_pnls,
        n_boot=int(t.bootstrap_samples),
        block_days=int(t.bootstrap_block_days),
        first_day=first_day,
    )

    short = _evidence_shortfalls(t, n_trades, coverage, recorded_days, for_go_live=for_go_live)
    reasons: list[str]
    if short:
        verdict, reasons = INSUFFICIENT, short
    else:
        reasons = [_criterion_reason(c, metrics, t) for c in criteria if not c["passed"]]
        if psr < t.min_psr:
            reasons.append(
                f"The probabilistic Sharpe ratio is {psr:.2f}, below {t.min_psr:g} (backtest.min_psr): "
                f"over {len(r)} days a true Sharpe ratio above 0 is not established, the result may be luck."
            )
        if dsr is not None and dsr < t.min_psr:
            reasons.append(
                f"{n_trials} parameter sets were tried and the deflated Sharpe ratio is {dsr:.2f}, below "
                f"{t.min_psr:g}: the best set's Sharpe ratio is within what luck gives the best of "
                f"{n_trials} tries."
            )
        if reasons:
            verdict = FAIL
        else:
            verdict = PASS
            reasons = [
                f"Every checklist criterion passes and the probabilistic Sharpe ratio is {psr:.2f} "
                f"(≥ {t.min_psr:g})"
                + (f", deflated for {n_trials} parameter sets {dsr:.2f}" if dsr is not None else "")
                + f", over {n_trades} trades and {len(r)} days."
            ]
    out = {
        "verdict": verdict,
        "reasons": reasons,
        "criteria": criteria,
        "coverage": None if coverage is None else round(float(coverage), 6),
        "recorded_share": None if recorded_share is None else round(float(recorded_share), 6),
        "recorded_days": None if recorded_days is None else round(float(recorded_days), 4),
        "confidence_intervals": cis,
        "psr": round(psr, 6),
        "n_trials": n_trials,
        "thresholds": thresholds_used(t),
    }
    if dsr is not None and trials_sharpe_variance is not None:  # both or neither (see dsr)
        out["dsr"] = round(dsr, 6)
        out["trials_sharpe_variance"] = float(trials_sharpe_variance)
    return out


def _evidence_shortfalls(
    t: BacktestConfig,
    n_trades: int,
    coverage: float | None,
    recorded_days: float | None,
    *,
    for_go_live: bool,
) -> list[str]:
    """Why the window is too thin for any verdict (too few trades, too little coverage, and to
    go live too few recorded days), one sentence each; empty = enough evidence."""
    short: list[str] = []
    if n_trades < t.min_trades:
        short.append(
            f"Only {n_trades} closed trade{'s' if n_trades != 1 else ''} — at least {t.min_trades} "
            f"(backtest.min_trades) are needed to tell skill from luck; backtest a longer window or "
            f"collect more data."
        )
    if coverage is None:
        short.append(
            "The data coverage of the window was not measured, so the window may be mostly empty; "
            "run the backtest with python backtest.py, which measures it."
        )
    elif coverage < t.min_coverage:
        short.append(
            f"The data covers only {coverage:.0%} of the window (at least {t.min_coverage:.0%}, "
            f"backtest.min_coverage); backfill or collect the missing days, or choose dates that have data."
        )
    if for_go_live:
        rd = recorded_days if recorded_days is not None else 0.0
        if rd < t.min_recorded_days:
            short.append(
                f"Only {rd:.1f} days of the window are recorded order books (at least "
                f"{t.min_recorded_days:g}, backtest.min_recorded_days, to go live); the rest is backfilled "
                f"price history — keep the collector running and re-run the backtest later."
            )
    return short


def thresholds_used(t: BacktestConfig) -> dict[str, Any]:
    keys = (
        "min_trades",
        "min_coverage",
        "min_recorded_days",
        "min_psr",
        "min_win_rate",
        "min_sharpe",
        "max_drawdown",
        "bootstrap_samples",
        "bootstrap_block_days",
    )
    return {k: getattr(t, k) for k in keys}


# --------------------------------------------------------------------------- config hash
def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 0.5 vs 0.50 vs 1 vs 1.0 hash the same
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def config_fingerprint(cfg: Config, strategy_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a backtest result depends on: the strategy and its full parameters (defaults
    included), the risk limits, the backtest settings (minus the go-live-only keys), the
    execution settings of ``trading:`` the replay uses (order type, fill latency, how long a
    resting order lives) and the collection grid."""
    bt = {k: v for k, v in _plain(cfg.backtest).items() if k not in GO_LIVE_ONLY_KEYS}
    return {
        "strategy": str(strategy_name),
        "params": _plain(dict(params)),
        "risk_limits": _plain(cfg.risk_limits),
        "backtest": bt,
        "trading": {k: _plain(getattr(cfg.trading, k)) for k in TRADING_KEYS},
        "interval_minutes": cfg.collection.interval_minutes,
    }


def config_hash(cfg: Config, strategy_name: str | None = None, params: dict[str, Any] | None = None) -> str:
    """sha256 (first 16 hex digits) of :func:`config_fingerprint`. Without a strategy name and
    params, the configured strategy's (validated, defaults filled in) are used."""
    if strategy_name is None or params is None:
        from polybot.strategy.registry import from_config

        s = from_config(cfg)
        strategy_name, params = s.name, s.params
    text = json.dumps(config_fingerprint(cfg, strategy_name, params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def fingerprint_differences(
    report_fp: dict[str, Any] | None, configured_fp: dict[str, Any], limit: int = 3
) -> list[str]:
    """Human-readable differences, e.g. ``params.entry_z 2 in the report, 2.5 in config.yaml``."""
    if not isinstance(report_fp, dict):
        return []
    a, b = _flatten(report_fp), _flatten(configured_fp)
    keys = sorted(set(a) | set(b), key=lambda k: (k != "strategy", k))
    if a.get("strategy") != b.get("strategy"):  # another strategy: its parameters differ by nature
        keys = [k for k in keys if not k.startswith("params.")]
    diffs = [
        f"{k} {json.dumps(a.get(k, '(absent)'))} in the report, {json.dumps(b.get(k, '(absent)'))} in config.yaml"
        for k in keys
        if a.get(k, "(absent)") != b.get(k, "(absent)")
    ]
    return diffs[:limit] + ([f"… {len(diffs) - limit} more"] if len(diffs) > limit else [])


# --------------------------------------------------------------------------- go-live acceptance
def _parse_time(text: Any) -> float | None:
    from datetime import datetime

    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def go_live_problems(
    report: dict[str, Any], cfg: Config, now: float, *, file_mtime: float | None = None
) -> list[tuple[str, str]]:
    """Why a backtest report whose verdict is PASS is still not enough to go live, as
    ``(problem, fix)`` sentences; empty = acceptable. Checks: the report was made for the
    configured strategy, parameters and settings (``config_hash``), it is at most
    ``backtest.max_report_age_days`` old, and its evidence meets the floors of config.yaml
    (coverage, recorded days, trades, PSR — and DSR when a sweep was run)."""
    rerun = (
        "re-run python backtest.py --start-date YYYY-MM-DD --end-date YYYY-MM-DD --capital 500 over the "
        "last 30 days with the current config.yaml"
    )
    return (
        _settings_problems(report, cfg, rerun)
        + _age_problems(report, cfg.backtest, now, file_mtime, rerun)
        + _evidence_problems(report, cfg.backtest, rerun)
    )


def _settings_problems(report: dict[str, Any], cfg: Config, rerun: str) -> list[tuple[str, str]]:
    """The report must have been made for the configured strategy, parameters and settings."""
    from polybot.strategy.registry import from_config

    strategy = from_config(cfg)
    want = config_hash(cfg, strategy.name, strategy.params)
    have = report.get("config_hash")
    if not have:
        return [
            (
                "the report has no config_hash (it was written by an older backtest.py), so it cannot be "
                "matched to the configured strategy",
                rerun,
            )
        ]
    if have != want:
        diffs = fingerprint_differences(
            report.get("config_fingerprint"), config_fingerprint(cfg, strategy.name, strategy.params)
        )
        return [
            (
                f"the report was made for other settings than config.yaml (config_hash {have}, config.yaml "
                f"gives {want}" + (f": {'; '.join(diffs)}" if diffs else "") + ")",
                rerun,
            )
        ]
    return []


def _age_problems(
    report: dict[str, Any], t: BacktestConfig, now: float, file_mtime: float | None, rerun: str
) -> list[tuple[str, str]]:
    """The report must say when it was made (else the file's time), not in the future, and be
    at most ``backtest.max_report_age_days`` old."""
    made = _parse_time(report.get("generated_at"))
    if made is None:
        made = file_mtime
    if made is None:
        return [("the report does not say when it was made", rerun)]
    age = (now - made) / DAY
    if age < -1 / 24:
        return [
            (
                f"the report is dated {-age * 24:.0f} h in the future (a wrong clock, or an edited report)",
                "check the system clock (timedatectl), then " + rerun,
            )
        ]
    if age > t.max_report_age_days:
        return [
            (
                f"the report is {age:.1f} days old (at most {t.max_report_age_days:g}, "
                f"backtest.max_report_age_days)",
                rerun,
            )
        ]
    return []


def _report_metrics(report: dict[str, Any]) -> dict[str, Any]:
    metrics = report.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def _evidence_problems(report: dict[str, Any], t: BacktestConfig, rerun: str) -> list[tuple[str, str]]:
    """Coverage, recorded days, trades, PSR (and DSR after a sweep) against config.yaml's floors."""
    metrics = _report_metrics(report)

    def get(key: str) -> Any:
        return report[key] if key in report else metrics.get(key)

    out: list[tuple[str, str]] = []
    cov = get("coverage")
    if not isinstance(cov, (int, float)):
        out.append(("the report does not state its data coverage", rerun))
    elif cov < t.min_coverage:
        out.append(
            (
                f"its data covers {cov:.0%} of the window (at least {t.min_coverage:.0%}, backtest.min_coverage)",
                "backfill or collect the missing days, then " + rerun,
            )
        )
    rd = get("recorded_days")
    if not isinstance(rd, (int, float)):
        out.append(("the report does not state how many days of recorded books it used", rerun))
    elif rd < t.min_recorded_days:
        out.append(
            (
                f"only {rd:.1f} days of its window are recorded order books, the rest backfilled (at least "
                f"{t.min_recorded_days:g}, backtest.min_recorded_days)",
                f"keep python collect_market_data.py running until {t.min_recorded_days:g} days are recorded, "
                f"then " + rerun,
            )
        )
    n = get("total_trades")
    if not isinstance(n, (int, float)) or n < t.min_trades:
        out.append(
            (
                f"it has {n if n is not None else 'no count of'} closed trades (at least {t.min_trades}, "
                f"backtest.min_trades)",
                rerun,
            )
        )
    psr = get("psr")
    if not isinstance(psr, (int, float)) or psr < t.min_psr:
        out.append(
            (
                f"its probabilistic Sharpe ratio is {psr if psr is not None else 'missing'} (at least "
                f"{t.min_psr:g}, backtest.min_psr)",
                rerun,
            )
        )
    dsr = get("dsr")
    if dsr is not None and (not isinstance(dsr, (int, float)) or dsr < t.min_psr):
        out.append(
            (
                f"its deflated Sharpe ratio is {dsr} (at least {t.min_psr:g} after a parameter sweep)",
                "re-run the backtest with fewer parameter sets, or a longer window, until the deflated Sharpe "
                "ratio passes",
            )
        )
    return out


def paper_daily_returns(conn: Any, capital: float, now: float) -> tuple[list[float], str]:
    """Daily returns of paper trading and where they come from.

    From the ``performance`` rows (mode ``paper``): the equity at the end of each UTC day over
    the previous day's — the backtest's definition — with the first row's equity as day 0.
    Without performance rows: each day's realised P&L of paper trades / ``capital``."""
    rows = equity_series(conn, "paper")
    if rows:
        base = rows[0][1]
        by_day: dict[int, int] = {}
        for ts, eq in rows:
            by_day[int(ts) // DAY] = eq
        first, last = min(by_day), max(max(by_day), int(now) // DAY if now else max(by_day))
        out, prev, eq = [], base, base
        for d in range(first, last + 1):
            eq = by_day.get(d, eq)
            out.append(eq / prev - 1.0 if prev else 0.0)
            prev = eq
        return out, "paper equity (performance table)"
    realized = realized_pnl_by_day(conn, "paper")
    if not realized:
        return [], "no paper trades"
    pnl = {start // DAY: p for start, p in realized.items()}
    first, last = min(pnl), max(max(pnl), int(now) // DAY)
    return (
        [pnl.get(d, 0) / 1e6 / capital for d in range(first, last + 1)],
        "realised P&L of paper trades / capital (no performance rows)",
    )


def paper_vs_backtest(report: dict[str, Any], paper_returns: Sequence[float]) -> tuple[bool, str]:
    """Paper trading's mean daily return against the backtest's lower 95 % bound of the mean
    daily return (day-block bootstrap): ``(ok, one sentence)``. Paper doing worse than that
    bound means the backtest's promise does not hold live."""
    metrics = _report_metrics(report)
    cis = report.get("confidence_intervals") or metrics.get("confidence_intervals") or {}
    ci = cis.get("mean_daily_return") if isinstance(cis, dict) else None
    if not (isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci)):
        return False, "the backtest report has no 95 % interval of the mean daily return to compare with"
    if len(paper_returns) < 1:
        return False, "there are no paper trading results to compare with the backtest"
    mean = float(np.mean(paper_returns))
    lo = float(ci[0])
    text = (
        f"paper mean daily return {mean * 100:+.3f}% over {len(paper_returns)} days vs the backtest's lower "
        f"95% bound {lo * 100:+.3f}%/day"
    )
    return (mean >= lo), text
