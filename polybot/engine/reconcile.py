"""Start-up reconciliation: the database against the exchange (live) or itself (paper).

Order of work (nautilus-style, docs/dev/api_notes.md §13):

1. positions: the ``positions`` table must equal what the recorded trades imply; any
   difference is reported and the table rebuilt from the trades (trades are the truth);
2. in-flight orders (PENDING_SUBMIT / UNKNOWN): looked up by order hash — found → the
   exchange's state and fills are recorded; paper → marked "not executed" (the paper
   exchange is rebuilt from the trades, so a fill that was not recorded never happened);
3. live: at the FIRST live start a baseline is recorded before anything else (the
   account's positions and trade history are external, never the bot's:
   polybot/engine/external.py); then fills the exchange has that the database lacks are
   recorded (fills of orders the bot never placed as external trades), trade statuses
   are brought up to date (FAILED fills reversed); open orders are compared both ways;
   positions are compared with the Data API minus the external holdings;
4. paper: the rebuilt paper exchange's cash and positions are compared with the
   database's (they must be equal by construction).

Every difference is one line of the returned report (logged, and summarised in the
restart log). A failure to reach the exchange raises (the caller retries and counts it).

Every loop in live mode, :func:`sync_trades` reads the account's recent trades (back to
the oldest fill not confirmed yet) and :func:`check_invariant` holds the bot to the
exchange: for every token the bot has traded, its ledger position must equal the
exchange's (Data API) position minus the external holding, allowing for fills not
confirmed yet. A mismatch that lasts ``trading.reconcile_mismatch_loops`` consecutive
loops trips breaker #3 (position anomaly) with one sentence naming both figures.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from polybot import db
from polybot.domain import PROVISIONAL_TRADE_STATUSES, ExchangeOrderStatus
from polybot.engine import breakers, external, ledger
from polybot.engine.breakers import BreakerTripped
from polybot.engine.orders import OPEN
from polybot.errors import ExchangeError
from polybot.money import MICRO, fmt_usd

if TYPE_CHECKING:
    from polybot.engine.loop import Engine

log = logging.getLogger("polybot.engine")

SIZE_TOLERANCE_MICRO = 10_000  # 0.01 share (the CLOB's size precision)


def reconcile(engine: Engine) -> list[str]:
    conn, mode = engine.conn, engine.mode
    report: list[str] = []
    with db.atomic(conn):
        diffs = ledger.rebuild_positions(conn, mode, engine.now_ts)
    report += [f"positions table repaired from the recorded trades: {d}" for d in diffs]
    report += engine.require_executor().resolve_inflight(startup=True)
    if engine.paper:
        report += _paper(engine)
    else:
        report += _live(engine)
    return report


def _paper(engine: Engine) -> list[str]:
    out = []
    exchange = engine.require_exchange()
    cash = ledger.paper_cash_micro(engine.conn, "paper", engine.capital_micro)
    xcash = exchange.balance_micro()
    if cash != xcash:
        out.append(
            f"paper cash differs: trades imply {fmt_usd(cash)}, the rebuilt paper exchange has "
            f"{fmt_usd(xcash)}"
        )
    xpos = {p.token_id: p.size for p in exchange.positions()}
    dbpos = {p.token_id: p.size_micro for p in ledger.open_positions(engine.conn, "paper")}
    for token in sorted(set(xpos) | set(dbpos)):
        if xpos.get(token, 0) != dbpos.get(token, 0):
            out.append(
                f"paper position {token[:12]}… differs: database {dbpos.get(token, 0) / MICRO:g}, "
                f"paper exchange {xpos.get(token, 0) / MICRO:g} shares"
            )
    return out


def _live(engine: Engine) -> list[str]:
    conn, ex, executor = engine.conn, engine.require_exchange(), engine.require_executor()
    out = []
    base = external.baseline_at(conn)
    if base is None:
        # First live start: everything the account holds or traded so far is external.
        # trades(None) pages the whole history ONCE; afterwards only since the baseline.
        out += external.record_baseline(conn, ex.positions(), ex.trades(None), now=engine.now_ts)
        base = external.baseline_at(conn)
        assert base is not None  # record_baseline has just written it
    r = conn.execute(
        "SELECT MIN(created_at) FROM orders WHERE mode='live' AND status NOT IN "
        "('FILLED','CANCELED','REJECTED','EXPIRED')"
    ).fetchone()
    last = conn.execute("SELECT MAX(timestamp) FROM trades WHERE mode='live' AND kind='fill'").fetchone()
    pending = _oldest_provisional(conn)
    candidates = [v for v in (r[0], last[0], pending) if v is not None]
    since = (min(candidates) - 3600) if candidates else base - 3600
    out += executor.record_external_fills(ex.trades(max(since, base - 3600)))
    ours = {(row["exchange_order_id"] or "").lower(): row for row in executor.rows(OPEN)}
    xopen = ex.open_orders()
    xids = {o.order_id.lower() for o in xopen}
    for o in xopen:
        if o.order_id.lower() not in ours:
            out.append(
                f"open order {o.order_id[:14]}… at the exchange ({o.side} {o.original_size_micro / MICRO:g} "
                f"@ {o.price_micro / MICRO:g}) is not in the database (placed by hand?); left alone"
            )
    for key, row in ours.items():
        if key not in xids:
            st = ex.lookup(row["exchange_order_id"])
            if st is not None:
                status = executor.apply_status(row["id"], st)
                out.append(f"order {row['id']} is no longer open at the exchange → {status}")
            elif (
                row["exchange_status"] == ExchangeOrderStatus.MATCHED
            ):  # matched: its fills are still to be read
                out.append(
                    f"order {row['id']} was matched but the exchange lists neither it nor its trades yet; "
                    f"it stays {row['status']} until its fills are read"
                )
            else:
                executor._set(row["id"], "CANCELED", error="not known to the exchange at start-up")
                out.append(f"order {row['id']} is unknown to the exchange → CANCELED")
    xpos = {p.token_id: p.size for p in ex.positions()}
    with db.atomic(conn):
        out += external.forget_vanished(conn, set(xpos), now=engine.now_ts)
    for line in position_mismatches(conn, xpos):
        out.append(line)
    return out


def _oldest_provisional(conn: sqlite3.Connection) -> int | None:
    q = ",".join("?" * len(PROVISIONAL_TRADE_STATUSES))
    r = conn.execute(
        f"SELECT MIN(timestamp) FROM trades WHERE mode='live' AND kind='fill' AND trade_status IN ({q})",
        PROVISIONAL_TRADE_STATUSES,
    ).fetchone()
    return None if r is None or r[0] is None else int(r[0])


# ----------------------------------------------------------------------------- every loop (live)
def sync_trades(engine: Engine) -> None:
    """Record fills the database lacks and bring trade statuses up to date: the window
    reaches back to the oldest fill not confirmed yet (its status may still change)."""
    conn, executor = engine.conn, engine.require_executor()
    since = (engine._last_fill_sync or engine.now_ts) - 600
    pending = _oldest_provisional(conn)
    if pending is not None:
        since = min(since, pending - 60)
    base = external.baseline_at(conn)
    if base is not None:
        since = max(since, base - 3600)
    try:
        fills = engine.require_exchange().trades(since)
    except ExchangeError as exc:
        engine.api_errors.failure(exc, "reading trades")
        return
    engine.api_errors.success()
    for line in executor.record_external_fills(fills):
        log.warning("reconcile: %s", line)
    engine._last_fill_sync = engine.now_ts


def expected_range(
    conn: sqlite3.Connection, token: str, bot_size: int, provisional: dict[str, int]
) -> tuple[int, int]:
    """The exchange's bot-part position may be the ledger's, or the ledger's without the
    fills not confirmed yet (the Data API shows a trade once it settles)."""
    other = bot_size - provisional.get(token, 0)
    return min(bot_size, other), max(bot_size, other)


def position_mismatches(conn: sqlite3.Connection, xpos: dict[str, int]) -> list[str]:
    """One sentence per token whose ledger position differs from the exchange's bot part
    (Data API position minus the external holding) beyond the unconfirmed fills."""
    ext = external.sizes(conn, "live")
    prov = ledger.provisional_net_micro(conn, "live")
    ours = {
        r["token_id"]: int(r["size_micro"]) if r["status"] == "open" else 0
        for r in conn.execute("SELECT token_id, size_micro, status FROM positions WHERE mode='live'")
    }
    out = []
    for token in sorted(set(ours) | set(prov)):
        bot = ours.get(token, 0)
        have = xpos[token] - ext.get(token, 0) if token in xpos else 0
        lo, hi = expected_range(conn, token, bot, prov)
        if lo - SIZE_TOLERANCE_MICRO <= have <= hi + SIZE_TOLERANCE_MICRO:
            continue
        pending = f" ({prov[token] / MICRO:+g} of it not confirmed yet)" if prov.get(token) else ""
        ext_note = f" minus {ext[token] / MICRO:g} external" if ext.get(token) else ""
        out.append(
            f"token {token[:12]}…: the bot's ledger holds {bot / MICRO:g} shares{pending}, the exchange "
            f"shows {have / MICRO:g} ({xpos.get(token, 0) / MICRO:g} at the Data API{ext_note})"
        )
    return out


def check_invariant(engine: Engine) -> None:
    """Live, every loop: the bot's positions equal the exchange's (Data API minus the
    external holdings) for the bot's tokens; a mismatch that lasts
    ``trading.reconcile_mismatch_loops`` loops trips breaker #3. The bot's part of each
    exchange position is also held to max_position_size (external holdings are not)."""
    try:
        positions = engine.require_exchange().positions()
    except ExchangeError as exc:
        engine.api_errors.failure(exc, "reading positions")
        return
    engine.api_errors.success()
    conn = engine.conn
    xpos = {p.token_id: int(p.size) for p in positions}
    ext = external.sizes(conn, "live")
    items = []
    for p in positions:
        mine = int(p.size) - max(0, ext.get(p.token_id, 0))
        if mine > SIZE_TOLERANCE_MICRO:
            cost = p.initial_value * mine // int(p.size) if p.initial_value else p.avg_price * mine // MICRO
            items.append((p.token_id, mine, cost))
    breakers.check_positions(items, engine.cfg.risk_limits.max_position_size, "the exchange")
    lines = position_mismatches(conn, xpos)
    limit = engine.cfg.trading.reconcile_mismatch_loops  # ≥ 1, checked in config
    counts: dict[str, int] = getattr(engine, "_mismatch_loops", {})
    now = {line.split(":", 1)[0]: line for line in lines}
    counts = {k: counts.get(k, 0) + 1 for k in now}
    engine._mismatch_loops = counts
    for key, line in now.items():
        n = counts[key]
        if n >= limit:
            raise BreakerTripped(
                breakers.POSITION_ANOMALY, f"position mismatch for {n} consecutive loops: {line}"
            )
        log.warning("reconcile: position mismatch %d/%d: %s", n, limit, line)
