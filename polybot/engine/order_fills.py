"""Recording fills: the part of the order state machine that writes trades.

A mixin of :class:`polybot.engine.orders.Executor` (split out to keep each module short):
fills of the bot's orders go to the ledger with their CLOB trade status (a fill already
recorded takes the exchange's newer status; FAILED → reversed, logged in one sentence and
alerted); fills of orders the bot never placed are external (polybot/engine/external.py);
fills of a ``--close-external`` sale move the external holding, never the ledger.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from polybot import db
from polybot.domain import TradeStatus
from polybot.engine import external, ledger
from polybot.exchange.base import Fill
from polybot.money import MICRO

log = logging.getLogger("polybot.engine")

# Orders that sell external holdings (--close-external): their fills move the external
# holding (external_trades), never the bot's ledger.
CLOSE_EXTERNAL = "close_external"


def market_of_token(conn: sqlite3.Connection, token_id: str) -> str | None:
    r = conn.execute("SELECT market_id FROM market_tokens WHERE token_id=?", (token_id,)).fetchone()
    return r[0] if r else None


def group_key_of_market(conn: sqlite3.Connection, market_id: str) -> str | None:
    r = conn.execute("SELECT event_id, neg_risk_market_id FROM markets WHERE id=?", (market_id,)).fetchone()
    if r is None:
        return None
    return r["neg_risk_market_id"] or r["event_id"] or market_id


class FillRecording:
    """Needs ``conn``, ``mode``, ``now()``, ``row()``, ``order_by_exchange_id()``,
    ``stop_loss_percent`` and ``alert`` (see Executor)."""

    # Provided by Executor (declared here so the mixin's methods are type-checked).
    conn: sqlite3.Connection
    mode: str
    stop_loss_percent: float | None
    alert: Callable[[str, str], None]

    if TYPE_CHECKING:

        def now(self) -> int: ...
        def row(self, order_id: int) -> sqlite3.Row: ...
        def order_by_exchange_id(self, exchange_order_id: str) -> sqlite3.Row | None: ...

    def _record_fills(self, row: sqlite3.Row, fills: Iterable[Fill]) -> int:
        """Record fills of one order (inside the caller's transaction); return how many were new.
        A fill already recorded takes the exchange's newer trade status (FAILED: reversed)."""
        group = group_key_of_market(self.conn, row["market_id"])
        new = 0
        for f in fills:
            if row["strategy"] == CLOSE_EXTERNAL:
                if external.record_fill(self.conn, f, now=self.now(), mode=self.mode):
                    new += 1
                    log.info(
                        "fill %s of external holding: %s %.2f @ %.3f (order %d)",
                        f.trade_id,
                        f.side,
                        f.size_micro / MICRO,
                        f.price_micro / MICRO,
                        row["id"],
                    )
                else:
                    external.update_status(self.conn, f.trade_id, f.status, now=self.now(), mode=self.mode)
                continue
            if ledger.record_fill(
                self.conn,
                self.mode,
                f,
                market_id=row["market_id"],
                order_db_id=row["id"],
                strategy=row["strategy"],
                reason=row["reason"],
                group_key=group,
                stop_loss_percent=self.stop_loss_percent,
                now=self.now(),
            ):
                new += 1
                log.info(
                    "fill %s: %s %.2f @ %.3f (order %d, trade %s)",
                    f.trade_id,
                    f.side,
                    f.size_micro / MICRO,
                    f.price_micro / MICRO,
                    row["id"],
                    ledger.trade_status_of(f.status) if self.mode == "live" else "paper",
                )
            elif self.mode == "live":
                self._status_change(f, row["id"])
        return new

    def _status_change(self, f: Fill, oid: int | None) -> None:
        changed = ledger.update_trade_status(self.conn, self.mode, f.trade_id, f.status, now=self.now())
        if changed == TradeStatus.FAILED:
            which = f"order {oid}" if oid is not None else "an order of this bot"
            msg = (
                f"Trade {f.trade_id} ({f.side} {f.size_micro / MICRO:g} shares of token {f.token_id[:12]}… "
                f"@ {f.price_micro / MICRO:g}, {which}) FAILED on chain: it is reversed in the ledger "
                f"(position and cash as if it never happened)."
            )
            log.warning("%s", msg)
            self.alert("trade_failed", msg)
        elif changed is not None:
            log.info("trade %s is now %s", f.trade_id, changed)

    def _filled(self, oid: int) -> int:
        """Shares filled for an order: its recorded fills that did not fail."""
        n = int(
            self.conn.execute(
                "SELECT COALESCE(SUM(size_micro),0) FROM trades WHERE order_id=? AND "
                "kind='fill' AND trade_status<>'FAILED'",
                (oid,),
            ).fetchone()[0]
        )
        row = self.row(oid)
        if row is not None and row["strategy"] == CLOSE_EXTERNAL and row["exchange_order_id"]:
            n += int(
                self.conn.execute(
                    "SELECT COALESCE(SUM(size_micro),0) FROM external_trades WHERE lower(order_id)=lower(?) AND "
                    "in_baseline=0 AND trade_status<>'FAILED'",
                    (row["exchange_order_id"],),
                ).fetchone()[0]
            )
        return n

    def record_external_fills(self, fills: list[Fill]) -> list[str]:
        """Record fills seen at the exchange (trade sync). Fills of our orders update them
        (new fills recorded, known ones take their newer trade status). Fills of orders this
        bot never placed: live → external trades (polybot/engine/external.py), never in the
        ledger; paper → recorded as external fills and reported."""
        report = []
        known = {r[0] for r in self.conn.execute("SELECT trade_id FROM trades WHERE mode=?", (self.mode,))}
        foreign = external.known_trade_ids(self.conn, self.mode) if self.mode == "live" else set()
        for f in fills:
            if f.trade_id in known or f.trade_id in foreign:
                if self.mode == "live":
                    with db.atomic(self.conn):
                        if f.trade_id in known:
                            self._status_change(f, self._refresh_filled(f.trade_id, before=True))
                            self._refresh_filled(f.trade_id)
                        else:
                            external.update_status(self.conn, f.trade_id, f.status, now=self.now())
                continue
            row = self.order_by_exchange_id(f.order_id) if f.order_id else None
            with db.atomic(self.conn):
                if row is None and self.mode == "live":
                    if external.record_fill(self.conn, f, now=self.now()):
                        report.append(
                            f"fill {f.trade_id} ({f.side} {f.size_micro / MICRO:g} of token "
                            f"{f.token_id[:12]}…) belongs to no order of this bot: recorded as an "
                            f"external holding change, never traded by the bot"
                        )
                    foreign.add(f.trade_id)
                    continue
                if row is not None:
                    if self._record_fills(row, [f]):
                        report.append(
                            f"fill {f.trade_id} of order {row['id']} was missing and is now recorded"
                        )
                    filled = self._filled(row["id"])
                    self.conn.execute(
                        "UPDATE orders SET filled_micro=?, updated_at=? WHERE id=?",
                        (filled, self.now(), row["id"]),
                    )
                else:
                    market = market_of_token(self.conn, f.token_id) or "unknown"
                    ledger.record_fill(
                        self.conn,
                        self.mode,
                        f,
                        market_id=market,
                        reason="external fill (not placed by this bot)",
                        group_key=group_key_of_market(self.conn, market),
                        now=self.now(),
                    )
                    report.append(
                        f"fill {f.trade_id} ({f.side} {f.size_micro / MICRO:g} of token "
                        f"{f.token_id[:12]}…) belongs to no order of this bot; recorded as external"
                    )
            known.add(f.trade_id)
        return report

    def _refresh_filled(self, trade_id: str, *, before: bool = False) -> int | None:
        """The order (orders.id) of a recorded fill; its filled_micro is recomputed unless ``before``."""
        r = self.conn.execute("SELECT order_id FROM trades WHERE trade_id=?", (trade_id,)).fetchone()
        if r is None or r[0] is None:
            return None
        if not before:
            self.conn.execute(
                "UPDATE orders SET filled_micro=?, updated_at=? WHERE id=?",
                (self._filled(int(r[0])), self.now(), int(r[0])),
            )
        return int(r[0])
