"""Parameter sweeps and walk-forward validation (``backtest.py --sweep`` / ``--walk-forward``).

**Sweep** (``--sweep key=v1,v2,...``, repeatable): every combination of the listed strategy
parameters (the others as configured) is backtested; every set tried is reported with its
numbers, the best one by ``walk_forward.select_by`` (Sharpe ratio by default) is chosen, and the
verdict on it is DEFLATED for the number of sets tried: :func:`~polybot.backtest.verdict.judge`
gets ``n_trials`` and the variance of the trials' per-day Sharpe ratios, so the deflated Sharpe
ratio (Bailey & López de Prado) discounts the luck of picking the best of N.

**Walk-forward** (``--walk-forward``): the window is cut into rolling segments — an in-sample
part of ``walk_forward.in_sample_days`` (default 14) followed by an out-of-sample part of
``walk_forward.out_of_sample_days`` (default 7); the next segment starts ``out_of_sample_days``
later, so the out-of-sample parts tile the window after the first in-sample part without
overlap (the last one may be shorter, at least one day). In each segment:

1. **in sample**: every parameter set (one without ``--sweep``) is backtested on the
   in-sample days; the best by ``select_by`` is chosen (ties: the earlier set);
2. **out of sample**: the chosen set trades the next days, starting with the starting capital.
   The strategy's feed is warmed with the in-sample days' snapshots first, so the pairs it
   trades at the start of the segment were selected on in-sample data only (pair selection is
   always on trailing data; no out-of-sample price is ever seen before its time).

The verdict is on the **out-of-sample trades only**: their daily returns (chained), closed
trades, the out-of-sample data coverage, and — with a sweep — deflated for the number of sets
tried in sample. The JSON report keeps the usual top-level keys (``verdict``, ``reasons``,
``coverage``, ``confidence_intervals``, ``psr``, …) and adds ``out_of_sample`` (segments, chosen
parameters per segment, out-of-sample metrics) and ``sweep`` (every set tried). Its
``strategy.params`` / ``config_hash`` are those of the LAST segment's chosen set — the set the
procedure would trade next — so ``pre_launch_check.py`` accepts it only if config.yaml has them.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from polybot.config import Config
from polybot.errors import ConfigError
from polybot.money import MICRO
from polybot.strategy.registry import get_strategy
from polybot.timefmt import iso_seconds, utc_day

from .coverage import data_coverage
from .engine import DAY, BacktestDataError, Backtester, BacktestResult
from .metrics import daily_equity, daily_returns, max_drawdown, sharpe_ratio
from .portfolio import Ledger
from .verdict import config_fingerprint, config_hash, judge

MAX_SETS = 200


# --------------------------------------------------------------------------- the sweep grid
def parse_sweep(
    specs: Sequence[str], strategy_name: str, base_params: dict[str, Any]
) -> list[dict[str, Any]]:
    """``["entry_z=1.5,2", "exit_z=0.3,0.5"]`` → every full, validated parameter set (cartesian
    product, in the order given). No specs → ``[base_params]``. Bad input → ConfigError."""
    grid: dict[str, list] = {}
    for spec in specs or ():
        key, sep, values = str(spec).partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not vals:
            raise ConfigError(f"--sweep {spec!r} is not key=v1,v2,...; write e.g. --sweep entry_z=1.5,2,2.5")
        if key in grid:
            raise ConfigError(
                f"--sweep lists {key} twice; give all its values once, e.g. --sweep {key}=1,2,3"
            )
        grid[key] = [yaml.safe_load(v) for v in vals]
    n = math.prod(len(v) for v in grid.values()) if grid else 1
    if n > MAX_SETS:
        raise ConfigError(
            f"--sweep gives {n} parameter sets, more than {MAX_SETS}; sweep fewer values (every "
            f"extra set also raises the bar the deflated Sharpe ratio sets)."
        )
    out = []
    for combo in itertools.product(*grid.values()):
        params = dict(base_params)
        params.update(zip(grid.keys(), combo, strict=True))
        try:
            out.append(dict(get_strategy(strategy_name, params).params))
        except ConfigError as exc:
            raise ConfigError(f"--sweep: {exc}") from None
    return out or [dict(get_strategy(strategy_name, base_params).params)]


def swept_keys(sets: Sequence[dict]) -> list[str]:
    """The parameters that differ between the sets (for short labels)."""
    if len(sets) < 2:
        return []
    return [k for k in sets[0] if any(s.get(k) != sets[0].get(k) for s in sets[1:])]


# --------------------------------------------------------------------------- one run
@dataclass
class Run:
    params: dict[str, Any]
    start_ts: int
    end_ts: int
    result: BacktestResult
    daily: np.ndarray  # daily returns
    sharpe: float  # annualised (the report's formula)
    total_return: float
    trades: int
    wins: int
    coverage: dict[str, Any] = field(default_factory=dict)

    @property
    def daily_sharpe(self) -> float:
        """Per-day (not annualised) Sharpe ratio — what the deflated Sharpe ratio's trial variance uses."""
        r = self.daily
        if len(r) < 2:
            return 0.0
        sd = float(np.std(r, ddof=1))
        return float(np.mean(r) / sd) if sd > 1e-15 else 0.0

    def score(self, select_by: str) -> float:
        return self.total_return if select_by == "total_return" else self.sharpe

    def summary(self, keys: Sequence[str]) -> dict[str, Any]:
        return {
            "params": {k: self.params[k] for k in keys} if keys else {},
            "sharpe_ratio": round(self.sharpe, 4),
            "total_return": round(self.total_return, 6),
            "trades": self.trades,
            "win_rate": round(self.wins / self.trades, 4) if self.trades else 0.0,
        }


def _warm(bt: Backtester, start_ts: int, end_ts: int) -> None:
    """Feed the snapshots of [start_ts, end_ts) into the backtester's feed before it runs (the
    strategy's history at the first out-of-sample step is the in-sample data)."""
    feed, store = bt.feed, bt.store
    for ch in store.chunks(start_ts, end_ts - 1):
        bt.prepare_backfill(ch.backfill)
        ts = ch.timestamp
        cuts = np.flatnonzero(ts[1:] != ts[:-1]) + 1
        for s, e in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [len(ts)])), strict=True):
            feed.ingest(
                int(ts[s]),
                ch.token[s:e],
                ch.bid[s:e],
                ch.ask[s:e],
                ch.price[s:e],
                ch.backfill[s:e],
                micro_exact=True,
            )


def run_once(
    conn: sqlite3.Connection,
    cfg: Config,
    strategy_name: str,
    params: dict[str, Any],
    start_ts: int,
    end_ts: int,
    capital_micro: int,
    *,
    warm_seconds: int = 0,
    measure_coverage: bool = False,
) -> Run:
    strategy = get_strategy(strategy_name, params)
    bt = Backtester(conn, cfg, strategy, start_ts=start_ts, end_ts=end_ts, capital_micro=capital_micro)
    if warm_seconds > 0:
        warm_from = max(0, start_ts - min(warm_seconds, strategy.history_seconds))
        _warm(bt, warm_from, start_ts)
    try:
        res = bt.run()
    except BacktestDataError:
        # no snapshot at all in this window: nothing traded, equity flat; the coverage (0 %) makes the
        # verdict INSUFFICIENT_DATA instead of aborting the whole walk-forward
        res = BacktestResult(
            start_ts,
            end_ts,
            capital_micro,
            strategy.name,
            dict(strategy.params),
            Ledger(capital_micro, strategy.name),
            np.array([end_ts], dtype=np.int64),
            np.array([capital_micro], dtype=np.int64),
            np.array([0], dtype=np.int64),
            {},
        )
    _, deq = daily_equity(res)
    trips = res.ledger.closed_trips
    final = int(res.curve_equity[-1]) if len(res.curve_equity) else res.capital_micro
    cov = (
        data_coverage(conn, bt.feed.tokens, start_ts, end_ts, grid_seconds=bt.interval)
        if measure_coverage
        else {}
    )
    return Run(
        dict(strategy.params),
        start_ts,
        end_ts,
        res,
        daily_returns(deq, res.capital_micro),
        sharpe_ratio(deq, res.capital_micro),
        final / res.capital_micro - 1.0,
        len(trips),
        sum(1 for t in trips if t.pnl_micro > 0),
        cov,
    )


def trials_variance(runs: Sequence[Run]) -> float | None:
    """Variance (ddof 1) of the per-day Sharpe ratios of the sets tried; None for one set."""
    if len(runs) < 2:
        return None
    return float(np.var([r.daily_sharpe for r in runs], ddof=1))


def choose(runs: Sequence[Run], select_by: str) -> int:
    scores = [r.score(select_by) for r in runs]
    return int(np.argmax(scores))  # first of equal scores


# --------------------------------------------------------------------------- walk-forward
@dataclass
class Segment:
    in_start: int
    in_end: int  # exclusive
    out_start: int
    out_end: int  # exclusive
    trials: list[Run] = field(default_factory=list)
    chosen: int = 0
    oos: Run | None = None

    @property
    def oos_run(self) -> Run:
        """The out-of-sample run (walk_forward sets it once the segment's trials have run)."""
        if self.oos is None:
            raise RuntimeError("the segment's out-of-sample run has not been made yet")
        return self.oos


def segments(start_ts: int, end_ts: int, in_days: int, out_days: int) -> list[Segment]:
    """Rolling (in-sample, out-of-sample) windows over [start_ts, end_ts] (whole UTC days)."""
    end_excl = end_ts + 1
    need = (in_days + 1) * DAY
    if end_excl - start_ts < need:
        have = (end_excl - start_ts) / DAY
        raise ConfigError(
            f"--walk-forward needs at least {in_days + 1} days (walk_forward.in_sample_days = "
            f"{in_days} in sample + 1 out of sample) but the window has {have:g}; choose an earlier "
            f"--start-date or lower walk_forward.in_sample_days in config.yaml."
        )
    out = []
    s = start_ts
    while s + in_days * DAY + DAY <= end_excl:
        o0 = s + in_days * DAY
        o1 = min(o0 + out_days * DAY, end_excl)
        out.append(Segment(s, o0, o0, o1))
        s += out_days * DAY
    return out


def walk_forward(
    conn: sqlite3.Connection,
    cfg: Config,
    strategy_name: str,
    param_sets: Sequence[dict],
    start_ts: int,
    end_ts: int,
    capital_micro: int,
    *,
    in_days: int,
    out_days: int,
    select_by: str = "sharpe",
    progress: Callable[[str], None] | None = None,
) -> list[Segment]:
    segs = segments(start_ts, end_ts, in_days, out_days)
    total = len(segs) * (len(param_sets) + 1)
    done = 0
    for k, sg in enumerate(segs, start=1):
        for ps in param_sets:
            # warmed with whatever precedes the segment (past data only), like the out-of-sample run
            sg.trials.append(
                run_once(
                    conn,
                    cfg,
                    strategy_name,
                    ps,
                    sg.in_start,
                    sg.in_end - 1,
                    capital_micro,
                    warm_seconds=sg.in_start - start_ts,
                )
            )
            done += 1
            if progress:
                progress(
                    f"[{done}/{total}] segment {k}/{len(segs)} in sample {utc_day(sg.in_start)}..{utc_day(sg.in_end - 1)}"
                    f": set {len(sg.trials)}/{len(param_sets)} Sharpe {sg.trials[-1].sharpe:.2f}, "
                    f"{sg.trials[-1].trades} trades"
                )
        sg.chosen = choose(sg.trials, select_by)
        sg.oos = run_once(
            conn,
            cfg,
            strategy_name,
            sg.trials[sg.chosen].params,
            sg.out_start,
            sg.out_end - 1,
            capital_micro,
            warm_seconds=(sg.in_end - sg.in_start),
            measure_coverage=True,
        )
        done += 1
        if progress:
            progress(
                f"[{done}/{total}] segment {k}/{len(segs)} OUT OF SAMPLE {utc_day(sg.out_start)}..{utc_day(sg.out_end - 1)}"
                f": Sharpe {sg.oos.sharpe:.2f}, {sg.oos.trades} trades, return {sg.oos.total_return:+.2%}"
            )
    return segs


def oos_evaluation(segs: Sequence[Segment], cfg: Config, n_trials: int) -> dict[str, Any]:
    """The verdict on the out-of-sample trades only, and the numbers behind it."""
    daily = np.concatenate([sg.oos_run.daily for sg in segs]) if segs else np.zeros(0)
    capital = segs[0].oos_run.result.capital_micro if segs else 0
    # chain the segments' equity curves: each starts at the equity the previous one ended with
    level, curve = 1.0, []
    for sg in segs:
        eq = sg.oos_run.result.curve_equity.astype(np.float64) / sg.oos_run.result.capital_micro
        curve.append(level * eq)
        level *= float(eq[-1]) if len(eq) else 1.0
    chained = np.concatenate(curve) * capital if curve else np.zeros(0)
    trips = [
        (t.closed_at if t.closed_at is not None else sg.oos_run.end_ts, t.pnl_micro / MICRO)
        for sg in segs
        for t in sg.oos_run.result.ledger.closed_trips
    ]
    n = len(trips)
    wins = sum(1 for _, p in trips if p > 0)
    sd = float(np.std(daily, ddof=1)) if len(daily) > 1 else 0.0
    sharpe = float(np.mean(daily) / sd * math.sqrt(365.0)) if sd > 1e-15 else 0.0
    metrics = {
        "total_trades": n,
        "win_rate": wins / n if n else 0.0,
        "sharpe_ratio": sharpe,
        "max_drawdown": max_drawdown(chained.astype(np.int64), capital) if len(chained) else 0.0,
        "total_return": level - 1.0,
        "final_capital": level * capital / MICRO,
        "initial_capital": capital / MICRO,
        "wins": wins,
        "losses": sum(1 for _, p in trips if p < 0),
    }
    pts = sum(sg.oos_run.coverage.get("grid_points", 0) for sg in segs)
    cov = (sum(sg.oos_run.coverage.get("covered_points", 0) for sg in segs) / pts) if pts else None
    rows = sum(sg.oos_run.coverage.get("rows", 0) for sg in segs)
    rec_share = (sum(sg.oos_run.coverage.get("recorded_rows", 0) for sg in segs) / rows) if rows else 0.0
    rec_days = sum(float(sg.oos_run.coverage.get("recorded_days") or 0.0) for sg in segs)
    variances = [v for v in (trials_variance(sg.trials) for sg in segs) if v is not None]
    var = float(np.mean(variances)) if variances else None
    judged = judge(
        metrics,
        daily,
        trips,
        thresholds=cfg.backtest,
        coverage=cov,
        recorded_share=rec_share,
        recorded_days=rec_days,
        n_trials=n_trials if var is not None else 1,
        trials_sharpe_variance=var,
        first_day=segs[0].out_start // DAY if segs else None,
    )
    return {**metrics, **judged, "daily_returns": [round(float(x), 8) for x in daily]}


# --------------------------------------------------------------------------- report
def walk_forward_report(
    segs: Sequence[Segment],
    ev: dict[str, Any],
    cfg: Config,
    strategy_name: str,
    param_sets: Sequence[dict],
    *,
    capital: float,
    start_ts: int,
    end_ts: int,
    in_days: int,
    out_days: int,
    select_by: str,
) -> dict[str, Any]:
    keys = swept_keys(param_sets)
    deploy = segs[-1].trials[segs[-1].chosen].params if segs else param_sets[0]
    seg_rows = []
    for sg in segs:
        o = sg.oos_run
        seg_rows.append(
            {
                "in_sample": {"start": utc_day(sg.in_start), "end": utc_day(sg.in_end - 1)},
                "out_of_sample": {"start": utc_day(sg.out_start), "end": utc_day(sg.out_end - 1)},
                "chosen_params": {k: sg.trials[sg.chosen].params[k] for k in keys} if keys else {},
                "in_sample_trials": [t.summary(keys) for t in sg.trials],
                "out_of_sample_metrics": {
                    "trades": o.trades,
                    "total_return": round(o.total_return, 6),
                    "sharpe_ratio": round(o.sharpe, 4),
                    "win_rate": round(o.wins / o.trades, 4) if o.trades else 0.0,
                    "max_drawdown": round(max_drawdown(o.result.curve_equity, o.result.capital_micro), 6),
                    "coverage": o.coverage.get("coverage"),
                },
            }
        )
    top: dict[str, Any] = {
        k: ev.get(k)
        for k in (
            "verdict",
            "reasons",
            "coverage",
            "recorded_share",
            "recorded_days",
            "confidence_intervals",
            "psr",
            "dsr",
            "n_trials",
            "total_trades",
            "thresholds",
            "criteria",
        )
        if k in ev
    }
    metrics = {k: v for k, v in ev.items() if k != "daily_returns"}
    return {
        "generated_at": iso_seconds(time.time()),
        "start_date": utc_day(start_ts),
        "end_date": utc_day(end_ts),
        "strategy": {"name": strategy_name, "params": deploy},
        "capital": capital,
        "days": (end_ts - start_ts) // DAY + 1,
        "config_hash": config_hash(cfg, strategy_name, deploy),
        "config_fingerprint": config_fingerprint(cfg, strategy_name, deploy),
        "config": str(cfg.source) if getattr(cfg, "source", None) else None,
        **top,
        "metrics": metrics,
        "out_of_sample": {
            "in_sample_days": in_days,
            "out_of_sample_days": out_days,
            "select_by": select_by,
            "segments": seg_rows,
            "metrics": {
                k: ev[k]
                for k in (
                    "total_trades",
                    "win_rate",
                    "sharpe_ratio",
                    "max_drawdown",
                    "total_return",
                    "final_capital",
                )
            },
            "daily_returns": ev["daily_returns"],
            "swept_params": keys,
        },
        "sweep": {
            "sets": len(param_sets),
            "params": keys,
            "trials_sharpe_variance": ev.get("trials_sharpe_variance"),
        },
    }


def format_walk_forward(rep: dict[str, Any]) -> str:
    m = rep["out_of_sample"]["metrics"]
    lines = [
        f"Total trades: {m['total_trades']}",
        f"Win rate: {m['win_rate'] * 100:.1f}%",
        f"Sharpe ratio: {m['sharpe_ratio']:.2f}",
        f"Max drawdown: {m['max_drawdown'] * 100:.1f}%",
        f"Final capital: ${m['final_capital']:,.2f}",
        "",
        f"Walk-forward: {rep['start_date']} to {rep['end_date']}, {len(rep['out_of_sample']['segments'])} segments of "
        f"{rep['out_of_sample']['in_sample_days']} days in sample + {rep['out_of_sample']['out_of_sample_days']} days "
        f"out of sample; the numbers above are OUT OF SAMPLE only (segments chained), parameters chosen in sample "
        f"by {rep['out_of_sample']['select_by']} among {rep['sweep']['sets']} set(s)",
        f"Total return (out of sample): {m['total_return'] * 100:+.2f}%",
    ]
    for k, sg in enumerate(rep["out_of_sample"]["segments"], start=1):
        o = sg["out_of_sample_metrics"]
        chosen = ", ".join(f"{a}={b}" for a, b in sg["chosen_params"].items()) or "configured params"
        lines.append(
            f"  segment {k}: in {sg['in_sample']['start']}..{sg['in_sample']['end']} → out "
            f"{sg['out_of_sample']['start']}..{sg['out_of_sample']['end']}: {chosen}; {o['trades']} trades, "
            f"{o['total_return'] * 100:+.2f}%, Sharpe {o['sharpe_ratio']:.2f}"
        )
    lines.append(
        f"Probabilistic Sharpe ratio (out of sample): {rep.get('psr', 0):.2f}"
        + (f"; deflated for {rep['n_trials']} sets: {rep['dsr']:.2f}" if rep.get("dsr") is not None else "")
    )
    if rep.get("coverage") is not None:
        lines.append(
            f"Data coverage (out of sample): {rep['coverage']:.0%}, recorded share "
            f"{(rep.get('recorded_share') or 0):.0%}"
        )
    lines.append("")
    lines.append("Acceptance criteria (out of sample; thresholds from backtest: in config.yaml):")
    for c in rep.get("criteria") or []:
        lines.append(f"  {'✓' if c['passed'] else '✗'} {c['name']}: {c['value']}")
    lines.append(rep["verdict"])
    for r in rep.get("reasons") or []:
        lines.append(f"  - {r}")
    return "\n".join(lines)


def format_sweep(runs: Sequence[Run], chosen: int, keys: Sequence[str], select_by: str) -> str:
    lines = [
        f"Parameter sweep: {len(runs)} sets tried (every one is listed; the verdict below is on set "
        f"{chosen + 1}, the best by {select_by}, deflated for {len(runs)} trials)"
    ]
    for i, r in enumerate(runs):
        label = ", ".join(f"{k}={r.params[k]}" for k in keys) or "configured params"
        lines.append(
            f"  {'→' if i == chosen else ' '} set {i + 1}: {label}: {r.trades} trades, return "
            f"{r.total_return * 100:+.2f}%, Sharpe {r.sharpe:.2f}"
        )
    return "\n".join(lines)


def write_report(path: Path, rep: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rep, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
