"""The operator's controls, applied by the engine once per iteration (see polybot/control_state.py).

**Pause.** The engine reads ``bot_state`` ``paused`` every iteration and hands it to the risk
manager (:attr:`polybot.risk.RiskManager.entries_paused`): that rule, which every entry goes
through, rejects entries with rule ``paused`` (logged as ``risk rejected … paused: …`` and
counted in ``paused_skipped``); exits, stop losses, settlement and reconciliation go on. When a
pause begins, paper entries approved but not yet sent (the fill-latency queue) are dropped too.
Orders already resting on the exchange are left as they are.

**Close requests** (Telegram ``/close`` + confirmation): each request not yet claimed is claimed
(only one claimant wins), expired when older than :data:`polybot.control_state.CLOSE_TTL`, else
every targeted position is sold: an EXIT intent of the whole holding (no limit: the best bids
down to one tick, what a stop loss sends) through the risk manager (exits always pass) and
:meth:`Engine.place_intent` (the order every exit becomes, sent at once: an operator's close is
not a strategy decision, so the paper latency queue that mirrors the replay does not delay it).
Strategy ``telegram_close``, reason ``telegram close #<id> by <who>``. The outcome (fills,
average price, what could not be sold and why) is written as ``close_result.<id>`` for the
Telegram listener to report.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from polybot import control_state as cs
from polybot import ledger_queries as lq
from polybot.domain import EXIT, SELL, Intent
from polybot.engine import ledger
from polybot.engine.orders import OPEN
from polybot.money import MICRO, fmt_usd, round_size_down
from polybot.risk import RULE_PAUSED

if TYPE_CHECKING:
    from polybot.engine.loop import Engine, Executed
    from polybot.risk import RiskDecision

log = logging.getLogger("polybot.engine")

CLOSE_STRATEGY = "telegram_close"


def apply_pause(engine: Engine) -> None:
    """bot_state → the risk manager's pause; log when it starts or ends."""
    pause = cs.read_pause(engine.conn)
    sentence = cs.pause_sentence(pause) if pause is not None else None
    risk = engine.require_risk()
    before = risk.entries_paused
    risk.entries_paused = sentence
    if sentence is not None and before is None:
        log.warning(
            "%s: no new entries; stop losses, exits and settlement go on", sentence[0].upper() + sentence[1:]
        )
        dropped = [t for t, p in engine.pending.items() if p.intent.action != EXIT]
        for t in dropped:
            del engine.pending[t]
            log.info("queued entry for %s… dropped: entries paused", t[:12])
    elif sentence is None and before is not None:
        log.warning("Entries resumed: the bot opens positions again")


def count_paused(engine: Engine, executed: list[Executed]) -> None:
    n = sum(1 for _, d, _ in executed if not d.approved and d.rule == RULE_PAUSED)
    if n:
        cs.count_skipped(engine.conn, n, now=int(engine.wall()))


def process_close_requests(engine: Engine) -> None:
    """Claim, expire or carry out the close requests waiting in bot_state."""
    for req in cs.pending_close_requests(engine.conn):
        now = int(engine.wall())
        age = now - req.requested_at
        if age > cs.CLOSE_TTL:
            if cs.expire_close_request(
                engine.conn, req, now=now, why=f"after {age} s unprocessed (limit {cs.CLOSE_TTL} s)"
            ):
                log.warning("close request #%d (%s) by %s expired unprocessed", req.id, req.label, req.by)
            continue
        if not cs.claim_close_request(engine.conn, req.id):
            continue
        log.warning("close request #%d by %s: %s", req.id, req.by, req.label)
        try:
            status, text = close_positions(engine, req)
        except BaseException as exc:  # the loop handles the error (breakers); the operator hears of it
            with contextlib.suppress(Exception):  # a database that cannot be written cannot say it
                cs.record_close_result(
                    engine.conn,
                    req.id,
                    cs.FAILED,
                    f"⚠️ Close #{req.id} ({req.label}) stopped on an error ({exc}); check /positions, "
                    f"then send /close again if something is left.",
                    now=int(engine.wall()),
                )
            raise
        cs.record_close_result(engine.conn, req.id, status, text, now=int(engine.wall()))
        log.warning("close request #%d: %s", req.id, text.replace("\n", " | "))


def close_positions(engine: Engine, req: cs.CloseRequest) -> tuple[str, str]:
    """Sell what ``req`` targets; (status, the text for the operator)."""
    held = {
        n.position.token_id: n
        for n in lq.open_positions_named(engine.conn, engine.mode)
        if n.position.size_micro > 0
    }
    lines: list[str] = []
    intents = _exits(engine, req, held, lines)
    failed, sold_any = len(lines), False
    if intents:
        decisions = engine.require_risk().check_all(intents, engine.account(), {}, engine.now_ts)
        for it, d in zip(intents, decisions, strict=True):
            line, sold, complete = _sell(engine, _label(held[it.token_id]), d)
            lines.append(line)
            sold_any |= sold
            failed += 0 if complete else 1
    if not lines:
        return cs.NOTHING, f"Close #{req.id} ({req.label}): no open position to sell."
    status = cs.DONE if failed == 0 else cs.PARTIAL if sold_any else cs.NOTHING
    icon = "✅" if status == cs.DONE else "⚠️"
    return status, "\n".join([f"{icon} Close #{req.id} ({req.label}), {engine.mode} mode:", *lines])


def _exits(
    engine: Engine, req: cs.CloseRequest, held: dict[str, lq.NamedPosition], lines: list[str]
) -> list[Intent]:
    """The EXIT of each targeted holding that can be sold now; a line in ``lines`` for each that cannot."""
    if req.target == "all":
        wanted = sorted(held, key=lambda t: (held[t].position.opened_at, t))
    else:
        wanted = list(req.target)
    executor = engine.require_executor()
    busy = {r["token_id"] for r in executor.rows(OPEN)}
    unresolved = executor.unresolved_markets()
    intents: list[Intent] = []
    for token in wanted:
        named = held.get(token)
        if named is None:
            lines.append(f"• {token[:12]}…: no open position any more; nothing to sell")
            continue
        p, label = named.position, _label(named)
        if token in engine.resolved_marks:
            lines.append(f"• {label}: its market has resolved; it is settled, not sold")
            continue
        if token in busy or p.market_id in unresolved:
            lines.append(
                f"• {label}: not sold: an order for it is still open or unresolved; try again shortly"
            )
            continue
        if token in engine.pending:  # paper: a queued order for this token gives way to the close
            del engine.pending[token]
            log.info("queued order for %s… dropped: the operator closes the position", token[:12])
        intents.append(
            Intent(
                action=EXIT,
                token_id=token,
                market_id=p.market_id,
                side=SELL,
                size_micro=p.size_micro,
                reason=f"telegram close #{req.id} by {req.by}"[:300],
                strategy=CLOSE_STRATEGY,
                tag=CLOSE_STRATEGY,
            )
        )
    return intents


def _sell(engine: Engine, label: str, d: RiskDecision) -> tuple[str, bool, bool]:
    """Place the approved exit; (the line for the operator, anything sold?, all of it sold?)."""
    if not d.approved or d.intent is None:
        return f"• {label}: not sold: {d.detail}", False, False
    out = engine.place_intent(d.intent)
    if out is None:
        return f"• {label}: not sold: no usable order book", False, False
    sold = _sold(engine, out.order_id)
    if sold is None or not out.filled:
        why = out.error or "no bid took it"
        return f"• {label}: nothing filled (order {out.order_id} {out.status}: {why})", False, False
    size, notional, fee, pnl = sold
    row = ledger.get_position(engine.conn, engine.mode, d.intent.token_id)
    left = row.size_micro if row is not None and row.status == "open" else 0
    line = (
        f"• {label}: sold {size / MICRO:,.2f} sh at {notional / size:.3f} avg → {fmt_usd(notional)}"
        f" (fee {fmt_usd(fee)}, P&L {fmt_usd(pnl, signed=True)}), order {out.order_id} {out.status}"
    )
    if round_size_down(left) > 0:  # a sellable rest: at least one 0.01-share order step
        return line + f"; {left / MICRO:,.2f} sh left", True, False
    if left > 0:  # orders are sized in whole 0.01 shares: a smaller rest cannot be sold
        line += f"; {left / MICRO:g} sh left (below the 0.01-share order step)"
    return line, True, True


def _label(named: lq.NamedPosition) -> str:
    p = named.position
    name = (named.question or p.token_id[:16] + "…")[:60]
    return name + (f" — {named.outcome}" if named.outcome else "")


def _sold(engine: Engine, order_id: int | None) -> tuple[int, int, int, int] | None:
    """(shares, notional, fees, realised P&L) of the order's recorded fills."""
    if order_id is None:
        return None
    row = engine.conn.execute(
        "SELECT SUM(size_micro), SUM(notional_micro), SUM(fee_micro), SUM(COALESCE(realized_pnl_micro, 0)) "
        "FROM trades WHERE order_id = ? AND kind = 'fill'",
        (order_id,),
    ).fetchone()
    if row is None or not row[0]:
        return None
    return int(row[0]), int(row[1]), int(row[2] or 0), int(row[3] or 0)
