"""Retention tiers of market snapshots, applied by ``maintain_database.py`` (issue 16).

A snapshot row ages through three tiers (``maintenance:`` in config.yaml, RUNBOOK.md
"Retention tiers"; 0 turns a step off):

1. **full depth** — younger than ``full_depth_days``: the row as collected;
2. **top of book** — until ``top_of_book_days``: the book levels (``bids``/``asks``) and the
   depth sums (``bid_depth``/``ask_depth``) are set to NULL; best bid/ask, last trade, volume,
   liquidity (and so mid and spread, derived on read) stay;
3. **hourly bars** — older: one ``snapshot_bars`` row per token per UTC hour replaces the
   hour's rows, kept for ``hourly_bar_days`` (0 = forever). A bar holds open/high/low/close of
   the mid (the last trade where a row has no mid), the hour's last best bid, best ask, last
   trade, 24-hour volume and liquidity (each the latest non-NULL value of the hour), and the
   number of rows it summarises. Rows that reach an hour that already has a bar (a late
   backfill) are merged into it: high/low widen, samples add up, the bar's own open, close
   and last values stay (the late rows' values fill only what the bar lacks).

``snapshot_retention_days`` is the hard age limit on top: rows and bars older than it are
deleted outright (the meaning the key had before the tiers).

Every step works in batches of whole time ranges on the clustered key ``(timestamp,
token_key)``; each batch is one transaction, so a crash loses at most the batch in flight and
a re-run carries on. Re-running changes nothing: thinning skips rows already thin, bars are
made only from rows (which the same transaction deletes). Thinning remembers how far it got
(``bot_state`` key ``retention_thinned_before``) so a weekly run reads only the week that
newly aged, not the whole top-of-book tier again. Nothing runs while a pre-version-6
``market_snapshots_legacy`` table waits for ``python maintain_database.py --migrate``: its
rows would land behind that mark with their depth.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .. import db
from ..config import MaintenanceConfig, describe_tiers
from ..snapshots.codec import MONEY_SCALE, PRICE_SCALE, decode_scaled, encode_scaled, sql_decode
from ..snapshots.store import BAR_VALUES, has_legacy
from ..timefmt import utc_text

DAY = 86_400
HOUR = 3_600
BATCH_ROWS = 100_000  # rows per transaction (whole timestamps; whole hours for bars)
PROGRESS_SECONDS = 60.0  # a progress line this often when stderr is not a terminal
THIN_MARK = "retention_thinned_before"

_DEPTH_PRESENT = "(bids IS NOT NULL OR asks IS NOT NULL OR bid_depth IS NOT NULL OR ask_depth IS NOT NULL)"


@dataclass(frozen=True)
class Tiers:
    """The tier boundaries of ``maintenance:`` (days; 0 = off)."""

    full_depth_days: int = 0
    top_of_book_days: int = 0
    hourly_bar_days: int = 0
    hard_limit_days: int = 0  # snapshot_retention_days

    @classmethod
    def from_config(cls, m: MaintenanceConfig) -> Tiers:
        return cls(m.full_depth_days, m.top_of_book_days, m.hourly_bar_days, m.snapshot_retention_days)

    @property
    def active(self) -> bool:
        return bool(self.full_depth_days or self.top_of_book_days or self.hard_limit_days)

    def delete_before(self, now: float) -> int | None:
        """Rows and bars older than this go (the hard limit), hour-aligned so bars are whole."""
        return _floor_hour(now - self.hard_limit_days * DAY) if self.hard_limit_days > 0 else None

    def bar_before(self, now: float) -> int | None:
        """Rows older than this become hourly bars (hour-aligned: an hour is barred whole)."""
        return _floor_hour(now - self.top_of_book_days * DAY) if self.top_of_book_days > 0 else None

    def bars_expire_before(self, now: float) -> int | None:
        """Bars of hours older than this are deleted."""
        return _floor_hour(now - self.hourly_bar_days * DAY) if self.hourly_bar_days > 0 else None

    def thin_before(self, now: float) -> int | None:
        """Rows older than this lose their book levels."""
        return int(now - self.full_depth_days * DAY) if self.full_depth_days > 0 else None

    def tier_of(self, timestamp: int, now: float) -> str:
        """Where a row of this age belongs: full, top_of_book, bars or deleted."""
        for cutoff, name in (
            (self.delete_before(now), "deleted"),
            (self.bar_before(now), "bars"),
            (self.thin_before(now), "top_of_book"),
        ):
            if cutoff is not None and timestamp < cutoff:
                if name == "bars":
                    expire = self.bars_expire_before(now)
                    return "deleted" if expire is not None and timestamp < expire else "bars"
                return name
        return "full"

    def describe(self) -> str:
        return describe_tiers(
            self.full_depth_days, self.top_of_book_days, self.hourly_bar_days, self.hard_limit_days
        )


def _floor_hour(ts: float) -> int:
    t = int(ts)
    return t - t % HOUR


@dataclass
class RetentionResult:
    dry_run: bool = False
    skipped: str | None = None  # why nothing ran
    thinned_rows: int = 0
    thinned_bytes: int = 0  # bytes of book-level BLOBs removed
    barred_rows: int = 0
    bars_written: int = 0  # new bars
    bars_merged: int = 0  # existing bars that took late rows
    deleted_rows: int = 0  # past the hard limit
    deleted_bars: int = 0  # past hourly_bar_days or the hard limit
    batches: int = 0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.thinned_rows + self.barred_rows + self.deleted_rows + self.deleted_bars


# ----------------------------------------------------------------------------- progress
class _Progress:
    """A tqdm bar over hours of data on a terminal, else a line every PROGRESS_SECONDS."""

    def __init__(self, what: str, lo: int, hi: int, emit: Callable[[str], object], bar: bool | None):
        self.what, self.lo, self.hi, self.emit = what, lo, hi, emit
        self.last_line = time.monotonic()
        self.hours_done = 0
        self.tqdm = None
        if bar is None:
            bar = sys.stderr.isatty()
        if bar and hi > lo:
            from tqdm import tqdm

            self.tqdm = tqdm(
                total=-(-(hi - lo) // HOUR),
                unit="h",
                file=sys.stderr,
                desc=what,
                leave=False,
                mininterval=0.5,
            )

    def update(self, reached: int, rows: int) -> None:
        if self.tqdm is not None:
            hours = -(-(min(reached, self.hi) - self.lo) // HOUR)
            self.tqdm.update(max(0, hours - self.hours_done))
            self.hours_done = max(self.hours_done, hours)
        elif time.monotonic() - self.last_line >= PROGRESS_SECONDS:
            pct = 100.0 * (reached - self.lo) / max(1, self.hi - self.lo)
            self.emit(f"  {self.what}: up to {utc_text(reached)} ({pct:.0f} %), {rows:,} rows so far")
            self.last_line = time.monotonic()

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()


# ----------------------------------------------------------------------------- batches
def _first_timestamp(conn: sqlite3.Connection, since: int = 0) -> int | None:
    row = conn.execute(
        "SELECT timestamp FROM market_snapshots WHERE timestamp >= ? ORDER BY timestamp LIMIT 1", (since,)
    ).fetchone()
    return None if row is None else int(row[0])


def _batch_end(conn: sqlite3.Connection, lo: int, cutoff: int, *, hours: bool) -> int:
    """The end (exclusive) of the batch that starts at ``lo``: after about BATCH_ROWS rows,
    rounded up to a whole timestamp (a whole hour for bars), never past ``cutoff``."""
    row = conn.execute(
        "SELECT timestamp FROM market_snapshots WHERE timestamp >= ? ORDER BY timestamp LIMIT 1 OFFSET ?",
        (lo, BATCH_ROWS),
    ).fetchone()
    end = cutoff if row is None else int(row[0]) + 1
    if hours:
        end = -(-end // HOUR) * HOUR
    return max(lo + 1, min(end, cutoff))


def _ranges(conn: sqlite3.Connection, start: int, cutoff: int, *, hours: bool) -> Iterator[tuple[int, int]]:
    lo: int | None = _first_timestamp(conn, start)
    while lo is not None and lo < cutoff:
        if hours:
            lo = _floor_hour(lo)
        hi = _batch_end(conn, lo, cutoff, hours=hours)
        yield lo, hi
        lo = _first_timestamp(conn, hi)


# ----------------------------------------------------------------------------- hard limit
def _delete_rows(conn, cutoff: int, res: RetentionResult, progress: _Progress) -> None:
    for lo, hi in _ranges(conn, 0, cutoff, hours=False):
        with db.atomic(conn):
            n = conn.execute(
                "DELETE FROM market_snapshots WHERE timestamp >= ? AND timestamp < ?", (lo, hi)
            ).rowcount
        res.deleted_rows += n
        res.batches += 1
        progress.update(hi, res.deleted_rows)


def _delete_bars(conn, cutoff: int, res: RetentionResult) -> None:
    while True:
        with db.atomic(conn):
            n = conn.execute(
                "DELETE FROM snapshot_bars WHERE (hour, token_key) IN (SELECT hour, token_key FROM "
                "snapshot_bars WHERE hour < ? ORDER BY hour LIMIT ?)",
                (cutoff, BATCH_ROWS),
            ).rowcount
        res.deleted_bars += n
        res.batches += 1
        if n < BATCH_ROWS:
            return


# ----------------------------------------------------------------------------- bars
def _value_sql(alias: str) -> str:
    """The decoded mid of a stored row (the view's formula), else its last trade."""

    def price(c: str) -> str:
        return sql_decode(f"{alias}.{c}", PRICE_SCALE)

    mid = (
        f"CASE WHEN {alias}.mid IS NULL THEN CASE WHEN {alias}.bid IS NOT NULL AND {alias}.ask IS NOT NULL "
        f"THEN ({price('bid')} + {price('ask')}) / 2 END "
        f"WHEN typeof({alias}.mid) = 'blob' THEN NULL ELSE {price('mid')} END"
    )
    return f"COALESCE({mid}, {price('last')})"


# One scan of the batch's rows (its clustered range) groups them by token and hour; the open,
# close and "last" values are then read by primary-key seeks on the rows the scan found.
_BARS_SQL = f"""
WITH r AS (
    SELECT s.timestamp AS ts, s.token_key AS k, s.timestamp - s.timestamp % {HOUR} AS h,
           {_value_sql("s")} AS v, s.bid, s.ask, s.last, s.volume_24h, s.liquidity
    FROM market_snapshots s WHERE s.timestamp >= ?1 AND s.timestamp < ?2
), a AS (
    SELECT h, k, COUNT(*) AS n, MIN(v) AS lo, MAX(v) AS hi,
           MIN(CASE WHEN v IS NOT NULL THEN ts END) AS o_ts, MAX(CASE WHEN v IS NOT NULL THEN ts END) AS c_ts,
           MAX(CASE WHEN bid IS NOT NULL THEN ts END) AS b_ts, MAX(CASE WHEN ask IS NOT NULL THEN ts END) AS a_ts,
           MAX(CASE WHEN last IS NOT NULL THEN ts END) AS l_ts,
           MAX(CASE WHEN volume_24h IS NOT NULL THEN ts END) AS v_ts,
           MAX(CASE WHEN liquidity IS NOT NULL THEN ts END) AS q_ts
    FROM r GROUP BY h, k
)
SELECT a.h, a.k, a.n,
       (SELECT {_value_sql("o")} FROM market_snapshots o WHERE o.timestamp = a.o_ts AND o.token_key = a.k),
       a.hi, a.lo,
       (SELECT {_value_sql("c")} FROM market_snapshots c WHERE c.timestamp = a.c_ts AND c.token_key = a.k),
       (SELECT x.bid FROM market_snapshots x WHERE x.timestamp = a.b_ts AND x.token_key = a.k),
       (SELECT x.ask FROM market_snapshots x WHERE x.timestamp = a.a_ts AND x.token_key = a.k),
       (SELECT x.last FROM market_snapshots x WHERE x.timestamp = a.l_ts AND x.token_key = a.k),
       (SELECT x.volume_24h FROM market_snapshots x WHERE x.timestamp = a.v_ts AND x.token_key = a.k),
       (SELECT x.liquidity FROM market_snapshots x WHERE x.timestamp = a.q_ts AND x.token_key = a.k)
FROM a
"""

BAR_COLUMNS = ("hour", "token_key", *BAR_VALUES)
_INSERT_BAR = f"INSERT OR REPLACE INTO snapshot_bars ({', '.join(BAR_COLUMNS)}) VALUES ({', '.join('?' * len(BAR_COLUMNS))})"


def _price(v: float | None) -> int | float | None:
    return encode_scaled(v, PRICE_SCALE)


def _merge(old: sqlite3.Row | tuple, new: tuple) -> tuple:
    """An existing bar (stored) and a bar of late rows (stored) of the same hour and token."""
    (h, k, o1, hi1, lo1, c1, b1, a1, l1, v1, q1, n1) = tuple(old)
    (_h, _k, o2, hi2, lo2, c2, b2, a2, l2, v2, q2, n2) = new

    def pick(x, y):
        return x if x is not None else y

    def extreme(x, y, f):
        xs = [decode_scaled(z, PRICE_SCALE) for z in (x, y) if z is not None]
        return _price(f(xs)) if xs else None

    return (
        h,
        k,
        pick(o1, o2),
        extreme(hi1, hi2, max),
        extreme(lo1, lo2, min),
        pick(c1, c2),
        pick(b1, b2),
        pick(a1, a2),
        pick(l1, l2),
        pick(v1, v2),
        pick(q1, q2),
        int(n1) + int(n2),
    )


def _bar_batch(conn: sqlite3.Connection, lo: int, hi: int, res: RetentionResult) -> int:
    """Bars for the rows of [lo, hi) (whole hours), the rows deleted; in the caller's transaction."""
    bars = [
        (h, k, _price(o), _price(high), _price(low), _price(c), b, a, last, vol, liq, n)
        for (h, k, n, o, high, low, c, b, a, last, vol, liq) in conn.execute(_BARS_SQL, (lo, hi))
    ]
    existing = {
        (int(r[0]), int(r[1])): tuple(r)
        for r in conn.execute(
            f"SELECT {', '.join(BAR_COLUMNS)} FROM snapshot_bars WHERE hour >= ? AND hour < ?", (lo, hi)
        )
    }
    out = []
    for bar in bars:
        old = existing.get((bar[0], bar[1]))
        if old is None:
            res.bars_written += 1
            out.append(bar)
        else:
            res.bars_merged += 1
            out.append(_merge(old, bar))
    conn.executemany(_INSERT_BAR, out)
    return conn.execute(
        "DELETE FROM market_snapshots WHERE timestamp >= ? AND timestamp < ?", (lo, hi)
    ).rowcount


def _make_bars(conn, cutoff: int, res: RetentionResult, progress: _Progress) -> None:
    for lo, hi in _ranges(conn, 0, cutoff, hours=True):
        with db.atomic(conn):
            res.barred_rows += _bar_batch(conn, lo, hi, res)
        res.batches += 1
        progress.update(hi, res.barred_rows)


# ----------------------------------------------------------------------------- thinning
def _thin_mark(conn: sqlite3.Connection, now: int) -> int:
    value = db.get_state(conn, THIN_MARK)
    try:
        mark = int(value) if value is not None else 0
    except ValueError:
        return 0
    # a mark in the future (a clock that jumped ahead, then back) would hide rows: start over
    return mark if mark <= now else 0


def _thin(conn, cutoff: int, now: int, res: RetentionResult, progress: _Progress) -> None:
    for lo, hi in _ranges(conn, _thin_mark(conn, now), cutoff, hours=False):
        with db.atomic(conn):
            blobs = conn.execute(
                "SELECT COALESCE(SUM(COALESCE(length(bids), 0) + COALESCE(length(asks), 0)), 0) "
                f"FROM market_snapshots WHERE timestamp >= ? AND timestamp < ? AND {_DEPTH_PRESENT}",
                (lo, hi),
            ).fetchone()[0]
            # top of book: the levels and depth go; volume and liquidity (market-wide figures
            # that move slowly) are kept once an hour, on the row at the top of the hour, which
            # is what the hourly bar takes later. A thinned row is ~30 bytes instead of ~42.
            n = conn.execute(
                "UPDATE market_snapshots SET bids = NULL, asks = NULL, bid_depth = NULL, ask_depth = NULL, "
                "volume_24h = CASE WHEN timestamp % 3600 = 0 THEN volume_24h END, "
                "liquidity = CASE WHEN timestamp % 3600 = 0 THEN liquidity END "
                f"WHERE timestamp >= ? AND timestamp < ? AND ({_DEPTH_PRESENT} OR (timestamp % 3600 <> 0 "
                "AND (volume_24h IS NOT NULL OR liquidity IS NOT NULL)))",
                (lo, hi),
            ).rowcount
            db.set_state(conn, THIN_MARK, str(hi), now=now)
        res.thinned_rows += n
        res.thinned_bytes += int(blobs)
        res.batches += 1
        progress.update(hi, res.thinned_rows)
    if cutoff > _thin_mark(conn, now):  # nothing (more) to read: remember the cutoff all the same
        with db.atomic(conn):
            db.set_state(conn, THIN_MARK, str(cutoff), now=now)


# ----------------------------------------------------------------------------- dry run
def _count_plan(conn: sqlite3.Connection, tiers: Tiers, now: int, res: RetentionResult) -> None:
    """What a real run would do, counted (a scan of the affected ranges; nothing changes)."""
    gone = tiers.delete_before(now)
    if gone is not None:
        res.deleted_rows = conn.execute(
            "SELECT COUNT(*) FROM market_snapshots WHERE timestamp < ?", (gone,)
        ).fetchone()[0]
    floor = gone or 0
    bar = tiers.bar_before(now)
    if bar is not None and bar > floor:
        res.barred_rows, res.bars_written = conn.execute(
            "SELECT COALESCE(SUM(n), 0), COUNT(*) FROM (SELECT COUNT(*) AS n FROM market_snapshots "
            f"WHERE timestamp >= ? AND timestamp < ? GROUP BY timestamp - timestamp % {HOUR}, token_key)",
            (floor, bar),
        ).fetchone()
        floor = bar
    expire = max(x for x in (tiers.bars_expire_before(now), gone, 0) if x is not None)
    if expire:
        res.deleted_bars = conn.execute(
            "SELECT COUNT(*) FROM snapshot_bars WHERE hour < ?", (expire,)
        ).fetchone()[0]
    thin = tiers.thin_before(now)
    if thin is not None:
        res.thinned_rows, res.thinned_bytes = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(COALESCE(length(bids), 0) + COALESCE(length(asks), 0)), 0) "
            f"FROM market_snapshots WHERE timestamp >= ? AND timestamp < ? AND {_DEPTH_PRESENT}",
            (max(floor, _thin_mark(conn, now)), thin),
        ).fetchone()


# ----------------------------------------------------------------------------- run
def _has_compact_tables(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'market_snapshots'"
        ).fetchone()
        is not None
    )


def apply_retention(
    conn: sqlite3.Connection,
    tiers: Tiers,
    *,
    now: float | None = None,
    dry_run: bool = False,
    emit: Callable[[str], object] = print,
    progress_bar: bool | None = None,
) -> RetentionResult:
    """Apply the tiers (or, ``dry_run``, count what they would do); one summary line per step
    through ``emit``. The caller holds the ops lock."""
    started = time.monotonic()
    now_i = int(time.time() if now is None else now)
    res = RetentionResult(dry_run=dry_run)
    emit(f"Retention tiers: {tiers.describe()}")
    if not tiers.active:
        res.skipped = "off"
        return res
    if not _has_compact_tables(conn):
        res.skipped = "the database predates the compact layout; run python initialize_db.py to upgrade it"
    elif has_legacy(conn):
        res.skipped = (
            "snapshots from before the compact layout wait in market_snapshots_legacy; run "
            "python maintain_database.py --migrate first, then the tiers apply to every row"
        )
    if res.skipped:
        emit(f"  Retention skipped: {res.skipped}.")
        return res
    if dry_run:
        _count_plan(conn, tiers, now_i, res)
    else:
        gone = tiers.delete_before(now_i)
        if gone is not None:
            _run_step(conn, "deleting", gone, emit, progress_bar, lambda p: _delete_rows(conn, gone, res, p))
        bar = tiers.bar_before(now_i)
        if bar is not None:
            _run_step(conn, "hourly bars", bar, emit, progress_bar, lambda p: _make_bars(conn, bar, res, p))
        expire = max(x for x in (tiers.bars_expire_before(now_i), gone, 0) if x is not None)
        if expire:
            _delete_bars(conn, expire, res)
        thin = tiers.thin_before(now_i)
        if thin is not None:
            start = _thin_mark(conn, now_i)
            _run_step(
                conn,
                "top of book",
                thin,
                emit,
                progress_bar,
                lambda p: _thin(conn, thin, now_i, res, p),
                start=start,
            )
    res.seconds = time.monotonic() - started
    res.lines = summary_lines(res, tiers)
    for line in res.lines:
        emit(line)
    return res


def _run_step(conn, what, cutoff, emit, bar, body, *, start: int = 0) -> None:
    lo = _first_timestamp(conn, start)
    progress = _Progress(what, lo if lo is not None else cutoff, cutoff, emit, bar)
    try:
        body(progress)
    finally:
        progress.close()


def summary_lines(res: RetentionResult, tiers: Tiers) -> list[str]:
    verb = "would be" if res.dry_run else ""
    lead = "  Dry run — nothing changed. " if res.dry_run else "  "

    def was(text: str) -> str:
        return f"{verb} {text}".strip() if verb else text

    lines = [
        f"{lead}Top of book: {res.thinned_rows:,} row(s) {was('thinned')} "
        f"({_fmt_bytes(res.thinned_bytes)} of book levels)",
        f"  Hourly bars: {res.barred_rows:,} row(s) {was('replaced')} by "
        + (
            f"{res.bars_written:,} bar(s)"
            if res.dry_run
            else f"{res.bars_written:,} new bar(s) and {res.bars_merged:,} merged into existing ones"
        ),
        f"  Deleted: {res.deleted_rows:,} row(s) past the hard limit, {res.deleted_bars:,} bar(s) past their "
        f"retention{' (dry run)' if res.dry_run else ''}",
    ]
    if not res.dry_run:
        lines.append(
            f"  Retention took {res.seconds:.1f} s in {res.batches:,} batch(es); the VACUUM below gives the "
            f"freed pages back to the disk"
        )
    return lines


def _fmt_bytes(n: float) -> str:
    from .common import fmt_bytes

    return fmt_bytes(n)


# ----------------------------------------------------------------------------- reading bars
def read_bars(conn: sqlite3.Connection, start: int = 0, end: int | None = None) -> list[dict]:
    """Bars of [start, end) decoded: token_id, market_id and float prices (tests, exports)."""
    sql = (
        "SELECT b.hour, k.token_id, k.market_id, b.open, b.high, b.low, b.close, b.bid, b.ask, b.last, "
        "b.volume_24h, b.liquidity, b.samples FROM snapshot_bars b JOIN snapshot_tokens k "
        "ON k.token_key = b.token_key WHERE b.hour >= ? AND b.hour < ? ORDER BY b.hour, b.token_key"
    )
    out = []
    for r in conn.execute(sql, (start, end if end is not None else 1 << 62)):
        out.append(
            {
                "hour": r[0],
                "token_id": r[1],
                "market_id": r[2],
                **{
                    name: decode_scaled(r[i], PRICE_SCALE)
                    for i, name in enumerate(("open", "high", "low", "close", "bid", "ask", "last"), start=3)
                },
                "volume_24h": decode_scaled(r[10], MONEY_SCALE),
                "liquidity": decode_scaled(r[11], MONEY_SCALE),
                "samples": r[12],
            }
        )
    return out
