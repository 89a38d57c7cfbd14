"""The operational checks: one implementation per fact, one result type.

Each function decides ONE fact and returns a :class:`CheckResult`; it never prints, alerts,
raises or exits. The callers render or act on the result in their own format:

=====================  ==========================================================
``ops/health.py``      ``[OK]`` / ``[WARN]`` / ``[FAIL]`` lines, exit 0 / 1 / 2
``ops/prelaunch.py``   ``✓`` / ``✗`` items with the fix, GO / NO-GO
``alerts/checks.py``   a :class:`~polybot.alerts.checks.Finding` (or None) to send
``engine/breakers.py`` ``BreakerTripped`` (the engine STOPs)
``risk.py``            a rejecting ``RiskDecision`` (no new entries)
=====================  ==========================================================

The facts:

- :func:`disk_space` / :func:`disk` — free space on the disk holding the database against
  ``health.disk_warn_gb`` / ``health.disk_fail_gb`` (the only disk thresholds);
- :func:`database` — the database opened and ``PRAGMA quick_check`` (or
  ``integrity_check``) answers ``ok``, optionally within a time budget;
- :func:`exchange_api` / :func:`api_latency` — the exchange answers, and fast enough;
- :func:`freshness` — the newest record of something (a trade, a snapshot) is recent;
- :func:`daily_loss` — today's P&L against ``risk_limits.daily_loss_limit``.

How to add one: docs/dev/checks.md.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AuthenticationError
from .money import fmt_usd

OK, WARN, FAIL = "ok", "warn", "fail"
GB = 1024**3
# How many problems of a failed quick_check / integrity_check are kept (the rest is noise).
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class CheckResult:
    """The answer of one check.

    ``status``: ``ok`` | ``warn`` | ``fail``. ``message``: one plain sentence fragment with the
    numbers (callers add their prefix and the fix). ``value`` / ``threshold``: what was measured
    and what it was compared with (units in the check's docstring; None when not measured).
    ``code``: a stable word for the variant when a caller must tell them apart (e.g. the
    database check's ``missing`` / ``unreachable`` / ``damaged`` / ``skipped``); "" otherwise.
    """

    name: str
    status: str
    message: str
    value: Any = None
    threshold: Any = None
    code: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def worst(results: list[CheckResult]) -> str:
    """The worst status among ``results`` (``ok`` for none)."""
    statuses = {r.status for r in results}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else OK


# --------------------------------------------------------------------------- disk
def free_bytes(path: Path | str) -> int:
    """Free bytes on the filesystem holding ``path`` (or its nearest existing ancestor)."""
    p = Path(path)
    while not p.exists() and p.parent != p:
        p = p.parent
    return shutil.disk_usage(p).free


def disk_space(path: Path | str, *, warn_gb: float, fail_gb: float, free: int | None = None) -> CheckResult:
    """Free space on the disk holding ``path``: ``fail`` below ``fail_gb``, ``warn`` below
    ``warn_gb``. ``value``: free bytes; ``threshold``: the GB limit that was crossed (``warn_gb``
    when none was). ``free`` skips reading the disk (tests, callers that already know)."""
    free = free_bytes(path) if free is None else int(free)
    text = f"{free / GB:.1f} GB free"
    if free < fail_gb * GB:
        return CheckResult("disk", FAIL, f"{text} (below {fail_gb:g} GB)", free, fail_gb)
    if free < warn_gb * GB:
        return CheckResult("disk", WARN, f"{text} (below {warn_gb:g} GB)", free, warn_gb)
    return CheckResult("disk", OK, text, free, warn_gb)


def disk(cfg: Any, *, free: int | None = None) -> CheckResult:
    """:func:`disk_space` for the disk holding the configured database, with the configured
    thresholds (``health.disk_warn_gb`` / ``health.disk_fail_gb``)."""
    return disk_space(
        Path(cfg.database_path).parent,
        warn_gb=cfg.health.disk_warn_gb,
        fail_gb=cfg.health.disk_fail_gb,
        free=free,
    )


# --------------------------------------------------------------------------- database
def database(
    conn: sqlite3.Connection | None,
    *,
    error: str | None = None,
    full: bool = False,
    budget_seconds: float | None = None,
) -> CheckResult:
    """The database is open and ``PRAGMA quick_check`` (``integrity_check`` when ``full``)
    answers ``ok``. ``conn`` None: it could not be opened (``error`` says why).

    ``budget_seconds``: interrupt the check after that long and call it ``ok`` with code
    ``skipped`` (the health check runs from cron every 5 minutes; maintain_database.py runs the
    full check). Codes on failure: ``missing`` (not opened), ``unreachable`` (SQLite could not
    read it: locked, I/O), ``damaged`` (the check found problems, or SQLite says the file is
    not a valid database). ``value``: ``ok`` or the problem text.
    """
    pragma = "integrity_check" if full else "quick_check"
    if conn is None:
        return CheckResult("database", FAIL, f"not accessible: {error}", error, code="missing")
    if budget_seconds is not None:
        deadline = time.monotonic() + budget_seconds
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    try:
        rows = conn.execute(f"PRAGMA {pragma}").fetchall()[:MAX_PROBLEMS]
    except sqlite3.OperationalError as exc:
        if budget_seconds is not None and "interrupt" in str(exc).lower():
            return CheckResult(
                "database",
                OK,
                f"{pragma} skipped: over {budget_seconds:g} s; maintain_database.py runs the full check",
                None,
                budget_seconds,
                code="skipped",
            )
        return CheckResult("database", FAIL, f"not accessible: {exc}", str(exc), code="unreachable")
    except sqlite3.Error as exc:
        return CheckResult("database", FAIL, f"damaged: {exc}", str(exc), code="damaged")
    finally:
        if budget_seconds is not None:
            conn.set_progress_handler(None, 0)
    result = "; ".join(str(r[0]) for r in rows)
    if result != "ok":
        return CheckResult("database", FAIL, f"damaged ({pragma}: {result})", result, code="damaged")
    return CheckResult("database", OK, f"{pragma} ok", "ok")


# --------------------------------------------------------------------------- exchange API
def api_latency(seconds: float, slow_seconds: float) -> CheckResult:
    """One answer of the exchange took ``seconds``: ``warn`` above ``slow_seconds``
    (``alerts.thresholds.api_response_seconds``)."""
    ms = seconds * 1000
    if seconds > slow_seconds:
        return CheckResult(
            "api",
            WARN,
            f"response time: {ms:.0f}ms, over {slow_seconds * 1000:.0f}ms",
            seconds,
            slow_seconds,
            code="slow",
        )
    return CheckResult("api", OK, f"response time: {ms:.0f}ms", seconds, slow_seconds)


def exchange_api(probe: Callable[[], float], *, url: str, slow_seconds: float) -> CheckResult:
    """Call ``probe`` (one request to the exchange; returns the seconds it took) and judge it:
    ``fail`` when it raises (code ``auth`` when the exchange refused the credentials,
    ``unreachable`` otherwise), else :func:`api_latency`. ``value``: seconds, or the reason."""
    try:
        seconds = probe()
    except Exception as exc:  # any failure to reach the exchange is the finding itself
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        code = "auth" if isinstance(exc, AuthenticationError) else "unreachable"
        return CheckResult("api", FAIL, f"cannot reach {url} ({reason})", reason, code=code)
    return api_latency(seconds, slow_seconds)


# --------------------------------------------------------------------------- freshness
def freshness(
    name: str,
    last_ts: float | None,
    now: float,
    max_age_seconds: float,
    *,
    stale: str = FAIL,
    missing: str = FAIL,
) -> CheckResult:
    """The newest record (epoch s ``last_ts``; None: there is none) is at most
    ``max_age_seconds`` old at ``now``. Status ``stale`` when older, ``missing`` when there is
    none (code ``missing``). ``value``: the age in seconds; ``threshold``: ``max_age_seconds``."""
    if last_ts is None:
        return CheckResult(name, missing, "none recorded", None, max_age_seconds, code="missing")
    age = now - last_ts
    if age > max_age_seconds:
        return CheckResult(
            name, stale, f"{age:.0f} s old (limit {max_age_seconds:g} s)", age, max_age_seconds, code="stale"
        )
    return CheckResult(name, OK, f"{age:.0f} s old", age, max_age_seconds)


# --------------------------------------------------------------------------- daily loss
def daily_loss_reached(daily_pnl_micro: int, limit_micro: int) -> bool:
    """The rule of :func:`daily_loss` alone (no message): a loss of at least the limit.
    The risk manager asks it for every entry it checks."""
    return int(daily_pnl_micro) <= -int(limit_micro)


def daily_loss(daily_pnl_micro: int, limit_micro: int) -> CheckResult:
    """Today's (UTC) P&L, micro-units, against the daily loss limit (micro-units, > 0):
    ``fail`` when it is a loss of at least the limit. ``value``: the P&L; ``threshold``: the
    limit. The risk manager (no new entries) and circuit breaker #2 (STOP) decide with it."""
    pnl, limit = int(daily_pnl_micro), int(limit_micro)
    if daily_loss_reached(pnl, limit):
        return CheckResult(
            "daily_loss",
            FAIL,
            f"today's P&L {fmt_usd(pnl, signed=True)} is at or below -{fmt_usd(limit)}",
            pnl,
            limit,
        )
    return CheckResult(
        "daily_loss", OK, f"today's P&L {fmt_usd(pnl, signed=True)} is above -{fmt_usd(limit)}", pnl, limit
    )
