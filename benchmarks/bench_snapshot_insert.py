"""Benchmark: snapshot inserts (rows/s including encoding and the commit), bytes per snapshot
row on disk, and the choice of the clustered key — compact layout, schema version 6.

1. Inserts: rows shaped like the collector's (77-digit token ids, 3 book levels a side on a
   0.01 tick, sizes in cents, volume/liquidity with 6 decimals, mid/spread by the collector's
   formulas) go in exactly as a cycle writes them: ``polybot.snapshots.store.insert_rows``
   (batch encoding with numpy, ``INSERT OR IGNORE`` with ``executemany``), one transaction
   per cycle of ``--tokens`` rows, synchronous=NORMAL and the collector's 64 MB page cache.
   Levels handed over as BookLevel tuples (what a cycle has in hand) and as ``"p:s,p:s"``
   text. The figure includes encoding and the commit, not building the rows.
   1b. The collector's write path (issue 16's target "inserts ≥ 200k rows/s including the
   commit"): ``collect.snapshot_rows.insert_snapshots`` of rows built as the book threads build them
   (not timed: a cycle builds them while the listing runs), on a connection set up by
   ``collect.snapshot_rows.tune_for_bulk``; beside it, alternated cycle by cycle, the levers
   measured: the sides bound as ``bytes``, one ``executemany``, and the WAL checkpoint
   inside the COMMIT (SQLite's default 1,000-page auto-checkpoint). The COMMIT and the
   checkpoint after it are printed apart. benchmarks/bench_collection.py measures the same
   in a whole-universe cycle against the simulator.
2. Clustered key: the same cycles into ``market_snapshots`` clustered on (timestamp, token_key)
   — the schema's choice — and on (token_key, timestamp); insert rate per cycle (first and
   last) and the replay's read rate (time windows in key order).
3. Bytes per row after VACUUM, indexes included (file size ÷ rows; pages per table from
   dbstat): the 4.32 M-row benchmark database of bench_backtest.py (3 levels a side) and
   the same rows top-of-book only as the retention tier keeps them (bids/asks/depth NULL,
   volume/liquidity on the row at the top of each hour), and the random rows of part 1.

    .venv/bin/python benchmarks/bench_snapshot_insert.py [--tokens 100000] [--cycles 10] [--collector-only]
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
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from polybot import db  # noqa: E402
from polybot.collect import snapshot_rows as collect_rows  # noqa: E402
from polybot.exchange.models import BookLevel, OrderBook  # noqa: E402
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
    conn.execute("PRAGMA cache_size = -65536")  # the collector's (collect.snapshot_rows.tune_for_bulk)
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


def collector_rows(rows: list[tuple], keys: dict[str, int] | None) -> list:
    """The rows as the collector's book threads build them (collect.snapshot_rows.snapshot_row: sides
    packed, values encoded, the token key from the map loaded before the listing)."""
    out = []
    for r in rows:
        market = SimpleNamespace(id=r[2], volume_24h=r[12], liquidity=r[13])
        book = OrderBook(
            token_id=r[1], market="", timestamp_ms=0, bids=r[10], asks=r[11], last_trade_price=r[7]
        )
        out.append(collect_rows.snapshot_row(r[0], market, book, LEVELS, keys))  # type: ignore[arg-type]
    return out


def _as_bytes(rows: list) -> list:
    """The same rows with the sides' parameters as ``bytes`` (how they were bound before)."""
    out = []
    for r in rows:
        p = r.params
        c = collect_rows.Snapshot(r)
        c.params = (*p[:7], bytes(p[7]), bytes(p[8]), *p[9:])
        out.append(c)
    return out


COLLECTOR_VARIANTS = {
    "the collector's": "keyed parameters, sides as bytearray, 250 rows a statement, checkpoint after the commit",
    "sides as bytes": "the same, the sides' parameters as bytes",
    "executemany": "the same parameters, one executemany (a row a step)",
    "checkpoint in COMMIT": "the same, SQLite's default wal_autocheckpoint (1,000 pages)",
}


def collector_path(
    path: Path, tokens: list[str], n_cycles: int
) -> dict[str, list[tuple[float, float, float, float]]]:
    """The collector's write path (collect.snapshot_rows.insert_snapshots of rows built as the book
    threads build them, on a connection set up by collect.snapshot_rows.tune_for_bulk), one
    transaction per cycle, the variants of :data:`COLLECTOR_VARIANTS` alternated cycle by
    cycle. Per cycle: (rows/s of insert + COMMIT, the same per CPU second, COMMIT seconds,
    checkpoint seconds)."""
    conn = db.connect(path, synchronous="NORMAL")
    collect_rows.tune_for_bulk(conn)
    keys = collect_rows.token_keys(conn)
    with db.atomic(conn):  # the first cycle creates every token key
        collect_rows.insert_snapshots(
            conn, collector_rows(make_rows(tokens, T0, random.Random(0), text=False), None), keys=keys
        )
    collect_rows.checkpoint_after_commit(conn)
    out: dict[str, list[tuple[float, float, float, float]]] = {v: [] for v in COLLECTOR_VARIANTS}
    for c in range(1, n_cycles + 1):
        for k, variant in enumerate(COLLECTOR_VARIANTS):
            ts = T0 + 300 * (c * len(COLLECTOR_VARIANTS) + k)
            rows = collector_rows(make_rows(tokens, ts, random.Random(c), text=False), keys.keys)
            if variant == "sides as bytes":
                rows = _as_bytes(rows)
            default = variant == "checkpoint in COMMIT"
            conn.execute(
                f"PRAGMA wal_autocheckpoint = {1000 if default else collect_rows.COLLECTOR_WAL_AUTOCHECKPOINT_PAGES}"
            )
            t0, c0 = time.perf_counter(), time.thread_time()
            conn.execute("BEGIN IMMEDIATE")
            if variant == "executemany":
                params = sorted((r.params for r in rows), key=lambda p: p[1])
                conn.executemany(collect_rows.INSERT_COLLECTED, params)
                n = len(params)
            else:
                n = collect_rows.insert_snapshots(conn, rows, keys=keys)
            t1 = time.perf_counter()
            conn.execute("COMMIT")
            t2, c2 = time.perf_counter(), time.thread_time()
            collect_rows.checkpoint_after_commit(conn)
            t3 = time.perf_counter()
            out[variant].append((n / (t2 - t0), n / max(1e-9, c2 - c0), t2 - t1, t3 - t2))
    conn.close()
    return out


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
    ap.add_argument("--collector-only", action="store_true", help="only part 1b, the collector's write path")
    args = ap.parse_args()
    rng = random.Random(7)
    tokens = [str(10**75 + rng.randrange(9 * 10**76)) for _ in range(args.tokens)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_snap_"))
    med = statistics.median
    print(f"machine load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        # 1. inserts, levels as BookLevels and as text
        for text in () if args.collector_only else (False, True):
            cycles = [
                make_rows(tokens, T0 + 300 * c, random.Random(c), text=text) for c in range(args.cycles)
            ]
            path = tmp / f"insert_{'text' if text else 'levels'}.db"
            _new_db(path)
            rates, cpu = insert_cycles(path, cycles)
            print(
                f"inserts, levels as {'text' if text else 'BookLevels'}: {args.cycles} cycles × {args.tokens:,} rows, "
                f"one transaction each, encoding and commit included — median {med(rates):,.0f} rows/s "
                f"(first {rates[0]:,.0f}, last {rates[-1]:,.0f}; ≥ 200,000: "
                f"{'OK' if med(rates) >= 200_000 else 'MISSED'} — the generic path of backfills and tools; the "
                f"issue's target is the collector's, below); per CPU second {med(cpu):,.0f} rows/s",
                flush=True,
            )
        # 1b. the collector's write path (issue 16's target: a cycle's inserts incl. the commit)
        path = tmp / "collector.db"
        _new_db(path)
        got = collector_path(path, tokens, max(2, args.cycles // 2))
        print(
            f"the collector's write path (collect.snapshot_rows.insert_snapshots; rows built beforehand as the book "
            f"threads build them, not timed), {args.tokens:,} rows a cycle, variants alternated cycle by cycle, "
            f"load average {os.getloadavg()[0]:.1f}:",
            flush=True,
        )
        for variant, what in COLLECTOR_VARIANTS.items():
            v = got[variant]
            rate = med([x[0] for x in v])
            verdict = (
                f"; target ≥ 200,000: {'OK' if rate >= 200_000 else 'MISSED'}"
                if variant == "the collector's"
                else ""
            )
            print(
                f"  {variant} ({what}): insert + COMMIT median {rate:,.0f} rows/s, per CPU second "
                f"{med([x[1] for x in v]):,.0f}; COMMIT {med([x[2] for x in v]):.3f} s, then the checkpoint "
                f"{med([x[3] for x in v]):.3f} s{verdict}",
                flush=True,
            )
        if args.collector_only:
            return
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
