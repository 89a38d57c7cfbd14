"""One collection cycle: ``python collect_market_data.py [--initial] [--verbose]``.

Steps (the exchange clock stamps the cycle; see polybot/collect/__init__.py):

1. take ``<data dir>/collect_market_data.lock`` (timeout 0: a second run exits 0);
2. ``GET /time`` → cycle timestamp = exchange time floored to ``interval_minutes``;
3. select the universe from Gamma (polybot/collect/universe.py);
4. ``POST /books`` for every tracked outcome token (batched, a few threads, started while
   the listing is still running — polybot/collect/books.py);
5. refresh closed / ended / departed markets until their outcome is recorded (Gamma
   ``GET /markets/{id}``, then CLOB ``GET /markets/{condition_id}`` winner flags), at most
   :data:`REFRESH_LIMIT` per cycle;
6. ONE transaction: upsert markets and tokens, ``tracked`` flags, snapshots
   (INSERT OR IGNORE — a re-run of the same cycle inserts nothing and says "already
   collected"), and the cycle's ``collection_cycles`` row; then a PASSIVE WAL checkpoint,
   off the COMMIT (``snapshot_rows.checkpoint_after_commit``; why it is safe: ``snapshot_rows.tune_for_bulk``);
7. one ``info`` alert per market that enters the universe for the first time (not on the
   very first population), then the one-line summary.

Statuses: ``ok`` — every tracked token got a snapshot (skipped malformed records are
counted in ``errors``); ``partial`` — snapshots written but some tracked tokens had no
usable book; ``failed`` — nothing written except the cycle row (exchange unreachable
mid-cycle, or a bug). Exit codes: 0 ok (also "another collection is running"),
1 partial or failed for another reason, 2 config, 3 database, 4 exchange unreachable.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import db
from ..alerts import Alerter
from ..config import Config
from ..errors import DataError, ExchangeError, ExchangeUnavailable, RequestRejected
from ..exchange.models import Market
from ..snapshots.store import cyclic_gc_paused
from ..timefmt import iso_seconds
from . import snapshot_rows, store, universe
from .books import BookFetcher
from .common import (
    COLLECT_LOCK,
    EXIT_EXCHANGE,
    EXIT_OK,
    EXIT_PARTIAL,
    floor_ts,
    job_lock,
    make_client,
    step_seconds,
)
from .listing import PrefetchListing

if TYPE_CHECKING:
    from ..exchange.client import PolymarketClient

log = logging.getLogger("polybot.collect.cycle")

REFRESH_LIMIT = 50  # closed/ended markets refreshed per cycle (least recent first)
BOOK_WORKERS = 4  # threads overlapping POST /books batches


@dataclass
class CycleResult:
    cycle_ts: int
    status: str = "running"
    markets: int = 0
    snapshots: int = 0  # new rows written
    existing: int = 0  # rows of this cycle already present (re-run)
    insert_seconds: float = 0.0  # writing the snapshot rows (their parameters were built on the book threads)
    insert_cpu_seconds: float = 0.0  # the same, CPU seconds of the main thread
    commit_seconds: float = 0.0  # the COMMIT of the cycle's one transaction
    commit_cpu_seconds: float = 0.0
    write_seconds: float = 0.0  # the whole transaction: upserts, snapshots, commit
    # the WAL checkpoint after the commit (snapshot_rows.checkpoint_after_commit): its time, and
    # (busy, WAL frames, frames checkpointed) or None when it could not run
    checkpoint_seconds: float = 0.0
    checkpoint_cpu_seconds: float = 0.0
    checkpoint: tuple[int, int, int] | None = None
    errors: int = 0
    api_seconds: float = 0.0
    duration: float = 0.0
    problems: list[str] = field(default_factory=list)
    failure: str | None = None
    exit_code: int = EXIT_OK
    new_markets: list[Market] = field(default_factory=list)
    refreshed: int = 0
    resolved: int = 0
    left: int = 0

    def summary(self) -> str:
        head = f"Cycle {iso_seconds(self.cycle_ts)}:"
        tail = f"in {self.duration:.1f} s (API {self.api_seconds:.1f} s)"
        if self.status == "failed":
            return f"{head} FAILED {tail} — {self.failure}; no snapshots written"
        snaps = f"{self.snapshots:,} snapshots"
        if self.existing and not self.snapshots:
            snaps = f"0 new snapshots (already collected: {self.existing:,} existed)"
        elif self.existing:
            snaps += f" ({self.existing:,} already collected)"
        errs = f"{self.errors} error" + ("" if self.errors == 1 else "s")
        state = "" if self.status == "ok" else f" [{self.status.upper()}]"
        return f"{head} {self.markets:,} markets, {snaps}, {errs} {tail}{state}"


def _progress_printer(verbose: bool) -> Callable[[str], None] | None:
    if not verbose:
        return None
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        sys.stderr.write(f"  [{time.perf_counter() - t0:6.1f} s] {msg}\n")
        sys.stderr.flush()

    return say


def discover(
    client: PolymarketClient,
    cfg: Config,
    *,
    full_scan: bool,
    progress: Callable[[str], None] | None = None,
    on_final: Callable[[Market], None] | None = None,
) -> universe.Selection:
    """Scan Gamma and choose the tracked markets (``on_final``: see universe.select)."""
    cc = cfg.collection
    explicit: list[Market] = []
    missing: list[str] = []
    for mid in cc.market_ids:
        try:
            explicit.append(client.get_market(mid))
        except (RequestRejected, DataError) as exc:
            missing.append(f"id {mid} ({exc})")
    for slug in cc.slugs:
        try:
            explicit.append(client.get_market_by_slug(slug))
        except (RequestRejected, DataError) as exc:
            missing.append(f"slug {slug} ({exc})")
    missing += [f"{m.id} (closed)" for m in explicit if m.closed]
    explicit = list({m.id: m for m in explicit}.values())

    extra = {"include_tag": True} if cc.tags else {}
    listing = PrefetchListing(client, closed=False, order=cc.order_by, ascending=False, **extra)

    def counted():
        for n, m in enumerate(listing, 1):
            if progress and n % 1000 == 0:
                progress(f"listed {n:,} markets")
            yield m

    sel = universe.select(
        counted(),
        cc,
        explicit=explicit,
        full_scan=full_scan,
        issues=lambda: list(listing.issues),
        on_final=on_final,
    )
    sel.explicit_missing = missing
    if progress:
        progress(
            f"selected {len(sel.markets):,} markets ({len(sel.token_ids):,} tokens) from "
            f"{sel.counts.get('scanned', 0):,} listed"
        )
    return sel


def refresh_lifecycle(
    client: PolymarketClient,
    conn: sqlite3.Connection,
    *,
    selected: set[str],
    was_tracked: set[str],
    now: int,
    problems: list[str],
) -> tuple[list[Market], dict, list[str]]:
    """Look up markets whose outcome is not recorded yet. Returns (markets to upsert as
    untracked, {market id: CLOB payouts}, ids whose refresh failed)."""
    todo = store.refresh_candidates(
        conn, exclude=selected, was_tracked=was_tracked, now=now, limit=REFRESH_LIMIT
    )
    fresh: list[Market] = []
    clob_payouts: dict = {}
    failed: list[str] = []
    for mid, cid in todo:
        try:
            m = client.get_market(mid)
            if m.payouts is None and m.closed:
                cm = client.get_clob_market(m.condition_id or cid)
                if cm.payouts is not None:
                    # CLOB winner flags: map by token id, keep only this market's tokens
                    p = {t: cm.payouts[t] for t in m.token_ids if t in cm.payouts}
                    if len(p) == len(m.token_ids):
                        clob_payouts[m.id] = p
            fresh.append(m)
        except (RequestRejected, DataError) as exc:
            failed.append(mid)
            problems.append(f"refresh of market {mid}: {exc}")
        except ExchangeUnavailable as exc:
            failed.append(mid)
            problems.append(f"refresh stopped at market {mid}: {exc}")
            break
    return fresh, clob_payouts, failed


def _record_failure(
    conn: sqlite3.Connection,
    cycle_id: int | None,
    res: CycleResult,
    started_at: int,
    t0: float,
    client: PolymarketClient,
    kind: str = "cycle",
) -> None:
    res.status = "failed"
    res.duration = time.perf_counter() - t0
    res.api_seconds = client.stats.total_seconds if client is not None else 0.0
    detail = "; ".join([res.failure or "failed"] + res.problems[:20])
    try:
        with db.atomic(conn):
            if cycle_id is None:
                cycle_id = store.start_cycle(conn, started_at=started_at, cycle_ts=res.cycle_ts, kind=kind)
            store.finish_cycle(
                conn,
                cycle_id,
                status="failed",
                finished_at=int(time.time()),
                markets=res.markets,
                errors=res.errors + 1,
                api_seconds=res.api_seconds,
                duration=res.duration,
                error_detail=detail,
            )
    except Exception:  # the failure record must never hide the original failure
        log.exception("could not record the failed cycle")


def collect_once(
    cfg: Config,
    conn: sqlite3.Connection,
    client: PolymarketClient,
    *,
    initial: bool = False,
    progress: Callable[[str], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> CycleResult:
    """Run one cycle with an open database and client (the lock is the caller's), with
    the cyclic garbage collector paused (:func:`polybot.snapshots.store.cyclic_gc_paused`).

    A whole-universe cycle keeps ~50,000 markets and ~100,000 snapshot rows alive while
    allocating millions of short-lived objects (parsed pages and books), so the collector
    ran ~6,000 times and scanned the growing heap 35 times a cycle: 8.7-9.3 of 28 CPU
    seconds, on the GIL the listing and the book threads share (measured with
    ``gc.callbacks`` on the simulator's 50,016 markets). The cycle makes little cyclic
    garbage (peak memory measured the same)."""
    with cyclic_gc_paused():
        return _collect_once(cfg, conn, client, initial=initial, progress=progress, report=report)


def _collect_once(
    cfg: Config,
    conn: sqlite3.Connection,
    client: PolymarketClient,
    *,
    initial: bool,
    progress: Callable[[str], None] | None,
    report: Callable[[str], None] | None,
) -> CycleResult:
    t0 = time.perf_counter()
    started_at = int(time.time())
    step = step_seconds(cfg)
    kind = "initial" if initial else "cycle"
    with db.atomic(conn):
        stale = store.fail_stale_cycles(conn, ("cycle", "initial"), started_at)
    if stale:
        log.warning("%d earlier cycle(s) were left running (killed?); marked failed", stale)
    client.reset_stats()
    try:
        server_now = client.get_server_time()
    except (ExchangeError, DataError) as exc:
        res = CycleResult(
            cycle_ts=floor_ts(started_at, step),
            exit_code=EXIT_EXCHANGE,
            failure=f"exchange clock unavailable: {exc}",
        )
        _record_failure(conn, None, res, started_at, t0, client, kind)
        return res
    res = CycleResult(cycle_ts=floor_ts(server_now, step))
    with db.atomic(conn):
        cycle_id = store.start_cycle(conn, started_at=started_at, cycle_ts=res.cycle_ts, kind=kind)
    try:
        known_before = store.known_market_ids(conn)
        was_tracked = store.tracked_market_ids(conn)
        depth = cfg.collection.depth_levels
        # token id -> integer key, once per cycle and before the listing, so the book threads
        # build each row's final insert parameters (keys are never changed once made; a
        # token seen for the first time gets its key in the transaction below)
        keys = snapshot_rows.token_keys(conn)
        known_keys = keys.keys
        with BookFetcher(
            client,
            batch_size=cfg.collection.books_batch_size,
            workers=BOOK_WORKERS,
            progress=progress,
            row_of=lambda m, b: snapshot_rows.snapshot_row(res.cycle_ts, m, b, depth, known_keys),
        ) as fetcher:
            market_rows: dict[str, tuple] = {}

            def on_final(m: Market) -> None:  # books requested, row built, during the listing
                fetcher.want_market(m)
                market_rows[m.id] = store.market_row(m, tracked=True, now=server_now)

            sel = discover(client, cfg, full_scan=initial, progress=progress, on_final=on_final)
            tokens = sel.token_ids
            _, book_problems = fetcher.result(tokens)
            rows = fetcher.rows_for(sel.markets)
        if report:
            for line in universe.describe(sel, cfg.collection):
                report(line)
        res.markets = len(sel.markets)
        res.problems += [f"skipped market {i.record_id}: {i.reason}" for i in sel.issues]
        for i in sel.issues:  # on screen once, from the cycle's problem list: the log file only
            log.warning("skipped malformed market %s: %s", i.record_id, i.reason, extra={"console": False})
        res.problems += [f"explicit market {w} not tracked" for w in sel.explicit_missing]
        missing = len(tokens) - len(rows)
        if missing and not book_problems:
            book_problems.append(f"{missing} tracked token(s) had no order book")
        res.problems += book_problems
        selected_ids = {m.id for m in sel.markets}
        fresh, clob_payouts, failed = refresh_lifecycle(
            client,
            conn,
            selected=selected_ids,
            was_tracked=was_tracked,
            now=server_now,
            problems=res.problems,
        )
        res.errors = len(res.problems)
        res.status = "partial" if missing else "ok"
        t_write = time.perf_counter()
        with db.atomic(conn):
            store.upsert_markets(conn, sel.markets, tracked=True, now=server_now, prebuilt=market_rows)
            res.left = len(store.set_tracked(conn, selected_ids, server_now))
            store.upsert_markets(conn, fresh, tracked=False, now=server_now, payouts=clob_payouts)
            for mid in failed:
                store.touch_market(conn, mid, server_now)
            res.existing = snapshot_rows.count_cycle_snapshots(
                conn, res.cycle_ts, [r[1] for r in rows], keys=keys
            )
            t_ins, c_ins = time.perf_counter(), time.thread_time()
            res.snapshots = snapshot_rows.insert_snapshots(conn, rows, keys=keys)
            res.insert_seconds = time.perf_counter() - t_ins
            res.insert_cpu_seconds = time.thread_time() - c_ins
            res.duration = time.perf_counter() - t0
            res.api_seconds = client.stats.total_seconds
            store.finish_cycle(
                conn,
                cycle_id,
                status=res.status,
                finished_at=int(time.time()),
                markets=res.markets,
                snapshots=res.snapshots,
                errors=res.errors,
                api_seconds=res.api_seconds,
                duration=res.duration,
                error_detail="; ".join(res.problems[:20]) or None,
            )
            t_commit, c_commit = time.perf_counter(), time.thread_time()
        res.commit_seconds = time.perf_counter() - t_commit
        res.commit_cpu_seconds = time.thread_time() - c_commit
        res.write_seconds = time.perf_counter() - t_write
        t_ckpt, c_ckpt = time.perf_counter(), time.thread_time()
        res.checkpoint = snapshot_rows.checkpoint_after_commit(conn)
        res.checkpoint_seconds = time.perf_counter() - t_ckpt
        res.checkpoint_cpu_seconds = time.thread_time() - c_ckpt
        res.refreshed = len(fresh)
        res.resolved = sum(1 for m in fresh if m.payouts is not None or m.id in clob_payouts)
        res.new_markets = [m for m in sel.markets if m.id not in known_before] if known_before else []
        res.exit_code = EXIT_OK if res.status == "ok" else EXIT_PARTIAL
        return res
    except ExchangeError as exc:
        res.failure = str(exc)
        res.exit_code = EXIT_EXCHANGE
        _record_failure(conn, cycle_id, res, started_at, t0, client)
        return res
    except DataError as exc:
        res.failure = str(exc)
        res.exit_code = EXIT_PARTIAL
        _record_failure(conn, cycle_id, res, started_at, t0, client)
        return res
    except BaseException as exc:
        res.failure = f"{type(exc).__name__}: {exc}"
        _record_failure(conn, cycle_id, res, started_at, t0, client)
        raise


def send_new_market_alerts(
    cfg: Config, conn: sqlite3.Connection, markets: list[Market], timeout: float = 15.0
) -> None:
    """One ``info`` alert per market entering the universe for the first time (the
    alerter stores each and throttles delivery of repeats of the key)."""
    alerter = Alerter(cfg, conn)
    try:
        for m in markets:
            alerter.info("new_market", f"New market detected: {m.question}")
        if hasattr(alerter, "flush") and not alerter.flush(timeout):
            log.warning("new-market alerts still being delivered after %.0f s", timeout)
    finally:
        if hasattr(alerter, "close"):
            alerter.close()


def seed_universe(cfg: Config) -> CycleResult:
    """Initialize the configured database and run one ``--initial`` cycle (a new workspace's
    first two steps; the engine's scenarios and tests start from here)."""
    from ..exchange.client import PolymarketClient

    db.initialize(cfg.database_path)
    conn = db.open_database(cfg)
    client = PolymarketClient.from_config(cfg)
    try:
        return collect_once(cfg, conn, client, initial=True)
    finally:
        client.close()
        conn.close()


def run(
    cfg: Config, *, initial: bool = False, verbose: bool = False, out: Callable[[str], None] = print
) -> int:
    """The whole command: lock, database, client, cycle, alerts, summary. Returns the
    exit code."""
    with job_lock(cfg, COLLECT_LOCK) as got:
        if not got:
            msg = "another collection is running; exiting"
            log.info(msg)
            out(msg)
            return EXIT_OK
        conn = db.open_database(cfg, synchronous="NORMAL")
        snapshot_rows.tune_for_bulk(conn)
        client = make_client(cfg, book_workers=BOOK_WORKERS)
        try:
            res = collect_once(
                cfg,
                conn,
                client,
                initial=initial,
                progress=_progress_printer(verbose),
                report=out if initial else None,
            )
            if res.new_markets:
                send_new_market_alerts(cfg, conn, res.new_markets)
        finally:
            client.close()
            conn.close()
    for p in res.problems[:10]:  # with --verbose the list below shows them on screen
        log.warning("cycle %s: %s", iso_seconds(res.cycle_ts), p, extra={"console": not verbose})
    if res.refreshed or res.left:
        log.info(
            "cycle %s: %d market(s) left the universe, %d refreshed, %d resolution(s) recorded",
            iso_seconds(res.cycle_ts),
            res.left,
            res.refreshed,
            res.resolved,
        )
    line = res.summary()
    (log.error if res.status == "failed" else log.info)(line)
    if verbose and res.problems:
        for p in res.problems[:20]:
            out(f"  - {p}")
    out(line)
    return res.exit_code
