"""Benchmark: Telegram's tables and /report on a large ledger. Prints figures only.

Builds a paper database with ``--perf`` performance rows (default 86,400: 30 days at one per
30 s, as the bot writes them), ``--trades`` trades over the same 30 days (half BUYs, half SELLs
with a realised P&L), 20 open positions with marks and 50 halts; then times each command through
:class:`polybot.notify.commands.CommandHandler` (what the listener thread runs; Telegram's HTTP is
not included): min / median / max over ``--rounds`` calls, and the size of /report's PNG.

A command must answer well inside the listener's 60 s budget (HANDLER_TIMEOUT); the target is
< 1 s for a table and < 5 s for /report.

    .venv/bin/python benchmarks/bench_telegram_tables.py [--perf 86400] [--trades 10000] [--rounds 5]
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

import yaml  # noqa: E402

from polybot import db  # noqa: E402
from polybot.config import load_config  # noqa: E402
from polybot.notify.commands import CommandHandler  # noqa: E402
from polybot.notify.tables import PhotoReply  # noqa: E402

M = 1_000_000
DAY = 86_400


def build(root: Path, n_perf: int, n_trades: int) -> CommandHandler:
    (root / "config.yaml").write_text(
        yaml.safe_dump({"paper_trading": True, "capital": 500, "database_path": "data/polymarket.db"}),
        encoding="utf-8",
    )
    cfg = load_config(root / "config.yaml", require_mode_secrets=False)
    db.initialize(cfg.database_path)
    now = int(time.time())
    start = now - 30 * DAY
    rng = random.Random(7)
    conn = db.connect(cfg.database_path)
    with db.atomic(conn):
        step = (30 * DAY) // max(n_perf, 1)
        eq = 500 * M
        rows = []
        for i in range(n_perf):
            eq += rng.randint(-200_000, 210_000)
            rows.append((start + i * step, eq, eq - 40 * M))
        conn.executemany(
            "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
            "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
            "VALUES (?, 'paper', ?, ?, 40000000, 0, 0, 0, 20)",
            rows,
        )
        trades = []
        for i in range(n_trades):
            ts = start + rng.randrange(30 * DAY)
            sell = i % 2 == 1
            pnl = rng.randint(-2 * M, 2 * M) if sell else None
            trades.append(
                (
                    f"b{i}",
                    ts,
                    f"tok{i % 200}",
                    f"m{i % 200}",
                    "SELL" if sell else "BUY",
                    500_000,
                    10 * M,
                    5 * M,
                    pnl,
                )
            )
        conn.executemany(
            "INSERT INTO trades(trade_id, timestamp, mode, token_id, market_id, side, price_micro, size_micro, "
            "notional_micro, fee_micro, realized_pnl_micro) VALUES (?, ?, 'paper', ?, ?, ?, ?, ?, ?, 0, ?)",
            trades,
        )
        for i in range(20):
            conn.execute(
                "INSERT INTO positions(mode, token_id, market_id, size_micro, cost_micro, opened_at, updated_at, "
                "group_key) VALUES ('paper', ?, ?, ?, ?, ?, ?, ?)",
                (f"open{i}", f"mo{i}", 10 * M, 2 * M, now - 3600, now, f"event:e{i % 4}"),
            )
            conn.execute(
                "INSERT INTO snapshot_values(timestamp, token_id, market_id, mid) VALUES (?, ?, ?, 0.21)",
                (now - 60, f"open{i}", f"mo{i}"),
            )
        for i in range(50):
            conn.execute(
                "INSERT INTO halts(timestamp, mode, breaker, reason, cleared_at, cleared_by) "
                "VALUES (?, 'paper', 'api_errors', 'too many API errors', ?, 'operator')",
                (start + i * 3600, start + i * 3600 + 60),
            )
    conn.close()
    return CommandHandler(cfg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--perf", type=int, default=86_400)
    p.add_argument("--trades", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        handler = build(Path(tmp), args.perf, args.trades)
        print(
            f"database: {args.perf:,} performance rows, {args.trades:,} trades ({time.perf_counter() - t0:.1f} s to build)"
        )
        for cmd in (
            "/trades 50",
            "/daily 30",
            "/weekly 8",
            "/balance",
            "/limits",
            "/halts 50",
            "/version",
            "/report",
        ):
            times = []
            size = 0
            for _ in range(args.rounds):
                t = time.perf_counter()
                reply = handler.handle(cmd, chat_id="1")
                times.append(time.perf_counter() - t)
                if isinstance(reply, PhotoReply):
                    size = len(reply.png or b"")
            extra = f", PNG {size / 1024:.0f} KiB" if size else ""
            print(
                f"{cmd:<12} min {min(times) * 1000:7.1f} ms  median {statistics.median(times) * 1000:7.1f} ms  "
                f"max {max(times) * 1000:7.1f} ms{extra}"
            )


if __name__ == "__main__":
    main()
