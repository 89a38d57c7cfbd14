"""Holdings and trades of the account that are not the bot's ("external").

At the FIRST live start (no ``bot_state`` key ``live_baseline_at``) the engine records a
baseline before it places any order:

- every position the exchange reports (Data API) becomes an ``external_holdings`` row —
  minus what the bot's own ledger already holds (databases that traded live before the
  baseline existed);
- every trade in the account's history that the ledger does not have becomes an
  ``external_trades`` row with ``in_baseline = 1`` (already counted in those positions).

After the baseline, a fill of an order the bot never placed (a trade made by hand on
polymarket.com, another bot on the same key) is an ``external_trades`` row and moves the
token's external size (BUY +, SELL −); it never enters the ledger, so stop loss and the
emergency close-out never sell it. Only ``python trading_bot.py --close-external`` lets the
emergency close-out sell external holdings too.

The reconciliation invariant (polybot/engine/reconcile.py) compares the bot's ledger with
the exchange's positions MINUS these external sizes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from polybot import db
from polybot.domain import BUY, FINAL_TRADE_STATUSES, TradeStatus
from polybot.engine import ledger
from polybot.exchange.base import Fill
from polybot.money import MICRO, notional_micro

log = logging.getLogger("polybot.engine")

BASELINE_KEY = "live_baseline_at"


@dataclass(frozen=True)
class ExternalHolding:
    token_id: str
    market_id: str | None
    condition_id: str | None
    size_micro: int
    baseline_size_micro: int
    avg_price_micro: int | None
    title: str | None
    recorded_at: int
    updated_at: int


def baseline_at(conn: sqlite3.Connection) -> int | None:
    v = db.get_state(conn, BASELINE_KEY)
    return None if v in (None, "") else int(v)


def holdings(
    conn: sqlite3.Connection, mode: str = "live", *, include_zero: bool = False
) -> list[ExternalHolding]:
    """External holdings, largest first (only non-zero ones unless ``include_zero``)."""
    rows = conn.execute(
        "SELECT * FROM external_holdings WHERE mode=? ORDER BY size_micro DESC, token_id", (mode,)
    ).fetchall()
    return [
        ExternalHolding(**{k: r[k] for k in ExternalHolding.__dataclass_fields__})
        for r in rows
        if include_zero or int(r["size_micro"]) != 0
    ]


def for_display(
    conn: sqlite3.Connection, mode: str = "live"
) -> list[tuple[str, int, str | None, str | None]]:
    """(token_id, size_micro, question, outcome) of the non-zero external holdings, largest first —
    what health, the dashboard and the daily report show apart from the bot's positions; [] on a
    database from before schema 3."""
    try:
        rows = conn.execute(
            "SELECT e.token_id, e.size_micro, m.question, t.outcome FROM external_holdings e "
            "LEFT JOIN market_tokens t ON t.token_id = e.token_id LEFT JOIN markets m ON m.id = t.market_id "
            "WHERE e.mode = ? AND e.size_micro <> 0 ORDER BY e.size_micro DESC, e.token_id",
            (mode,),
        ).fetchall()
    except sqlite3.OperationalError:  # a database from before schema 3
        return []
    return [(str(r[0]), int(r[1]), r[2], r[3]) for r in rows]


def sizes(conn: sqlite3.Connection, mode: str = "live") -> dict[str, int]:
    """token → external shares (micro)."""
    return {
        str(t): int(s)
        for t, s in conn.execute("SELECT token_id, size_micro FROM external_holdings WHERE mode=?", (mode,))
    }


def known_trade_ids(conn: sqlite3.Connection, mode: str = "live") -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT trade_id FROM external_trades WHERE mode=?", (mode,))}


def market_of(conn: sqlite3.Connection, token_id: str) -> str | None:
    r = conn.execute("SELECT market_id FROM market_tokens WHERE token_id=?", (token_id,)).fetchone()
    return r[0] if r else None


def _adjust(conn: sqlite3.Connection, mode: str, token_id: str, delta: int, now: int) -> None:
    cur = conn.execute(
        "UPDATE external_holdings SET size_micro=size_micro+?, updated_at=? WHERE mode=? AND token_id=?",
        (int(delta), now, mode, token_id),
    )
    if cur.rowcount == 0:
        conn.execute(
            "INSERT INTO external_holdings(mode, token_id, market_id, size_micro, baseline_size_micro, "
            "recorded_at, updated_at) VALUES (?,?,?,?,0,?,?)",
            (mode, token_id, market_of(conn, token_id), int(delta), now, now),
        )


def _move_legacy_fills(conn: sqlite3.Connection, mode: str, now: int) -> list[str]:
    """A database that traded live before the baseline existed (commit 15cb2c7) adopted the
    account's history as ledger fills of no order. They are not the bot's: move them (and the
    settlements of tokens the bot never traded itself) to external_trades and rebuild the
    positions from what is left. Inside the caller's transaction."""
    rows = conn.execute(
        "SELECT * FROM trades WHERE mode=? AND kind='fill' AND order_id IS NULL", (mode,)
    ).fetchall()
    if not rows:
        return []
    for r in rows:
        conn.execute(
            "INSERT OR IGNORE INTO external_trades(trade_id, mode, timestamp, token_id, side, price_micro, size_micro, "
            "trade_status, order_id, in_baseline, recorded_at) VALUES (?,?,?,?,?,?,?,?,NULL,1,?)",
            (
                r["trade_id"],
                mode,
                r["timestamp"],
                r["token_id"],
                r["side"],
                r["price_micro"],
                r["size_micro"],
                r["trade_status"],
                now,
            ),
        )
        conn.execute("DELETE FROM trades WHERE id=?", (r["id"],))
    tokens = {r["token_id"] for r in rows}
    ours = {
        str(t[0])
        for t in conn.execute(
            "SELECT DISTINCT token_id FROM trades WHERE mode=? AND kind='fill' AND order_id IS NOT NULL",
            (mode,),
        )
    }
    orphans = tokens - ours
    for token in orphans:
        conn.execute("DELETE FROM trades WHERE mode=? AND kind='settlement' AND token_id=?", (mode, token))
    ledger.rebuild_positions(conn, mode, now)
    return [
        f"baseline: {len(rows)} fill(s) recorded before this version belong to no order of this bot "
        f"({len(tokens)} token(s)); moved out of the ledger to the external trades"
    ]


def record_baseline(
    conn: sqlite3.Connection, positions: Iterable, history: Iterable[Fill], *, now: int, mode: str = "live"
) -> list[str]:
    """Record the first-live-start baseline (one transaction). Returns the report lines."""
    lines: list[str] = []
    with db.atomic(conn):
        lines += _move_legacy_fills(conn, mode, now)
        bot = {p.token_id: p.size_micro for p in ledger.open_positions(conn, mode)}
        in_ledger = {str(r[0]) for r in conn.execute("SELECT trade_id FROM trades WHERE mode=?", (mode,))}
        n_hold = 0
        for p in positions:
            ext = int(p.size) - max(0, bot.get(p.token_id, 0))
            if ext <= 0:
                continue
            n_hold += 1
            conn.execute(
                "INSERT OR REPLACE INTO external_holdings(mode, token_id, market_id, condition_id, size_micro, "
                "baseline_size_micro, avg_price_micro, title, recorded_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    mode,
                    p.token_id,
                    market_of(conn, p.token_id),
                    getattr(p, "condition_id", None) or None,
                    ext,
                    ext,
                    getattr(p, "avg_price", None),
                    getattr(p, "title", None) or None,
                    now,
                    now,
                ),
            )
            lines.append(
                f"baseline: {ext / MICRO:g} shares of token {p.token_id[:12]}… held before the bot's "
                f"first live order are external (never sold by the bot)"
            )
        n_trades = 0
        for f in history:
            if f.trade_id in in_ledger:
                continue
            cur = conn.execute(
                "INSERT OR IGNORE INTO external_trades(trade_id, mode, timestamp, token_id, side, price_micro, "
                "size_micro, trade_status, order_id, in_baseline, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,1,?)",
                (
                    f.trade_id,
                    mode,
                    int(f.ts),
                    f.token_id,
                    f.side,
                    f.price_micro,
                    f.size_micro,
                    ledger.trade_status_of(f.status),
                    f.order_id or None,
                    now,
                ),
            )
            n_trades += cur.rowcount
        db.set_state(conn, BASELINE_KEY, str(int(now)))
    summary = (
        f"first live start: baseline recorded — {n_hold} external holding(s) and {n_trades} earlier "
        f"trade(s) of this account are external, never the bot's"
    )
    log.info("%s", summary)
    return [summary] + lines if (n_hold or n_trades or lines) else []


def record_fill(conn: sqlite3.Connection, fill: Fill, *, now: int, mode: str = "live") -> bool:
    """A fill of an order the bot never placed: an external trade (inside the caller's
    transaction). Returns False when already recorded or FAILED (nothing happened)."""
    status = ledger.trade_status_of(fill.status)
    if status == TradeStatus.FAILED:
        return False
    cur = conn.execute(
        "INSERT OR IGNORE INTO external_trades(trade_id, mode, timestamp, token_id, side, price_micro, size_micro, "
        "fee_micro, trade_status, order_id, in_baseline, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,0,?)",
        (
            fill.trade_id,
            mode,
            int(fill.ts),
            fill.token_id,
            fill.side,
            fill.price_micro,
            fill.size_micro,
            int(fill.fee_micro),
            status,
            fill.order_id or None,
            now,
        ),
    )
    if cur.rowcount == 0:
        return False
    _adjust(conn, mode, fill.token_id, fill.size_micro if fill.side == BUY else -fill.size_micro, now)
    return True


def update_status(
    conn: sqlite3.Connection, trade_id: str, raw_status: str | None, *, now: int, mode: str = "live"
) -> str | None:
    """A new status for an external trade; a FAILED one after the baseline is undone."""
    new = ledger.trade_status_of(raw_status)
    r = conn.execute("SELECT * FROM external_trades WHERE trade_id=? AND mode=?", (trade_id, mode)).fetchone()
    if r is None or r["trade_status"] == new or r["trade_status"] in FINAL_TRADE_STATUSES:
        return None
    conn.execute("UPDATE external_trades SET trade_status=? WHERE trade_id=?", (new, trade_id))
    if new == TradeStatus.FAILED and not r["in_baseline"]:
        size = int(r["size_micro"])
        _adjust(conn, mode, r["token_id"], -size if r["side"] == BUY else size, now)
    return new


def cash_adjustment_micro(conn: sqlite3.Connection, mode: str = "live") -> int:
    """What the external trades after the baseline did to the account's cash, undone: a
    purchase by hand is added back, a sale by hand (or a --close-external sale) taken off.
    The bot's cash = the exchange balance + this, so trades that are not the bot's never
    show as its profit or loss (nor trip the daily loss limit). Redemptions of external
    holdings are not trades and are not seen here."""
    total = 0
    for side, price, size, fee in conn.execute(
        "SELECT side, price_micro, size_micro, fee_micro FROM external_trades WHERE mode=? AND in_baseline=0 "
        "AND trade_status<>'FAILED'",
        (mode,),
    ):
        total -= ledger.trade_cash_delta(side, notional_micro(int(price), int(size)), int(fee))
    return total


def forget_vanished(conn: sqlite3.Connection, listed: set[str], *, now: int, mode: str = "live") -> list[str]:
    """External holdings of tokens the exchange no longer lists (redeemed, or sold outside
    the trade history) drop to zero. Returns one line per change."""
    out = []
    for h in holdings(conn, mode):
        if h.token_id not in listed and h.size_micro > 0:
            conn.execute(
                "UPDATE external_holdings SET size_micro=0, updated_at=? WHERE mode=? AND token_id=?",
                (now, mode, h.token_id),
            )
            out.append(
                f"external holding of token {h.token_id[:12]}… ({h.size_micro / MICRO:g} shares) is no "
                f"longer listed by the exchange (redeemed or sold): now 0"
            )
    return out
