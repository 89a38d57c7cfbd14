"""Benchmark: bytes per stored row in each retention tier (full depth, top of book, hourly bar).

Writes ``--tokens`` tokens × ``--days`` days of 5-minute snapshots shaped like the
collector's (``--levels`` book levels a side, default 3 on a 0.01 tick, sizes in cents of a share, prices that walk)
through :func:`polybot.snapshots.store.insert_rows`, then, each time after ``VACUUM``,
measures with ``dbstat`` (pages of ``market_snapshots`` / ``snapshot_bars`` ÷ rows):

1. every row at full depth;
2. every row thinned to top of book (the retention tier's UPDATE);
3. every row replaced by hourly bars (bytes per bar, and per original row).

The figures are the fallbacks of ``collect_market_data.py --estimate-storage`` for an empty
database (``polybot/collect/storage.py``: ``BENCH_*``).

    .venv/bin/python benchmarks/bench_retention_storage.py [--tokens 400] [--days 2] [--levels 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from polybot import db  # noqa: E402
from polybot.ops.retention import Tiers, apply_retention  # noqa: E402
from polybot.snapshots.store import TokenKeys, insert_rows  # noqa: E402

START = 1_793_491_200  # a UTC midnight


def _levels(best: float, step: float, rng: random.Random, levels: int) -> str:
    return ",".join(f"{round(best + step * k, 2)}:{round(rng.uniform(5, 5000), 2)}" for k in range(levels))


def fill(conn, tokens: int, days: int, rng: random.Random, levels: int = 3) -> int:
    keys = TokenKeys(conn)
    ids = [str(rng.getrandbits(252)) for _ in range(tokens)]
    mids = [rng.uniform(0.05, 0.95) for _ in range(tokens)]
    n = 0
    for c in range(days * 288):
        ts = START + 300 * c
        rows = []
        for i, tok in enumerate(ids):
            mids[i] = min(0.97, max(0.03, mids[i] + rng.choice((-0.01, 0.0, 0.0, 0.01))))
            bid, ask = round(mids[i] - 0.01, 2), round(mids[i] + 0.01, 2)
            rows.append(
                (
                    ts,
                    tok,
                    str(500_000 + i // 2),
                    bid,
                    ask,
                    (bid + ask) / 2,
                    ask - bid,
                    round(mids[i], 2),
                    round(rng.uniform(100, 10000), 2),
                    round(rng.uniform(100, 10000), 2),
                    _levels(bid, -0.01, rng, levels),
                    _levels(ask, 0.01, rng, levels),
                    round(rng.uniform(1e3, 1e6), 2),
                    round(rng.uniform(1e3, 1e6), 2),
                    "collected",
                )
            )
        with db.atomic(conn):
            n += insert_rows(conn, rows, keys=keys)
    return n


def pages(conn, table: str) -> int:
    return int(
        conn.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = ?", (table,)).fetchone()[0]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--levels", type=int, default=3, help="book levels a side (the collector's depth_levels)")
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db.initialize(path)
        conn = db.connect(path, synchronous="OFF")
        t0 = time.perf_counter()
        conn.execute("PRAGMA journal_mode = OFF")  # a scratch file: no WAL to write twice
        rows = fill(conn, args.tokens, args.days, rng, args.levels)
        print(
            f"{rows:,} rows ({args.tokens} tokens × {args.days} days × 288) written in {time.perf_counter() - t0:.1f} s"
        )
        conn.execute("VACUUM")
        full = pages(conn, "market_snapshots")
        print(f"full depth ({args.levels} levels a side):  {full / rows:6.1f} B/row  ({full:,} B)")
        end = START + args.days * 86400
        now = end + 40 * 86400  # every row past full_depth_days = 30, none past 365
        t0 = time.perf_counter()
        res = apply_retention(
            conn, Tiers(full_depth_days=30, top_of_book_days=365), now=now, emit=lambda _: None
        )
        took = time.perf_counter() - t0
        conn.execute("VACUUM")
        thin = pages(conn, "market_snapshots")
        print(
            f"top of book:                   {thin / rows:6.1f} B/row  ({thin:,} B; thinned {res.thinned_rows:,} rows "
            f"in {took:.2f} s = {res.thinned_rows / took:,.0f} rows/s)"
        )
        now = end + 400 * 86400
        t0 = time.perf_counter()
        res = apply_retention(
            conn, Tiers(full_depth_days=30, top_of_book_days=365), now=now, emit=lambda _: None
        )
        took = time.perf_counter() - t0
        conn.execute("VACUUM")
        bars = pages(conn, "snapshot_bars")
        nbars = conn.execute("SELECT COUNT(*) FROM snapshot_bars").fetchone()[0]
        print(
            f"hourly bars:                   {bars / nbars:6.1f} B/bar  ({bars:,} B, {nbars:,} bars = "
            f"{bars / rows:.1f} B per original row; barred {res.barred_rows:,} rows in {took:.2f} s = "
            f"{res.barred_rows / took:,.0f} rows/s)"
        )
        conn.close()


if __name__ == "__main__":
    main()
