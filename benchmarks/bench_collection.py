"""Benchmark: one collection cycle over a large universe against the local simulator,
compared with the bare HTTP floor. Prints figures only.

The simulator runs in a SEPARATE process (``python -m polybot.sim``) so it does not share
this process's GIL. For each round the simulator clock is advanced 5 minutes (a new cycle)
and we measure:

- the cycle: ``polybot.collect.cycle.collect_once`` (exchange clock, keyset listing,
  selection, batched POST /books on a few threads, lifecycle refresh, one transaction with
  every upsert and snapshot) — the same code cron runs;
- the floor: the same requests (GET /time, every keyset page, POST /books in batches of
  500) with a bare ``requests.Session``, one at a time, responses discarded (only the
  page cursor is cut out of the raw bytes);
- the script end to end (``python collect_market_data.py`` as a subprocess, interpreter
  start-up included) once.

    .venv/bin/python benchmarks/bench_collection.py [--markets 5000] [--rounds 3] [--profile]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import yaml  # noqa: E402

from polybot import db  # noqa: E402
from polybot.collect.common import make_client  # noqa: E402
from polybot.collect.cycle import BOOK_WORKERS, collect_once  # noqa: E402
from polybot.config import load_config  # noqa: E402


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


def advance(base: str, seconds: int) -> None:
    requests.post(f"{base}/_sim/advance", json={"seconds": seconds}, timeout=30).raise_for_status()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile one cycle (top 25 by cumulative time)")
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
                    "collection": {"max_markets": args.markets, "min_volume_24h": 0, "min_liquidity": 0},
                }
            )
        )
        cfg = load_config(ws / "config.yaml", require_mode_secrets=False)
        db.initialize(cfg.database_path)
        conn = db.open_database(cfg, synchronous="NORMAL")
        client = make_client(cfg, book_workers=BOOK_WORKERS)
        cycles, floors = [], []
        tokens: list[str] = []
        for r in range(args.rounds):
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
            fc0 = time.process_time()
            fl, nreq = floor(base, tokens, cfg.collection.order_by)
            fc1, s2 = time.process_time(), cpu_seconds(proc.pid)
            cycles.append(dt)
            floors.append(fl)
            print(
                f"round {r + 1}: cycle {dt:.2f} s ({res.markets:,} markets, {res.snapshots:,} snapshots, "
                f"{st.request_count} requests; CPU: ours {c1 - c0:.2f} s, simulator {s1 - s0:.2f} s); "
                f"floor {fl:.2f} s ({nreq} requests; CPU: client {fc1 - fc0:.2f} s, simulator "
                f"{s2 - s1:.2f} s) → {dt / fl:.2f}x",
                flush=True,
            )
        if args.profile:
            advance(base, 300)
            prof = cProfile.Profile()
            prof.enable()
            collect_once(cfg, conn, client, initial=False)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        client.close()
        conn.close()
        med_c, med_f = statistics.median(cycles), statistics.median(floors)
        ratio = statistics.median(c / f for c, f in zip(cycles, floors, strict=True))
        print(
            f"median: cycle {med_c:.2f} s, floor {med_f:.2f} s, ratio {ratio:.2f}x per round; "
            f"best: cycle {min(cycles):.2f} s, floor {min(floors):.2f} s, ratio "
            f"{min(cycles) / min(floors):.2f}x (targets: ≤ 10 s, ≤ 1.5x); load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
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
                    "markets": args.markets,
                    "cycle_s": round(med_c, 2),
                    "floor_s": round(med_f, 2),
                    "ratio": round(ratio, 2),
                    "best_ratio": round(min(cycles) / min(floors), 2),
                    "requests": st.request_count,
                }
            )
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
