"""``python collect_market_data.py --estimate-storage``: measured storage, projected per tier.

**Bytes per stored row** come from the real database, one figure per retention tier:

- ``dbstat`` gives the pages of ``market_snapshots`` (the compact table, no second index); one
  pass over the rows gives each row's SQLite record size, split into rows that hold book
  levels (**full depth**) and rows that do not (**top of book**: thinned rows, backfilled
  rows). The pages are shared out in proportion to the record sizes, so page overhead and
  free space are counted where they fall. With no top-of-book row yet, its figure is
  derived from the full rows' records without their book levels and depth sums (and without
  volume and liquidity on 11 rows in 12: the tier keeps them once an hour).
- **hourly bars**: the pages of ``snapshot_bars`` ÷ bars, once maintenance has made some.
- Without ``dbstat`` (an SQLite built without it): the database file ÷ rows.
- With no snapshot at all, or no bar yet: the figures of
  ``benchmarks/bench_retention_storage.py`` (:data:`BENCH_FULL_BYTES` and the others),
  printed as such.

**Projection** (:func:`project`), for the tracked set (the tracked markets and tokens of the
markets table, else ``collection.max_markets`` × 2 tokens) and for the whole universe (the
active markets of the markets table when it holds the universe — ``max_markets: all`` or at
least :data:`UNIVERSE_MIN_FROM_TABLE` active markets — else :data:`UNIVERSE_MARKETS` /
:data:`UNIVERSE_TOKENS`, Polymarket's count in December 2026): rows per day = tokens ×
cycles per day; each tier holds the rows (or bars) of the ages it covers (``maintenance:`` in
config.yaml: full depth to ``full_depth_days``, top of book to ``top_of_book_days``, bars to
``hourly_bar_days``, everything cut at ``snapshot_retention_days``); the steady state is their
sum, or growth per year when a tier keeps its data forever. The checklist's own estimate
(~10 MB/day of market data, ~5 MB/day of logs, ~50 KB/day of trades → ~20 MB/day,
~600 MB/month) and free disk are printed for comparison.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import db
from ..config import Config
from ..snapshots import codec
from .common import EXIT_OK, fmt_bytes, step_seconds

CHECKLIST_MARKET_MB_DAY = 10.0
CHECKLIST_LOGS_MB_DAY = 5.0
CHECKLIST_TRADES_MB_DAY = 0.05
CHECKLIST_TOTAL_MB_DAY = 20.0  # the checklist's own total ("~20MB per day = 600MB per month")
MB = 1_000_000
GB = 1_000_000_000
DAY = 86_400

# benchmarks/bench_retention_storage.py (400 tokens × 2 days, 0.01 tick, after VACUUM):
# bytes per row at full depth with 3 book levels a side, per extra level a side (both sides),
# per top-of-book row and per hourly bar. Used only where the database cannot be measured.
BENCH_FULL_BYTES = 75.4
BENCH_LEVEL_BYTES = 7.85  # 5 levels a side: 91.1 B
BENCH_TOB_BYTES = 30.9
BENCH_BAR_BYTES = 52.9
BENCH_LEVELS = 3

# The whole Polymarket universe (active markets / their outcome tokens), December 2026.
UNIVERSE_MARKETS = 46_500
UNIVERSE_TOKENS = 93_000
UNIVERSE_MIN_FROM_TABLE = 10_000  # fewer active markets stored: the table holds a selection


def _serial_size(col: str) -> str:
    """SQL: the bytes SQLite's record format gives the value of ``col``."""
    return (
        f"(CASE typeof({col}) WHEN 'null' THEN 0 WHEN 'real' THEN 8 "
        f"WHEN 'integer' THEN (CASE WHEN {col} IN (0, 1) THEN 0 "
        f"WHEN {col} BETWEEN -128 AND 127 THEN 1 WHEN {col} BETWEEN -32768 AND 32767 THEN 2 "
        f"WHEN {col} BETWEEN -8388608 AND 8388607 THEN 3 WHEN {col} BETWEEN -2147483648 AND 2147483647 THEN 4 "
        f"WHEN {col} BETWEEN -140737488355328 AND 140737488355327 THEN 6 ELSE 8 END) "
        f"ELSE length(CAST({col} AS BLOB)) END)"
    )


_ROW_COLUMNS = ("timestamp", "token_key", *codec.STORED)
_DEPTH_COLUMNS = ("bid_depth", "ask_depth", "bids", "asks")
# a record: its header (one byte per column + its own length) and the values; a cell adds the
# payload length and a 2-byte pointer
_RECORD = f"({len(_ROW_COLUMNS) + 1 + 3} + " + " + ".join(_serial_size(c) for c in _ROW_COLUMNS) + ")"
_DEPTH_BYTES = "(" + " + ".join(_serial_size(c) for c in _DEPTH_COLUMNS) + ")"
# volume and liquidity stay on one thinned row an hour (11 of 12 five-minute rows lose them)
_MARKET_BYTES = f"(({_serial_size('volume_24h')} + {_serial_size('liquidity')}) * 11.0 / 12)"
_HAS_DEPTH = "(bids IS NOT NULL OR asks IS NOT NULL OR bid_depth IS NOT NULL OR ask_depth IS NOT NULL)"


@dataclass
class Measured:
    """What the database holds, and the bytes per stored row of each tier."""

    rows: int = 0
    full_rows: int = 0
    tob_rows: int = 0
    collected: int = 0
    backfill: int = 0
    legacy_rows: int = 0
    bars: int = 0
    table_bytes: int | None = None  # market_snapshots pages (None: dbstat unavailable)
    bar_bytes: int | None = None
    full_bpr: float = BENCH_FULL_BYTES
    tob_bpr: float = BENCH_TOB_BYTES
    bar_bpb: float = BENCH_BAR_BYTES
    full_source: str = "benchmark figure"
    tob_source: str = "benchmark figure"
    bar_source: str = "benchmark figure"
    method: str = "benchmark figures (no snapshots yet)"
    file_bytes: int = 0
    free_bytes: int = 0


@dataclass
class Population:
    label: str
    markets: int
    tokens: int
    source: str  # where the counts come from


@dataclass
class TierSize:
    name: str
    lo: float  # ages in days this tier covers: [lo, hi)
    hi: float | None  # None: forever
    bytes_per_day: float  # bytes this tier takes per day of collection

    @property
    def ages(self) -> str:
        return f"{self.lo:g}–{self.hi:g} days" if self.hi is not None else f"{self.lo:g} days on"

    @property
    def total(self) -> float | None:
        """Steady-state bytes; None when the tier keeps its data forever."""
        return None if self.hi is None else self.bytes_per_day * (self.hi - self.lo)

    def after(self, days: float) -> float:
        """Bytes held after ``days`` days of collection."""
        end = days if self.hi is None else min(days, self.hi)
        return self.bytes_per_day * max(0.0, end - self.lo)


@dataclass
class Projection:
    population: Population
    rows_per_day: int
    bytes_per_day: float  # new full-depth data per day
    tiers: list[TierSize]

    @property
    def steady(self) -> float:
        return sum(t.total or 0.0 for t in self.tiers)

    @property
    def growth_per_year(self) -> float:
        return sum(t.bytes_per_day * 365 for t in self.tiers if t.total is None)

    def after(self, days: float) -> float:
        return sum(t.after(days) for t in self.tiers)


# ----------------------------------------------------------------------------- measuring
def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE name = ? AND type = 'table'", (name,)).fetchone()
        is not None
    )


def _dbstat(conn: sqlite3.Connection, name: str) -> int | None:
    try:
        row = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name = ?", (name,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return int(row[0] or 0)


def measure(cfg: Config, conn: sqlite3.Connection) -> Measured:
    path = Path(cfg.database_path)
    m = Measured()
    m.file_bytes = sum(p.stat().st_size for p in (path, Path(str(path) + "-wal")) if p.exists())
    m.free_bytes = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free
    levels = max(1, int(cfg.collection.depth_levels))
    m.full_bpr = BENCH_FULL_BYTES + BENCH_LEVEL_BYTES * (levels - BENCH_LEVELS)
    if _table_exists(conn, "market_snapshots_legacy"):
        m.legacy_rows = conn.execute("SELECT COUNT(*) FROM market_snapshots_legacy").fetchone()[0]
    if not _table_exists(conn, "market_snapshots"):
        return m
    (full, tob, collected, backfill, rec_full, rec_tob, rec_full_thin) = conn.execute(
        f"SELECT COALESCE(SUM({_HAS_DEPTH}), 0), COALESCE(SUM(NOT {_HAS_DEPTH}), 0), "
        "COALESCE(SUM(source = 0), 0), COALESCE(SUM(source = 1), 0), "
        f"COALESCE(SUM(CASE WHEN {_HAS_DEPTH} THEN {_RECORD} END), 0), "
        f"COALESCE(SUM(CASE WHEN NOT {_HAS_DEPTH} THEN {_RECORD} END), 0), "
        f"COALESCE(SUM(CASE WHEN {_HAS_DEPTH} THEN {_RECORD} - {_DEPTH_BYTES} - {_MARKET_BYTES} END), 0) "
        "FROM market_snapshots"
    ).fetchone()
    m.rows, m.full_rows, m.tob_rows, m.collected, m.backfill = full + tob, full, tob, collected, backfill
    m.bars = conn.execute("SELECT COUNT(*) FROM snapshot_bars").fetchone()[0]
    if m.rows:
        m.table_bytes = _dbstat(conn, "market_snapshots")
        if m.table_bytes is not None:
            scale = m.table_bytes / (rec_full + rec_tob)  # pages per record byte
            m.method = "dbstat (market_snapshots pages, shared out by record size)"
        else:
            scale = m.file_bytes / (rec_full + rec_tob)
            m.method = "database file size shared out by record size (dbstat unavailable)"
        if full:
            m.full_bpr, m.full_source = rec_full / full * scale, "measured"
        if tob:
            m.tob_bpr, m.tob_source = rec_tob / tob * scale, "measured"
        elif full:
            m.tob_bpr, m.tob_source = rec_full_thin / full * scale, "derived from the full rows"
    if m.bars:
        m.bar_bytes = _dbstat(conn, "snapshot_bars")
        if m.bar_bytes is not None:
            m.bar_bpb, m.bar_source = m.bar_bytes / m.bars, "measured"
    return m


# ----------------------------------------------------------------------------- populations
def populations(cfg: Config, conn: sqlite3.Connection) -> tuple[Population, Population]:
    """The tracked set and the whole universe (see the module docstring)."""
    cap = _market_cap(cfg)
    active_markets, active_tokens = conn.execute(
        "SELECT COUNT(DISTINCT m.id), COUNT(t.token_id) FROM markets m LEFT JOIN market_tokens t "
        "ON t.market_id = m.id WHERE m.active = 1 AND m.closed = 0"
    ).fetchone()
    if active_markets and (cap is None or active_markets >= UNIVERSE_MIN_FROM_TABLE):
        universe = Population(
            "whole universe", active_markets, active_tokens, "active markets in the database"
        )
    else:
        universe = Population(
            "whole universe", UNIVERSE_MARKETS, UNIVERSE_TOKENS, "Polymarket's count, December 2026"
        )
    markets, tokens = conn.execute(
        "SELECT COUNT(DISTINCT m.id), COUNT(t.token_id) FROM markets m LEFT JOIN market_tokens t "
        "ON t.market_id = m.id WHERE m.tracked = 1"
    ).fetchone()
    if markets:
        tracked = Population("tracked now", markets, tokens, "tracked markets in the database")
    elif cap is None:
        tracked = Population("tracked (all)", universe.markets, universe.tokens, "max_markets: all")
    else:
        tracked = Population("tracked (config)", cap, 2 * cap, "collection.max_markets × 2 tokens")
    return tracked, universe


def _market_cap(cfg: Config) -> int | None:
    """``collection.max_markets`` as a number; None for ``all``."""
    cap = cfg.collection.max_markets
    if isinstance(cap, str):  # "all" (issue 16)
        return None
    return int(cap)


# ----------------------------------------------------------------------------- projecting
def project(cfg: Config, m: Measured, pop: Population) -> Projection:
    """Each tier's ages and bytes for ``pop`` (the same boundaries as polybot/ops/retention.py)."""
    mt = cfg.maintenance
    rows_day = pop.tokens * (DAY // step_seconds(cfg))
    limit = float(mt.snapshot_retention_days) if mt.snapshot_retention_days else None

    def end(days: int) -> float | None:  # a tier boundary cut at the hard limit (0 days: none)
        x = float(days) if days else None
        if limit is None:
            return x
        return limit if x is None else min(x, limit)

    tiers = [
        TierSize("full depth", 0.0, end(mt.full_depth_days or mt.top_of_book_days), rows_day * m.full_bpr)
    ]
    if mt.full_depth_days and (limit is None or mt.full_depth_days < limit):
        tiers.append(
            TierSize("top of book", float(mt.full_depth_days), end(mt.top_of_book_days), rows_day * m.tob_bpr)
        )
    if mt.top_of_book_days and (limit is None or mt.top_of_book_days < limit):
        tiers.append(
            TierSize(
                "hourly bars",
                float(mt.top_of_book_days),
                end(mt.hourly_bar_days),
                pop.tokens * 24 * m.bar_bpb,
            )
        )
    return Projection(pop, rows_day, rows_day * m.full_bpr, tiers)


# ----------------------------------------------------------------------------- report
def _tier_cell(t: TierSize) -> str:
    if t.total is None:
        return f"+{fmt_bytes(t.bytes_per_day * 365)}/year"
    return fmt_bytes(t.total)


def report(
    m: Measured, cfg: Config, tracked: Projection, universe: Projection, *, disk_warn_gb: float = 5.0
) -> list[str]:
    lines = [f"Storage estimate for {cfg.database_path}"]
    if m.rows:
        lines.append(
            f"  Stored:              {m.rows:,} snapshot rows ({m.full_rows:,} full depth, {m.tob_rows:,} top of "
            f"book; {m.collected:,} collected, {m.backfill:,} backfill), {m.bars:,} hourly bars; file "
            f"{fmt_bytes(m.file_bytes)}"
        )
    else:
        lines.append(
            "  No snapshots yet: the figures below are benchmark figures (benchmarks/"
            "bench_retention_storage.py); run python collect_market_data.py --initial and estimate again "
            "after a few cycles."
        )
    if m.legacy_rows:
        lines.append(
            f"  {m.legacy_rows:,} rows from before the compact layout wait for python maintain_database.py "
            f"--migrate (not measured here)"
        )
    lines += [
        f"  Bytes per row:       full depth {m.full_bpr:,.1f} B ({m.full_source}), top of book {m.tob_bpr:,.1f} B "
        f"({m.tob_source}), hourly bar {m.bar_bpb:,.1f} B per bar ({m.bar_source})",
        f"  Measured with:       {m.method}",
        f"  Retention tiers:     {cfg.maintenance.describe_tiers()} (maintenance: in config.yaml)",
        "",
    ]
    pops = (tracked.population, universe.population)
    sizes = [f"{p.markets:,} markets, {p.tokens:,} tokens" for p in pops]
    w0 = 31
    w = max(24, *(len(x) for x in (*sizes, *(p.source for p in pops)))) + 2

    def row(label: str, a: str, b: str) -> str:
        return f"  {label:<{w0}}{a:>{w}}{b:>{w}}".rstrip()

    lines.append(row("", pops[0].label, pops[1].label))
    lines.append(row("", sizes[0], sizes[1]))
    lines.append(row("  counted from", pops[0].source, pops[1].source))
    lines.append(
        row(
            f"snapshots per day (every {cfg.collection.interval_minutes} min)",
            f"{tracked.rows_per_day:,}",
            f"{universe.rows_per_day:,}",
        )
    )
    lines.append(
        row(
            "new data per day (full depth)",
            fmt_bytes(tracked.bytes_per_day),
            fmt_bytes(universe.bytes_per_day),
        )
    )
    for i, t in enumerate(tracked.tiers):
        u = universe.tiers[i]
        lines.append(row(f"{t.name} ({t.ages})", _tier_cell(t), _tier_cell(u)))
    steady = [
        fmt_bytes(p.steady) + (f" + {fmt_bytes(p.growth_per_year)}/year" if p.growth_per_year else "")
        for p in (tracked, universe)
    ]
    lines.append(row("steady state", steady[0], steady[1]))
    lines.append(
        row(
            "after 1 month / 3 months",
            f"{fmt_bytes(tracked.after(30))} / {fmt_bytes(tracked.after(90))}",
            f"{fmt_bytes(universe.after(30))} / {fmt_bytes(universe.after(90))}",
        )
    )
    lines.append("")
    checklist = CHECKLIST_MARKET_MB_DAY * MB
    ratio = tracked.bytes_per_day / checklist if checklist else 0.0
    other_day = (CHECKLIST_LOGS_MB_DAY + CHECKLIST_TRADES_MB_DAY) * MB
    lines.append(
        f"  Checklist estimate:  ~{CHECKLIST_MARKET_MB_DAY:g} MB/day of market data (the tracked set is {ratio:.1f}x "
        f"that), ~{CHECKLIST_TOTAL_MB_DAY:g} MB/day with logs (~{CHECKLIST_LOGS_MB_DAY:g} MB/day) and trades "
        f"(~50 KB/day)"
    )
    need = tracked.after(90) + other_day * 90
    after = m.free_bytes - need
    verdict = "OK" if after >= disk_warn_gb * GB else "LOW"
    lines.append(
        f"  Free disk:           {fmt_bytes(m.free_bytes)} → {fmt_bytes(max(after, 0))} left after 3 months of the "
        f"tracked set with logs [{verdict}; the checklist wants > {disk_warn_gb:g} GB free]"
    )
    return lines


def run(cfg: Config, *, out: Callable[[str], None] = print) -> int:
    conn = db.open_database(cfg, readonly=True)
    try:
        m = measure(cfg, conn)
        tracked_pop, universe_pop = populations(cfg, conn)
    finally:
        conn.close()
    tracked, universe = project(cfg, m, tracked_pop), project(cfg, m, universe_pop)
    for line in report(m, cfg, tracked, universe, disk_warn_gb=cfg.health.disk_warn_gb):
        out(line)
    return EXIT_OK
