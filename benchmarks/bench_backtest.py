#!/usr/bin/env python3
"""Benchmark: a 30-day backtest of correlation_pairs over 500 tokens at 5-minute snapshots,
in the compact layout (schema version 6), against the old reader on the old layout.

Generates (once, cached in the temp directory) two SQLite databases with the same rows:
250 binary markets × 2 tokens × 30 days × 288 snapshots/day ≈ 4.32 M rows, three book
levels a side:

- the NEW database: the real schema (``market_snapshots``: integer token keys, prices in
  0.0001 units, levels packed in BLOBs), written by ``polybot.backtest.synthetic``;
- the OLD database: the layout before issue 16 (schema version 5: ``market_snapshots``
  table with 77-digit token ids, REAL prices, ``"p:s,p:s"`` text levels, primary key
  (timestamp, token_id) plus the (token_id, timestamp) index), the same rows copied in.

Then, in fresh processes (so peak memory is the replay's own), measures in the same run:

- the old reader (``SnapshotStore.chunks`` of commit c599ff1, kept below verbatim) on the
  old database, and the new reader (``polybot.backtest.data.SnapshotStore.chunks``) on the
  new one — alternated, twice each, best of two (the machine is shared);
- the raw row read: a bare SELECT of the replay's stored columns (timestamp, token key,
  bid, ask, mid, last, source) by day, and of every stored column;
- the end-to-end backtest (markets, feed, strategy, risk, fills, metrics, report) on the
  new database, and its ratio to the raw row read: the raw read and the backtest are
  alternated, ROUNDS rounds each in fresh processes, and the ratio is the best backtest ÷
  the best raw read (on a shared machine the best run is the least disturbed one; every
  run and the ratio of the medians are printed too);
- peak RSS.

Targets (issue 16): new reader ≥ 2× faster than the old; backtest ≤ 1.2× the raw row read.

Usage: python benchmarks/bench_backtest.py [--markets 250] [--days 30] [--regenerate]
"""

from __future__ import annotations

import os

# One BLAS thread: on 2 cores OpenBLAS's threads make small matrix products ~20× slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import resource
import sqlite3
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
ROUNDS = 5  # raw read / backtest alternations
DAY = 86_400


def db_paths(markets: int, days: int) -> tuple[Path, Path]:
    tmp = Path(tempfile.gettempdir())
    return (
        tmp / f"polybot_bench_backtest_{markets}m_{days}d_v6.db",
        tmp / f"polybot_bench_backtest_{markets}m_{days}d_v6_oldlayout.db",
    )


def _unlink(path: Path) -> None:
    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        if p.exists():
            p.unlink()


def generate(path: Path, markets: int, days: int) -> None:
    from polybot.backtest.synthetic import generate as gen

    _unlink(path)
    t0 = time.perf_counter()
    d = gen(path, n_markets=markets, days=days, seed=7, **DATA)
    print(
        f"generated {d.rows:,} rows in {time.perf_counter() - t0:.1f} s → {path} "
        f"({path.stat().st_size / 1e9:.2f} GB)",
        flush=True,
    )


def generate_old_layout(new: Path, old: Path) -> None:
    """The same rows in the layout of schema version 5 (the old table, text levels)."""
    from polybot.schema import MIGRATIONS
    from polybot.snapshots import codec

    _unlink(old)
    t0 = time.perf_counter()
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    for version, _name, sql in MIGRATIONS:
        if version > 5:
            break
        assert isinstance(sql, str)
        conn.executescript(sql)
    conn.execute("PRAGMA user_version = 5")
    conn.create_function("levels_text", 1, codec.text_of, deterministic=True)
    conn.execute("ATTACH DATABASE ? AS new", (str(new),))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO markets SELECT * FROM new.markets")
    conn.execute("INSERT INTO market_tokens SELECT * FROM new.market_tokens")
    lo, hi = conn.execute("SELECT MIN(timestamp), MAX(timestamp) FROM new.market_snapshots").fetchone()
    for day in range(lo, hi + 1, DAY):  # decoded by the new database's view, levels as text
        conn.execute(
            "INSERT INTO market_snapshots SELECT s.timestamp, k.token_id, k.market_id, "
            "s.bid / 10000.0, s.ask / 10000.0, (s.bid + s.ask) / 20000.0, (s.ask - s.bid) / 10000.0, "
            "s.last / 10000.0, s.bid_depth / 100.0, s.ask_depth / 100.0, levels_text(s.bids), "
            "levels_text(s.asks), s.volume_24h / 1000000.0, s.liquidity / 1000000.0, 'collected' "
            "FROM new.market_snapshots s JOIN new.snapshot_tokens k ON k.token_key = s.token_key "
            "WHERE s.timestamp >= ? AND s.timestamp < ? ORDER BY s.timestamp, k.token_id",
            (day, day + DAY),
        )
    conn.execute("COMMIT")
    n = conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0]
    conn.close()
    print(
        f"old layout: {n:,} rows in {time.perf_counter() - t0:.1f} s → {old} ({old.stat().st_size / 1e9:.2f} GB)",
        flush=True,
    )


# ----------------------------------------------------------------------------- the old reader
# SnapshotStore.chunks of commit c599ff1 (the reader before issue 16), verbatim but for names.
_BITS = 21
_SHIFT = 1 << _BITS
_NUL = _SHIFT - 1


def old_reader_rows(conn: sqlite3.Connection, token_ids: list[str], start_ts: int, end_ts: int) -> int:
    import numpy as np

    def _price(micro):
        out = micro.astype(np.float64) / 1e6
        out[micro == _NUL] = np.nan
        return out

    conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")
    conn.execute("CREATE TEMP TABLE bt_tokens (token_id TEXT PRIMARY KEY, idx INTEGER NOT NULL)")
    conn.executemany("INSERT INTO temp.bt_tokens VALUES (?, ?)", ((t, i) for i, t in enumerate(token_ids)))
    cur = conn.cursor()
    cur.row_factory = None
    sql = (
        f"SELECT s.timestamp, "
        f"ifnull(((SELECT k.idx FROM temp.bt_tokens k WHERE k.token_id = s.token_id) * 2 "
        f"+ (s.source = 'backfill')) * {_SHIFT} "
        f"+ ifnull(CAST(round(COALESCE(s.mid, s.last_trade_price) * 1000000) AS INTEGER), {_NUL}), -1), "
        f"ifnull(CAST(round(s.best_bid * 1000000) AS INTEGER), {_NUL}) * {_SHIFT} "
        f"+ ifnull(CAST(round(s.best_ask * 1000000) AS INTEGER), {_NUL}) "
        f"FROM market_snapshots s WHERE s.timestamp >= ? AND s.timestamp < ? "
        f"ORDER BY s.timestamp, s.token_id"
    )
    n = 0
    t = int(start_ts)
    while t <= end_ts:
        hi = min((t // DAY + 1) * DAY, int(end_ts) + 1)
        rows = cur.execute(sql, (t, hi)).fetchall()
        t = hi
        if not rows:
            continue
        a = np.array(rows, dtype=np.int64)
        del rows
        a = a[a[:, 1] >= 0]
        v1, v2 = a[:, 1], a[:, 2]
        key = v1 >> _BITS
        chunk = (a[:, 0].copy(), key >> 1, _price(v2 >> _BITS), _price(v2 & _NUL), _price(v1 & _NUL), key & 1)
        n += len(chunk[0])
    conn.execute("DROP TABLE IF EXISTS temp.bt_tokens")
    return n


# ----------------------------------------------------------------------------- measurements
def measure_readers(new: Path, old: Path, days: int) -> dict:
    from polybot.backtest.data import SnapshotStore, load_markets
    from polybot.backtest.synthetic import DEFAULT_START
    from polybot.db import connect

    start, end = DEFAULT_START, DEFAULT_START + days * DAY - 1
    out: dict = {"old_s": [], "new_s": [], "old_cpu": [], "new_cpu": []}
    cpu = time.process_time
    new_conn = connect(new, readonly=True)
    old_conn = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
    markets, _ = load_markets(new_conn)
    tokens = [t for m in markets for t in m.token_ids]
    for _ in range(2):  # alternated: a busy moment of the shared machine hits both
        t0, c0 = time.perf_counter(), cpu()
        n_old = old_reader_rows(old_conn, tokens, start, end)
        out["old_s"].append(time.perf_counter() - t0)
        out["old_cpu"].append(cpu() - c0)
        t0, c0 = time.perf_counter(), cpu()
        store = SnapshotStore(new_conn, tokens)
        n_new = sum(len(c) for c in store.chunks(start, end))
        store.close()
        out["new_s"].append(time.perf_counter() - t0)
        out["new_cpu"].append(cpu() - c0)
        assert n_old == n_new, (n_old, n_new)
    out["rows"] = n_new
    cur = new_conn.cursor()
    cur.row_factory = None
    out["raw_all_s"], out["raw_all_cpu"], n = raw_read(cur, "*", start, days)
    assert n == out["rows"]
    t0, c0 = time.perf_counter(), cpu()
    for day in range(days):
        lo = start + day * DAY
        old_conn.execute(
            "SELECT timestamp, token_id, best_bid, best_ask, mid, last_trade_price, source FROM market_snapshots "
            "WHERE timestamp >= ? AND timestamp < ?",
            (lo, lo + DAY),
        ).fetchall()
    out["raw_old_s"] = time.perf_counter() - t0
    out["raw_old_cpu"] = cpu() - c0
    new_conn.close()
    old_conn.close()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


REPLAY_COLUMNS = "timestamp, token_key, bid, ask, mid, last, source"


def raw_read(cur: sqlite3.Cursor, cols: str, start: int, days: int) -> tuple[float, float, int]:
    """(wall s, CPU s, rows) of a bare SELECT of ``cols`` by day: the time to read the rows."""
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for day in range(days):
        lo = start + day * DAY
        rows = cur.execute(
            f"SELECT {cols} FROM market_snapshots WHERE timestamp >= ? AND timestamp < ?", (lo, lo + DAY)
        ).fetchall()
        n += len(rows)
        del rows
    return time.perf_counter() - t0, time.process_time() - c0, n


def measure_raw(path: Path, days: int) -> dict:
    """The raw row read of the replay's stored columns, in its own process."""
    from polybot.backtest.synthetic import DEFAULT_START
    from polybot.db import connect

    conn = connect(path, readonly=True)
    cur = conn.cursor()
    cur.row_factory = None
    wall, cpu_s, n = raw_read(cur, REPLAY_COLUMNS, DEFAULT_START, days)
    conn.close()
    return {"raw_replay_s": wall, "raw_replay_cpu": cpu_s, "rows": n}


def measure_backtest(path: Path, days: int, idle: bool = False) -> dict:
    """The end-to-end backtest; ``idle``: with a strategy that looks at every view and
    decides nothing, so the figure is the replay's own machinery (read, feed, views, marks,
    equity, metrics) without correlation_pairs' statistics."""
    from polybot.backtest.engine import Backtester
    from polybot.backtest.metrics import compute_metrics
    from polybot.backtest.synthetic import DEFAULT_START
    from polybot.config import default_config
    from polybot.db import connect
    from polybot.money import to_micro
    from polybot.strategy import get_strategy
    from polybot.strategy.base import Strategy

    class Idle(Strategy):
        name = "idle"
        PARAMS: dict = {}

        def decide(self, view, portfolio):
            return []

    start, end = DEFAULT_START, DEFAULT_START + days * DAY - 1
    t0 = time.perf_counter()
    c0 = time.process_time()
    cfg = default_config(path.parent)
    conn = connect(path, readonly=True)
    bt = Backtester(
        conn,
        cfg,
        Idle({}) if idle else get_strategy("correlation_pairs", PARAMS),
        start_ts=start,
        end_ts=end,
        capital_micro=to_micro(500),
    )
    res = bt.run()
    m = compute_metrics(res, cfg.backtest)
    conn.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "backtest_s": time.perf_counter() - t0,
        "backtest_cpu_s": time.process_time() - c0,
        "reader_cpu_s": children.ru_utime + children.ru_stime,
        "trades": m["total_trades"],
        "return": m["total_return"],
        "steps": m["data"]["steps"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reader_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _child(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=250, help="binary markets (2 tokens each)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--readers", nargs=2, metavar="DB", help=argparse.SUPPRESS)
    ap.add_argument("--backtest", metavar="DB", help=argparse.SUPPRESS)
    ap.add_argument("--raw", metavar="DB", help=argparse.SUPPRESS)
    ap.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.readers:
        print(json.dumps(measure_readers(Path(args.readers[0]), Path(args.readers[1]), args.days)))
        return 0
    if args.backtest:
        print(json.dumps(measure_backtest(Path(args.backtest), args.days, idle=args.idle)))
        return 0
    if args.raw:
        print(json.dumps(measure_raw(Path(args.raw), args.days)))
        return 0
    new, old = db_paths(args.markets, args.days)
    if args.regenerate or not new.exists():
        generate(new, args.markets, args.days)
    if args.regenerate or not old.exists():
        generate_old_layout(new, old)
    r = _child("--days", str(args.days), "--readers", str(new), str(old))
    raws, bts = [], []
    for _ in range(ROUNDS):  # alternated, so a busy spell of the shared machine hits both
        raws.append(_child("--days", str(args.days), "--raw", str(new)))
        bts.append(_child("--days", str(args.days), "--backtest", str(new)))
        assert raws[-1]["rows"] == r["rows"]
    r["raw_replay_s"] = min(x["raw_replay_s"] for x in raws)
    r["raw_replay_cpu"] = min(x["raw_replay_cpu"] for x in raws)
    b = min(bts, key=lambda x: x["backtest_s"])
    idle = _child("--days", str(args.days), "--backtest", str(new), "--idle")
    rows = r["rows"]
    old_s, new_s = min(r["old_s"]), min(r["new_s"])
    old_c, new_c = min(r["old_cpu"]), min(r["new_cpu"])
    print(f"rows: {rows:,} ({args.markets * 2} tokens × {args.days} days × 288/day), {b['steps']:,} steps")
    print(
        f"database: new {new.stat().st_size / 1e6:,.0f} MB ({new.stat().st_size / rows:.0f} B/row), "
        f"old layout {old.stat().st_size / 1e6:,.0f} MB ({old.stat().st_size / rows:.0f} B/row)"
    )
    print("seconds: wall-clock (CPU of the process; the machine may be shared — CPU is the steadier figure)")
    runs = ", ".join(f"{w:.2f} ({c:.2f})" for w, c in zip(r["old_s"], r["old_cpu"], strict=True))
    print(
        f"old reader, old layout:  {old_s:.2f} s ({old_c:.2f} s CPU), {rows / old_s:,.0f} rows/s   runs: {runs}"
    )
    runs = ", ".join(f"{w:.2f} ({c:.2f})" for w, c in zip(r["new_s"], r["new_cpu"], strict=True))
    print(
        f"new reader, new layout:  {new_s:.2f} s ({new_c:.2f} s CPU), {rows / new_s:,.0f} rows/s   runs: {runs}"
    )
    speedup, speedup_cpu = old_s / new_s, old_c / new_c
    print(
        f"speedup: {speedup:.2f}× wall, {speedup_cpu:.2f}× CPU (target ≥ 2×: "
        f"{'OK' if min(speedup, speedup_cpu) >= 2 else 'MISSED'})"
    )
    print(
        f"raw row read (bare SELECT by day): replay's stored columns {r['raw_replay_s']:.2f} s (best of {ROUNDS}) "
        f"({r['raw_replay_cpu']:.2f} CPU), every stored column {r['raw_all_s']:.2f} s ({r['raw_all_cpu']:.2f} CPU); "
        f"old layout, the same columns {r['raw_old_s']:.2f} s ({r['raw_old_cpu']:.2f} CPU)"
    )
    ratio = b["backtest_s"] / r["raw_replay_s"]
    med_raw = sorted(x["raw_replay_s"] for x in raws)[ROUNDS // 2]
    med_bt = sorted(x["backtest_s"] for x in bts)[ROUNDS // 2]
    print(
        f"raw read / backtest, {ROUNDS} alternated rounds (s): "
        + ", ".join(
            f"{x['raw_replay_s']:.2f} / {y['backtest_s']:.2f}" for x, y in zip(raws, bts, strict=True)
        )
        + f"; medians {med_raw:.2f} / {med_bt:.2f} = {med_bt / med_raw:.2f}×"
    )
    print(
        f"backtest end to end (best of {ROUNDS}): {b['backtest_s']:.2f} s ({rows / b['backtest_s']:,.0f} rows/s; CPU "
        f"{b['backtest_cpu_s']:.2f} s main process + {b['reader_cpu_s']:.2f} s reader process) — {ratio:.2f}× "
        f"the raw row read (target ≤ 1.2×: {'OK' if ratio <= 1.2 else 'MISSED'}); "
        f"{b['backtest_s'] / new_s:.2f}× the new reader alone; {old_s / b['backtest_s']:.2f}× faster than the "
        f"old reader alone"
    )
    idle_ratio = idle["backtest_s"] / r["raw_replay_s"]
    print(
        f"backtest, a strategy that decides nothing: {idle['backtest_s']:.2f} s (CPU {idle['backtest_cpu_s']:.2f} s "
        f"main + {idle['reader_cpu_s']:.2f} s reader) — {idle_ratio:.2f}× the raw row read, "
        f"{idle['backtest_s'] / new_s:.2f}× the new reader alone: the replay's own machinery; correlation_pairs' "
        f"decisions are the rest ({b['backtest_s'] - idle['backtest_s']:.2f} s, "
        f"{b['backtest_cpu_s'] - idle['backtest_cpu_s']:.2f} s CPU)"
    )
    total = b["peak_rss_mb"] + b["reader_rss_mb"]
    print(
        f"peak memory (RSS): backtest {b['peak_rss_mb']:.0f} MB + reader process {b['reader_rss_mb']:.0f} MB "
        f"= {total:.0f} MB; readers' process {r['peak_rss_mb']:.0f} MB"
    )
    print(
        f"result: {b['trades']} trades, return {b['return'] * 100:+.2f}% (synthetic data; the figures "
        f"above are what this benchmark is for)"
    )
    print(f"machine load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
