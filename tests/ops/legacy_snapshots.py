"""A database made by commit 15cb2c7's schema (tests/ops/data/schema_15cb2c7.sql), filled with
market snapshots of every shape the old layout held, for the migration tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_15CB2C7 = Path(__file__).resolve().parent / "data" / "schema_15cb2c7.sql"
START = 1_767_225_600  # 2026-01-01 00:00 UTC

INSERT = (
    "INSERT INTO market_snapshots (timestamp, token_id, market_id, best_bid, best_ask, mid, spread, "
    "last_trade_price, bid_depth, ask_depth, bids, asks, volume_24h, liquidity, source) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def token(market: int, side: int) -> str:
    """A 77-digit token id, like Polymarket's."""
    s = f"{side + 1}{market:04d}"
    return s + str(7 * market + 3 * side) * 80


def varied_row(step: int, market: int, side: int) -> tuple:
    """One snapshot; the shape cycles through everything the old layout stored."""
    ts = START + step * 300
    tok, mkt = token(market, side)[:77], f"0xmarket{market}"
    kind = (step * 7 + market * 3 + side) % 12
    b = round(0.05 + ((step * 13 + market * 5 + side) % 80) / 100, 2)
    a = round(b + 0.01 * (1 + step % 3), 2)
    sizes = [(step * 31 + market * 17 + i * 11) % 900 + 1 for i in range(6)]
    bids = f"{b:.2f}:{sizes[0]},{b - 0.01:.2f}:{sizes[1]}.5,{b - 0.02:.2f}:{sizes[2]}"
    asks = f"{a:.2f}:{sizes[3]},{a + 0.01:.2f}:{sizes[4]},{a + 0.02:.2f}:{sizes[5]}.25"
    bdep, adep = sizes[0] + sizes[1] + 0.5 + sizes[2], sizes[3] + sizes[4] + sizes[5] + 0.25
    mid, spread = round((a + b) / 2, 6), round(a - b, 6)
    base = [ts, tok, mkt, b, a, mid, spread, b + 0.005, bdep, adep, bids, asks, 12345.67, 890.0, "collected"]
    if kind == 1:  # one-sided: no bids
        base[3:7] = [None, a, None, None]
        base[8], base[10] = 0.0, ""
    elif kind == 2:  # empty book
        base[3:12] = [None, None, None, None, 0.33, 0.0, 0.0, "", ""]
    elif kind == 3:  # backfill: the history price, no book
        price = round(0.1 + step / 1000, 3)
        base[3:15] = [None, None, price, None, price, None, None, None, None, None, None, "backfill"]
    elif kind == 4:  # float noise in sums, 6-decimal sizes, the derived values as computed
        base[8], base[9] = 600.6000000000001, 0.1 + 0.2
        base[10] = f"{b:.2f}:200.123456,{b - 0.01:.2f}:400.476544"
        base[5], base[6] = (a + b) / 2, a - b
    elif kind == 5:  # off-grid prices (also in the levels: the float mode of the packing)
        base[3], base[4] = 0.123456789, 0.2345678901
        base[5], base[6] = (0.123456789 + 0.2345678901) / 2, 0.2345678901 - 0.123456789
        base[10] = "0.123456789:10,0.12:5.5"
        base[11] = "0.2345678901:1e-7"
    elif kind == 6:  # NULLs everywhere they were allowed
        base[7], base[12], base[13] = None, None, None
        base[5] = None  # a mid the collector did not store although both sides exist
    elif kind == 7:  # texts with trailing zeros and big sizes; one level and five levels
        base[10] = f"{b:.3f}:1000.0"
        base[11] = ",".join(f"{a + i / 100:.2f}:{123456789012 + i}.5" for i in range(5))
        base[9] = 617283945062.5
    elif kind == 8:  # volumes with sub-micro noise, negative zero, a mid that is not the midpoint
        base[12], base[13] = 1234567.8912345, -0.0
        base[5] = round(b, 2)
    elif kind == 9:  # spread with float noise (a - b kept as computed)
        base[6] = a - b
    return tuple(base)


def build(path: Path, *, steps: int = 30, markets: int = 4) -> list[tuple]:
    """Create the old database at ``path`` and fill it; returns the rows (in key order)."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_15CB2C7.read_text(encoding="utf-8"))
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO schema_migrations VALUES (?, ?, ?)", [(1, "checklist tables", START), (2, "ops", START)]
    )
    rows = [varied_row(t, m, s) for t in range(steps) for m in range(markets) for s in range(2)]
    for m in range(markets):
        conn.execute(
            "INSERT INTO markets (id, condition_id, question, token_ids, outcomes, tracked, first_seen, "
            'updated_at) VALUES (?, ?, ?, ?, \'["Yes","No"]\', 1, ?, ?)',
            (
                f"0xmarket{m}",
                f"0xc{m}",
                f"Market {m}?",
                f'["{token(m, 0)[:77]}","{token(m, 1)[:77]}"]',
                START,
                START,
            ),
        )
    conn.executemany(INSERT, rows)
    conn.commit()
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    return sorted(rows, key=lambda r: (r[0], r[1]))
