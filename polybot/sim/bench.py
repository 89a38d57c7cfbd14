"""``python -m polybot.sim.bench`` — time POST /books (500 tokens) on a big simulated world.

Prints figures only (no pass/fail): median and max wall time per request, measured
from the client side (request + server work + JSON decode), at a fixed sim time, with
the clock moving one second per call, and one minute per call.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import requests

from .server import start_simulator


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m polybot.sim.bench")
    ap.add_argument("--markets", type=int, default=5000)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with start_simulator(port=0, n_markets=args.markets) as h:
        print(
            f"world of {args.markets} markets / {len(h.sim.world.token_index)} tokens built in "
            f"{(time.perf_counter() - t0) * 1000:.0f} ms"
        )
        tokens = random.Random(1).sample(list(h.sim.world.token_index), args.tokens)
        body = [{"token_id": t} for t in tokens]
        session = requests.Session()
        session.post(h.clob_url + "/books", json=body).raise_for_status()
        for label, step in (("fixed sim time", 0), ("clock +1 s per call", 1), ("clock +60 s per call", 60)):
            times = []
            for _ in range(args.calls):
                if step:
                    h.sim.advance(step)
                t = time.perf_counter()
                r = session.post(h.clob_url + "/books", json=body)
                r.raise_for_status()
                n = len(r.json())
                times.append((time.perf_counter() - t) * 1000)
            print(
                f"POST /books x{n} ({label}): median {statistics.median(times):.1f} ms, "
                f"max {max(times):.1f} ms, {len(r.content) / 1024:.0f} KiB"
            )


if __name__ == "__main__":
    main()
