"""``python verify_data_collection.py [--hours N] [--list]``: is collection running, with no gaps?

Within the last N hours (default 24; 0 = everything), measured against the exchange
clock (the collector stamps snapshots with it):

- cycles seen: distinct collected cycle timestamps, and the ``collection_cycles`` rows by
  status (ok / partial / failed);
- snapshots per market (count, and the min / median / max over markets);
- gaps in the 5-minute grid: grid points between the first collected cycle and the
  latest one that should exist by now (a cycle gets :data:`GRACE` seconds to finish)
  with no snapshot at all — listed with start and end (a missed cycle that
  ``--backfill`` has since filled with prices is reported as filled, not as a gap);
- holes per market: grid points inside a token's own first..last range with no snapshot
  (collected or backfilled) — e.g. a market whose book was missing in a partial cycle;
- tracked markets with no snapshot within ``collection.freshness_minutes``.

Exit 0 when there is data and none of the last three problems; 1 otherwise.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import db
from ..config import Config
from ..timefmt import iso_seconds, utc_minute
from .backfill import runs_of
from .common import exchange_now, floor_ts, plural, step_seconds

GRACE = 120  # seconds a cycle may take before its grid point counts as missing
MAX_LISTED = 15


@dataclass
class VerifyReport:
    now: int
    clock: str
    lo: int
    step: int
    cycle_ts: list[int] = field(default_factory=list)  # distinct collected timestamps
    status_counts: dict[str, int] = field(default_factory=dict)
    failed_cycles: list[tuple[int, str]] = field(default_factory=list)
    per_market: list[tuple] = field(default_factory=list)  # (market_id, question, n, tokens)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    grid_span: tuple[int, int] = (0, 0)
    backfilled: int = 0  # grid points only backfill covers
    holes: list[tuple] = field(default_factory=list)  # (market_id, token, missing, first, last)
    stale: list[tuple] = field(default_factory=list)  # (market_id, question, last ts)
    tracked: int = 0
    total_rows: int = 0

    @property
    def empty(self) -> bool:
        return not self.total_rows and not self.cycle_ts

    @property
    def ok(self) -> bool:
        return not self.empty and not self.gaps and not self.holes and not self.stale


def analyse(conn: sqlite3.Connection, cfg: Config, *, now: int, clock: str, hours: float) -> VerifyReport:
    step = step_seconds(cfg)
    lo = -(-int(now - hours * 3600) // step) * step if hours > 0 else 0
    rep = VerifyReport(now=now, clock=clock, lo=lo, step=step)
    rep.cycle_ts = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT timestamp FROM snapshot_values WHERE timestamp >= ? AND source = 'collected' "
            "ORDER BY timestamp",
            (lo,),
        )
    ]
    for status, n in conn.execute(
        "SELECT status, COUNT(*) FROM collection_cycles WHERE cycle_ts >= ? AND kind IN ('cycle', 'initial') "
        "GROUP BY status",
        (lo,),
    ):
        rep.status_counts[status] = n
    rep.failed_cycles = [
        (r[0], r[1] or "")
        for r in conn.execute(
            "SELECT cycle_ts, error_detail FROM collection_cycles WHERE cycle_ts >= ? AND status = 'failed' "
            "AND kind IN ('cycle', 'initial') ORDER BY cycle_ts DESC LIMIT 5",
            (lo,),
        )
    ]

    # gaps in the global grid of collected cycles
    first_ever = conn.execute(
        "SELECT MIN(cycle_ts) FROM collection_cycles WHERE kind IN ('cycle', 'initial') "
        "AND status IN ('ok', 'partial')"
    ).fetchone()[0]
    if first_ever is None and rep.cycle_ts:
        first_ever = rep.cycle_ts[0]
    if first_ever is not None:
        start = max(lo, first_ever)
        last_expected = floor_ts(now - GRACE, step)
        end = max(last_expected, rep.cycle_ts[-1] if rep.cycle_ts else start)
        have = set(rep.cycle_ts)
        missing = [g for g in range(start, end + 1, step) if g not in have]
        if missing:  # grid points the backfill filled (prices only) are not gaps
            filled = {
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT timestamp FROM snapshot_values WHERE timestamp BETWEEN ? AND ? "
                    "AND source = 'backfill'",
                    (missing[0], missing[-1]),
                )
            }
            rep.backfilled = sum(1 for g in missing if g in filled)
            missing = [g for g in missing if g not in filled]
        rep.gaps = runs_of(missing, step)
        rep.grid_span = (start, end)

    # per-token series inside the window
    tokens = conn.execute(
        "SELECT token_id, market_id, COUNT(*), MIN(timestamp), MAX(timestamp) FROM snapshot_values "
        "WHERE timestamp >= ? GROUP BY token_id",
        (lo,),
    ).fetchall()
    rep.total_rows = sum(t[2] for t in tokens)
    questions = dict(conn.execute("SELECT id, question FROM markets"))
    by_market: dict[str, list] = {}
    for token, market, n, t_min, t_max in tokens:
        agg = by_market.setdefault(market, [0, 0])
        agg[0] += n
        agg[1] += 1
        expected = (t_max - t_min) // step + 1
        if n < expected:
            rep.holes.append((market, token, expected - n, t_min, t_max))
    rep.per_market = sorted(
        ((m, questions.get(m, "?"), a[0], a[1]) for m, a in by_market.items()), key=lambda r: (r[2], r[0])
    )
    rep.holes.sort(key=lambda h: (-h[2], h[0]))
    for h_i, (market, token, n_missing, t_min, t_max) in enumerate(rep.holes[:MAX_LISTED]):
        have = {
            r[0]
            for r in conn.execute(
                "SELECT timestamp FROM snapshot_values WHERE token_id = ? AND timestamp BETWEEN ? AND ?",
                (token, t_min, t_max),
            )
        }
        runs = runs_of([g for g in range(t_min, t_max + 1, step) if g not in have], step)
        rep.holes[h_i] = (
            market,
            token,
            n_missing,
            runs[0][0] if runs else t_min,
            runs[0][1] if runs else t_max,
        )

    # tracked markets with nothing recent
    fresh_from = now - int(cfg.collection.freshness_minutes * 60)
    tracked = latest_per_tracked_market(conn)
    rep.tracked = len(tracked)
    rep.stale = sorted(
        [(mid, q, last) for mid, (q, last) in tracked.items() if last is None or last < fresh_from],
        key=lambda r: (r[2] or 0, r[0]),
    )
    return rep


def latest_per_tracked_market(conn: sqlite3.Connection) -> dict[str, tuple[str, int | None]]:
    """market id -> (question, latest snapshot timestamp or None), tracked markets only.
    One indexed MAX per token (fast on a large table)."""
    out: dict[str, tuple[str, int | None]] = {}
    rows = conn.execute(
        "SELECT m.id, m.question, t.token_id FROM markets m LEFT JOIN market_tokens t "
        "ON t.market_id = m.id WHERE m.tracked = 1"
    ).fetchall()
    for mid, q, token in rows:
        last = None
        if token is not None:
            last = conn.execute(
                "SELECT MAX(timestamp) FROM snapshot_values WHERE token_id = ?", (token,)
            ).fetchone()[0]
        prev = out.get(mid, (q, None))[1]
        out[mid] = (q, max(x for x in (prev, last) if x is not None) if (prev or last) else None)
    return out


def _q(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _cycle_lines(rep: VerifyReport) -> list[str]:
    sc = rep.status_counts
    lines = []
    if rep.cycle_ts:
        lines.append(
            f"✓ Cycles seen: {len(rep.cycle_ts):,} (first {utc_minute(rep.cycle_ts[0])}, last "
            f"{utc_minute(rep.cycle_ts[-1])}); runs: {sc.get('ok', 0)} ok, "
            f"{sc.get('partial', 0)} partial, {sc.get('failed', 0)} failed"
        )
    else:
        lines.append(f"✗ Cycles seen: 0 collected in the window; runs: {sc.get('failed', 0)} failed")
    for ts, detail in rep.failed_cycles:
        lines.append(f"    failed {utc_minute(ts)}: {_q(detail, 100)}")
    return lines


def _snapshot_lines(rep: VerifyReport, list_all: bool) -> list[str]:
    counts = [r[2] for r in rep.per_market]
    if not counts:
        return []
    lines = [
        f"✓ Snapshots: {rep.total_rows:,} for {plural(len(rep.per_market), 'market')} — per "
        f"market min {min(counts):,}, median {statistics.median(counts):,.0f}, "
        f"max {max(counts):,}"
    ]
    shown = rep.per_market if list_all else rep.per_market[:5]
    if shown:
        lines.append("    " + ("snapshots per market:" if list_all else "fewest snapshots:"))
    for mid, q, n, ntok in shown:
        lines.append(f"    {n:>7,}  {mid:<12} {_q(q)} ({ntok} tokens)")
    return lines


def _grid_lines(rep: VerifyReport) -> list[str]:
    minutes = rep.step // 60
    lines = []
    if rep.gaps:
        lines.append(
            f"✗ {plural(len(rep.gaps), 'gap')} in the {minutes}-minute grid "
            f"({utc_minute(rep.grid_span[0])} → {utc_minute(rep.grid_span[1])}):"
        )
        for a, b in rep.gaps[:MAX_LISTED]:
            lines.append(
                f"    {iso_seconds(a)} → {iso_seconds(b)} ({plural((b - a) // rep.step + 1, 'cycle')} missing)"
            )
        if len(rep.gaps) > MAX_LISTED:
            lines.append(f"    … and {len(rep.gaps) - MAX_LISTED} more")
    elif rep.cycle_ts:
        n = (rep.grid_span[1] - rep.grid_span[0]) // rep.step + 1
        filled = (
            f"; {plural(rep.backfilled, 'cycle')} filled by backfill, prices only" if rep.backfilled else ""
        )
        lines.append(
            f"✓ No gaps in the {minutes}-minute grid ({plural(n, 'cycle')}, "
            f"{utc_minute(rep.grid_span[0])} → {utc_minute(rep.grid_span[1])}{filled})"
        )
    return lines


def _hole_lines(rep: VerifyReport) -> list[str]:
    if not rep.holes:
        return ["✓ No holes in any market's series"]
    lines = [f"✗ {plural(len(rep.holes), 'token')} with holes in their own series:"]
    for mid, token, n, a, b in rep.holes[:MAX_LISTED]:
        lines.append(
            f"    market {mid} token …{token[-8:]}: {n:,} missing, first hole {iso_seconds(a)} → {iso_seconds(b)}"
        )
    return lines


def _stale_lines(rep: VerifyReport, cfg: Config) -> list[str]:
    mins = cfg.collection.freshness_minutes
    if not rep.stale:
        return [f"✓ All {plural(rep.tracked, 'tracked market')} have a snapshot in the last {mins:g} minutes"]
    lines = [f"✗ {plural(len(rep.stale), 'tracked market')} with no snapshot in the last {mins:g} minutes:"]
    for mid, q, last in rep.stale[:MAX_LISTED]:
        lines.append(f"    {mid:<12} {_q(q)} (last {utc_minute(last) if last else 'never'})")
    return lines


def _verdict_line(rep: VerifyReport) -> str:
    if rep.ok:
        return "PASS: data collection is running with no gaps"
    reasons = []
    if rep.gaps:
        reasons.append(plural(len(rep.gaps), "gap"))
    if rep.holes:
        reasons.append(f"holes in {plural(len(rep.holes), 'token')}")
    if rep.stale:
        reasons.append(f"{plural(len(rep.stale), 'stale market')}")
    days = max(1, -(-int(rep.now - (rep.gaps[0][0] if rep.gaps else rep.lo)) // 86_400))
    return (
        f"FAIL: {', '.join(reasons)} — check the cron job and logs/cron.log; past gaps "
        f"can be filled (prices only) with python collect_market_data.py --backfill "
        f"--days {days}"
    )


def render(rep: VerifyReport, cfg: Config, *, hours: float, list_all: bool = False) -> list[str]:
    window = f"last {hours:g} h" if hours > 0 else "all data"
    clock = "exchange time" if rep.clock == "exchange" else "LOCAL time (exchange unreachable)"
    lines = [f"Data collection check — {window}, {clock} {iso_seconds(rep.now)}"]
    if rep.empty:
        lines.append("✗ No snapshots yet — run python collect_market_data.py --initial")
        lines.append("FAIL: no snapshots yet — run python collect_market_data.py --initial")
        return lines
    lines += _cycle_lines(rep)
    lines += _snapshot_lines(rep, list_all)
    lines += _grid_lines(rep)
    lines += _hole_lines(rep)
    lines += _stale_lines(rep, cfg)
    lines.append(_verdict_line(rep))
    return lines


def run(
    cfg: Config, *, hours: float = 24.0, list_all: bool = False, out: Callable[[str], None] = print
) -> int:
    now, clock = exchange_now(cfg)
    conn = db.open_database(cfg, readonly=True)
    try:
        rep = analyse(conn, cfg, now=now, clock=clock, hours=hours)
    finally:
        conn.close()
    for line in render(rep, cfg, hours=hours, list_all=list_all):
        out(line)
    return 0 if rep.ok else 1
