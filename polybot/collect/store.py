"""SQL for the collector: markets, market_tokens, market_metadata_history and
collection_cycles (the snapshot rows themselves: :mod:`polybot.collect.snapshot_rows`).

Callers wrap writes in ``db.atomic``; these helpers never commit on their own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from ..exchange.models import Market

# ----------------------------------------------------------------------------- markets
_MARKET_COLS = (
    "id",
    "condition_id",
    "question",
    "slug",
    "event_id",
    "event_title",
    "neg_risk",
    "neg_risk_market_id",
    "version",
    "token_ids",
    "outcomes",
    "end_date",
    "active",
    "closed",
    "accepting_orders",
    "tick_size",
    "min_order_size",
    "fees_enabled",
    "fee_rate",
    "fee_exponent",
    "volume_24h",
    "liquidity",
    "resolution_status",
    "payouts",
    "resolved_at",
    "tracked",
    "first_seen",
    "updated_at",
)
_UPDATE_COLS = [c for c in _MARKET_COLS if c not in ("id", "first_seen", "payouts", "resolved_at", "tracked")]
UPSERT_MARKET = (
    f"INSERT INTO markets ({', '.join(_MARKET_COLS)}) VALUES ({', '.join('?' * len(_MARKET_COLS))}) "
    f"ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATE_COLS)
    # a recorded outcome is final: never overwritten, never cleared
    + ", payouts = COALESCE(markets.payouts, excluded.payouts)"
    + ", resolved_at = COALESCE(markets.resolved_at, excluded.resolved_at)"
    + ", tracked = excluded.tracked"
)
UPSERT_TOKEN = (
    "INSERT INTO market_tokens (token_id, market_id, outcome, outcome_index) "
    "VALUES (?,?,?,?) ON CONFLICT(token_id) DO UPDATE SET market_id = excluded.market_id, "
    "outcome = excluded.outcome, outcome_index = excluded.outcome_index "
    # an unchanged token is not rewritten (a whole-universe cycle sees ~100,000 each time)
    "WHERE market_id IS NOT excluded.market_id OR outcome IS NOT excluded.outcome "
    "OR outcome_index IS NOT excluded.outcome_index"
)


def market_row(
    m: Market, *, tracked: bool, now: int, payouts: dict | None = None, resolved_at: int | None = None
) -> tuple:
    """The ``markets`` row of ``m``. ``payouts`` overrides ``m.payouts`` (CLOB winner flags);
    ``resolved_at`` defaults to ``now`` (the exchange time the outcome was first seen; the
    backfill passes the market's close time for markets that resolved in the past)."""
    payouts = payouts if payouts is not None else m.payouts
    return (
        m.id,
        m.condition_id,
        m.question,
        m.slug or None,
        m.event_id,
        m.event_title,
        int(m.neg_risk),
        m.neg_risk_market_id,
        m.version or "v1",
        json.dumps(list(m.token_ids)),
        json.dumps([t.outcome for t in m.tokens]),
        m.end_date,
        int(m.active),
        int(m.closed),
        int(m.accepting_orders),
        m.tick_size,
        m.min_order_size,
        int(m.fees.enabled),
        m.fees.rate,
        m.fees.exponent,
        m.volume_24h,
        m.liquidity,
        m.uma_resolution_status,
        json.dumps(payouts, sort_keys=True) if payouts is not None else None,
        (now if resolved_at is None else int(resolved_at)) if payouts is not None else None,
        int(tracked),
        now,
        now,
    )


def upsert_markets(
    conn: sqlite3.Connection,
    markets: Sequence[Market],
    *,
    tracked: bool,
    now: int,
    payouts: dict | None = None,
    prebuilt: dict[str, tuple] | None = None,
    resolved_at: dict[str, int] | None = None,
    record: bool = True,
) -> None:
    """Insert or refresh markets and their tokens, and record any change of their trading
    metadata (:func:`record_metadata`). ``payouts``: market id → CLOB payouts;
    ``prebuilt``: market id → a :func:`market_row` already built with the same arguments;
    ``resolved_at``: market id → when its outcome took effect (default ``now``);
    ``record=False``: leave the metadata history to the caller."""
    payouts = payouts or {}
    prebuilt = prebuilt or {}
    resolved_at = resolved_at or {}
    conn.executemany(
        UPSERT_MARKET,
        [
            prebuilt.get(m.id)
            or market_row(
                m, tracked=tracked, now=now, payouts=payouts.get(m.id), resolved_at=resolved_at.get(m.id)
            )
            for m in markets
        ],
    )
    conn.executemany(
        UPSERT_TOKEN, [(t.token_id, m.id, t.outcome, t.index) for m in markets for t in m.tokens]
    )
    if record:
        record_metadata(conn, markets, now)


# ----------------------------------------------------------------------------- point-in-time metadata
# A market's trading metadata (tick size, minimum order size, fee schedule, end date) is
# kept with the time it took effect (schema v3 table market_metadata_history), so a replay
# applies the value in force at each step (polybot/backtest/data.load_metadata_history);
# the markets row above holds only the latest. A row is added when the values differ from
# the market's latest row; effective_from = the exchange time the new value was first seen
# (the change happened at most one collection interval earlier).
_META_VALUES = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9"
INSERT_METADATA_IF_CHANGED = (
    "INSERT OR IGNORE INTO market_metadata_history (market_id, effective_from, tick_size, "
    "min_order_size, fees_enabled, fee_rate, fee_exponent, end_date, source) "
    f"SELECT {_META_VALUES} WHERE NOT EXISTS (SELECT 1 FROM (SELECT tick_size, min_order_size, "
    "fees_enabled, fee_rate, fee_exponent, end_date FROM market_metadata_history "
    "WHERE market_id = ?1 ORDER BY effective_from DESC LIMIT 1) l "
    "WHERE l.tick_size = ?3 AND l.min_order_size = ?4 AND l.fees_enabled = ?5 AND l.fee_rate = ?6 "
    "AND l.fee_exponent = ?7 AND l.end_date IS ?8)"
)
INSERT_METADATA_IF_NONE = (
    "INSERT OR IGNORE INTO market_metadata_history (market_id, effective_from, tick_size, "
    "min_order_size, fees_enabled, fee_rate, fee_exponent, end_date, source) "
    f"SELECT {_META_VALUES} WHERE NOT EXISTS (SELECT 1 FROM market_metadata_history "
    "WHERE market_id = ?1)"
)


def metadata_row(m: Market, effective_from: int, source: str) -> tuple:
    return (
        m.id,
        int(effective_from),
        float(m.tick_size),
        float(m.min_order_size),
        int(m.fees.enabled),
        float(m.fees.rate),
        float(m.fees.exponent),
        m.end_date,
        source,
    )


def record_metadata(
    conn: sqlite3.Connection,
    markets: Sequence[Market],
    now: int,
    *,
    source: str = "collected",
    since: dict[str, int] | None = None,
) -> int:
    """Record each market's metadata with the time it took effect; returns rows added.

    Default: a row at ``now`` for each market whose values differ from its latest row (a
    re-run with unchanged values adds nothing). With ``since`` (market id → time, the
    backfill's markets that closed in the past): a first row at that time, only for
    markets without any row — what was seen once at the end is assumed to have held
    over the market's life, and never rewrites a history the collector recorded."""
    if not markets:
        return 0
    before = conn.total_changes
    if since is None:
        conn.executemany(INSERT_METADATA_IF_CHANGED, [metadata_row(m, now, source) for m in markets])
    else:
        conn.executemany(
            INSERT_METADATA_IF_NONE, [metadata_row(m, since.get(m.id, now), source) for m in markets]
        )
    return conn.total_changes - before


def set_tracked(conn: sqlite3.Connection, tracked_ids: Iterable[str], now: int) -> list[str]:
    """Make exactly ``tracked_ids`` tracked; return the ids that stopped being tracked."""
    keep = set(tracked_ids)
    before = [r[0] for r in conn.execute("SELECT id FROM markets WHERE tracked = 1")]
    left = [i for i in before if i not in keep]
    conn.executemany("UPDATE markets SET tracked = 0, updated_at = ? WHERE id = ?", [(now, i) for i in left])
    return left


def known_market_ids(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM markets")}


def tracked_market_ids(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM markets WHERE tracked = 1")}


REFRESH_GIVE_UP_DAYS = 60  # stop asking about markets that ended this long ago unresolved


def refresh_candidates(
    conn: sqlite3.Connection, *, exclude: set[str], was_tracked: set[str], now: int, limit: int
) -> list[tuple[str, str]]:
    """(id, condition_id) of markets whose final outcome is still unknown and that need
    a look: closed ones, ones past their end date, and ones that just left the universe.
    Least recently refreshed first, at most ``limit``; markets that ended more than
    :data:`REFRESH_GIVE_UP_DAYS` ago without an outcome (legacy "0","0" markets) are left."""
    rows = conn.execute(
        "SELECT id, condition_id, closed, end_date, updated_at FROM markets "
        "WHERE payouts IS NULL ORDER BY updated_at, id"
    ).fetchall()
    out = []
    oldest = now - REFRESH_GIVE_UP_DAYS * 86_400
    for mid, cid, closed, end_date, _ in rows:
        if mid in exclude or (end_date is not None and end_date < oldest and mid not in was_tracked):
            continue
        if closed or (end_date is not None and end_date <= now) or mid in was_tracked:
            out.append((mid, cid))
            if len(out) >= limit:
                break
    return out


def touch_market(conn: sqlite3.Connection, market_id: str, now: int) -> None:
    conn.execute("UPDATE markets SET updated_at = ? WHERE id = ?", (now, market_id))


# ----------------------------------------------------------------------------- cycles
def start_cycle(conn: sqlite3.Connection, *, started_at: int, cycle_ts: int, kind: str) -> int:
    cur = conn.execute(
        "INSERT INTO collection_cycles (started_at, cycle_ts, kind, status) VALUES (?,?,?, 'running')",
        (started_at, cycle_ts, kind),
    )
    if cur.lastrowid is None:  # sqlite3 sets it after every INSERT
        raise sqlite3.DatabaseError("INSERT INTO collection_cycles returned no row id")
    return int(cur.lastrowid)


def finish_cycle(
    conn: sqlite3.Connection,
    cycle_id: int,
    *,
    status: str,
    finished_at: int,
    markets: int = 0,
    snapshots: int = 0,
    errors: int = 0,
    api_seconds: float = 0.0,
    duration: float = 0.0,
    error_detail: str | None = None,
) -> None:
    conn.execute(
        "UPDATE collection_cycles SET status = ?, finished_at = ?, markets = ?, "
        "snapshots = ?, errors = ?, api_seconds = ?, duration = ?, error_detail = ? "
        "WHERE id = ?",
        (
            status,
            finished_at,
            markets,
            snapshots,
            errors,
            round(api_seconds, 3),
            round(duration, 3),
            (error_detail or None) and error_detail[:2000],
            cycle_id,
        ),
    )


STALE_DETAIL = "interrupted: the process stopped before the cycle finished; nothing of it was written"


def fail_stale_cycles(
    conn: sqlite3.Connection, kinds: Sequence[str], now: int, detail: str = STALE_DETAIL
) -> int:
    """Cycles left 'running' by a killed process (we hold the lock, so none is live)."""
    marks = ",".join("?" * len(kinds))
    cur = conn.execute(
        f"UPDATE collection_cycles SET status = 'failed', finished_at = COALESCE(finished_at, ?), "
        f"error_detail = COALESCE(error_detail, ?) WHERE status = 'running' AND kind IN ({marks})",
        (now, detail, *kinds),
    )
    return cur.rowcount
