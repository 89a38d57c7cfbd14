"""Benchmark: the dashboard on a large database. Prints figures only.

Builds a database with 1,000,000 market snapshots (200 tracked markets × 2 outcomes × 2,500
five-minute cycles ≈ 8.7 days), 10,000 trades (half of them in the last 24 h), 86,400 performance
rows (30 days at one per 30 s), 1,000 alerts and 4 open positions; then serves it with the real
waitress server and times, over real HTTP with a logged-in session:

- ``GET /`` (the page, which embeds the whole state) and ``GET /api/state`` (what the page
  re-fetches every few seconds): min / median / p95 / max over ``--rounds`` requests;
- ``build_state`` in-process, per section, to show where the time goes;
- the query plans of the hot queries (each must use an index — no full scan of the snapshots).

The target is < 500 ms per request.

    .venv/bin/python benchmarks/bench_dashboard.py [--snapshots 1000000] [--trades 10000] [--rounds 20]
                                                   [--db PATH (reuse/keep the database)]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import yaml  # noqa: E402

from polybot import db  # noqa: E402
from polybot.config import load_config  # noqa: E402
from polybot.dashboard import (  # noqa: E402
    Secret,
    build_server,
    queries,  # noqa: E402
)

M = 1_000_000
PASSWORD = secrets.token_urlsafe(18)  # a fresh login secret for this run


def build_db(cfg, n_snapshots: int, n_trades: int, now: int) -> None:
    t0 = time.perf_counter()
    db.initialize(cfg.database_path)
    conn = db.connect(cfg.database_path, synchronous="OFF")
    rng = random.Random(7)
    n_markets = 200
    tokens = [(f"tok{m:03d}{o}", f"m{m:03d}") for m in range(n_markets) for o in "yn"]
    cycles = max(1, n_snapshots // len(tokens))
    with db.atomic(conn):
        for m in range(n_markets):
            conn.execute(
                "INSERT INTO markets(id, condition_id, question, token_ids, outcomes, tracked, liquidity, "
                "volume_24h, first_seen, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    f"m{m:03d}",
                    f"c{m}",
                    f"Benchmark market number {m}?",
                    f'["tok{m:03d}y","tok{m:03d}n"]',
                    '["Yes","No"]',
                    1,
                    rng.uniform(1e3, 1e6),
                    rng.uniform(1e3, 1e5),
                    now - 40 * 86400,
                    now,
                ),
            )
            for i, o in enumerate("yn"):
                conn.execute(
                    "INSERT INTO market_tokens VALUES (?,?,?,?)",
                    (f"tok{m:03d}{o}", f"m{m:03d}", ("Yes", "No")[i], i),
                )
    start = now - cycles * 300
    batch = []
    for c in range(cycles):
        ts = start + c * 300
        for tok, mid in tokens:
            bid = round(rng.uniform(0.05, 0.93), 3)
            batch.append(
                (
                    ts,
                    tok,
                    mid,
                    bid,
                    bid + 0.01,
                    bid + 0.005,
                    0.01,
                    bid,
                    100.0,
                    120.0,
                    f"{bid}:100",
                    f"{bid + 0.01}:120",
                    1000.0,
                    5000.0,
                )
            )
        if len(batch) >= 100_000 or c == cycles - 1:
            with db.atomic(conn):
                conn.executemany(
                    "INSERT INTO snapshot_values(timestamp, token_id, market_id, best_bid, best_ask, mid, "
                    "spread, last_trade_price, bid_depth, ask_depth, bids, asks, volume_24h, liquidity) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    batch,
                )
            batch = []
    with db.atomic(conn):
        trades = []
        for i in range(n_trades):
            tok, mid = tokens[rng.randrange(len(tokens))]
            ts = now - int((i / n_trades) * 2 * 86400)  # half in the last 24 h
            side = "BUY" if i % 2 else "SELL"
            price = rng.randrange(50_000, 950_000, 10_000)
            size = rng.randrange(5, 200) * M
            notional = price * size // M
            pnl = rng.randrange(-5 * M, 5 * M) if side == "SELL" else None
            trades.append(
                (
                    f"bench-{i}",
                    ts,
                    "paper",
                    "fill",
                    tok,
                    mid,
                    side,
                    price,
                    size,
                    notional,
                    10_000,
                    pnl,
                    "bench",
                    "benchmark",
                )
            )
        conn.executemany(
            "INSERT INTO trades(trade_id, timestamp, mode, kind, token_id, market_id, side, price_micro, "
            "size_micro, notional_micro, fee_micro, realized_pnl_micro, strategy, reason) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            trades,
        )
        for tok, mid in tokens[:4]:
            conn.execute(
                "INSERT INTO positions(mode, token_id, market_id, size_micro, cost_micro, opened_at, "
                "updated_at, status) VALUES (?,?,?,?,?,?,?,?)",
                ("paper", tok, mid, 100 * M, 45 * M, now - 3600, now, "open"),
            )
        eq = 500 * M
        perf = []
        for k in range(86_400):
            eq += rng.randrange(-20_000, 20_500)
            perf.append((now - (86_400 - k) * 30, "paper", eq, eq - 180 * M, 180 * M, 0, 0, 0, 4))
        conn.executemany(
            "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
            "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            perf,
        )
        conn.executemany(
            "INSERT INTO alerts(timestamp, level, key, message, status) VALUES (?,?,?,?,?)",
            [
                (now - k * 60, ("info", "warning", "critical")[k % 3], f"key{k % 7}", f"Alert {k}", "sent")
                for k in range(1000)
            ],
        )
        conn.execute(
            "INSERT INTO collection_cycles(started_at, cycle_ts, finished_at, status, markets, snapshots) "
            "VALUES (?,?,?,?,?,?)",
            (now - 300, start + (cycles - 1) * 300, now - 290, "ok", 200, 400),
        )
    conn.execute("ANALYZE")
    conn.close()
    n = cycles * len(tokens)
    print(
        f"built {cfg.database_path.name}: {n:,} snapshots, {n_trades:,} trades, 86,400 performance rows "
        f"in {time.perf_counter() - t0:.1f} s ({cfg.database_path.stat().st_size / 1e6:.0f} MB)"
    )


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return (
        f"min {xs[0] * 1000:6.1f} ms  median {statistics.median(xs) * 1000:6.1f} ms  "
        f"p95 {p95 * 1000:6.1f} ms  max {xs[-1] * 1000:6.1f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshots", type=int, default=1_000_000)
    ap.add_argument("--trades", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--db", type=Path, default=None, help="database file to build (or reuse if it exists)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_dashboard_"))
    db_path = args.db.resolve() if args.db else tmp / "polymarket.db"
    (tmp / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "database_path": str(db_path),
                "paper_trading": True,
                "capital": 500,
                "polymarket": {"base_url": "http://127.0.0.1:9", "timeout_seconds": 1, "max_retries": 1},
                "dashboard": {"refresh_seconds": 5},
            }
        ),
        encoding="utf-8",
    )
    cfg = load_config(tmp / "config.yaml", require_mode_secrets=False)
    now = int(time.time())
    if not db_path.exists():
        build_db(cfg, args.snapshots, args.trades, now)
    else:
        print(f"reusing {db_path}")
    conn = db.connect(db_path, readonly=True)
    counts = {
        t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("snapshot_values", "trades", "performance", "markets", "alerts")
    }
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))

    print("\nquery plans (hot queries):")
    plans = {
        "latest snapshot per token": "SELECT s.* FROM market_tokens mt LEFT JOIN snapshot_values s ON s.token_id = "
        "mt.token_id AND s.timestamp = (SELECT MAX(timestamp) FROM snapshot_values "
        "WHERE token_id = mt.token_id) WHERE mt.market_id IN ('m001','m002')",
        "latest bid of a position": "SELECT timestamp, best_bid FROM snapshot_values WHERE token_id = 'tok001y' AND "
        "best_bid IS NOT NULL ORDER BY timestamp DESC LIMIT 1",
        "last snapshot time": "SELECT MAX(timestamp) FROM snapshot_values",
        "trades of the last 24 h": f"SELECT * FROM trades WHERE timestamp >= {now - 86400} AND mode = 'paper' "
        f"ORDER BY timestamp DESC, id DESC LIMIT 200",
        "equity at a time": f"SELECT equity_micro FROM performance WHERE mode = 'paper' AND timestamp <= {now} "
        f"ORDER BY timestamp DESC, id DESC LIMIT 1",
    }
    for name, sql in plans.items():
        detail = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        print(f"  {name:28s} {detail}")

    print("\nbuild_state in-process, per section (median of 5):")
    perf_row = queries.latest_performance(conn, "paper")
    sections = {
        "pnl": lambda: queries.pnl_section(conn, cfg, now, perf_row),
        "chart + daily equity": lambda: queries.chart_section(conn, cfg, perf_row),
        "win rate": lambda: queries.win_rate_section(conn, "paper"),
        "positions": lambda: queries.positions_section(conn, cfg, now),
        "trades 24 h": lambda: queries.trades_section(conn, "paper", now),
        "markets": lambda: queries.markets_section(conn, cfg, now),
        "system": lambda: queries.system_section(conn, cfg, now),
        "alerts": lambda: queries.alerts_section(conn, now),
        "whole build_state": lambda: queries.build_state(cfg, conn, now=now),
    }
    for name, fn in sections.items():
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        print(f"  {name:22s} {statistics.median(ts) * 1000:7.1f} ms")
    conn.close()

    server, _ = build_server(cfg, "127.0.0.1", 0, secret=Secret(PASSWORD, is_token=False), health=False)
    server.start()
    try:
        s = requests.Session()
        page = s.get(server.url + "/login", timeout=30)
        import re

        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = s.post(
            server.url + "/login",
            data={"csrf": csrf, "password": PASSWORD},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302, r.status_code
        print(f"\nover HTTP (waitress, logged in), {args.rounds} requests each after one warm-up:")
        worst = 0.0
        for path in ("/", "/api/state"):
            s.get(server.url + path, timeout=60)
            ts, size = [], 0
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                resp = s.get(server.url + path, timeout=60)
                ts.append(time.perf_counter() - t0)
                assert resp.status_code == 200
                size = len(resp.content)
            worst = max(worst, max(ts))
            print(f"  GET {path:11s} {stats(ts)}  ({size / 1024:.0f} KiB)")
        print(
            f"\nslowest request {worst * 1000:.1f} ms — target < 500 ms: {'met' if worst < 0.5 else 'NOT met'}"
        )
    finally:
        server.stop()
    if not args.db:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
