"""Start-up reconciliation: the database against the exchange (live) or itself (paper).

Order of work (nautilus-style, research/style_reliability.md B2/B3):

1. positions: the ``positions`` table must equal what the recorded trades imply; any
   difference is reported and the table rebuilt from the trades (trades are the truth);
2. in-flight orders (PENDING_SUBMIT / UNKNOWN): looked up by order hash — found → the
   exchange's state and fills are recorded; paper → marked "not executed" (the paper
   exchange is rebuilt from the trades, so a fill that was not recorded never happened);
3. live: fills the exchange has that the database lacks are recorded (fills of unknown
   orders as "external"); open orders are compared both ways; positions are compared
   with the Data API;
4. paper: the rebuilt paper exchange's cash and positions are compared with the
   database's (they must be equal by construction).

Every difference is one line of the returned report (logged, and summarised in the
restart log). A failure to reach the exchange raises (the caller retries and counts it).
"""
from __future__ import annotations

import logging

from polybot import db
from polybot.engine import ledger
from polybot.engine.orders import OPEN
from polybot.money import MICRO, fmt_usd

log = logging.getLogger("polybot.engine")

SIZE_TOLERANCE_MICRO = 10_000       # 0.01 share (the CLOB's size precision)


def reconcile(engine) -> list[str]:
    conn, mode, ex = engine.conn, engine.mode, engine.exchange
    report: list[str] = []
    with db.atomic(conn):
        diffs = ledger.rebuild_positions(conn, mode, engine.now_ts)
    report += [f"positions table repaired from the recorded trades: {d}" for d in diffs]
    report += engine.executor.resolve_inflight(startup=True)
    if engine.paper:
        report += _paper(engine)
    else:
        report += _live(engine)
    return report


def _paper(engine) -> list[str]:
    out = []
    cash = ledger.paper_cash_micro(engine.conn, "paper", engine.capital_micro)
    xcash = engine.exchange.balance_micro()
    if cash != xcash:
        out.append(f"paper cash differs: trades imply {fmt_usd(cash)}, the rebuilt paper exchange has "
                   f"{fmt_usd(xcash)}")
    xpos = {p.token_id: p.size for p in engine.exchange.positions()}
    dbpos = {p.token_id: p.size_micro for p in ledger.open_positions(engine.conn, "paper")}
    for token in sorted(set(xpos) | set(dbpos)):
        if xpos.get(token, 0) != dbpos.get(token, 0):
            out.append(f"paper position {token[:12]}… differs: database {dbpos.get(token, 0) / MICRO:g}, "
                       f"paper exchange {xpos.get(token, 0) / MICRO:g} shares")
    return out


def _live(engine) -> list[str]:
    conn, ex, executor = engine.conn, engine.exchange, engine.executor
    out = []
    r = conn.execute("SELECT MIN(created_at) FROM orders WHERE mode='live' AND status NOT IN "
                     "('FILLED','CANCELED','REJECTED','EXPIRED')").fetchone()
    last = conn.execute("SELECT MAX(timestamp) FROM trades WHERE mode='live' AND kind='fill'").fetchone()
    candidates = [v for v in (r[0], last[0]) if v is not None]
    since = (min(candidates) - 3600) if candidates else None
    out += executor.record_external_fills(ex.trades(since))
    ours = {(row["exchange_order_id"] or "").lower(): row for row in executor.rows(OPEN)}
    xopen = ex.open_orders()
    xids = {o.order_id.lower() for o in xopen}
    for o in xopen:
        if o.order_id.lower() not in ours:
            out.append(f"open order {o.order_id[:14]}… at the exchange ({o.side} {o.original_size_micro / MICRO:g} "
                       f"@ {o.price_micro / MICRO:g}) is not in the database (placed by hand?); left alone")
    for key, row in ours.items():
        if key not in xids:
            st = ex.lookup(row["exchange_order_id"])
            if st is not None:
                status = executor.apply_status(row["id"], st)
                out.append(f"order {row['id']} is no longer open at the exchange → {status}")
            else:
                executor._set(row["id"], "CANCELED", error="not known to the exchange at start-up")
                out.append(f"order {row['id']} is unknown to the exchange → CANCELED")
    xpos = {p.token_id: p.size for p in ex.positions()}
    dbpos = {p.token_id: p.size_micro for p in ledger.open_positions(conn, "live")}
    for token in sorted(set(xpos) | set(dbpos)):
        a, b = dbpos.get(token, 0), xpos.get(token, 0)
        if abs(a - b) > SIZE_TOLERANCE_MICRO:
            out.append(f"position {token[:12]}… differs: database {a / MICRO:g}, exchange {b / MICRO:g} shares")
    return out
