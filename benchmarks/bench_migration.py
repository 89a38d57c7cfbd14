#!/usr/bin/env python3
"""Benchmark: ``python maintain_database.py --migrate`` on the 4.32 M-row benchmark database.

Builds (once, cached in the temp directory) a database in the OLD layout (schema 5: the
``market_snapshots`` table of 15cb2c7 with its (token_id, timestamp) index), filled exactly
as benchmarks/bench_backtest.py's generator did before schema 6 (polybot/backtest/synthetic.py
at c599ff1): 250 binary markets × 2 tokens × 30 days × 288 snapshots a day = 4.32 M rows, three
book levels a side as "p:s" text. Then, on a fresh copy in a workspace with a config.yaml, runs
the migration as the operator does — a real process, backup included — and prints the
seconds, rows/s, the child's CPU time and peak RSS, and the bytes before / after (the
migration ends with a VACUUM; ``--no-vacuum`` adds a second run without it). Target (issue
16): ≤ 2 minutes. The migration's own summary (printed above the figures) splits the time
and the CPU by phase: backup, moving (the writer and the read-ahead process), VACUUM. On a
shared machine compare CPU seconds, and runs taken back to back.

Usage: python benchmarks/bench_migration.py [--markets 250] [--days 30] [--no-vacuum] [--regenerate]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START = 1_767_225_600  # 2026-01-01 00:00 UTC (synthetic.DEFAULT_START)
# bench_backtest.py's data set (c599ff1): pairs sharing a random walk, mean-reverting deviations
DATA = dict(tick=0.001, half_spread=0.002, common_vol=0.008, idio_vol=0.012, reversion=0.06, fee_rate=0.01)
SEED = 7
INSERT = (
    "INSERT OR REPLACE INTO market_snapshots (timestamp, token_id, market_id, best_bid, best_ask, mid, spread, "
    "last_trade_price, bid_depth, ask_depth, bids, asks, volume_24h, liquidity, source) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'collected')"
)


def db_path(markets: int, days: int) -> Path:
    return Path(tempfile.gettempdir()) / f"polybot_bench_migration_{markets}m_{days}d_legacy.db"


def _paths(rng, pair, steps, *, common_vol, idio_vol, reversion):
    """synthetic._logit_paths of c599ff1 with model="pairs_edge", noise_vol=0 (same draws)."""
    n = len(pair)
    n_pairs = int(pair.max()) + 1
    base = rng.normal(0, 0.6, n_pairs)[pair] + rng.normal(0, 0.15, n)
    common = np.cumsum(rng.normal(0, common_vol, (steps, n_pairs)), axis=0)[:, pair]
    eps = rng.normal(0, idio_vol, (steps, n))
    dev = np.zeros((steps, n))
    for t in range(1, steps):
        dev[t] = (1 - reversion) * dev[t - 1] + eps[t]
    return base + common + dev


def _old_schema(conn: sqlite3.Connection) -> None:
    """Schema versions 1–5 (the old market_snapshots table), as polybot.db.migrate built them."""
    from polybot.db import _split_sql
    from polybot.schema import MIGRATIONS

    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    for version, name, sql in MIGRATIONS:
        if version > 5:
            break
        assert isinstance(sql, str)
        for statement in _split_sql(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, START))
        conn.execute(f"PRAGMA user_version = {version}")


def generate(path: Path, markets: int, days: int) -> int:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    tick, half = DATA["tick"], DATA["half_spread"]
    steps, n = days * 288, markets
    pair = np.arange(n) // 2
    x = _paths(
        rng,
        pair,
        steps,
        common_vol=DATA["common_vol"],
        idio_vol=DATA["idio_vol"],
        reversion=DATA["reversion"],
    )
    p = np.clip(1.0 / (1.0 + np.exp(-x)), 0.05, 0.95)
    bid = np.floor(np.round((p - half) / tick, 6)) * tick
    ask = np.ceil(np.round((p + half) / tick, 6)) * tick
    bid = np.clip(np.round(bid, 6), tick, 1 - 2 * tick)
    ask = np.clip(np.round(np.maximum(ask, bid + tick), 6), 2 * tick, 1 - tick)
    mid = np.round((bid + ask) / 2, 6)
    sizes = rng.integers(50, 500, (steps, n, 6)).astype(float)

    def tok(prefix: str, i: int) -> str:
        s = f"{prefix}{SEED}{i:06d}"
        return s + "7" * max(0, 77 - len(s))

    ids = [f"m{SEED}-{i:04d}" for i in range(n)]
    yes, no = [tok("1", i) for i in range(n)], [tok("2", i) for i in range(n)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    _old_schema(conn)
    for i, m in enumerate(ids):
        conn.execute(
            "INSERT INTO markets (id, condition_id, question, slug, token_ids, outcomes, end_date, tick_size, "
            "min_order_size, fees_enabled, fee_rate, fee_exponent, tracked, first_seen, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                m,
                f"0xc{SEED}{i:04d}",
                f"Synthetic market {i} (pair {pair[i]})?",
                f"synthetic-{SEED}-{i}",
                json.dumps([yes[i], no[i]]),
                json.dumps(["Yes", "No"]),
                START + 60 * 86_400,
                tick,
                5.0,
                1,
                DATA["fee_rate"],
                1.0,
                1,
                START,
                START,
            ),
        )
        conn.execute("INSERT INTO market_tokens VALUES (?,?,?,?)", (yes[i], m, "Yes", 0))
        conn.execute("INSERT INTO market_tokens VALUES (?,?,?,?)", (no[i], m, "No", 1))
    rows, batch = 0, []
    for t in range(steps):
        ts = START + t * 300
        b, a, md, s = bid[t].tolist(), ask[t].tolist(), mid[t].tolist(), sizes[t].tolist()
        for i in range(n):
            bi, ai, si = b[i], a[i], s[i]
            bids = f"{bi:.2f}:{si[0]:g},{bi - tick:.2f}:{si[1]:g},{bi - 2 * tick:.2f}:{si[2]:g}"
            asks = f"{ai:.2f}:{si[3]:g},{ai + tick:.2f}:{si[4]:g},{ai + 2 * tick:.2f}:{si[5]:g}"
            bd, ad = si[0] + si[1] + si[2], si[3] + si[4] + si[5]
            batch.append(
                (
                    ts,
                    yes[i],
                    ids[i],
                    bi,
                    ai,
                    md[i],
                    round(ai - bi, 6),
                    md[i],
                    bd,
                    ad,
                    bids,
                    asks,
                    1000.0,
                    1000.0,
                )
            )
            nb, na = round(1 - ai, 6), round(1 - bi, 6)
            nbids = f"{nb:.2f}:{si[3]:g},{nb - tick:.2f}:{si[4]:g},{nb - 2 * tick:.2f}:{si[5]:g}"
            nasks = f"{na:.2f}:{si[0]:g},{na + tick:.2f}:{si[1]:g},{na + 2 * tick:.2f}:{si[2]:g}"
            nm = round(1 - md[i], 6)
            batch.append(
                (ts, no[i], ids[i], nb, na, nm, round(na - nb, 6), nm, ad, bd, nbids, nasks, 1000.0, 1000.0)
            )
        if len(batch) >= 200_000:
            conn.executemany(INSERT, batch)
            rows += len(batch)
            batch = []
    if batch:
        conn.executemany(INSERT, batch)
        rows += len(batch)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(
        f"generated {rows:,} rows in {time.perf_counter() - t0:.1f} s → {path} ({path.stat().st_size / 1e9:.2f} GB)",
        flush=True,
    )
    return rows


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=250)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument(
        "--no-vacuum", action="store_true", help="also time --migrate --no-vacuum (a second copy)"
    )
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the migrated workspace")
    args = ap.parse_args()
    src = db_path(args.markets, args.days)
    if args.regenerate or not src.exists():
        generate(src, args.markets, args.days)
    rows = sqlite3.connect(src).execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0]
    print(
        f"legacy database: {src} ({_size(src) / 1e9:.3f} GB, {rows:,} rows, {_size(src) / rows:.0f} bytes/row)"
    )
    for vacuum in (True, False) if args.no_vacuum else (True,):
        ws = Path(tempfile.mkdtemp(prefix="polybot_bench_migration_"))
        try:
            (ws / "data").mkdir(mode=0o700)
            (ws / "config.yaml").write_text(
                "paper_trading: true\ncapital: 500\ndatabase_path: data/polymarket.db\n", encoding="utf-8"
            )
            db = ws / "data" / "polymarket.db"
            shutil.copyfile(src, db)
            before = _size(db)
            argv = [sys.executable, str(ROOT / "maintain_database.py"), "--migrate"] + (
                [] if vacuum else ["--no-vacuum"]
            )
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            load_before = os.getloadavg()[0]
            before_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_before = before_usage.ru_utime + before_usage.ru_stime
            t0 = time.perf_counter()
            proc = subprocess.run(argv, cwd=ws, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            peak_mb = usage.ru_maxrss / 1024
            cpu = usage.ru_utime + usage.ru_stime - cpu_before
            load = os.getloadavg()[0]
            after = _size(db)
            print(proc.stdout.rstrip())
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return proc.returncode
            backup = sorted((ws / "backups").glob("polymarket_backup_*.db"))
            label = "--migrate" if vacuum else "--migrate --no-vacuum"
            print(
                f"\n{label}: {seconds:.1f} s end to end (backup included; target ≤ 120 s), "
                f"{rows / seconds:,.0f} rows/s, peak RSS {peak_mb:,.0f} MB; CPU {cpu:.1f} s (the migration "
                f"and its read-ahead process; load average {load_before:.1f} at the start, {load:.1f} at the "
                f"end, on {os.cpu_count()} CPUs: the migration itself adds up to 2)"
            )
            print(
                f"  bytes: {before / 1e9:.3f} GB before ({before / rows:.0f} B/row), {after / 1e9:.3f} GB after "
                f"({after / rows:.0f} B/row); backup {backup[0].stat().st_size / 1e9:.3f} GB"
                if backup
                else ""
            )
        finally:
            if not args.keep:
                shutil.rmtree(ws, ignore_errors=True)
            else:
                print(f"  workspace kept: {ws}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
