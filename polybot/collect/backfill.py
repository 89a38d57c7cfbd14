"""History for the tracked tokens: ``python collect_market_data.py --backfill --days 30``.

For every outcome token of the tracked markets, the grid points of the last N days
(the same ``interval_minutes`` grid as collected rows, up to the current cycle, which
the collector fills) that have NO snapshot yet are fetched from CLOB
``GET /prices-history`` (``fidelity`` = the interval, windows of at most 15 days) and
written as ``source='backfill'`` rows: ``mid`` = ``last_trade_price`` = the displayed
price, bid/ask/depth/book NULL (the backtester applies a half-spread).

- Alignment: a grid point g gets the price of the latest history point at or before g
  (as-of, no look-ahead), if that point is at most :data:`MAX_FILL` old; points before
  the token's first history point stay empty.
- Idempotent and resumable: the missing-range scan (existing timestamps per token) means
  a second run fetches only what is still missing; ``INSERT OR IGNORE`` means collected
  rows always win; each token is committed on its own, so an interrupted run keeps every
  token it finished. The start of a token's history is remembered in ``bot_state``
  (key ``backfill_from:<token_id>``) so ranges the exchange has no data for are not
  asked again.
- Gaps the collector left (failed cycles) inside the window are filled the same way.
- Uses its own lock (``backfill_market_data.lock``) so the 5-minute collection keeps
  running while a long backfill is in progress (SQLite's busy timeout serialises the
  short write transactions).

Survivorship-free (``collection.backfill_closed``, on by default): the markets that CLOSED
inside the window are fetched too — Gamma ``GET /markets/keyset`` with ``closed=true`` and
``end_date_min`` = the window start (less a week), the same filters on every page
(docs/dev/api_notes.md §1), most traded (``volumeNum``) first — those whose close time lies in
the window (an early-resolved market keeps its later scheduled end date, so there is no
``end_date_max``), filtered by the collection's tags/keywords and
``backfill_closed_min_volume``, up to ``backfill_closed_max_markets``
(default ``max_markets``). Each is stored untracked with its outcome — Gamma's resolved
``outcomePrices``, else the CLOB winner flags, else left for the collector's lifecycle
refresh — and ``resolved_at`` = its close time (Gamma ``closedTime``, else its end
date), and its tokens' history is backfilled from the window start up to that close. So
a replay over the window trades and settles the markets that resolved in it, not only
today's survivors. Their metadata goes into ``market_metadata_history`` from the
market's start (what Gamma shows at the end is the best known for its life).
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import db
from ..config import CollectionConfig, Config
from ..errors import DataError, ExchangeError, ExchangeUnavailable, RequestRejected
from ..exchange.models import Market, PricePoint
from ..timefmt import iso_seconds
from . import snapshot_rows, store, universe
from .common import (
    BACKFILL_LOCK,
    EXIT_EXCHANGE,
    EXIT_OK,
    EXIT_PARTIAL,
    floor_ts,
    job_lock,
    make_client,
    plural,
    step_seconds,
)
from .listing import PrefetchListing

if TYPE_CHECKING:
    from ..exchange.client import PolymarketClient

log = logging.getLogger("polybot.collect.backfill")

WINDOW = 15 * 86_400  # seconds per /prices-history request
MAX_FILL = 6 * 3_600  # forward-fill horizon (and look-back before a missing run)
WORKERS = 4  # threads fetching history (writes stay on the main thread)
STATE_PREFIX = "backfill_from:"
END_DATE_SLACK = 7 * 86_400  # closed markets whose end date is this much before the window still count


@dataclass
class TokenPlan:
    token_id: str
    market_id: str
    missing: list[int]  # grid points without a snapshot
    runs: list[tuple[int, int]] = field(default_factory=list)  # contiguous [first, last]
    earliest: int = 0  # first grid point asked for


def runs_of(points: list[int], step: int) -> list[tuple[int, int]]:
    """Contiguous runs [first, last] of sorted grid points."""
    out: list[tuple[int, int]] = []
    for g in points:
        if out and g == out[-1][1] + step:
            out[-1] = (out[-1][0], g)
        else:
            out.append((g, g))
    return out


def plan_token(
    conn: sqlite3.Connection,
    token_id: str,
    market_id: str,
    start: int,
    end: int,
    step: int,
    *,
    have: set[int] | None = None,
) -> TokenPlan:
    """Grid points in [start, end) the token has no snapshot for (after its known first
    history point). ``have``: the token's snapshot times in [start, end) when the caller
    read them already (:func:`plan_tokens` reads them for many tokens in one pass)."""
    first = db.get_state(conn, STATE_PREFIX + token_id)
    lo = max(start, int(first)) if first else start
    lo = -(-lo // step) * step
    if have is None:
        have = snapshot_rows.existing_timestamps(conn, [token_id], lo, end)[token_id]
    missing = [g for g in range(lo, end, step) if g not in have]
    return TokenPlan(token_id, market_id, missing, runs_of(missing, step), lo)


def plan_tokens(
    conn: sqlite3.Connection, tokens: list[tuple[str, str]], start: int, end: int, step: int
) -> list[TokenPlan]:
    """:func:`plan_token` for every (token id, market id), reading the existing snapshot
    times of all of them in one pass over [start, end) of the clustered table."""
    if not tokens:
        return []
    have = snapshot_rows.existing_timestamps(conn, [t for t, _ in tokens], start, end)
    return [plan_token(conn, t, m, start, end, step, have=have[t]) for t, m in tokens]


def fetch_history(client: PolymarketClient, plan: TokenPlan, step: int) -> list[PricePoint]:
    """Every history point needed to fill ``plan`` (windows ≤ 15 days, with look-back).

    Always ``startTs``/``endTs`` windows, never ``interval=max``: for resolved markets the
    latter returns nothing below 12-hour fidelity (py-clob-client#216, docs/dev/api_notes.md §3); the
    windowed form is reported to work for closed markets (UNVERIFIED upstream) — a closed
    market with no history simply gets no backfilled rows, never invented ones."""
    fidelity = max(1, step // 60)
    points: dict[int, float] = {}
    for first, last in plan.runs:
        a = first - MAX_FILL
        while a <= last:
            b = min(a + WINDOW, last)
            for pt in client.get_prices_history(plan.token_id, a, b, fidelity):
                points[pt.t] = pt.p
            a = b + 1
    return [PricePoint(t, p) for t, p in sorted(points.items())]


def fill(plan: TokenPlan, points: list[PricePoint]) -> list[tuple]:
    """Backfill rows for the missing grid points of ``plan`` (as-of alignment)."""
    ts = [p.t for p in points]
    rows = []
    for g in plan.missing:
        i = bisect.bisect_right(ts, g) - 1
        if i >= 0 and g - ts[i] <= MAX_FILL:
            rows.append(snapshot_rows.backfill_row(g, plan.token_id, plan.market_id, points[i].p))
    return rows


def history_start(plan: TokenPlan, points: list[PricePoint], end: int, step: int) -> int | None:
    """The first grid point with history when the fetch covered the plan's earliest point
    (None = nothing learned)."""
    if not plan.runs or plan.runs[0][0] != plan.earliest:
        return None
    if not points:
        return end
    first = -(-points[0].t // step) * step
    return first if first > plan.earliest else None


def close_time(m: Market) -> int | None:
    """When a closed market stopped trading: Gamma ``closedTime``, else its end date."""
    return m.closed_time if m.closed_time is not None else m.end_date


def _known_close_time(m: Market) -> int:
    """``close_time`` of a market ``closed_in_window`` chose (it requires one)."""
    t = close_time(m)
    if t is None:
        raise DataError(
            f"closed market {m.id} has neither a closedTime nor an end date; it cannot be backfilled"
        )
    return t


def closed_in_window(
    client: PolymarketClient, cc: CollectionConfig, start: int, end: int
) -> tuple[list[Market], list[str]]:
    """The markets that closed inside [start, end] the collection would have tracked
    (see the module docstring), most traded first; and the problems met."""
    # None (max_markets: all and no backfill_closed_max_markets): every one in the window
    cap = cc.market_cap if cc.backfill_closed_max_markets is None else cc.backfill_closed_max_markets
    if not cc.backfill_closed or (cap is not None and cap <= 0):
        return [], []
    extra = {"include_tag": True} if cc.tags else {}
    # closed=true with end_date_min/max (ISO) on /markets/keyset: py-sdk
    # src/polymarket/_internal/actions/gamma.py::list_markets_spec (docs/dev/api_notes.md §1); closed
    # defaults to false since 2026-04-09, so it is always sent. The same filters on every
    # page: the cursor is bound to the query (docs/dev/api_notes.md §1).
    # Only a lower bound on the END DATE: a market that resolved early (YES before its
    # deadline) keeps its later scheduled endDate — an end_date_max would miss exactly those —
    # and one that traded on past its end date until resolution closes after it (hence
    # the slack). Which closed inside the window is decided on the close time
    # (universe.passes_closed); the listing is most traded first and stops at the cap.
    listing = PrefetchListing(
        client,
        closed=True,
        order="volumeNum",
        ascending=False,
        end_date_min=iso_seconds(start - END_DATE_SLACK),
        **extra,
    )
    out: list[Market] = []
    for m in listing:
        if universe.passes_closed(m, cc, start, end):
            out.append(m)
            if cap is not None and len(out) >= cap:
                break
    problems = [f"skipped closed market {i.record_id}: {i.reason}" for i in listing.issues]
    return out, problems


def outcomes_of(client: PolymarketClient, markets: list[Market]) -> tuple[dict, list[str]]:
    """Market id → payouts for closed markets Gamma does not show as resolved yet, from the
    CLOB winner flags (as the collector's lifecycle refresh does); and problems met."""
    payouts: dict = {}
    problems: list[str] = []
    for m in markets:
        if m.payouts is not None or not m.condition_id:
            continue
        try:
            cm = client.get_clob_market(m.condition_id)
        except (RequestRejected, DataError) as exc:
            problems.append(f"outcome of closed market {m.id}: {exc}")
            continue
        if cm.payouts is not None:
            p = {t: cm.payouts[t] for t in m.token_ids if t in cm.payouts}
            if len(p) == len(m.token_ids):
                payouts[m.id] = p
    return payouts, problems


@dataclass
class BackfillResult:
    start: int
    end: int
    tokens: int = 0
    done: int = 0
    skipped: int = 0  # already complete
    rows: int = 0
    closed_markets: int = 0  # markets that closed inside the window, stored with their history
    closed_resolved: int = 0  # … of which the outcome is recorded
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    interrupted: str | None = None
    duration: float = 0.0
    api_seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.interrupted:
            return "failed" if self.done == 0 else "partial"
        return "partial" if self.errors else "ok"


def backfill(
    cfg: Config,
    conn: sqlite3.Connection,
    client: PolymarketClient,
    days: float,
    *,
    progress_bar: bool | None = None,
    now: int | None = None,
) -> BackfillResult:
    """Fill the last ``days`` days for every tracked token (the caller holds the lock)."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    step = step_seconds(cfg)
    client.reset_stats()
    if now is None:
        now = client.get_server_time()
    end = floor_ts(now, step)
    start = floor_ts(end - int(days * 86_400), step)
    res = BackfillResult(start=start, end=end)
    tokens = conn.execute(
        "SELECT t.token_id, t.market_id FROM market_tokens t JOIN markets m ON m.id = t.market_id "
        "WHERE m.tracked = 1 ORDER BY m.liquidity DESC, m.id, t.outcome_index"
    ).fetchall()
    plans = plan_tokens(conn, [(t, m) for t, m in tokens], start, end, step)
    # skipped malformed closed records and outcomes not available yet are warnings (the
    # collector's lifecycle refresh records a missing outcome later), not failed tokens
    closed, problems = closed_in_window(client, cfg.collection, start, end)
    res.warnings += problems
    if closed:
        payouts, problems = outcomes_of(client, closed)
        res.warnings += problems
        with db.atomic(conn):
            store.upsert_markets(
                conn,
                closed,
                tracked=False,
                now=now,
                payouts=payouts,
                resolved_at={m.id: _known_close_time(m) for m in closed},
                record=False,
            )
            store.record_metadata(
                conn,
                closed,
                now,
                source="backfill",
                since={m.id: min(m.start_date or start, start) for m in closed},
            )
        res.closed_markets = len(closed)
        res.closed_resolved = sum(1 for m in closed if m.payouts is not None or m.id in payouts)
        tracked = {t for t, _ in tokens}
        for m in closed:
            # up to and including the grid point at the close (no rows after it)
            stop = min(end, floor_ts(_known_close_time(m), step) + step)
            plans += plan_tokens(
                conn, [(t, m.id) for t in m.token_ids if t not in tracked], start, stop, step
            )
    res.tokens = len(plans)
    todo = [p for p in plans if p.missing]
    res.skipped = len(plans) - len(todo)
    with db.atomic(conn):
        store.fail_stale_cycles(
            conn,
            ("backfill",),
            int(time.time()),
            "interrupted: the backfill process stopped; the tokens it finished "
            "are kept and this run fetches the rest",
        )
        cycle_id = store.start_cycle(conn, started_at=int(time.time()), cycle_ts=end, kind="backfill")
    bar = tqdm(
        total=len(todo),
        unit="token",
        file=sys.stderr,
        desc="backfill",
        disable=(None if progress_bar is None else not progress_bar),
    )
    keys = snapshot_rows.TokenKeys(conn)  # token id -> key, looked up once per token of this run
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="backfill")
    try:
        pending = {pool.submit(fetch_history, client, p, step): p for p in todo}
        while pending and not res.interrupted:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                plan = pending.pop(fut)
                try:
                    points = fut.result()
                except ExchangeUnavailable as exc:
                    res.interrupted = str(exc)
                    break
                except (RequestRejected, DataError) as exc:
                    res.errors.append(f"token {plan.token_id}: {exc}")
                    bar.update(1)
                    continue
                rows = fill(plan, points)
                first = history_start(plan, points, end, step)
                with db.atomic(conn):
                    res.rows += snapshot_rows.insert_snapshots(conn, rows, keys=keys)
                    if first is not None:
                        db.set_state(conn, STATE_PREFIX + plan.token_id, str(first), now=end)
                res.done += 1
                bar.update(1)
    except ExchangeError as exc:
        res.interrupted = str(exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        res.duration = time.perf_counter() - t0
        res.api_seconds = client.stats.total_seconds
        detail = (
            "; ".join(
                ([f"interrupted: {res.interrupted}"] if res.interrupted else [])
                + res.errors[:20]
                + [f"warning: {w}" for w in res.warnings[:10]]
            )
            or None
        )
        with db.atomic(conn):
            store.finish_cycle(
                conn,
                cycle_id,
                status=res.status,
                finished_at=int(time.time()),
                markets=len({p.market_id for p in todo}),
                snapshots=res.rows,
                errors=len(res.errors) + (1 if res.interrupted else 0),
                api_seconds=res.api_seconds,
                duration=res.duration,
                error_detail=detail,
            )
    return res


def summary(res: BackfillResult, days: float) -> str:
    closed = ""
    if res.closed_markets:
        closed = (
            f", incl. {plural(res.closed_markets, 'market')} that closed in the window "
            f"({res.closed_resolved:,} with the outcome recorded)"
        )
    head = (
        f"Backfill {days:g} days ({iso_seconds(res.start)} → {iso_seconds(res.end)}): "
        f"{plural(res.tokens, 'token')} ({res.skipped:,} already complete){closed}"
    )
    warned = f", {plural(len(res.warnings), 'warning')} (see the log)" if res.warnings else ""
    body = (
        f"{res.rows:,} rows written, {plural(len(res.errors), 'error')}{warned} "
        f"in {res.duration:.1f} s (API {res.api_seconds:.1f} s)"
    )
    if res.interrupted:
        left = res.tokens - res.skipped - res.done
        return (
            f"{head}: INTERRUPTED after {res.done:,} tokens ({left:,} left) — "
            f"{res.interrupted}. {body}. The finished tokens are saved; run the same "
            f"command again to fetch only what is missing."
        )
    return f"{head}: {body}"


def run(cfg: Config, days: float, *, verbose: bool = False, out: Callable[[str], None] = print) -> int:
    with job_lock(cfg, BACKFILL_LOCK) as got:
        if not got:
            msg = "another backfill is running; exiting"
            log.info(msg)
            out(msg)
            return EXIT_OK
        conn = db.open_database(cfg, synchronous="NORMAL")
        snapshot_rows.tune_for_bulk(conn)
        client = make_client(cfg)
        try:
            n = conn.execute("SELECT COUNT(*) FROM markets WHERE tracked = 1").fetchone()[0]
            if not n:
                out("No tracked markets yet — run python collect_market_data.py --initial first.")
                return EXIT_PARTIAL
            try:
                res = backfill(cfg, conn, client, days, progress_bar=True if verbose else None)
            except ExchangeError as exc:  # the exchange clock itself was unreachable
                out(f"Backfill not started — {exc}.")
                log.error("backfill not started: %s", exc)
                return EXIT_EXCHANGE
        finally:
            client.close()
            conn.close()
    for e in res.errors[:10] + res.warnings[:10]:
        log.warning("backfill: %s", e)
    line = summary(res, days)
    (log.error if res.interrupted else log.info)(line)
    out(line)
    if res.interrupted:
        return EXIT_EXCHANGE
    return EXIT_OK if not res.errors else EXIT_PARTIAL
