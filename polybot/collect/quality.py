"""``python data_quality_check.py [--hours N]``: the checklist's data quality checks.

Output (one ✓/✗ line per check, then the verdict; saved to
``reports/data_quality_YYYYMMDD_HHMMSS.txt``; exit 0 on PASS, 1 on FAIL)::

    ✓ No NULL values in critical fields
    ✓ Timestamps sequential
    ✓ Prices within bounds (0.01 to 0.99)
    ✓ No duplicate snapshots
    ✓ Data fresh (last update: 3 minutes ago)
    ✓ Coverage: 98% of target markets
    PASS: Data quality check passed

What each check means (scope: every snapshot, or the last N hours with ``--hours``):

- **NULL values in critical fields** — critical fields depend on ``source``:
  every row needs ``timestamp``, ``token_id``, ``market_id``, ``source``;
  ``collected`` rows need ``bids``, ``asks``, ``bid_depth``, ``ask_depth``,
  ``volume_24h``, ``liquidity`` and at least one of ``best_bid``/``best_ask`` (a book
  with one empty side has a NULL on that side and a NULL ``mid`` — that is the market,
  not a data fault); ``backfill`` rows need ``mid`` and ``last_trade_price`` (their
  bid/ask are NULL by design).
- **Timestamps sequential** — every timestamp is on the ``interval_minutes`` grid, none
  is in the future (exchange clock + one interval), and collection cycles never went
  back in time (``collection_cycles.cycle_ts`` never decreases from one successful run
  to the next).
- **Prices within bounds** — ``best_bid``, ``best_ask``, ``mid`` and ``last_trade_price``
  lie within [``collection.min_price``, ``collection.max_price``], widened to the
  exchange's own valid range [tick, 1 − tick] for markets whose tick is finer than a cent
  (a 0.001-tick long shot legitimately trades at 0.004); a resolved market's prices may
  be 0 or 1.
  A crossed book (best bid above best ask) is also out of bounds. Backfilled rows hold
  the exchange's *displayed* price history (a model price, not an order price: it can
  sit between 0 and the tick, e.g. 0.0099), so they are only required to lie in [0, 1].
- **No duplicate snapshots** — at most one row per token per grid cell (the primary key
  forbids exact duplicates; this catches off-grid near-duplicates too).
- **Data fresh** — the newest collected snapshot is younger than
  ``collection.freshness_minutes`` by the exchange clock (local clock if the exchange is
  unreachable).
- **Coverage** — tracked markets with a snapshot within ``freshness_minutes`` divided by
  all tracked markets, at least ``collection.min_coverage``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import db
from ..config import Config
from ..timefmt import file_stamp, iso_seconds
from .common import exchange_now, plural, step_seconds
from .verify import latest_per_tracked_market

EMPTY_MESSAGE = "no snapshots yet — run python collect_market_data.py --initial"


@dataclass
class Check:
    ok: bool
    text: str
    reason: str = ""  # short phrase for the FAIL line
    detail: str = ""  # extra lines for the saved report

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.text}"


def _scope(hours: float, now: int) -> tuple[str, tuple]:
    if hours and hours > 0:
        return " AND s.timestamp >= ?", (int(now - hours * 3600),)
    return "", ()


def check_nulls(conn: sqlite3.Connection, where: str, args: tuple) -> Check:
    row = conn.execute(
        "SELECT "
        " SUM(CASE WHEN s.market_id IS NULL OR s.source IS NULL THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN s.source = 'collected' AND (s.bids IS NULL OR s.asks IS NULL OR s.bid_depth IS NULL"
        "   OR s.ask_depth IS NULL OR s.volume_24h IS NULL OR s.liquidity IS NULL"
        "   OR (s.best_bid IS NULL AND s.best_ask IS NULL)) THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN s.source = 'backfill' AND (s.mid IS NULL OR s.last_trade_price IS NULL)"
        "   THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN s.source NOT IN ('collected', 'backfill') THEN 1 ELSE 0 END) "
        f"FROM snapshot_values s WHERE 1 = 1{where}",
        args,
    ).fetchone()
    common, collected, backfill, unknown = (int(x or 0) for x in row)
    bad = common + collected + backfill + unknown
    if not bad:
        return Check(True, "No NULL values in critical fields")
    parts = [
        f"{n:,} {what}"
        for n, what in (
            (collected, "collected rows"),
            (backfill, "backfill rows"),
            (common, "rows without market/source"),
            (unknown, "rows with an unknown source"),
        )
        if n
    ]
    return Check(
        False,
        f"NULL values in critical fields: {', '.join(parts)}",
        f"{plural(bad, 'snapshot')} with NULL critical fields",
    )


def check_sequential(conn: sqlite3.Connection, where: str, args: tuple, *, step: int, now: int) -> Check:
    off_grid, future = conn.execute(
        f"SELECT SUM(CASE WHEN s.timestamp % ? != 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN s.timestamp > ? THEN 1 ELSE 0 END) FROM snapshot_values s WHERE 1 = 1{where}",
        (step, now + step, *args),
    ).fetchone()
    off_grid, future = int(off_grid or 0), int(future or 0)
    backwards = 0
    prev: int | None = None
    for (ts,) in conn.execute(
        "SELECT cycle_ts FROM collection_cycles WHERE kind IN ('cycle', 'initial') "
        "AND status IN ('ok', 'partial') ORDER BY started_at, id"
    ):
        if prev is not None and ts < prev:
            backwards += 1
        prev = ts if prev is None else max(prev, ts)
    if not (off_grid or future or backwards):
        return Check(True, "Timestamps sequential")
    parts = []
    if off_grid:
        parts.append(f"{off_grid:,} off the {step // 60}-minute grid")
    if future:
        parts.append(f"{future:,} in the future")
    if backwards:
        parts.append(f"{backwards:,} cycle(s) went back in time")
    return Check(False, f"Timestamps not sequential: {', '.join(parts)}", "timestamps not sequential")


def check_bounds(conn: sqlite3.Connection, where: str, args: tuple, *, lo: float, hi: float) -> Check:
    # sub-cent tick markets: their exchange range [tick, 1 - tick] widens the band
    low = "(CASE WHEN m.tick_size < 0.01 THEN MIN(?, m.tick_size) ELSE ? END)"
    high = "(CASE WHEN m.tick_size < 0.01 THEN MAX(?, 1 - m.tick_size) ELSE ? END)"
    cols = ("best_bid", "best_ask", "mid", "last_trade_price")
    collected = " OR ".join(f"(s.{c} IS NOT NULL AND (s.{c} < {low} OR s.{c} > {high}))" for c in cols)
    anyrow = " OR ".join(f"(s.{c} IS NOT NULL AND (s.{c} < 0 OR s.{c} > 1))" for c in cols)
    params: list = []
    for _ in cols:
        params += [lo, lo, hi, hi]
    sql = (
        f"SELECT s.timestamp, s.token_id, s.best_bid, s.best_ask, s.mid, s.last_trade_price, "
        f"m.payouts IS NOT NULL AS resolved FROM snapshot_values s LEFT JOIN markets m "
        f"ON m.id = s.market_id WHERE ((s.source = 'collected' AND ({collected})) OR ({anyrow}) "
        f"OR (s.best_bid > s.best_ask)){where}"
    )
    bad = []
    for ts, token, bb, ba, mid, ltp, resolved in conn.execute(sql, (*params, *args)):
        crossed = bb is not None and ba is not None and bb > ba
        if resolved and not crossed and all(p is None or 0.0 <= p <= 1.0 for p in (bb, ba, mid, ltp)):
            continue
        bad.append((ts, token, bb, ba, mid, ltp))
    label = f"Prices within bounds ({lo:g} to {hi:g})"
    if not bad:
        return Check(True, label)
    ts, token, bb, ba, mid, ltp = bad[0]
    example = f"token …{token[-8:]} at {iso_seconds(ts)}: bid {bb}, ask {ba}, mid {mid}, last {ltp}"
    return Check(
        False,
        f"Prices outside bounds ({lo:g} to {hi:g}): {plural(len(bad), 'snapshot')}, e.g. {example}",
        f"{plural(len(bad), 'price')} out of bounds",
        "\n".join(
            f"  {iso_seconds(r[0])} {r[1]} bid={r[2]} ask={r[3]} mid={r[4]} last={r[5]}" for r in bad[:50]
        ),
    )


def check_duplicates(conn: sqlite3.Connection, where: str, args: tuple, *, step: int) -> Check:
    n = conn.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM snapshot_values s WHERE 1 = 1{where} "
        f"GROUP BY s.token_id, s.timestamp / ? HAVING COUNT(*) > 1)",
        (*args, step),
    ).fetchone()[0]
    if not n:
        return Check(True, "No duplicate snapshots")
    return Check(
        False,
        f"Duplicate snapshots: {plural(n, 'token-cycle')} with more than one row",
        f"{plural(n, 'duplicate snapshot')}",
    )


def _ago(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours ago"
    return f"{hours // 24} days ago"


def check_fresh(conn: sqlite3.Connection, *, now: int, limit_minutes: float) -> Check:
    last = conn.execute("SELECT MAX(timestamp) FROM snapshot_values WHERE source = 'collected'").fetchone()[
        0
    ]
    if last is None:
        return Check(False, "Data fresh: no collected snapshot yet", "no collected snapshot yet")
    age = now - last
    if age < limit_minutes * 60:
        return Check(True, f"Data fresh (last update: {_ago(age)})")
    return Check(
        False,
        f"Data stale (last update: {_ago(age)}; limit {limit_minutes:g} minutes)",
        f"data stale (last update: {_ago(age)})",
    )


def check_coverage(
    conn: sqlite3.Connection, *, now: int, freshness_minutes: float, min_coverage: float
) -> Check:
    latest = latest_per_tracked_market(conn)
    if not latest:
        return Check(False, "Coverage: no tracked markets", "no tracked markets")
    since = now - freshness_minutes * 60
    covered = sum(1 for _, last in latest.values() if last is not None and last >= since)
    cov = covered / len(latest)
    pct = int(cov * 100 + 1e-9)
    text = f"Coverage: {pct}% of target markets"
    if cov >= min_coverage:
        return Check(True, text)
    missing = [f"  {mid} {q}" for mid, (q, last) in latest.items() if last is None or last < since]
    return Check(
        False,
        f"{text} ({covered} of {len(latest)}; minimum {min_coverage:.0%})",
        f"coverage {pct}% < {min_coverage:.0%}",
        "\n".join(missing[:100]),
    )


def run_checks(conn: sqlite3.Connection, cfg: Config, *, now: int, hours: float = 0) -> list[Check]:
    cc = cfg.collection
    step = step_seconds(cfg)
    where, args = _scope(hours, now)
    return [
        check_nulls(conn, where, args),
        check_sequential(conn, where, args, step=step, now=now),
        check_bounds(conn, where, args, lo=cc.min_price, hi=cc.max_price),
        check_duplicates(conn, where, args, step=step),
        check_fresh(conn, now=now, limit_minutes=cc.freshness_minutes),
        check_coverage(conn, now=now, freshness_minutes=cc.freshness_minutes, min_coverage=cc.min_coverage),
    ]


def save_report(
    cfg: Config,
    lines: list[str],
    checks: list[Check],
    *,
    now: int,
    clock: str,
    hours: float,
    wall: float | None = None,
) -> Path:
    from ..db import ensure_private_dir

    wall = time.time() if wall is None else wall
    stamp = file_stamp(wall)
    report_dir = ensure_private_dir(Path(cfg.report_dir))
    path = report_dir / f"data_quality_{stamp}.txt"
    n = 1
    while path.exists():
        path = report_dir / f"data_quality_{stamp}_{n}.txt"
        n += 1
    head = [
        f"Data quality check — {iso_seconds(wall)} (checks against {clock} clock {iso_seconds(now)})",
        f"Database: {cfg.database_path}",
        f"Scope: {'last ' + format(hours, 'g') + ' hours' if hours else 'all snapshots'}",
        "",
    ]
    details = []
    for c in checks:
        if c.detail:
            details += ["", f"Details — {c.text}:", c.detail]
    path.write_text("\n".join(head + lines + details) + "\n", encoding="utf-8")
    return path


def run(cfg: Config, *, hours: float = 0, out: Callable[[str], None] = print) -> int:
    now, clock = exchange_now(cfg)
    conn = db.open_database(cfg, readonly=True)
    try:
        empty = conn.execute("SELECT 1 FROM snapshot_values LIMIT 1").fetchone() is None
        checks = [] if empty else run_checks(conn, cfg, now=now, hours=hours)
    finally:
        conn.close()
    if empty:
        lines = [f"✗ No snapshots in {cfg.database_path}", f"FAIL: {EMPTY_MESSAGE}"]
    else:
        lines = [c.line() for c in checks]
        failed = [c.reason for c in checks if not c.ok]
        lines.append("PASS: Data quality check passed" if not failed else f"FAIL: {'; '.join(failed)}")
    for line in lines:
        out(line)
    path = save_report(cfg, lines, checks, now=now, clock=clock, hours=hours)
    out(f"Report saved: {path}")
    return 0 if not empty and all(c.ok for c in checks) else 1
