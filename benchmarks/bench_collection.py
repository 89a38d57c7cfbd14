"""Benchmark: one collection cycle of the whole universe against the local simulator,
compared with the bare HTTP floor. Prints figures only.

The simulator runs in a SEPARATE process (``python -m polybot.sim``) so it does not share
this process's GIL. Its default world has 52,100 markets, of which about 50,000 are open
(~100,000 outcome tokens): the size of the live Polymarket universe (issue 16). The
collector runs with ``max_markets: all`` and no volume/liquidity floor. For each round the
simulator clock is advanced 5 minutes (a new cycle) and we measure (the first cycle,
which creates every market and token key of a new database, is printed, not counted):

- the cycle: ``polybot.collect.cycle.collect_once`` (exchange clock, keyset listing of
  every open market, selection, batched POST /books on a few threads, lifecycle refresh,
  one transaction with every upsert and snapshot) — the same code cron runs;
- the floor: the same requests (GET /time, every keyset page, POST /books in batches of
  500) with a bare ``requests.Session``, one at a time, responses discarded (only the
  page cursor is cut out of the raw bytes);
- the insert rate: the cycle's snapshot rows ÷ (writing them + the COMMIT of the cycle's
  transaction, which also carries the market upserts), on a connection opened as
  ``collect_market_data.py`` opens it (``synchronous=NORMAL`` in WAL mode, the 64 MB page
  cache and the raised WAL auto-checkpoint of ``snapshot_rows.tune_for_bulk``); wall and main-thread
  CPU seconds. The WAL checkpoint that follows the commit (``snapshot_rows.checkpoint_after_commit``,
  off the commit but inside the cycle) is printed apart, with the rate it would give if
  counted too;
- the encoding cost per row (``codec.pack_levels`` of both sides, ``codec.encode``),
  re-measured on the cycle's stored rows (the collector packs on the book threads while
  the listing runs; ``codec.encode`` is inside the insert time above).

Targets (issue 16): cycle ≤ 60 s, ≤ 1.5x the floor, inserts ≥ 200k rows/s with the commit.

    .venv/bin/python benchmarks/bench_collection.py [--markets 52100] [--rounds 2] [--profile] [--script]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import yaml  # noqa: E402

from polybot import db  # noqa: E402
from polybot.collect import snapshot_rows  # noqa: E402
from polybot.collect.common import make_client  # noqa: E402
from polybot.collect.cycle import BOOK_WORKERS, collect_once  # noqa: E402
from polybot.config import load_config  # noqa: E402
from polybot.exchange.models import BookLevel, OrderBook  # noqa: E402
from polybot.snapshots import codec  # noqa: E402


def start_sim(markets: int) -> tuple[subprocess.Popen, str]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    cmd = [
        sys.executable,
        "-m",
        "polybot.sim",
        "--port",
        "0",
        "--markets",
        str(markets),
        "--speed",
        "0",
        "--port-file",
        str(port_file),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1200):
        if port_file.exists() and port_file.read_text().strip():
            return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the simulator did not start within 120 s")


def floor(base: str, tokens: list[str], order_by: str) -> tuple[float, int]:
    """The same requests as a cycle, bare and sequential; returns (seconds, requests)."""
    s = requests.Session()
    n = 0
    t0 = time.perf_counter()
    _ = s.get(f"{base}/clob/time").content  # read the body, as a client does
    n += 1
    cursor = None
    while True:
        params = {"limit": 100, "closed": "false", "order": order_by, "ascending": "false"}
        if cursor:
            params["after_cursor"] = cursor
        body = s.get(f"{base}/gamma/markets/keyset", params=params).content
        n += 1
        i = body.rfind(b'"next_cursor"')
        if i < 0:
            break
        j = body.index(b'"', body.index(b":", i) + 1) + 1
        cursor = body[j : body.index(b'"', j)].decode()
    for k in range(0, len(tokens), 500):
        _ = s.post(f"{base}/clob/books", json=[{"token_id": t} for t in tokens[k : k + 500]]).content
        n += 1
    dt = time.perf_counter() - t0
    s.close()
    return dt, n


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def encoding_cost(conn, ts: int) -> dict:
    """µs per row, on the cycle's stored rows rebuilt as books: the collector's row (both
    sides packed by snapshot_rows.pack_side and every value encoded: snapshot_rows.snapshot_row), and
    for comparison codec.pack_levels of both sides and codec.encode of the row."""
    rows = conn.execute(
        f"SELECT {', '.join(codec.COLUMNS)} FROM snapshot_values WHERE timestamp = ?", (ts,)
    ).fetchall()
    sides = [(codec.levels_of(r[10]), codec.levels_of(r[11])) for r in rows]
    books = [
        (
            SimpleNamespace(id=r[2], volume_24h=r[12], liquidity=r[13]),
            OrderBook(
                token_id=r[1],
                market="",
                timestamp_ms=0,
                bids=tuple(BookLevel(p, s) for p, s in b),
                asks=tuple(BookLevel(p, s) for p, s in a),
                last_trade_price=r[7],
            ),
        )
        for r, (b, a) in zip(rows, sides, strict=True)
    ]
    t0 = time.process_time()
    for m, book in books:
        snapshot_rows.snapshot_row(ts, m, book, 5)  # type: ignore[arg-type]
    row_s = time.process_time() - t0
    t0 = time.process_time()
    for b, a in sides:
        codec.pack_levels(b)
        codec.pack_levels(a)
    pack = time.process_time() - t0
    t0 = time.process_time()
    for i, r in enumerate(rows):
        codec.encode(r, i)
    encode = time.process_time() - t0
    n = max(1, len(rows))
    return {
        "rows": len(rows),
        "row_us": row_s / n * 1e6,
        "pack_us": pack / n * 1e6,
        "encode_us": encode / n * 1e6,
    }


def advance(base: str, seconds: int) -> None:
    requests.post(f"{base}/_sim/advance", json={"seconds": seconds}, timeout=30).raise_for_status()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=52_100, help="simulated world (about 96%% open)")
    ap.add_argument("--rounds", type=int, default=2, help="measured cycles (after the first)")
    ap.add_argument("--profile", action="store_true", help="cProfile one cycle (top 30 by own time)")
    ap.add_argument("--script", action="store_true", help="also run collect_market_data.py end to end")
    ap.add_argument(
        "--ab-checkpoint",
        action="store_true",
        help="A/B: every second round with SQLite's default wal_autocheckpoint (1,000 pages: the "
        "checkpoint inside the COMMIT, as before) — those rounds are printed, not counted",
    )
    args = ap.parse_args()
    t_start = time.perf_counter()
    proc, base = start_sim(args.markets)
    print(
        f"simulator: {args.markets:,} markets, separate process, started in "
        f"{time.perf_counter() - t_start:.1f} s"
    )
    ws = Path(tempfile.mkdtemp(prefix="bench_collection_"))
    try:
        (ws / "config.yaml").write_text(
            yaml.safe_dump(
                {
                    "paper_trading": True,
                    "capital": 500,
                    "log_level": "WARNING",
                    "polymarket": {
                        "base_url": f"{base}/clob",
                        "gamma_url": f"{base}/gamma",
                        "data_url": f"{base}/data",
                        "timeout_seconds": 30,
                    },
                    "collection": {"max_markets": "all", "min_volume_24h": 0, "min_liquidity": 0},
                }
            )
        )
        cfg = load_config(ws / "config.yaml", require_mode_secrets=False)
        db.initialize(cfg.database_path)
        conn = db.open_database(cfg, synchronous="NORMAL")  # as collect_market_data.py (cycle.run)
        snapshot_rows.tune_for_bulk(conn)
        client = make_client(cfg, book_workers=BOOK_WORKERS)
        cycles, floors, rates, ckpt_rates, cpu_rates = [], [], [], [], []
        tokens: list[str] = []
        for r in range(args.rounds * (2 if args.ab_checkpoint else 1) + 1):
            default_ckpt = args.ab_checkpoint and r > 0 and r % 2 == 0
            conn.execute(
                f"PRAGMA wal_autocheckpoint = {1000 if default_ckpt else snapshot_rows.COLLECTOR_WAL_AUTOCHECKPOINT_PAGES}"
            )
            advance(base, 300)
            s0, c0 = cpu_seconds(proc.pid), time.process_time()
            t0 = time.perf_counter()
            res = collect_once(cfg, conn, client, initial=False)
            dt = time.perf_counter() - t0
            s1, c1 = cpu_seconds(proc.pid), time.process_time()
            st = client.stats
            assert res.status == "ok", res.problems[:3]
            tokens = [
                row[0]
                for row in conn.execute(
                    "SELECT token_id FROM snapshot_values WHERE timestamp = ?", (res.cycle_ts,)
                )
            ]
            assert len(tokens) == res.snapshots, (len(tokens), res.snapshots)
            write_s = res.insert_seconds + res.commit_seconds
            rate = res.snapshots / write_s if write_s > 0 else float("inf")
            with_ckpt = res.snapshots / (write_s + res.checkpoint_seconds) if write_s > 0 else float("inf")
            fc0 = time.process_time()
            fl, nreq = floor(base, tokens, cfg.collection.order_by)
            fc1, s2 = time.process_time(), cpu_seconds(proc.pid)
            if r > 0 and not default_ckpt:  # the first cycle of a new database creates every key
                cycles.append(dt)
                floors.append(fl)
                rates.append(rate)
                ckpt_rates.append(with_ckpt)
                cpu_rates.append(res.snapshots / max(1e-9, res.insert_cpu_seconds + res.commit_cpu_seconds))
            print(
                f"{'first cycle (not counted)' if r == 0 else f'round {r}'}"
                f"{' [A/B: default wal_autocheckpoint 1000, not counted]' if default_ckpt else ''}: cycle {dt:.2f} s ({res.markets:,} markets, {res.snapshots:,} snapshots, "
                f"{st.request_count} requests; CPU: ours {c1 - c0:.2f} s, simulator {s1 - s0:.2f} s); "
                f"floor {fl:.2f} s ({nreq} requests; CPU: client {fc1 - fc0:.2f} s, simulator "
                f"{s2 - s1:.2f} s) → {dt / fl:.2f}x; inserts {res.snapshots:,} rows in "
                f"{res.insert_seconds:.3f} s (CPU {res.insert_cpu_seconds:.3f}) + commit "
                f"{res.commit_seconds:.3f} s (CPU {res.commit_cpu_seconds:.3f}) = {rate:,.0f} rows/s; "
                f"then the WAL checkpoint {res.checkpoint_seconds:.3f} s (CPU "
                f"{res.checkpoint_cpu_seconds:.3f}; busy, frames, checkpointed = {res.checkpoint}) → "
                f"{with_ckpt:,.0f} rows/s with it (the cycle's whole write transaction "
                f"{res.write_seconds:.2f} s); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                flush=True,
            )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if resource else 0.0
        enc = encoding_cost(conn, res.cycle_ts)
        print(
            f"encoding, CPU per row of the last cycle ({enc['rows']:,} rows): the collector's "
            f"snapshot_row (pack both sides + encode every value, on the book threads while the "
            f"listing runs) {enc['row_us']:.1f} µs; for comparison codec.pack_levels of both sides "
            f"{enc['pack_us']:.1f} µs + codec.encode {enc['encode_us']:.1f} µs"
        )
        if args.profile:
            advance(base, 300)
            prof = cProfile.Profile()
            prof.enable()
            collect_once(cfg, conn, client, initial=False)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        client.close()
        conn.close()
        med_c, med_f = statistics.median(cycles), statistics.median(floors)
        ratio = statistics.median(c / f for c, f in zip(cycles, floors, strict=True))
        med_rate = statistics.median(rates)

        def verdict(ok: bool) -> str:
            return "OK" if ok else "MISSED"

        print(f"peak memory of this process after the cycles (collector + floor client): {rss_mb:,.0f} MB")
        print(
            f"median: cycle {med_c:.2f} s, floor {med_f:.2f} s, ratio {ratio:.2f}x per round, "
            f"inserts {med_rate:,.0f} rows/s incl. commit ({statistics.median(ckpt_rates):,.0f} with the "
            f"checkpoint after it; {statistics.median(cpu_rates):,.0f} per CPU second of insert + commit); "
            f"best: cycle {min(cycles):.2f} s, floor {min(floors):.2f} s, ratio "
            f"{min(cycles) / min(floors):.2f}x; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print(
            f"targets (issue 16): cycle ≤ 60 s: {verdict(med_c <= 60)}; ≤ 1.5x the floor: "
            f"{verdict(ratio <= 1.5)}; inserts ≥ 200,000 rows/s including the commit: "
            f"{verdict(med_rate >= 200_000)} ({med_rate:,.0f})"
        )
        if args.script:
            advance(base, 300)
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, str(ROOT / "collect_market_data.py")],
                cwd=ws,
                capture_output=True,
                text=True,
                env={"PYTHONPATH": str(ROOT), "PATH": ""},
            )
            print(f"script end to end: {time.perf_counter() - t0:.2f} s — {r.stdout.strip()}")
        print(
            json.dumps(
                {
                    "markets": res.markets,
                    "snapshots": res.snapshots,
                    "cycle_s": round(med_c, 2),
                    "floor_s": round(med_f, 2),
                    "ratio": round(ratio, 2),
                    "best_ratio": round(min(cycles) / min(floors), 2),
                    "insert_rows_per_s": round(med_rate),
                    "insert_rows_per_s_with_checkpoint": round(statistics.median(ckpt_rates)),
                    "insert_rows_per_cpu_s": round(statistics.median(cpu_rates)),
                    "snapshot_row_us": round(enc["row_us"], 2),
                    "pack_us_per_row": round(enc["pack_us"], 2),
                    "encode_us_per_row": round(enc["encode_us"], 2),
                    "requests": st.request_count,
                    "peak_rss_mb": round(rss_mb),
                }
            )
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
