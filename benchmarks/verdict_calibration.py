#!/usr/bin/env python3
"""Calibration of the backtest verdict: how often does luck PASS, how often does skill PASS?

Runs the real backtester (correlation_pairs, the shared risk manager, fees, next-snapshot fills,
the verdict of polybot/backtest/verdict.py) on 30-day synthetic data sets
(polybot/backtest/synthetic.py) of two market models that differ ONLY in the planted edge:

- **no edge** (``pairs_noise``): markets come in pairs sharing a random walk, and each market's
  own deviation is a random walk too — correlated, but the spread of a pair never reverts, so
  no strategy can expect to make money after costs. Taker fee 1 % (``fee_rate`` 0.01).
- **planted edge** (``pairs_edge``): the same pairs and volatilities, but each market's
  deviation is an Ornstein–Uhlenbeck process (it reverts by ``reversion`` a step): the
  spread of a pair mean-reverts — the edge correlation_pairs is built for. Same fee.

Target (issue 14): PASS rate ≤ 5 % over ≥ 40 no-edge seeds, ≥ 80 % over ≥ 20 planted-edge
seeds. Each rate is printed with its Wilson 95 % interval (40 seeds cannot pin a rate down to
the percent). Prints one progress line per run, then the table and the two rates; exit code 0
when both targets are met, 1 otherwise.

Usage: python benchmarks/verdict_calibration.py [--null-seeds 40] [--edge-seeds 20] [--jobs 2]
       [--markets 8] [--days 30]
"""

from __future__ import annotations

import os

# One BLAS thread: on 2 cores OpenBLAS's threads make small matrix products ~20× slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import math
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The two models share everything but the planted edge. Per-step (5-minute) logit volatilities.
MARKET = dict(
    tick=0.001,
    half_spread=0.002,
    fee_rate=0.01,
    common_vol=0.015,
    idio_vol=0.03,
    reversion=0.15,
    noise_vol=0.0,
    both_tokens=False,
)
MODELS = {"no edge": "pairs_noise", "planted edge": "pairs_edge"}
PARAMS = {"min_correlation": 0.3}
CAPITAL = 500.0


def one_run(job: tuple) -> dict:
    """Generate one data set, backtest it, judge it; returns the row of the table."""
    label, seed, markets, days, workdir, market, params, strategy = job
    from polybot.backtest.coverage import data_coverage
    from polybot.backtest.engine import Backtester
    from polybot.backtest.metrics import compute_metrics
    from polybot.backtest.synthetic import generate
    from polybot.config import default_config
    from polybot.db import connect
    from polybot.money import to_micro
    from polybot.strategy import get_strategy

    t0 = time.perf_counter()
    path = Path(workdir) / f"{MODELS[label]}_{seed}.db"
    d = generate(path, n_markets=markets, days=days, seed=seed, model=MODELS[label], **market)
    cfg = default_config(path.parent)
    end = d.start_ts + days * 86_400 - 1
    conn = connect(path, readonly=True)
    try:
        bt = Backtester(
            conn,
            cfg,
            get_strategy(strategy, params if strategy == "correlation_pairs" else {}),
            start_ts=d.start_ts,
            end_ts=end,
            capital_micro=to_micro(CAPITAL),
        )
        res = bt.run()
        cov = data_coverage(conn, bt.feed.tokens, d.start_ts, end, grid_seconds=bt.interval)
    finally:
        conn.close()
    m = compute_metrics(res, cfg.backtest, coverage=cov)
    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        if p.exists():
            p.unlink()
    return {
        "model": label,
        "seed": seed,
        "trades": m["total_trades"],
        "win_rate": m["win_rate"],
        "sharpe": m["sharpe_ratio"],
        "return": m["total_return"],
        "max_dd": m["max_drawdown"],
        "psr": m["psr"],
        "checklist": all(c["passed"] for c in m["criteria"]),
        "verdict": m["verdict"],
        "reason": m["reasons"][0] if m["reasons"] else "",
        "seconds": time.perf_counter() - t0,
    }


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--null-seeds", type=int, default=40, help="no-edge data sets (default 40)")
    ap.add_argument("--edge-seeds", type=int, default=20, help="planted-edge data sets (default 20)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    ap.add_argument("--markets", type=int, default=8, help="markets per data set (pairs of 2; default 8)")
    ap.add_argument("--days", type=int, default=30, help="days per backtest (default 30)")
    ap.add_argument(
        "--common-vol",
        type=float,
        default=MARKET["common_vol"],
        help=f"per-step logit st. dev. of a pair's shared random walk (default {MARKET['common_vol']})",
    )
    ap.add_argument(
        "--idio-vol",
        type=float,
        default=MARKET["idio_vol"],
        help=f"per-step logit st. dev. of each market's own deviation (default {MARKET['idio_vol']})",
    )
    ap.add_argument(
        "--reversion",
        type=float,
        default=MARKET["reversion"],
        help=f"planted edge: share of the deviation undone each step (default {MARKET['reversion']})",
    )
    ap.add_argument(
        "--noise-vol",
        type=float,
        default=MARKET["noise_vol"],
        help="st. dev. of the logit noise of each "
        f"snapshot, independent from one snapshot to the next (default {MARKET['noise_vol']})",
    )
    ap.add_argument(
        "--null-strategy",
        default="correlation_pairs",
        metavar="NAME",
        help="strategy run on the no-edge data (default correlation_pairs; mean_reversion trades "
        "much more there)",
    )
    ap.add_argument(
        "--null-trades-noise",
        action="store_true",
        help="no-edge runs with correlation_pairs' mean-reversion test off (require_mean_reversion: "
        "false), so that the strategy trades the noise and the verdict's statistics, not the pair "
        "filter, must refuse it",
    )
    ap.add_argument(
        "--min-correlation",
        type=float,
        default=PARAMS["min_correlation"],
        help=f"correlation_pairs.min_correlation (default {PARAMS['min_correlation']})",
    )
    args = ap.parse_args()
    market = dict(
        MARKET,
        common_vol=args.common_vol,
        idio_vol=args.idio_vol,
        reversion=args.reversion,
        noise_vol=args.noise_vol,
    )
    params = dict(PARAMS, min_correlation=args.min_correlation)
    if args.null_seeds < 1 or args.edge_seeds < 1 or args.jobs < 1 or args.markets < 2 or args.days < 2:
        ap.error("seeds, jobs ≥ 1, markets ≥ 2 and days ≥ 2 are required")
    workdir = tempfile.mkdtemp(prefix="polybot_verdict_calibration_")
    null_params = dict(params, require_mean_reversion=False) if args.null_trades_noise else params
    jobs = [
        ("no edge", 1000 + s, args.markets, args.days, workdir, market, null_params, args.null_strategy)
        for s in range(args.null_seeds)
    ] + [
        ("planted edge", 2000 + s, args.markets, args.days, workdir, market, params, "correlation_pairs")
        for s in range(args.edge_seeds)
    ]
    print(
        f"{len(jobs)} backtests of {args.days} days × {args.markets} markets: correlation_pairs {params} "
        f"(no edge: {args.null_strategy}{' ' + str(null_params) if null_params != params else ''}); market "
        f"{ {k: v for k, v in market.items() if k != 'both_tokens'} }; {args.jobs} processes",
        flush=True,
    )
    t0 = time.perf_counter()
    rows = []
    try:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for i, r in enumerate(pool.imap_unordered(one_run, jobs), 1):
                rows.append(r)
                print(
                    f"[{i:>3}/{len(jobs)}] {r['model']:<12} seed {r['seed']}: {r['verdict']:<17} "
                    f"{r['trades']:>4} trades, return {r['return'] * 100:+6.2f}%, PSR {r['psr']:.2f} "
                    f"({r['seconds']:.0f} s, {time.perf_counter() - t0:.0f} s elapsed)",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows.sort(key=lambda r: (r["model"] != "no edge", r["seed"]))
    print()
    print(
        f"{'model':<13}{'seed':>6}{'trades':>8}{'win rate':>10}{'Sharpe':>8}{'return':>9}{'max DD':>8}"
        f"{'PSR':>6}  {'checklist':<10}verdict"
    )
    for r in rows:
        print(
            f"{r['model']:<13}{r['seed']:>6}{r['trades']:>8}{r['win_rate'] * 100:>9.1f}%{r['sharpe']:>8.2f}"
            f"{r['return'] * 100:>8.2f}%{r['max_dd'] * 100:>7.1f}%{r['psr']:>6.2f}  "
            f"{'pass' if r['checklist'] else 'fail':<10}{r['verdict']}"
        )
    print()
    ok = True
    for label, target, cmp in (("no edge", 0.05, "≤"), ("planted edge", 0.80, "≥")):
        sub = [r for r in rows if r["model"] == label]
        k = sum(r["verdict"] == "PASS" for r in sub)
        old = sum(r["checklist"] and r["trades"] > 0 for r in sub)
        lo, hi = wilson(k, len(sub))
        met = (k / len(sub) <= target) if cmp == "≤" else (k / len(sub) >= target)
        ok &= met
        counts = {v: sum(r["verdict"] == v for r in sub) for v in ("PASS", "FAIL", "INSUFFICIENT_DATA")}
        print(
            f"{label}: PASS rate {k}/{len(sub)} = {k / len(sub):.1%} (Wilson 95% {lo:.1%}–{hi:.1%}); target "
            f"{cmp} {target:.0%}: {'met' if met else 'NOT met'}; verdicts {counts}; the checklist's criteria "
            f"alone (the old verdict) would pass {old}/{len(sub)}"
        )
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
