"""Benchmark: list markets through keyset pagination and fetch ~10,000 order books from
the simulator, sequentially and with overlapped batches. Prints figures only.

The simulator runs in a separate process (``python -m polybot.sim``) so it does not
share this process's GIL; ``--latency-ms`` adds a per-request delay to mimic a real
network round trip.

    .venv/bin/python benchmarks/bench_exchange_books.py [--markets 5000] [--tokens 10000] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from polybot.exchange.client import PolymarketClient  # noqa: E402


def start_sim(markets: int, latency_ms: int) -> tuple[subprocess.Popen, str]:
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
    if latency_ms:
        cmd += ["--faults", f"latency_ms={latency_ms}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if port_file.exists() and port_file.read_text().strip():
            return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the simulator did not start within 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--markets", type=int, default=5000)
    ap.add_argument("--tokens", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=int, default=0)
    args = ap.parse_args()
    proc, base = start_sim(args.markets, args.latency_ms)
    try:
        c = PolymarketClient(f"{base}/gamma", f"{base}/clob", f"{base}/data")
        t0 = time.perf_counter()
        markets = []
        for closed in (False, True):
            got, issues = c.list_markets(closed=closed)
            markets += got
        print(
            f"keyset listing: {len(markets)} markets in {time.perf_counter() - t0:.2f}s, "
            f"{c.stats.request_count} requests"
        )
        tokens = [t for m in markets for t in m.token_ids][: args.tokens]
        for workers in (1, 2, 4, 8):
            c.book_workers = workers
            c.reset_stats()
            t0 = time.perf_counter()
            books = c.get_books(tokens)
            dt = time.perf_counter() - t0
            st = c.stats
            print(
                f"books: {len(books)} of {len(tokens)} tokens, {workers} worker(s): {dt:.2f}s "
                f"wall ({st.request_count} POST /books, summed API time {st.total_seconds:.2f}s, "
                f"slowest call {st.slowest[0]:.2f}s)"
            )
        c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
