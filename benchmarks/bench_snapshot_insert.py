"""Benchmark: snapshot inserts (rows/s including encoding and the commit), bytes per snapshot
row on disk, and the choice of the clustered key — compact layout, schema version 6.

1. Inserts: rows shaped like the collector's (77-digit token ids, 3 book levels a side on a
   0.01 tick, sizes in cents, volume/liquidity with 6 decimals, mid/spread by the collector's
   formulas) go in exactly as a cycle writes them: ``polybot.snapshots.store.insert_rows``
   (batch encoding with numpy, ``INSERT OR IGNORE`` with ``executemany``), one transaction
   per cycle of ``--tokens`` rows, synchronous=NORMAL and the collector's 64 MB page cache.
   Levels handed over as BookLevel tuples (what a cycle has in hand) and as ``"p:s,p:s"``
   text. The figure includes encoding and the commit, not building the rows.
2. Clustered key: the same cycles into ``market_snapshots`` clustered on (timestamp, token_key)
   — the schema's choice — and on (token_key, timestamp); insert rate per cycle (first and
   last) and the replay's read rate (time windows in key order).
3. Bytes per row after VACUUM, indexes included (file size ÷ rows; pages per table from
   dbstat): the 4.32 M-row benchmark database of bench_backtest.py (3 levels a side) and
   the same rows top-of-book only as the retention tier keeps them (bids/asks/depth NULL,
   volume/liquidity on the row at the top of each hour), and the random rows of part 1.

    .venv/bin/python benchmarks/bench_snapshot_insert.py [--tokens 100000] [--cycles 10]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from polybot import db  # noqa: E402
from polybot.exchange.models import BookLevel  # noqa: E402
from polybot.snapshots import store  # noqa: E402

T0 = 1_793_491_200
LEVELS = 3


def make_rows(tokens: list[str], ts: int, rng: random.Random, *, text: bool) -> list[tuple]:
    """One cycle of collector-shaped rows (the collector's formulas for mid and spread)."""
    rows = []
    for i, tok in enumerate(tokens):
        top = rng.randrange(3, 96)
        bb, ba = top / 100, (top + 2) / 100
        bids = tuple(BookLevel((top - k) / 100, round(rng.uniform(5, 5000), 2)) for k in range(LEVELS))
        asks = tuple(BookLevel((top + 2 + k) / 100, round(rng.uniform(5, 5000), 2)) for k in range(LEVELS))
        rows.append(
            (
                ts,
                tok,
                str(500_000 + i // 2),
                bb,
                ba,
                (bb + ba) / 2,
                ba - bb,
                (top + 1) / 100,
                sum(b.size for b in bids),
                sum(a.size for a in asks),
                ",".join(f"{b.price!r}:{b.size!r}" for b in bids) if text else bids,
                ",".join(f"{a.price!r}:{a.size!r}" for a in asks) if text else asks,
                round(rng.uniform(1e3, 1e6), 6),
                round(rng.uniform(1e3, 1e6), 6),
                "collected",
            )
        )
    return rows


def _new_db(path: Path, key: str = "timestamp, token_key") -> None:
    db.initialize(path)
    if key != "timestamp, token_key":
        conn = sqlite3.connect(path)
        conn.execute("DROP TABLE market_snapshots")
        ddl = store.TABLES_SQL[store.TABLES_SQL.index("CREATE TABLE IF NOT EXISTS market_snapshots") :]
        ddl = ddl[: ddl.index(") WITHOUT ROWID") + len(") WITHOUT ROWID")]
        ddl = "\n".join(line.split("--", 1)[0] for line in ddl.splitlines())
        conn.execute(ddl.replace("PRIMARY KEY (timestamp, token_key)", f"PRIMARY KEY ({key})"))
        conn.commit()
        conn.close()


def insert_cycles(path: Path, cycles: list[list[tuple]]) -> tuple[list[float], list[float]]:
    """One transaction per cycle; rows/s of each cycle, encoding and commit included: per
    wall-clock second and per CPU second of this process (the machine may be shared)."""
    conn = db.connect(path, synchronous="NORMAL")
    conn.execute("PRAGMA cache_size = -65536")  # the collector's (collect.store.tune_for_bulk)
    keys = store.TokenKeys(conn)
    keys.load()
    rates, cpu_rates = [], []
    for rows in cycles:
        t0, c0 = time.perf_counter(), time.process_time()
        with db.atomic(conn):
            n = store.insert_rows(conn, rows, keys=keys)
        rates.append(n / (time.perf_counter() - t0))
        cpu_rates.append(n / max(1e-9, time.process_time() - c0))
    conn.close()
    return rates, cpu_rates


def read_rate(path: Path, window: int) -> tuple[float, float]:
    """The replay's read: time windows in (timestamp, token) order, two integers and two prices a row."""
    conn = db.connect(path, readonly=True)
    cur = conn.cursor()
    cur.row_factory = None
    lo, hi = conn.execute("SELECT MIN(timestamp), MAX(timestamp) FROM market_snapshots").fetchone()
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for t in range(lo, hi + 1, window):
        n += len(
            cur.execute(
                "SELECT timestamp, token_key, bid, ask FROM market_snapshots WHERE timestamp >= ? AND timestamp < ? "
                "ORDER BY timestamp, token_key",
                (t, t + window),
            ).fetchall()
        )
    conn.close()
    return n / (time.perf_counter() - t0), n / max(1e-9, time.process_time() - c0)


def bytes_per_row(path: Path) -> tuple[float, int, dict[str, float]]:
    """(file bytes ÷ rows after VACUUM, rows, {table: bytes per row from dbstat})."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("VACUUM")
    rows = conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0]
    try:
        pages = {
            name: size / rows
            for name, size in conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('market_snapshots', 'snapshot_tokens', "
                "'sqlite_autoindex_snapshot_tokens_1') GROUP BY name"
            )
        }
    except sqlite3.OperationalError:  # SQLite built without dbstat
        pages = {}
    conn.close()
    return path.stat().st_size / rows, rows, pages


def _fmt_pages(pages: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(pages.items())) or "dbstat not available"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=100_000, help="rows per cycle")
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument(
        "--benchmark-db",
        type=Path,
        default=Path(tempfile.gettempdir()) / "polybot_bench_backtest_250m_30d_v6.db",
        help="the 4.32 M-row database of bench_backtest.py (made by it)",
    )
    args = ap.parse_args()
    rng = random.Random(7)
    tokens = [str(10**75 + rng.randrange(9 * 10**76)) for _ in range(args.tokens)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_snap_"))
    med = statistics.median
    print(f"machine load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        # 1. inserts, levels as BookLevels and as text
        for text in (False, True):
            cycles = [
                make_rows(tokens, T0 + 300 * c, random.Random(c), text=text) for c in range(args.cycles)
            ]
            path = tmp / f"insert_{'text' if text else 'levels'}.db"
            _new_db(path)
            rates, cpu = insert_cycles(path, cycles)
            print(
                f"inserts, levels as {'text' if text else 'BookLevels'}: {args.cycles} cycles × {args.tokens:,} rows, "
                f"one transaction each, encoding and commit included — median {med(rates):,.0f} rows/s "
                f"(first {rates[0]:,.0f}, last {rates[-1]:,.0f}; target ≥ 200,000: "
                f"{'OK' if med(rates) >= 200_000 else 'MISSED'}); per CPU second {med(cpu):,.0f} rows/s",
                flush=True,
            )
        # 2. the clustered key
        cycles = [make_rows(tokens, T0 + 300 * c, random.Random(c), text=False) for c in range(args.cycles)]
        for key in ("timestamp, token_key", "token_key, timestamp"):
            path = tmp / f"key_{key.replace(', ', '_')}.db"
            _new_db(path, key)
            rates, cpu = insert_cycles(path, cycles)
            read, read_cpu = read_rate(path, 300 * 4)
            print(
                f"clustered on ({key}): inserts median {med(rates):,.0f} rows/s (first {rates[0]:,.0f}, "
                f"last {rates[-1]:,.0f}; per CPU second {med(cpu):,.0f}); replay read {read:,.0f} rows/s "
                f"(per CPU second {read_cpu:,.0f})",
                flush=True,
            )
        b, rows, pages = bytes_per_row(tmp / "insert_levels.db")
        print(
            f"bytes per row, the random collector-shaped rows above (3 levels a side): {b:.1f} B over {rows:,} rows "
            f"(pages per row: {_fmt_pages(pages)})"
        )
        # 3. the benchmark's 4.32 M rows: full depth, then top of book only
        if not args.benchmark_db.exists():
            print(
                f"{args.benchmark_db} not found: run benchmarks/bench_backtest.py first for the 4.32 M-row figures"
            )
            return
        full = tmp / "bench_full.db"
        src = sqlite3.connect(args.benchmark_db)
        dst = sqlite3.connect(full)
        src.backup(dst)
        src.close()
        dst.close()
        b, rows, pages = bytes_per_row(full)
        print(
            f"bytes per row, benchmark database (3 levels a side): {b:.1f} B over {rows:,} rows after VACUUM, "
            f"indexes included (target ≤ 100: {'OK' if b <= 100 else 'MISSED'}); pages per row: {_fmt_pages(pages)}",
            flush=True,
        )
        conn = sqlite3.connect(full)
        conn.execute(  # what the retention tier keeps (polybot/ops/retention.py)
            "UPDATE market_snapshots SET bids = NULL, asks = NULL, bid_depth = NULL, ask_depth = NULL, "
            "volume_24h = CASE WHEN timestamp % 3600 = 0 THEN volume_24h END, "
            "liquidity = CASE WHEN timestamp % 3600 = 0 THEN liquidity END"
        )
        conn.commit()
        conn.close()
        b, rows, pages = bytes_per_row(full)
        print(
            f"bytes per row, the same rows top of book only: {b:.1f} B (target ≤ 40: "
            f"{'OK' if b <= 40 else 'MISSED'}); pages per row: {_fmt_pages(pages)}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
