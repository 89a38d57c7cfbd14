#!/usr/bin/env python3
"""Benchmark: a 30-day backtest of correlation_pairs over 500 tokens at 5-minute snapshots.

Generates (once, cached in the temp directory) a SQLite database with the real
schema: 250 binary markets × 2 tokens × 30 days × 288 snapshots/day ≈ 4.32 M
rows with three book levels a side. Then, in a fresh process (so peak memory is
the replay's own), measures:

- load (all columns a replay could use): fetching every row of the range with
  timestamp, token_id, bid, ask, mid, bids, asks, source, by day chunks;
- load (the backtester's reader): the same rows through SnapshotStore.chunks
  (numeric columns, token mapped to an index in SQLite);
- the end-to-end backtest (markets, feed, strategy, risk, fills, metrics, report).

Prints seconds, rows/s, the ratio to the loads, and the peak RSS. Targets:
end to end ≤ 20 s, ≤ 2× the load, peak memory ≤ 1.5 GB.

Usage: python benchmarks/bench_backtest.py [--markets 250] [--days 30] [--regenerate]
"""

from __future__ import annotations

import os

# One BLAS thread: on 2 cores OpenBLAS's threads make small matrix products ~20× slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# pairs of markets sharing a random walk, each with a mean-reverting deviation, taker fee 1%
DATA = dict(
    model="pairs_edge",
    tick=0.001,
    half_spread=0.002,
    common_vol=0.008,
    idio_vol=0.012,
    reversion=0.06,
    fee_rate=0.01,
)
PARAMS = {"min_correlation": 0.4}  # so that many pairs trade (exercises the whole loop)


def db_path(markets: int, days: int) -> Path:
    return Path(tempfile.gettempdir()) / f"polybot_bench_backtest_{markets}m_{days}d_v2.db"


def generate(path: Path, markets: int, days: int) -> None:
    from polybot.backtest.synthetic import generate as gen

    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        if p.exists():
            p.unlink()
    t0 = time.perf_counter()
    d = gen(path, n_markets=markets, days=days, seed=7, **DATA)
    print(
        f"generated {d.rows:,} rows in {time.perf_counter() - t0:.1f} s → {path} "
        f"({path.stat().st_size / 1e9:.2f} GB)",
        flush=True,
    )


def measure(path: Path, days: int) -> dict:
    from polybot.backtest.data import SnapshotStore, load_markets
    from polybot.backtest.engine import Backtester
    from polybot.backtest.metrics import compute_metrics
    from polybot.backtest.synthetic import DEFAULT_START
    from polybot.config import default_config
    from polybot.db import connect
    from polybot.money import to_micro
    from polybot.strategy import get_strategy

    start, end = DEFAULT_START, DEFAULT_START + days * 86_400 - 1
    out = {}
    # 1. plain load of every column a replay could use
    conn = connect(path, readonly=True)
    t0 = time.perf_counter()
    n = 0
    for day in range(days):
        lo = start + day * 86_400
        rows = conn.execute(
            "SELECT timestamp, token_id, best_bid, best_ask, mid, bids, asks, source "
            "FROM snapshot_values WHERE timestamp >= ? AND timestamp < ?",
            (lo, lo + 86_400),
        ).fetchall()
        n += len(rows)
        del rows
    out["load_all_s"] = time.perf_counter() - t0
    out["rows"] = n
    # 2. the backtester's reader alone
    markets, _ = load_markets(conn)
    tokens = [t for m in markets for t in m.token_ids]
    t0 = time.perf_counter()
    store = SnapshotStore(conn, tokens)
    n2 = sum(len(c) for c in store.chunks(start, end))
    store.close()
    out["load_reader_s"] = time.perf_counter() - t0
    assert n2 == n, (n2, n)
    conn.close()
    # 3. end to end
    t0 = time.perf_counter()
    cfg = default_config(path.parent)
    conn = connect(path, readonly=True)
    bt = Backtester(
        conn,
        cfg,
        get_strategy("correlation_pairs", PARAMS),
        start_ts=start,
        end_ts=end,
        capital_micro=to_micro(500),
    )
    res = bt.run()
    m = compute_metrics(res, cfg.backtest)
    conn.close()
    out["backtest_s"] = time.perf_counter() - t0
    out["trades"] = m["total_trades"]
    out["return"] = m["total_return"]
    out["steps"] = m["data"]["steps"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["reader_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=250, help="binary markets (2 tokens each)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--measure-only", metavar="DB", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_only:
        print(json.dumps(measure(Path(args.measure_only), args.days)))
        return 0
    path = db_path(args.markets, args.days)
    if args.regenerate or not path.exists():
        generate(path, args.markets, args.days)
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
    rows = r["rows"]
    print(f"rows: {rows:,} ({args.markets * 2} tokens × {args.days} days × 288/day), {r['steps']:,} steps")
    print(
        f"load, all replay columns incl. depth: {r['load_all_s']:.2f} s ({rows / r['load_all_s']:,.0f} rows/s)"
    )
    print(
        f"load, the backtester's reader:       {r['load_reader_s']:.2f} s ({rows / r['load_reader_s']:,.0f} rows/s)"
    )
    print(
        f"backtest end to end:                 {r['backtest_s']:.2f} s ({rows / r['backtest_s']:,.0f} rows/s) "
        f"— target ≤ 20 s: {'OK' if r['backtest_s'] <= 20 else 'MISSED'}"
    )
    print(
        f"ratio to the full load: {r['backtest_s'] / r['load_all_s']:.2f}× (target ≤ 2×: "
        f"{'OK' if r['backtest_s'] <= 2 * r['load_all_s'] else 'MISSED'}); "
        f"to the backtester's reader: {r['backtest_s'] / r['load_reader_s']:.2f}×"
    )
    total = r["peak_rss_mb"] + r["reader_rss_mb"]
    print(
        f"peak memory (RSS): {r['peak_rss_mb']:.0f} MB + reader process {r['reader_rss_mb']:.0f} MB "
        f"(target ≤ 1536 MB: {'OK' if total <= 1536 else 'MISSED'})"
    )
    print(
        f"result: {r['trades']} trades, return {r['return'] * 100:+.2f}% (synthetic data; the figures "
        f"above are what this benchmark is for)"
    )
    print(f"machine load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
