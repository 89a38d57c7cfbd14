"""``python collect_market_data.py --estimate-storage``: measured storage growth.

Bytes per snapshot come from the real database: ``dbstat`` (pages of the
``snapshot_values`` table and its index) when SQLite has it, else the file size
divided by the row count. Snapshots per day = tracked tokens × cycles per day. The
projection (1 and 3 months) is compared with free disk space and with the operator
checklist's estimate (~10 MB/day of market data, ~5 MB/day of logs, ~50 KB/day of
trades → ~20 MB/day, ~600 MB/month).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import db
from ..config import Config
from .common import EXIT_OK, fmt_bytes, step_seconds

CHECKLIST_MARKET_MB_DAY = 10.0
CHECKLIST_LOGS_MB_DAY = 5.0
CHECKLIST_TRADES_MB_DAY = 0.05
CHECKLIST_TOTAL_MB_DAY = 20.0  # the checklist's own total ("~20MB per day = 600MB per month")
SNAPSHOT_OBJECTS = ("snapshot_values", "idx_snapshots_token_time")
MB = 1_000_000
GB = 1_000_000_000


@dataclass
class StorageEstimate:
    rows: int
    collected: int
    backfill: int
    table_bytes: int | None  # None when dbstat is unavailable
    index_bytes: int | None
    method: str
    bytes_per_row: float
    tracked_markets: int
    tracked_tokens: int
    per_day_rows: int
    file_bytes: int
    free_bytes: int

    @property
    def per_day_bytes(self) -> float:
        return self.bytes_per_row * self.per_day_rows

    def projected(self, days: int) -> float:
        return self.per_day_bytes * days


def _dbstat(conn: sqlite3.Connection) -> dict[str, int] | None:
    try:
        rows = conn.execute(
            f"SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ({','.join('?' * len(SNAPSHOT_OBJECTS))}) "
            f"GROUP BY name",
            SNAPSHOT_OBJECTS,
        ).fetchall()
    except sqlite3.DatabaseError:
        return None
    return {r[0]: int(r[1] or 0) for r in rows}


def measure(cfg: Config, conn: sqlite3.Connection) -> StorageEstimate:
    path = Path(cfg.database_path)
    file_bytes = sum(p.stat().st_size for p in (path, Path(str(path) + "-wal")) if p.exists())
    counts = dict(conn.execute("SELECT source, COUNT(*) FROM snapshot_values GROUP BY source"))
    rows = sum(counts.values())
    stat = _dbstat(conn)
    table: int | None
    index: int | None
    if stat is not None and rows:
        table, index = stat.get(SNAPSHOT_OBJECTS[0], 0), stat.get(SNAPSHOT_OBJECTS[1], 0)
        per_row = (table + index) / rows
        method = "dbstat (table + index pages)"
    else:
        table = index = None
        per_row = file_bytes / rows if rows else 0.0
        method = "database file size / rows (dbstat unavailable)"
    tracked_markets = conn.execute("SELECT COUNT(*) FROM markets WHERE tracked = 1").fetchone()[0]
    tracked_tokens = conn.execute(
        "SELECT COUNT(*) FROM market_tokens t JOIN markets m ON m.id = t.market_id WHERE m.tracked = 1"
    ).fetchone()[0]
    cycles_per_day = 86_400 // step_seconds(cfg)
    free = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free
    return StorageEstimate(
        rows=rows,
        collected=counts.get("collected", 0),
        backfill=counts.get("backfill", 0),
        table_bytes=table,
        index_bytes=index,
        method=method,
        bytes_per_row=per_row,
        tracked_markets=tracked_markets,
        tracked_tokens=tracked_tokens,
        per_day_rows=tracked_tokens * cycles_per_day,
        file_bytes=file_bytes,
        free_bytes=free,
    )


def report(est: StorageEstimate, cfg: Config, *, disk_warn_gb: float = 5.0) -> list[str]:
    lines = [f"Storage estimate for {cfg.database_path}"]
    if not est.rows:
        lines.append(
            "  No snapshots yet — run python collect_market_data.py --initial, then "
            "estimate again after a few cycles."
        )
        lines.append(f"  Free disk: {fmt_bytes(est.free_bytes)}")
        return lines
    split = ""
    if est.table_bytes is not None and est.index_bytes is not None:  # both from dbstat, or neither
        split = f" (table {est.table_bytes / est.rows:,.0f} B + index {est.index_bytes / est.rows:,.0f} B)"
    lines += [
        f"  Snapshots stored:    {est.rows:,} ({est.collected:,} collected, {est.backfill:,} backfill)",
        f"  Bytes per snapshot:  {est.bytes_per_row:,.0f} B{split}, measured with {est.method}",
        f"  Tracked now:         {est.tracked_markets:,} markets, {est.tracked_tokens:,} tokens → "
        f"{est.per_day_rows:,} snapshots/day (every {cfg.collection.interval_minutes} min)",
    ]
    day = est.per_day_bytes
    checklist_day = CHECKLIST_TOTAL_MB_DAY * MB
    ratio = day / (CHECKLIST_MARKET_MB_DAY * MB) if day else 0.0
    lines += [
        f"  Market data per day: {fmt_bytes(day)} (checklist estimate ~{CHECKLIST_MARKET_MB_DAY:g} MB/day; "
        f"measured is {ratio:.1f}x that)",
        f"  Projection, market data: 1 month {fmt_bytes(est.projected(30))}, "
        f"3 months {fmt_bytes(est.projected(90))}",
    ]
    other_day = (CHECKLIST_LOGS_MB_DAY + CHECKLIST_TRADES_MB_DAY) * MB
    total90 = est.projected(90) + other_day * 90
    lines += [
        f"  With logs (~{CHECKLIST_LOGS_MB_DAY:g} MB/day) and trades (~50 KB/day): "
        f"{fmt_bytes(day + other_day)}/day, 1 month {fmt_bytes((day + other_day) * 30)}, "
        f"3 months {fmt_bytes(total90)} (checklist: ~{fmt_bytes(checklist_day)}/day, "
        f"~{fmt_bytes(checklist_day * 30)}/month)",
        f"  Database file now:   {fmt_bytes(est.file_bytes)}",
    ]
    after = est.free_bytes - total90
    verdict = "OK" if after >= disk_warn_gb * GB else "LOW"
    lines.append(
        f"  Free disk:           {fmt_bytes(est.free_bytes)} → {fmt_bytes(max(after, 0))} "
        f"left after 3 months [{verdict}; the checklist wants > {disk_warn_gb:g} GB free]"
    )
    if cfg.maintenance.snapshot_retention_days:
        lines.append(
            f"  Retention: snapshots older than {cfg.maintenance.snapshot_retention_days} days "
            f"are pruned by maintain_database.py, so growth stops after that."
        )
    return lines


def run(cfg: Config, *, out: Callable[[str], None] = print) -> int:
    conn = db.open_database(cfg, readonly=True)
    try:
        est = measure(cfg, conn)
    finally:
        conn.close()
    for line in report(est, cfg, disk_warn_gb=cfg.health.disk_warn_gb):
        out(line)
    return EXIT_OK
