"""The order state machine: every order is written before it is sent, its result after.

::

    prepare (sign once) ──► PENDING_SUBMIT ──commit──► submit
        submit → live/delayed ............ LIVE (PARTIALLY_FILLED once a fill is known)
        submit → matched ................. FILLED only when the fills read cover the order's
                                           whole size; otherwise PARTIALLY_FILLED (or LIVE
                                           while no fill is readable yet) with exchange_status
                                           'matched', and the next refresh asks the exchange
                                           (a GTC's remainder may rest; a FAK's was killed)
        submit → unmatched ............... CANCELED (accepted, nothing filled, nothing rests)
        submit → rejected ................ REJECTED (definitive)
        TemporaryExchangeError ........... REJECTED ("not accepted": nothing happened)
        OrderOutcomeUnknown (timeout/5xx)  UNKNOWN → resolved by lookup(order hash):
            found ........................ whatever the exchange says (fills recorded)
            not found, within the grace .. wait (no new order in that market meanwhile)
            not found after the grace .... live: re-post the SAME signed order (≤ 2 times,
                                           only while younger than stale_order_seconds);
                                           then CANCELED ("never reached the exchange")
    LIVE older than stale_order_seconds → cancel → final lookup → CANCELED / FILLED

FILLED is decided by the exchange's own order status (``size_matched`` and
``original_size``, stored as orders.exchange_status / exchange_matched_micro), never by
the fills read so far: a GTC is FILLED when size_matched equals its original size and
every matched share has been read as a fill; a partly filled GTC stays PARTIALLY_FILLED,
is refreshed every loop and its remainder cancelled once stale. An order the exchange
answered "matched" whose trades are not readable yet stays open (and its market blocked)
until the fills are read — it is never marked CANCELED for being unknown.

Trade status (live): every fill carries its CLOB status; MATCHED/MINED/RETRYING fills
are provisional, CONFIRMED final, FAILED ones are reversed in the ledger (see
polybot/engine/ledger.py) with one log line and a warning alert.

Fills are trades rows keyed by the exchange trade id (UNIQUE), recorded in the same
transaction as the position update and the order's new status, so a crash between
any two steps loses nothing and duplicates nothing: the order row says what to ask the
exchange on restart, and a fill already recorded is ignored when seen again.

Paper rule (documented in polybot/engine/__init__.py): a paper order is executed if
and only if its fills are committed. The paper exchange is rebuilt from the recorded
trades at every start, so an order left PENDING_SUBMIT/UNKNOWN by a crash is unknown
to it and is marked CANCELED "not executed".
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from polybot import db
from polybot.domain import ExchangeOrderStatus, OrderState
from polybot.engine.breakers import ApiErrorCounter, BreakerTripped
from polybot.engine.order_fills import FillRecording
from polybot.errors import (
    AuthenticationError,
    ExchangeError,
    OrderOutcomeUnknown,
    OrderRejected,
    TemporaryExchangeError,
)
from polybot.exchange.base import (
    Exchange,
    OrderRequest,
    OrderResult,
    OrderStatus,
    PreparedOrder,
)
from polybot.money import MICRO

log = logging.getLogger("polybot.engine")

# orders.status is an OrderState (polybot/domain.py); orders.exchange_status an ExchangeOrderStatus.
INFLIGHT = (OrderState.PENDING_SUBMIT, OrderState.UNKNOWN)
OPEN = (OrderState.LIVE, OrderState.PARTIALLY_FILLED)
TERMINAL = (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED)
MAX_REPOSTS = 2
PAPER_NOT_EXECUTED = "not executed: the bot stopped before the paper fill was recorded"


@dataclass(frozen=True)
class PlaceOutcome:
    order_id: int | None  # orders.id (None when nothing was recorded)
    status: str  # the order's status after placement, or SKIPPED / NOT_SIGNED
    filled_micro: int = 0
    error: str | None = None

    @property
    def filled(self) -> bool:
        return self.filled_micro > 0


class Executor(FillRecording):
    """Places orders and drives them to a terminal state, recording every step."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        exchange: Exchange,
        *,
        mode: str,
        clock: Callable[[], float],
        api_errors: ApiErrorCounter,
        before_submit: Callable[[], None] = lambda: None,
        stop_loss_percent: float | None = None,
        grace_seconds: float = 10.0,
        stale_seconds: float = 300.0,
        alert: Callable[[str, str], None] | None = None,
    ):
        self.conn = conn
        self.exchange = exchange
        self.mode = mode
        self.clock = clock
        self.api_errors = api_errors
        self.before_submit = before_submit
        self.stop_loss_percent = stop_loss_percent
        self.grace_seconds = grace_seconds
        self.stale_seconds = stale_seconds
        self._reposts: dict[int, int] = {}
        self.alert = alert or (lambda key, message: None)

    def now(self) -> int:
        return int(self.clock())

    # ------------------------------------------------------------------ queries
    def row(self, order_id: int) -> sqlite3.Row:
        return self.conn.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()

    def rows(self, statuses: tuple[str, ...]) -> list[sqlite3.Row]:
        q = ",".join("?" * len(statuses))
        return self.conn.execute(
            f"SELECT * FROM orders WHERE mode=? AND status IN ({q}) ORDER BY id", (self.mode, *statuses)
        ).fetchall()

    def unresolved_markets(self) -> set[str]:
        """Markets with an order whose outcome is not known yet (no new order there): in
        flight, or matched at the exchange with fills still to read."""
        return {r["market_id"] for r in self.rows(INFLIGHT)} | {r["market_id"] for r in self.awaiting_fills()}

    def awaiting_fills(self) -> list[sqlite3.Row]:
        """Open orders the exchange reported matched for more than the fills read so far."""
        return [
            r
            for r in self.rows(OPEN)
            if r["exchange_status"] == ExchangeOrderStatus.MATCHED
            and (r["exchange_matched_micro"] is None or r["filled_micro"] < r["exchange_matched_micro"])
        ]

    def order_by_exchange_id(self, exchange_order_id: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM orders WHERE mode=? AND (lower(exchange_order_id)=lower(?) "
            "OR client_order_id=?) ORDER BY id LIMIT 1",
            (self.mode, exchange_order_id, exchange_order_id),
        ).fetchone()

    # ------------------------------------------------------------------ placing
    def place(
        self,
        request: OrderRequest,
        *,
        market_id: str,
        strategy: str | None = None,
        reason: str | None = None,
        closing: bool = False,
    ) -> PlaceOutcome:
        """Sign, record (PENDING_SUBMIT, committed), send, record the outcome.

        ``closing``: an emergency close-out — the EMERGENCY_STOP check is skipped."""
        check = (lambda: None) if closing else self.before_submit
        check()
        if market_id in self.unresolved_markets():
            return PlaceOutcome(None, "SKIPPED", error="an earlier order in this market is not resolved yet")
        try:
            prepared = self.exchange.prepare(request)
        except OrderRejected as exc:
            log.warning("order not signed (%s %s %s): %s", request.side, request.token_id[:12], reason, exc)
            return PlaceOutcome(None, "NOT_SIGNED", error=str(exc))
        except ExchangeError as exc:
            self.api_errors.failure(exc, "preparing an order")
            return PlaceOutcome(None, "NOT_SIGNED", error=str(exc))
        now = self.now()
        with db.atomic(self.conn):
            cur = self.conn.execute(
                "INSERT INTO orders(client_order_id, exchange_order_id, mode, token_id, market_id, side, order_type, "
                "price_micro, size_micro, status, signed_payload, strategy, reason, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    prepared.client_order_id,
                    prepared.order_hash,
                    self.mode,
                    request.token_id,
                    market_id,
                    request.side,
                    request.order_type,
                    request.price_micro or 0,
                    request.size_micro if request.size_micro is not None else request.amount_micro,
                    OrderState.PENDING_SUBMIT,
                    prepared.to_json(),
                    strategy,
                    reason,
                    now,
                    now,
                ),
            )
        assert cur.lastrowid is not None  # set by every INSERT
        oid = int(cur.lastrowid)
        log.info(
            "order %d %s %s %.2f @ %s (%s) recorded as PENDING_SUBMIT",
            oid,
            request.side,
            request.token_id[:12],
            (request.size_micro or 0) / MICRO,
            f"{request.price_micro / MICRO:.3f}" if request.price_micro else "market",
            reason or "",
        )
        try:
            check()
        except BreakerTripped:
            self._set(oid, OrderState.CANCELED, error="not sent: emergency stop")
            raise
        return self._submit(oid, prepared)

    def _submit(self, oid: int, prepared: PreparedOrder) -> PlaceOutcome:
        try:
            result = self.exchange.submit(prepared)
        except OrderOutcomeUnknown as exc:
            self._set(oid, OrderState.UNKNOWN, error=str(exc))
            log.warning("order %d outcome unknown (%s); it will be resolved by looking it up", oid, exc)
            self.api_errors.failure(exc, "sending an order")
            return PlaceOutcome(oid, OrderState.UNKNOWN, error=str(exc))
        except TemporaryExchangeError as exc:
            self._set(oid, OrderState.REJECTED, error=f"not accepted: {exc}")
            self.api_errors.failure(exc, "sending an order")
            return PlaceOutcome(oid, OrderState.REJECTED, error=str(exc))
        except AuthenticationError as exc:
            self._set(oid, OrderState.REJECTED, error=f"not accepted: {exc}")
            self.api_errors.failure(exc, "sending an order")
            raise
        except ExchangeError as exc:
            if self.mode == "paper":  # the paper exchange changes nothing when it raises
                self._set(oid, OrderState.REJECTED, error=f"not executed: {exc}")
                self.api_errors.failure(exc, "filling a paper order")
                return PlaceOutcome(oid, OrderState.REJECTED, error=str(exc))
            self._set(oid, OrderState.UNKNOWN, error=str(exc))
            self.api_errors.failure(exc, "sending an order")
            return PlaceOutcome(oid, OrderState.UNKNOWN, error=str(exc))
        self.api_errors.success()
        out = self.apply_result(oid, result)
        if self.mode == "live" and result.status == ExchangeOrderStatus.MATCHED and out.status in OPEN:
            out = self._confirm_matched(oid, out)
        return out

    def _confirm_matched(self, oid: int, out: PlaceOutcome) -> PlaceOutcome:
        """A "matched" answer without the whole order read as fills: ask the exchange for
        the order's own status now (best effort; the next refresh asks again)."""
        row = self.row(oid)
        try:
            st = self.exchange.lookup(row["exchange_order_id"] or row["client_order_id"])
        except ExchangeError as exc:
            log.info("order %d matched; its status is not readable yet (%s): refreshed next loop", oid, exc)
            return out
        if st is None:
            log.info("order %d matched; the exchange does not list it yet: refreshed next loop", oid)
            return out
        status = self.apply_status(oid, st)
        return PlaceOutcome(oid, status, self._filled(oid), out.error)

    # ------------------------------------------------------------------ recording
    def _set(
        self, oid: int, status: str, *, error: str | None = None, exchange_order_id: str | None = None
    ) -> None:
        with db.atomic(self.conn):
            self.conn.execute(
                "UPDATE orders SET status=?, error=COALESCE(?, error), "
                "exchange_order_id=COALESCE(?, exchange_order_id), updated_at=? WHERE id=?",
                (status, error, exchange_order_id, self.now(), oid),
            )

    def apply_result(self, oid: int, result: OrderResult) -> PlaceOutcome:
        row = self.row(oid)
        with db.atomic(self.conn):
            self._record_fills(row, result.fills)
            filled = self._filled(oid)
            xmatched = None
            if result.status == ExchangeOrderStatus.REJECTED:
                status, error = OrderState.REJECTED, result.error or "rejected"
            elif result.status == ExchangeOrderStatus.UNMATCHED:
                status, error = OrderState.CANCELED, "unmatched: nothing filled"
            elif result.status == ExchangeOrderStatus.MATCHED and self.mode == "paper":
                status, error = (
                    (OrderState.FILLED if filled else OrderState.CANCELED),
                    None,
                )  # paper fills are complete
            elif (
                result.status == ExchangeOrderStatus.MATCHED
                and filled >= int(row["size_micro"])
                and row["order_type"] in ("GTC", "GTD")
            ):
                status, error, xmatched = OrderState.FILLED, None, filled
            else:
                # live, delayed, or matched: a GTC's remainder may rest and a market order's
                # fills may not be readable yet — the exchange's order status decides (sync_open)
                status, error = (OrderState.PARTIALLY_FILLED if filled else OrderState.LIVE), None
                if result.status == ExchangeOrderStatus.MATCHED and getattr(result, "fills_pending", False):
                    xmatched = int(result.size_matched_micro) or None  # the answer's own amount
            self.conn.execute(
                "UPDATE orders SET status=?, filled_micro=?, error=COALESCE(?, error), "
                "exchange_order_id=COALESCE(?, exchange_order_id), exchange_status=?, "
                "exchange_matched_micro=COALESCE(?, exchange_matched_micro), updated_at=? WHERE id=?",
                (status, filled, error, result.exchange_order_id, result.status, xmatched, self.now(), oid),
            )
        if status == OrderState.REJECTED:
            log.warning("order %d rejected: %s", oid, error)
        else:
            log.info("order %d %s (filled %.2f)", oid, status, filled / MICRO)
        return PlaceOutcome(oid, status, filled, error)

    def apply_status(self, oid: int, st: OrderStatus) -> str:
        """Bring an order in line with what the exchange reports about it.

        FILLED needs the exchange's word: status matched, size_matched equal to the
        original size (GTC/GTD; a FOK/FAK's unmatched rest is killed, so matched is
        final), and every matched share read as a fill. Matched shares not read yet keep
        the order PARTIALLY_FILLED/LIVE (refreshed each loop, market blocked)."""
        row = self.row(oid)
        with db.atomic(self.conn):
            self._record_fills(row, st.fills)
            filled = self._filled(oid)
            matched = int(st.size_matched_micro)
            original = int(st.original_size_micro or row["size_micro"])
            market_order = row["order_type"] in ("FOK", "FAK")
            if st.status in (ExchangeOrderStatus.LIVE, ExchangeOrderStatus.DELAYED):
                status = OrderState.PARTIALLY_FILLED if filled else OrderState.LIVE
            elif st.status == ExchangeOrderStatus.MATCHED:
                complete = market_order or (original > 0 and matched >= original)
                if filled >= matched and filled and complete:
                    status = OrderState.FILLED
                else:  # fills still to read, or a remainder still rests
                    status = OrderState.PARTIALLY_FILLED if filled else OrderState.LIVE
            elif st.status == ExchangeOrderStatus.EXPIRED:
                status = OrderState.EXPIRED
            elif st.status in (
                ExchangeOrderStatus.CANCELED,
                ExchangeOrderStatus.UNMATCHED,
                ExchangeOrderStatus.REJECTED,
            ):
                status = OrderState.CANCELED
            else:
                status = OrderState.PARTIALLY_FILLED if filled else OrderState.LIVE
            self.conn.execute(
                "UPDATE orders SET status=?, filled_micro=?, exchange_order_id=?, exchange_status=?, "
                "exchange_matched_micro=?, updated_at=? WHERE id=?",
                (
                    status,
                    filled,
                    st.order_id or row["exchange_order_id"],
                    st.status,
                    matched,
                    self.now(),
                    oid,
                ),
            )
        if status != row["status"]:
            log.info("order %d: %s → %s (filled %.2f)", oid, row["status"], status, filled / MICRO)
        return status

    # ------------------------------------------------------------------ resolving
    def _find(self, row: sqlite3.Row) -> OrderStatus | None:
        """The exchange's view of an in-flight order: by its hash, and (live exchanges that
        can) by its terms among orders this bot has no record of."""
        resolve = getattr(self.exchange, "resolve", None)
        if resolve is not None and row["signed_payload"]:
            known = [
                r[0]
                for r in self.conn.execute(
                    "SELECT exchange_order_id FROM orders WHERE mode=? AND exchange_order_id IS NOT NULL AND id<>?",
                    (self.mode, row["id"]),
                )
            ]
            return resolve(PreparedOrder.from_json(row["signed_payload"]), known_ids=known)
        return self.exchange.lookup(row["exchange_order_id"] or row["client_order_id"])

    def resolve_inflight(self, *, startup: bool = False) -> list[str]:
        """Resolve PENDING_SUBMIT / UNKNOWN orders by looking them up. Returns a report."""
        report = []
        now = self.now()
        for row in self.rows(INFLIGHT):
            oid = row["id"]
            if self.mode == "paper" and startup:
                self._set(oid, OrderState.CANCELED, error=PAPER_NOT_EXECUTED)
                report.append(
                    f"order {oid} ({row['client_order_id']}) was {row['status']}: {PAPER_NOT_EXECUTED}"
                )
                continue
            try:
                st = self._find(row)
            except OrderOutcomeUnknown as exc:  # ambiguous by design: resolve by hand
                report.append(f"order {oid} stays {row['status']}: {exc}")
                continue
            except ExchangeError as exc:
                self.api_errors.failure(exc, f"looking up order {oid}")
                report.append(f"order {oid} is {row['status']}: lookup failed ({exc}); retrying later")
                continue
            self.api_errors.success()
            if st is not None:
                status = self.apply_status(oid, st)
                report.append(f"order {oid} was {row['status']}: the exchange has it → {status}")
                continue
            age = now - int(row["created_at"])
            if age < self.grace_seconds:
                continue
            reposts = self._reposts.get(oid, 0)
            if (
                self.mode == "live"
                and reposts < MAX_REPOSTS
                and age < self.stale_seconds
                and row["signed_payload"]
            ):
                self._reposts[oid] = reposts + 1
                prepared = PreparedOrder.from_json(row["signed_payload"])
                log.warning(
                    "order %d not found at the exchange after %d s; re-posting the same signed order "
                    "(attempt %d)",
                    oid,
                    age,
                    reposts + 1,
                )
                self.before_submit()
                out = self._submit(oid, prepared)
                report.append(
                    f"order {oid} was {row['status']} and not found: re-posted the same signed "
                    f"order → {out.status}"
                )
                continue
            why = (
                "the bot stopped before its paper fill was recorded"
                if self.mode == "paper"
                else f"not found at the exchange {age} s after it was prepared"
            )
            self._set(oid, OrderState.CANCELED, error=f"never executed: {why}")
            report.append(f"order {oid} was {row['status']}: never executed ({why}) → CANCELED")
        return report

    def sync_open(self) -> list[str]:
        """Refresh LIVE / PARTIALLY_FILLED orders (every loop); cancel the remainder of
        stale resting ones. An order the exchange reported matched is never marked
        CANCELED for being unknown: it waits for its fills."""
        report = []
        now = self.now()
        awaiting = {r["id"] for r in self.awaiting_fills()}
        for row in self.rows(OPEN):
            oid = row["id"]
            key = row["exchange_order_id"] or row["client_order_id"]
            try:
                resting = row["order_type"] in ("GTC", "GTD") or self.mode == "paper"
                if resting and now - int(row["created_at"]) >= self.stale_seconds:
                    res = self.exchange.cancel(key)
                    log.info(
                        "order %d older than %d s: cancel%s → %s",
                        oid,
                        self.stale_seconds,
                        " of the unfilled remainder" if row["filled_micro"] else "",
                        "canceled" if key in res.canceled else res.not_canceled.get(key, "?"),
                    )
                st = self.exchange.lookup(key)
            except ExchangeError as exc:
                self.api_errors.failure(exc, f"refreshing order {oid}")
                continue
            self.api_errors.success()
            if st is None:
                if oid in awaiting:
                    log.info(
                        "order %d matched at the exchange; its fills are not readable yet (%.2f read): "
                        "waiting",
                        oid,
                        row["filled_micro"] / MICRO,
                    )
                elif now - int(row["created_at"]) >= self.grace_seconds:
                    self._set(oid, OrderState.CANCELED, error="no longer known to the exchange")
                    report.append(f"order {oid} vanished from the exchange → CANCELED")
                continue
            status = self.apply_status(oid, st)
            if status != row["status"]:
                report.append(f"order {oid}: {row['status']} → {status}")
        return report

    def cancel_all(self, why: str) -> list[str]:
        """Cancel every open order (exchange first, then the records). Best effort."""
        report = []
        try:
            res = self.exchange.cancel_all()
            report.append(
                f"cancel all: {len(res.canceled)} canceled"
                + (f", {len(res.not_canceled)} not canceled" if res.not_canceled else "")
            )
        except ExchangeError as exc:
            report.append(f"cancel all failed ({exc}); open orders are reconciled at the next start")
            log.error("could not cancel open orders: %s", exc)
            return report
        for row in self.rows(OPEN + INFLIGHT):
            key = row["exchange_order_id"] or row["client_order_id"]
            try:
                st = self.exchange.lookup(key)
            except ExchangeError:
                st = None
            if st is not None and st.status not in (ExchangeOrderStatus.LIVE, ExchangeOrderStatus.DELAYED):
                self.apply_status(row["id"], st)
            elif (
                row["status"] in OPEN and row["exchange_status"] == ExchangeOrderStatus.MATCHED and st is None
            ):
                pass  # matched, fills not readable yet: never "canceled"
            elif row["status"] in OPEN:
                self._set(row["id"], OrderState.CANCELED, error=f"canceled: {why}")
            report.append(f"order {row['id']} → {self.row(row['id'])['status']}")
        return report
