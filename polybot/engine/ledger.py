"""The ledger: trades are the source of truth; positions and paper cash follow from them.

Every fill or settlement is ONE ``trades`` row (``trade_id`` UNIQUE: the exchange's
trade id, ``paper-<n>-t<k>`` on paper, ``settle:<mode>:<token>`` for a resolution)
and the ``positions`` row of its token is updated in the SAME transaction
(the caller holds :func:`polybot.db.atomic`). Re-recording a trade id is a no-op,
so replaying fills after a crash never double-counts.

Cash flows (integer micro-units):
- BUY fill: −(notional + fee); SELL fill: +(notional − fee);
- settlement (``kind='settlement'``, side SELL, price = payout 1/0/0.5): +notional.
Paper cash = capital + Σ cash flows of the mode's trades.

Average-cost accounting: a SELL removes ``cost × sold / held`` (half-up) from the
cost basis and realises ``proceeds − removed cost``.

Trade status (live): a fill is recorded when the exchange first reports it, with its
CLOB status (``trade_status``). MATCHED / MINED / RETRYING are provisional, CONFIRMED
is final. A FAILED trade never settled on chain: :func:`update_trade_status` undoes it
with one ``kind='reversal'`` row (``reversal:<trade_id>``, opposite side, fee negated),
in the caller's transaction, so position and cash return exactly to what they were
without it; its UNIQUE id makes seeing the failure again (after a restart) a no-op.

This module WRITES the ledger. Reading it (positions, realised / unrealised / daily P&L, the
valuation at marks) is :mod:`polybot.ledger_queries`, the one read side every report uses;
the names the engine reads through ``ledger.`` are re-exported from there.
"""

from __future__ import annotations

import sqlite3

from polybot import db
from polybot.domain import BUY, FINAL_TRADE_STATUSES, PROVISIONAL_TRADE_STATUSES, SELL, TradeStatus
from polybot.exchange.base import Fill
from polybot.ledger_queries import Portfolio as Portfolio
from polybot.ledger_queries import PositionRow as PositionRow
from polybot.ledger_queries import cash_flow_micro as cash_flow_micro
from polybot.ledger_queries import daily_baseline_micro as daily_baseline_micro
from polybot.ledger_queries import daily_pnl_micro as daily_pnl_micro
from polybot.ledger_queries import day_low_equity_micro as day_low_equity_micro
from polybot.ledger_queries import day_start as day_start
from polybot.ledger_queries import get_position as get_position
from polybot.ledger_queries import open_positions as open_positions
from polybot.ledger_queries import paper_cash_micro as paper_cash_micro
from polybot.ledger_queries import portfolio as portfolio
from polybot.ledger_queries import realized_pnl_micro as realized_pnl_micro
from polybot.ledger_queries import stop_price_micro
from polybot.money import MICRO, average_price_micro, notional_micro
from polybot.money import div_half_up as _half_up_div

SETTLEMENT = "settlement"
FILL = "fill"
REVERSAL = "reversal"


def trade_status_of(raw: str | None) -> TradeStatus:
    """The CLOB's trade status, normalised (``TRADE_STATUS_MINED`` → ``MINED``); unknown or
    missing → ``MATCHED`` (provisional: it cannot make a fill final by accident)."""
    s = str(raw or "").strip().upper()
    if s.startswith("TRADE_STATUS_"):
        s = s[len("TRADE_STATUS_") :]
    known = s in PROVISIONAL_TRADE_STATUSES or s in FINAL_TRADE_STATUSES
    return TradeStatus(s) if known else TradeStatus.MATCHED


def trade_cash_delta(side: str, notional: int, fee: int) -> int:
    return -(notional + fee) if side == BUY else notional - fee


def _apply(
    pos: dict | None,
    side: str,
    size: int,
    notional: int,
    fee: int,
    *,
    kind: str = FILL,
    realized: int | None = None,
) -> tuple[dict, int]:
    """Apply one trade to a position dict {size_micro, cost_micro}; return (pos, realized).

    A reversal undoes its trade exactly: undoing a BUY (reversal side SELL, fee = −F)
    removes that BUY's cost N+F and realises nothing; undoing a SELL (reversal side BUY,
    fee = −F, ``realized`` = −R of the SELL) restores the cost the SELL removed, N−F−R."""
    p = dict(pos or {"size_micro": 0, "cost_micro": 0})
    if kind == REVERSAL:
        if side == BUY:
            r = int(realized or 0)
            p["size_micro"] += size
            p["cost_micro"] += notional + fee + r
            return p, r
        p["size_micro"] -= size
        p["cost_micro"] = max(0, p["cost_micro"] - (notional - fee)) if p["size_micro"] > 0 else 0
        return p, 0
    if side == BUY:
        p["size_micro"] += size
        p["cost_micro"] += notional + fee
        return p, 0
    held = p["size_micro"]
    if held <= 0:
        removed = 0
    elif size >= held:
        removed = p["cost_micro"]
    else:
        removed = _half_up_div(p["cost_micro"] * size, held)
    p["size_micro"] = held - size
    p["cost_micro"] -= removed
    if p["size_micro"] == 0:
        p["cost_micro"] = 0
    return p, notional - fee - removed


def record_trade(
    conn: sqlite3.Connection,
    *,
    mode: str,
    trade_id: str,
    token_id: str,
    market_id: str,
    side: str,
    price_micro: int,
    size_micro: int,
    fee_micro: int,
    ts: int,
    kind: str = FILL,
    order_db_id: int | None = None,
    strategy: str | None = None,
    reason: str | None = None,
    group_key: str | None = None,
    stop_loss_percent: float | None = None,
    notional: int | None = None,
    now: int | None = None,
    trade_status: str = TradeStatus.CONFIRMED,
    reversal_realized: int | None = None,
) -> bool:
    """Insert one trade and update its position. Returns False if ``trade_id`` was
    already recorded (nothing changes). Call inside ``db.atomic``."""
    side = side.upper()
    notional = notional_micro(price_micro, size_micro) if notional is None else int(notional)
    now = ts if now is None else now
    cur = conn.execute(
        "INSERT OR IGNORE INTO trades(trade_id, order_id, timestamp, mode, kind, token_id, market_id, side, "
        "price_micro, size_micro, notional_micro, fee_micro, strategy, reason, trade_status) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            trade_id,
            order_db_id,
            int(ts),
            mode,
            kind,
            token_id,
            market_id,
            side,
            int(price_micro),
            int(size_micro),
            notional,
            int(fee_micro),
            strategy,
            reason,
            trade_status,
        ),
    )
    if cur.rowcount == 0:
        return False
    row_id = cur.lastrowid
    old = get_position(conn, mode, token_id)
    was_open = old is not None and old.status == "open" and old.size_micro != 0
    before = (
        {"size_micro": old.size_micro, "cost_micro": old.cost_micro} if old is not None and was_open else None
    )
    p, realized = _apply(
        before, side, int(size_micro), notional, int(fee_micro), kind=kind, realized=reversal_realized
    )
    if (side == SELL and kind != REVERSAL) or kind == SETTLEMENT:
        conn.execute("UPDATE trades SET realized_pnl_micro=? WHERE id=?", (realized, row_id))
    status = "open" if p["size_micro"] != 0 else "closed"
    stop = None
    if p["size_micro"] > 0 and stop_loss_percent is not None:
        stop = stop_price_micro(average_price_micro(p["cost_micro"], p["size_micro"]), stop_loss_percent)
    if old is None:
        conn.execute(
            "INSERT INTO positions(mode, token_id, market_id, size_micro, cost_micro, realized_pnl_micro, "
            "opened_at, updated_at, closed_at, status, stop_price_micro, strategy, group_key) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                mode,
                token_id,
                market_id,
                p["size_micro"],
                p["cost_micro"],
                realized,
                int(ts),
                now,
                None if status == "open" else now,
                status,
                stop,
                strategy,
                group_key,
            ),
        )
    else:
        opened_at = old.opened_at if was_open else int(ts)
        conn.execute(
            "UPDATE positions SET market_id=?, size_micro=?, cost_micro=?, "
            "realized_pnl_micro=realized_pnl_micro+?, opened_at=?, updated_at=?, closed_at=?, status=?, "
            "stop_price_micro=COALESCE(?, CASE WHEN ?='open' THEN stop_price_micro END), "
            "strategy=COALESCE(?, strategy), group_key=COALESCE(?, group_key) WHERE mode=? AND token_id=?",
            (
                market_id,
                p["size_micro"],
                p["cost_micro"],
                realized,
                opened_at,
                now,
                None if status == "open" else now,
                status,
                stop,
                status,
                strategy,
                group_key,
                mode,
                token_id,
            ),
        )
    return True


def record_fill(
    conn: sqlite3.Connection,
    mode: str,
    fill: Fill,
    *,
    market_id: str,
    order_db_id: int | None = None,
    strategy: str | None = None,
    reason: str | None = None,
    group_key: str | None = None,
    stop_loss_percent: float | None = None,
    now: int | None = None,
) -> bool:
    """Record a fill (live: with its CLOB trade status; paper fills are final). A FAILED
    fill never recorded before is not recorded (it never happened): returns False."""
    status = trade_status_of(fill.status) if mode == "live" else TradeStatus.CONFIRMED
    if status == TradeStatus.FAILED:
        return False
    return record_trade(
        conn,
        mode=mode,
        trade_id=fill.trade_id,
        token_id=fill.token_id,
        market_id=market_id,
        side=fill.side,
        price_micro=fill.price_micro,
        size_micro=fill.size_micro,
        fee_micro=fill.fee_micro,
        ts=fill.ts,
        order_db_id=order_db_id,
        strategy=strategy,
        reason=reason,
        group_key=group_key,
        stop_loss_percent=stop_loss_percent,
        now=now,
        trade_status=status,
    )


def reversal_trade_id(trade_id: str) -> str:
    return f"reversal:{trade_id}"


def update_trade_status(
    conn: sqlite3.Connection, mode: str, trade_id: str, raw_status: str | None, *, now: int
) -> TradeStatus | None:
    """Apply a recorded fill's new CLOB status (inside the caller's transaction).

    Returns None when nothing changed, the new status when it moved on (e.g. MINED,
    CONFIRMED), or ``FAILED`` when the fill was reversed just now. CONFIRMED and FAILED
    are final: a later, different status is ignored."""
    new = trade_status_of(raw_status)
    row = conn.execute(
        "SELECT * FROM trades WHERE trade_id=? AND mode=? AND kind=?", (trade_id, mode, FILL)
    ).fetchone()
    if row is None or row["trade_status"] == new or row["trade_status"] in FINAL_TRADE_STATUSES:
        return None
    conn.execute("UPDATE trades SET trade_status=? WHERE id=?", (new, row["id"]))
    if new != TradeStatus.FAILED:
        return new
    # A FAILED trade realised nothing (its realised P&L leaves the win rate and the sums);
    # the reversal row restores position, cost, cash and the position's realised P&L.
    conn.execute("UPDATE trades SET realized_pnl_micro=NULL WHERE id=?", (row["id"],))
    undo_side = SELL if row["side"] == BUY else BUY
    realized = -int(row["realized_pnl_micro"] or 0) if row["side"] == SELL else None
    record_trade(
        conn,
        mode=mode,
        trade_id=reversal_trade_id(trade_id),
        token_id=row["token_id"],
        market_id=row["market_id"],
        side=undo_side,
        price_micro=row["price_micro"],
        size_micro=row["size_micro"],
        fee_micro=-int(row["fee_micro"]),
        ts=now,
        kind=REVERSAL,
        order_db_id=row["order_id"],
        strategy=row["strategy"],
        reason=f"trade {trade_id} FAILED at the exchange: reversed",
        notional=row["notional_micro"],
        now=now,
        reversal_realized=realized,
    )
    return TradeStatus.FAILED


def provisional_net_micro(conn: sqlite3.Connection, mode: str) -> dict[str, int]:
    """token → net shares (BUY +, SELL −) of fills not confirmed yet (MATCHED/MINED/RETRYING)."""
    q = ",".join("?" * len(PROVISIONAL_TRADE_STATUSES))
    return {
        str(t): int(n)
        for t, n in conn.execute(
            f"SELECT token_id, SUM(CASE WHEN side='BUY' THEN size_micro ELSE -size_micro END) FROM trades "
            f"WHERE mode=? AND kind='fill' AND trade_status IN ({q}) GROUP BY token_id",
            (mode, *PROVISIONAL_TRADE_STATUSES),
        )
    }


def settlement_trade_id(mode: str, token_id: str) -> str:
    return f"settle:{mode}:{token_id}"


def record_settlement(
    conn: sqlite3.Connection,
    mode: str,
    token_id: str,
    market_id: str,
    payout_micro: int,
    size_micro: int,
    ts: int,
    *,
    reason: str = "market resolved",
) -> bool:
    """Record a resolution payout (1/0/0.5 per share) as a SELL of the whole position."""
    if size_micro <= 0:
        return False
    return record_trade(
        conn,
        mode=mode,
        trade_id=settlement_trade_id(mode, token_id),
        token_id=token_id,
        market_id=market_id,
        side=SELL,
        price_micro=int(payout_micro),
        size_micro=int(size_micro),
        fee_micro=0,
        ts=ts,
        kind=SETTLEMENT,
        reason=reason,
    )


def trade_rows(conn: sqlite3.Connection, mode: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM trades WHERE mode=? ORDER BY id", (mode,)).fetchall()


def positions_implied(conn: sqlite3.Connection, mode: str) -> dict[str, dict]:
    """Replay every recorded trade of ``mode``: token → {size_micro, cost_micro, realized}."""
    out: dict[str, dict] = {}
    realized_of: dict[str, int] = {}  # trade id → what it realised in this replay
    for t in trade_rows(conn, mode):
        cur = out.get(t["token_id"])
        base = {"size_micro": cur["size_micro"], "cost_micro": cur["cost_micro"]} if cur else None
        undo = None
        if t["kind"] == REVERSAL and t["trade_id"].startswith("reversal:"):
            undo = -realized_of.get(t["trade_id"][len("reversal:") :], 0)
        p, realized = _apply(
            base,
            t["side"],
            t["size_micro"],
            t["notional_micro"],
            t["fee_micro"],
            kind=t["kind"],
            realized=undo,
        )
        realized_of[t["trade_id"]] = realized
        p["realized_micro"] = (cur["realized_micro"] if cur else 0) + realized
        p["market_id"] = t["market_id"]
        out[t["token_id"]] = p
    return out


def position_differences(conn: sqlite3.Connection, mode: str) -> list[str]:
    """Where the positions table disagrees with the recorded trades (empty = consistent)."""
    implied = positions_implied(conn, mode)
    table = {r["token_id"]: r for r in conn.execute("SELECT * FROM positions WHERE mode=?", (mode,))}
    diffs = []
    for token in sorted(set(implied) | set(table)):
        want = implied.get(token, {"size_micro": 0, "cost_micro": 0})
        row = table.get(token)
        have = (
            (row["size_micro"], row["cost_micro"]) if row is not None and row["status"] == "open" else (0, 0)
        )
        if (want["size_micro"], want["cost_micro"]) != have:
            diffs.append(
                f"token {token[:16]}…: positions table has {have[0] / MICRO:g} shares / "
                f"cost {have[1] / MICRO:.6f}, trades imply {want['size_micro'] / MICRO:g} / "
                f"{want['cost_micro'] / MICRO:.6f}"
            )
    return diffs


def rebuild_positions(conn: sqlite3.Connection, mode: str, now: int) -> list[str]:
    """Make the positions table equal what the trades imply; return what changed."""
    diffs = position_differences(conn, mode)
    if not diffs:
        return []
    implied = positions_implied(conn, mode)
    for token, p in implied.items():
        status = "open" if p["size_micro"] != 0 else "closed"
        row = get_position(conn, mode, token)
        if row is None:
            conn.execute(
                "INSERT INTO positions(mode, token_id, market_id, size_micro, cost_micro, realized_pnl_micro, "
                "opened_at, updated_at, closed_at, status) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    mode,
                    token,
                    p["market_id"],
                    p["size_micro"],
                    p["cost_micro"],
                    p["realized_micro"],
                    now,
                    now,
                    None if status == "open" else now,
                    status,
                ),
            )
        else:
            conn.execute(
                "UPDATE positions SET size_micro=?, cost_micro=?, realized_pnl_micro=?, status=?, "
                "updated_at=?, closed_at=? WHERE mode=? AND token_id=?",
                (
                    p["size_micro"],
                    p["cost_micro"],
                    p["realized_micro"],
                    status,
                    now,
                    None if status == "open" else (row.closed_at or now),
                    mode,
                    token,
                ),
            )
    for token in {r[0] for r in conn.execute("SELECT token_id FROM positions WHERE mode=?", (mode,))} - set(
        implied
    ):
        conn.execute(
            "UPDATE positions SET size_micro=0, cost_micro=0, status='closed', closed_at=?, updated_at=? "
            "WHERE mode=? AND token_id=?",
            (now, now, mode, token),
        )
    return diffs


def record_capital_change(conn: sqlite3.Connection, mode: str, capital_micro: int, now: int) -> int | None:
    """Compare the configured capital with the one the database last saw for ``mode``; a
    difference is recorded as a deposit (+) or withdrawal (−) in ``capital_flows`` and returned
    (None when unchanged or first seen). Capital changes are cash flows, never P&L (issue 15 #2)."""
    key = f"capital_micro_{mode}"
    prev = db.get_state(conn, key)
    with db.atomic(conn):
        if prev is None or int(prev) == int(capital_micro):
            if prev is None:
                db.set_state(conn, key, str(int(capital_micro)), now=now)
            return None
        delta = int(capital_micro) - int(prev)
        conn.execute(
            "INSERT INTO capital_flows(timestamp, mode, amount_micro, capital_micro, reason) "
            "VALUES (?,?,?,?,?)",
            (
                int(now),
                mode,
                delta,
                int(capital_micro),
                f"config capital {int(prev) / MICRO:g} -> {int(capital_micro) / MICRO:g}",
            ),
        )
        db.set_state(conn, key, str(int(capital_micro)), now=now)
    return delta


def record_performance(conn: sqlite3.Connection, pf: Portfolio, daily_pnl: int, now: int) -> None:
    conn.execute(
        "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, realized_pnl_micro, "
        "unrealized_pnl_micro, daily_pnl_micro, open_positions) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            int(now),
            pf.mode,
            pf.equity_micro,
            pf.cash_micro,
            pf.exposure_micro,
            pf.realized_micro,
            pf.unrealized_micro,
            int(daily_pnl),
            len(pf.holdings),
        ),
    )


def fills_of_mode(conn: sqlite3.Connection, mode: str) -> list[Fill]:
    """Recorded fills (not settlements) as exchange Fill objects, oldest first."""
    out = []
    for t in conn.execute(
        "SELECT t.*, o.client_order_id FROM trades t LEFT JOIN orders o ON o.id = t.order_id "
        "WHERE t.mode=? AND t.kind='fill' ORDER BY t.id",
        (mode,),
    ):
        out.append(
            Fill(
                trade_id=t["trade_id"],
                order_id=t["client_order_id"] or "",
                token_id=t["token_id"],
                side=t["side"],
                price_micro=t["price_micro"],
                size_micro=t["size_micro"],
                fee_micro=t["fee_micro"],
                ts=t["timestamp"],
            )
        )
    return out


def settlements_of_mode(conn: sqlite3.Connection, mode: str) -> list[dict]:
    return [
        {
            "token_id": t["token_id"],
            "payout_micro": t["price_micro"],
            "size_micro": t["size_micro"],
            "amount_micro": t["notional_micro"],
            "ts": t["timestamp"],
        }
        for t in conn.execute("SELECT * FROM trades WHERE mode=? AND kind='settlement' ORDER BY id", (mode,))
    ]
