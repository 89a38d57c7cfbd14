#!/usr/bin/env python3
"""Benchmark: the correlation matrix of 1,000 markets over 7 days of 5-minute snapshots.

Generates (once, cached in the temp directory) 1,000 binary markets × 2 tokens × 2,016
snapshots ≈ 4.03 M rows with the real schema, then times, in a fresh process:
- reading the YES prices onto the 5-minute grid (load_prices),
- the matrix itself (forward fill, changes, pairwise-complete Pearson, 1,000 × 1,000),
- clustering into correlated groups and the heatmap ordering of the top 60.
Target: the correlation matrix ≤ 5 s.

Usage: python benchmarks/bench_correlation.py [--markets 1000] [--days 7] [--regenerate]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(path: Path, days: int) -> dict:
    import numpy as np

    from polybot.analysis.correlation import correlate, data_bounds, load_prices
    from polybot.analysis.plots import select_markets
    from polybot.analysis.stats import cluster_order
    from polybot.db import connect

    conn = connect(path, readonly=True)
    _, last = data_bounds(conn)
    start = (last // 300 - days * 288 + 1) * 300
    t0 = time.perf_counter()
    pm = load_prices(conn, start, last)
    t1 = time.perf_counter()
    res = correlate(pm, start_ts=start, end_ts=last, min_overlap=0.5)
    t2 = time.perf_counter()
    groups = res.groups(0.7)
    idx = select_markets(res, 60)
    cluster_order(res.r[np.ix_(idx, idx)])
    t3 = time.perf_counter()
    return {
        "load_s": t1 - t0,
        "matrix_s": t2 - t1,
        "groups_s": t3 - t2,
        "markets": len(res.market_ids),
        "grid": int(pm.prices.shape[0]),
        "rows": pm.rows,
        "groups": len(groups),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--measure-only", metavar="DB", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_only:
        print(json.dumps(measure(Path(args.measure_only), args.days)))
        return 0
    path = Path(tempfile.gettempdir()) / f"polybot_bench_corr_{args.markets}m_{args.days}d_v1.db"
    if args.regenerate or not path.exists():
        from polybot.backtest.synthetic import generate

        for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
            if p.exists():
                p.unlink()
        t0 = time.perf_counter()
        d = generate(
            path,
            n_markets=args.markets,
            days=args.days,
            seed=3,
            model="pairs_edge",
            tick=0.001,
            half_spread=0.002,
            common_vol=0.012,
            idio_vol=0.006,
            reversion=0.04,
        )
        print(f"generated {d.rows:,} rows in {time.perf_counter() - t0:.1f} s → {path}", flush=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--days", str(args.days), "--measure-only", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        return proc.returncode
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"{r['markets']} markets × {r['grid']} grid points ({args.days} days), {r['rows']:,} YES snapshots read"
    )
    print(f"read prices onto the grid: {r['load_s']:.2f} s ({r['rows'] / r['load_s']:,.0f} rows/s)")
    print(
        f"correlation matrix:        {r['matrix_s']:.2f} s — target ≤ 5 s: {'OK' if r['matrix_s'] <= 5 else 'MISSED'}"
    )
    print(f"groups + heatmap order:    {r['groups_s']:.2f} s ({r['groups']} groups)")
    print(
        f"end to end (read + matrix + groups): {r['load_s'] + r['matrix_s'] + r['groups_s']:.2f} s, "
        f"peak RSS {r['peak_rss_mb']:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
