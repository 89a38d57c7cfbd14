"""The five circuit breakers of the checklist. Each one trips a STOP.

1. ``api_errors`` — ``trading.max_consecutive_api_errors`` (3) consecutive transient or
   ambiguous exchange failures (ExchangeUnavailable, TemporaryExchangeError,
   OrderOutcomeUnknown, timeouts). A definitive 4xx rejection is not counted; any
   successful call resets the count. An authentication failure trips it at once.
2. ``daily_loss`` — today's (UTC) P&L, realised + marked-to-market, is a loss of at
   least ``risk_limits.daily_loss_limit``.
3. ``position_anomaly`` — a position (in the database or at the exchange) whose cost
   basis is above ``max_position_size`` (+ ``ANOMALY_TOLERANCE`` for fees and
   rounding), or a negative position.
4. ``database`` — ``PRAGMA quick_check`` fails (at start and every
   ``trading.quick_check_interval_minutes``) or a write fails; also a full or read-only
   disk and an unwritable log file (``resource``: the advice is to free space, not to
   restore a backup).
5. ``emergency_stop`` — the ``EMERGENCY_STOP`` file exists (checked at the top of every
   loop and immediately before every order is sent).

STOP (see :meth:`polybot.engine.loop.Engine.stop`): cancel open orders; for the
emergency stop also close every position with marketable orders (best effort, each
result logged); latch the halt (bot_state + ``halts`` row); send a critical alert;
exit non-zero. The halt stays until the operator restarts with ``--restart``.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from polybot import checks
from polybot.config import Config
from polybot.errors import (
    AuthenticationError,
    DatabaseError,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    TemporaryExchangeError,
)
from polybot.money import MICRO, fmt_usd, to_micro

log = logging.getLogger("polybot.engine")

API_ERRORS = "api_errors"
DAILY_LOSS = "daily_loss"
POSITION_ANOMALY = "position_anomaly"
DATABASE = "database"
EMERGENCY_STOP = "emergency_stop"
BREAKERS = (API_ERRORS, DAILY_LOSS, POSITION_ANOMALY, DATABASE, EMERGENCY_STOP)
LABELS = {
    API_ERRORS: "API failure",
    DAILY_LOSS: "Daily loss limit",
    POSITION_ANOMALY: "Position size anomaly",
    DATABASE: "Database corruption",
    EMERGENCY_STOP: "Manual emergency stop",
}
NUMBERS = {b: i + 1 for i, b in enumerate(BREAKERS)}
ANOMALY_TOLERANCE = 0.10


class BreakerTripped(Exception):
    """A circuit breaker tripped: the engine must STOP. ``resource``: set when breaker #4
    tripped on an exhausted resource (a full or read-only disk, an unwritable log file)
    rather than damage — the operator frees space; restoring a backup would be wrong."""

    def __init__(self, breaker: str, reason: str, details: str = "", resource: str = ""):
        super().__init__(reason)
        self.breaker = breaker
        self.reason = reason
        self.resource = resource
        self.details = details


def is_transient(exc: BaseException) -> bool:
    """Failures the API-error breaker counts: transient or ambiguous, never a definitive 4xx."""
    if isinstance(exc, (ExchangeUnavailable, TemporaryExchangeError, OrderOutcomeUnknown)):
        return True
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError)):
        return True
    name = type(exc).__name__
    return "Timeout" in name or name in ("ConnectError", "ReadError", "RemoteProtocolError")


class ApiErrorCounter:
    def __init__(self, limit: int):
        self.limit = max(1, int(limit))
        self.count = 0
        self.last: str | None = None

    def failure(self, exc: BaseException, doing: str, *, transient: bool | None = None) -> None:
        """Count one failure; raise BreakerTripped on the limit. Definitive refusals are
        logged, not counted (an AuthenticationError trips at once). ``transient`` overrides
        the classification (e.g. an unreadable answer from the exchange counts)."""
        if isinstance(exc, AuthenticationError):
            raise BreakerTripped(API_ERRORS, f"the exchange refused the credentials while {doing}: {exc}")
        if not (is_transient(exc) if transient is None else transient):
            log.warning(
                "the exchange refused a request while %s (not counted as an API error): %s", doing, exc
            )
            return
        self.count += 1
        self.last = f"{doing}: {exc}"
        log.warning("API error %d/%d while %s: %s", self.count, self.limit, doing, exc)
        if self.count >= self.limit:
            raise BreakerTripped(
                API_ERRORS,
                f"{self.count} consecutive API errors (limit {self.limit}); last while {doing}: {exc}",
            )

    def success(self) -> None:
        if self.count:
            log.info("API calls succeed again after %d error(s)", self.count)
        self.count = 0


def emergency_stop_requested(cfg: Config) -> bool:
    return Path(cfg.emergency_stop_file).exists()


def check_emergency_stop(cfg: Config) -> None:
    if emergency_stop_requested(cfg):
        raise BreakerTripped(EMERGENCY_STOP, f"emergency stop file {cfg.emergency_stop_file} found")


def check_daily_loss(daily_pnl_micro: int, limit_usd: float) -> None:
    """Breaker #2 on today's P&L (:func:`polybot.checks.daily_loss`). The engine trips it from
    the risk manager's decision (``RiskManager.daily_loss_breached``, which also latches the
    day's low); both decide with the same comparison."""
    r = checks.daily_loss(daily_pnl_micro, to_micro(limit_usd))
    if r.failed:
        raise BreakerTripped(
            DAILY_LOSS,
            f"today's loss {fmt_usd(-int(daily_pnl_micro))} reached the daily loss limit {fmt_usd(r.threshold)}",
        )


def check_positions(items: Iterable[tuple[str, int, int]], max_position_usd: float, source: str) -> None:
    """``items``: (token_id, size_micro, cost_micro). Trip on a position above the limit."""
    limit = int(round(max_position_usd * MICRO))
    allowed = int(limit * (1 + ANOMALY_TOLERANCE))
    for token, size, cost in items:
        if size < 0:
            raise BreakerTripped(
                POSITION_ANOMALY,
                f"{source} shows a negative position of {size / MICRO:g} shares in token {token[:16]}…",
            )
        if cost > allowed:
            raise BreakerTripped(
                POSITION_ANOMALY,
                f"{source} shows a position of {fmt_usd(cost)} in token "
                f"{token[:16]}…, above max_position_size {fmt_usd(limit)}",
            )


def check_database(conn: sqlite3.Connection) -> None:
    """Breaker #4 on ``PRAGMA quick_check`` (:func:`polybot.checks.database`)."""
    try:
        r = checks.database(conn)
        result = "ok" if r.ok else str(r.value)
    except DatabaseError as exc:  # a wrapped connection may raise ours
        result = str(exc)
    if result != "ok":
        raise BreakerTripped(
            DATABASE, f"database integrity check failed: {' '.join(str(result).split())[:300]}"
        )


def resource_trip(exc: BaseException, doing: str) -> BreakerTripped | None:
    """Breaker #4 for an exhausted resource (full / read-only disk, I/O error), else None."""
    import errno

    text = str(exc)
    low = text.lower()
    err = getattr(exc, "errno", None)
    cause = getattr(exc, "cause", None)
    if err == errno.ENOSPC or cause == "full" or "database or disk is full" in low:
        kind = "disk full"
    elif err == errno.EROFS or cause == "read-only" or "readonly" in low:
        kind = "read-only disk"
    elif err == errno.EIO or "disk i/o error" in low:
        kind = "disk I/O error"
    else:
        return None
    where = getattr(exc, "filename", None) or ""
    return BreakerTripped(
        DATABASE, f"{kind} while {doing}{f' ({where})' if where else ''}: {text}", resource=kind
    )
