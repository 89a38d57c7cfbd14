"""Benchmark: snapshot insert throughput and bytes per snapshot row on disk.

Rows look like the collector's (77-digit token ids, 5 book levels per side as "p:s,p:s",
REAL prices) and go in exactly as a cycle writes them: ``INSERT OR IGNORE`` with
``executemany``, one transaction (``db.atomic``) per cycle of ``--tokens`` rows, on the
real schema (WITHOUT ROWID primary key (timestamp, token_id) + index (token_id, timestamp)).
Prints rows/s for the first and last cycles and overall, for synchronous=NORMAL (what the
collector uses) and FULL, then bytes per row measured with dbstat (table + index pages).

    .venv/bin/python benchmarks/bench_snapshot_insert.py [--tokens 10000] [--cycles 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from polybot import db  # noqa: E402
from polybot.collect import store  # noqa: E402
from polybot.exchange.models import BookLevel  # noqa: E402


def make_rows(tokens: list[str], ts: int, rng: random.Random) -> list[tuple]:
    rows = []
    for i, tok in enumerate(tokens):
        mid = rng.uniform(0.05, 0.95)
        bb, ba = round(mid - 0.01, 2), round(mid + 0.01, 2)
        bids = tuple(BookLevel(round(bb - 0.01 * k, 2), round(rng.uniform(5, 5000), 2)) for k in range(5))
        asks = tuple(BookLevel(round(ba + 0.01 * k, 2), round(rng.uniform(5, 5000), 2)) for k in range(5))
        rows.append(
            (
                ts,
                tok,
                str(500_000 + i // 2),
                bb,
                ba,
                (bb + ba) / 2,
                ba - bb,
                round(mid, 2),
                sum(b.size for b in bids),
                sum(a.size for a in asks),
                store.fmt_levels(bids, 5),
                store.fmt_levels(asks, 5),
                round(rng.uniform(1e3, 1e6), 6),
                round(rng.uniform(1e3, 1e6), 5),
                "collected",
            )
        )
    return rows


def run(
    path: Path, tokens: list[str], cycles: int, synchronous: str, tuned: bool = True
) -> tuple[list[float], list[float], list[float]]:
    """One transaction per cycle; returns (executemany rows/s, commit seconds, overall rows/s)."""
    db.initialize(path)
    conn = db.connect(path, synchronous=synchronous)
    if tuned:
        store.tune_for_bulk(conn)
    rng = random.Random(1)
    ins, commits, overall = [], [], []
    for c in range(cycles):
        rows = make_rows(tokens, 1_793_491_200 + 300 * c, rng)
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")  # what db.atomic does, split to time the commit
        n = store.insert_snapshots(conn, rows)
        t1 = time.perf_counter()
        conn.execute("COMMIT")
        t2 = time.perf_counter()
        assert n == len(rows)
        ins.append(len(rows) / (t1 - t0))
        commits.append(t2 - t1)
        overall.append(len(rows) / (t2 - t0))
    conn.close()
    return ins, commits, overall


def run_one_transaction(path: Path, tokens: list[str], cycles: int) -> float:
    """Every cycle's rows in ONE transaction (a backfill-sized write); rows/s incl. commit."""
    db.initialize(path)
    conn = db.connect(path, synchronous="NORMAL")
    store.tune_for_bulk(conn)
    rng = random.Random(2)
    rows = [r for c in range(cycles) for r in make_rows(tokens, 1_793_491_200 + 300 * c, rng)]
    t0 = time.perf_counter()
    with db.atomic(conn):
        n = store.insert_snapshots(conn, rows)
    dt = time.perf_counter() - t0
    conn.close()
    return n / dt


def bytes_per_row(path: Path) -> tuple[float, float, int]:
    conn = db.connect(path, readonly=True)
    rows = conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0]
    sizes = dict(
        conn.execute(
            "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN "
            "('snapshot_values', 'idx_snapshots_token_time') GROUP BY name"
        )
    )
    conn.close()
    return sizes["snapshot_values"] / rows, sizes["idx_snapshots_token_time"] / rows, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=10_000)
    ap.add_argument("--cycles", type=int, default=30)
    args = ap.parse_args()
    rng = random.Random(7)
    tokens = [str(10**75 + rng.randrange(9 * 10**76)) for _ in range(args.tokens)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_snap_"))
    med = statistics.median
    for sync, tuned in (("NORMAL", True), ("FULL", True), ("NORMAL", False)):
        path = tmp / f"snap_{sync.lower()}{'' if tuned else '_default_cache'}.db"
        ins, commits, overall = run(path, tokens, args.cycles, sync, tuned)
        cache = "64 MB cache" if tuned else "default cache"
        print(
            f"synchronous={sync}, {cache}: {args.cycles} cycles x {args.tokens:,} rows, one transaction "
            f"each — executemany median {med(ins):,.0f} rows/s, commit median {med(commits) * 1000:,.0f} ms, "
            f"overall median {med(overall):,.0f} rows/s (first {overall[0]:,.0f}, last {overall[-1]:,.0f})",
            flush=True,
        )
    rate = run_one_transaction(tmp / "snap_bulk.db", tokens, args.cycles)
    print(
        f"all {args.tokens * args.cycles:,} rows in ONE transaction (synchronous=NORMAL): {rate:,.0f} rows/s "
        f"including the commit"
    )
    table, index, rows = bytes_per_row(tmp / "snap_normal.db")
    per_day = 400 * 288
    print(
        f"bytes per snapshot row: {table + index:,.0f} B (table {table:,.0f} + index {index:,.0f}) over "
        f"{rows:,} rows → 200 markets / 400 tokens every 5 min = {per_day:,} rows/day ≈ "
        f"{(table + index) * per_day / 1e6:,.1f} MB/day (checklist estimate ~10 MB/day)"
    )


if __name__ == "__main__":
    main()
