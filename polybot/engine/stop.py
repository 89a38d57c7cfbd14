"""STOP: what every circuit breaker does (see polybot/engine/breakers.py).

1. cancel every open order (best effort: an unreachable exchange is reported, and live
   orders are also cancelled by Polymarket's heartbeat dead-man switch once the bot is gone);
2. emergency stop only: close every position (polybot/engine/closeout.py);
3. latch the halt: bot_state halted/halt_reason/halt_breaker + a ``halts`` row with the
   report of steps 1-2 (the database breaker also writes ``trading_bot.halted``);
4. a critical alert (keys of polybot/alerts/checks.py);
5. raise HaltedError (exit code 5).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from polybot.engine import breakers, ledger, state
from polybot.engine.breakers import BreakerTripped
from polybot.engine.closeout import close_all_positions
from polybot.errors import HaltedError

if TYPE_CHECKING:
    from polybot.engine.loop import Engine

log = logging.getLogger("polybot.engine")


def stop(engine: Engine, trip: BreakerTripped) -> None:
    """Cancel orders; emergency: close positions; latch the halt; alert; raise HaltedError."""
    n, label = breakers.NUMBERS[trip.breaker], breakers.LABELS[trip.breaker]
    log.critical("Circuit breaker #%d (%s) tripped: %s → STOP", n, label, trip.reason)
    report: list[str] = []
    if engine.executor is not None:
        try:
            report += engine.executor.cancel_all(f"circuit breaker #{n} ({label})")
        except Exception as exc:  # noqa: BLE001 — best effort, keep stopping
            report.append(f"cancelling orders failed: {exc}")
    if trip.breaker == breakers.EMERGENCY_STOP:
        report += close_all_positions(engine)
    for line in report:
        log.warning("STOP: %s", line)
    # The operator first, by whatever still works (Telegram needs no disk), then the latch:
    # on a full disk persisting can fail, and it never raises (issue 15 #1).
    alert(engine, trip, report, flush=False)
    where = state.persist_halt(
        engine.conn,
        engine.cfg,
        mode=engine.mode,
        breaker=trip.breaker,
        reason=trip.reason,
        details="\n".join(report),
        now=int(engine.wall()),
    )
    with contextlib.suppress(Exception):  # alert delivery never blocks a stop
        engine.alerter.flush(10)
    engine.stop_exchange_heartbeat()
    if trip.resource:
        raise HaltedError(
            f"Trading halted by circuit breaker #{n} ({trip.resource}): {trip.reason}; free "
            f"space / make the disk writable (the database is not damaged — do not restore a "
            f"backup), then run python trading_bot.py --restart (halt recorded in the {where})."
        )
    if trip.breaker == breakers.EMERGENCY_STOP:
        raise HaltedError(
            f"Emergency stop: {trip.reason}; open orders cancelled and positions closed "
            f"(halt recorded in the {where}); find the cause, then rm EMERGENCY_STOP and run "
            f"python trading_bot.py --restart."
        )
    raise HaltedError(
        f"Trading halted by circuit breaker #{n} ({label}): {trip.reason}; fix the cause, "
        f"then run python trading_bot.py --restart."
    )


def alert(engine: Engine, trip: BreakerTripped, report: list[str], *, flush: bool = True) -> None:
    from polybot.alerts import checks

    n, label = breakers.NUMBERS[trip.breaker], breakers.LABELS[trip.breaker]
    open_n = None
    if trip.breaker != breakers.DATABASE:
        try:
            open_n = len(ledger.open_positions(engine.conn, engine.mode))
        except Exception:  # noqa: BLE001 — the alert goes out even if the count cannot be read
            open_n = None
    if trip.resource:
        key, msg = (
            "resource_exhausted",
            (
                f"Circuit breaker #4 ({trip.resource}): {trip.reason}. Trading stops."
                f"\nWhat to do: free disk space or make it writable (df -h); the "
                f"database is not damaged, do NOT restore a backup; then python "
                f"trading_bot.py --restart."
            ),
        )
    elif trip.breaker == breakers.EMERGENCY_STOP:
        f = checks.emergency_stop(trip.reason, open_positions=open_n)
        key, msg = f.key, f.message
    elif trip.breaker == breakers.DAILY_LOSS:
        key, msg = (
            "daily_loss_limit",
            (
                f"Circuit breaker #2: {trip.reason}. Trading stops.\nWhat to do: review "
                f"today's trades; resume with python trading_bot.py --restart."
            ),
        )
    elif trip.breaker == breakers.POSITION_ANOMALY:
        key, msg = (
            "position_over_limit",
            (
                f"Circuit breaker #3: {trip.reason}. Trading stops.\nWhat to do: "
                f"check positions against Polymarket, then python trading_bot.py "
                f"--restart."
            ),
        )
    elif trip.breaker == breakers.DATABASE:
        key, msg = (
            "database_corruption",
            (
                f"Circuit breaker #4: {trip.reason}. Trading stops.\nWhat to do: "
                f"restore the latest backup with python backup_database.py --restore "
                f"FILE, then python trading_bot.py --restart."
            ),
        )
    elif "credentials" in trip.reason:
        f = checks.api_auth_failure(trip.reason)
        key, msg = f.key, f.message
    else:
        key, msg = (
            "api_errors",
            (
                f"Circuit breaker #{n} ({label}): {trip.reason}. Trading stops.\nWhat to do: "
                f"check python test_api_connectivity.py, then python trading_bot.py --restart."
            ),
        )
    engine.alerter.critical(key, msg + (f"\n{len(report)} stop action(s) logged." if report else ""))
    if not flush:
        return
    with contextlib.suppress(Exception):  # alert delivery never blocks a stop
        engine.alerter.flush(10)
