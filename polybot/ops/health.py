"""``health_check.py`` and :func:`run_health_checks` (also used by Telegram ``/health`` and the
dashboard): the checklist's six lines, each ``[OK]``, ``[WARN]`` or ``[FAIL]``::

    [OK] Bot process running (PID: 12345)
    [OK] API connectivity (response time: 234ms)
    [OK] Database accessible
    [OK] Last trade: 23 minutes ago
    [OK] No critical errors
    [OK] Disk space: 12.3 GB free

A last line ``<UTC time> Health: OK | WARNING (…) | ERROR (…)`` timestamps each run in
``logs/health.log`` (so ``grep ERROR logs/health.log`` lists the failed runs).

The API, database, last-trade and disk lines word the results of :mod:`polybot.checks` (the one
implementation of each fact, shared with pre-launch, the alerts and the breakers). Thresholds come
from ``health:`` (heartbeat age, last-trade warning, disk warn/fail) and
``alerts.thresholds.api_response_seconds``. The database is opened read-only; the only writes are
the alerts (throttled by the alerts module): a critical one for each FAIL ("bot not running" only
once the bot has ever run on this database, so the data-collection phase stays quiet) and the
checklist's warnings (:func:`warning_findings`: slow API, win rate, drawdown, no trades while the
bot runs on fresh data; ``--no-alert`` sends none). Safe from cron every 5 minutes:
every network call has a short timeout and ``quick_check`` stops after a time budget.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from .. import checks, db
from .. import ledger_queries as lq
from ..alerts.checks import Finding, check_api_latency, check_drawdown, check_no_trades, check_win_rate
from ..config import Config
from ..errors import PolybotError
from ..exchange.client import PolymarketClient
from ..logs import LOG_PREFIX
from ..timefmt import file_day, iso_seconds
from .common import bot_status, display_path, fmt_ago, send_alerts

log = logging.getLogger("polybot.health")

API_TIMEOUT = (2.0, 2.5)  # connect, read (seconds)
QUICK_CHECK_BUDGET = 2.0  # seconds
ALERT_WAIT = 2.0  # seconds to deliver a FAIL alert; the rest is retried later
LOG_TAIL_BYTES = 2 * 1024 * 1024
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) \[(ERROR|CRITICAL)\] ([\w.]+): (.*)$")
# Records that are not new errors: alerts are counted from the alerts table, and the health
# check's own lines would otherwise keep it failing.
_IGNORED_LOGGERS = ("polybot.alerts", "polybot.health")

STATUS_OK, STATUS_WARN, STATUS_FAIL = "OK", "WARN", "FAIL"
EXIT_CODES = {STATUS_OK: 0, STATUS_WARN: 1, STATUS_FAIL: 2}


@dataclass(frozen=True)
class HealthLine:
    """One check: ``name`` is a stable key (bot, api, database, last_trade, errors, disk)."""

    name: str
    status: str  # OK | WARN | FAIL
    text: str
    value: float | None = None  # what was measured, where a number (the API's seconds)

    def line(self) -> str:
        return f"[{self.status}] {self.text}"

    def __str__(self) -> str:
        return self.line()


def overall(lines: list[HealthLine]) -> str:
    statuses = {h.status for h in lines}
    return STATUS_FAIL if STATUS_FAIL in statuses else STATUS_WARN if STATUS_WARN in statuses else STATUS_OK


def exit_code(lines: list[HealthLine]) -> int:
    return EXIT_CODES[overall(lines)]


# --------------------------------------------------------------------------- checks
def check_bot(cfg: Config, conn: sqlite3.Connection | None, now: float) -> HealthLine:
    st = bot_status(cfg, conn, now=now)
    pf = display_path(st.pid_file, cfg.root)
    if st.pid is None:
        return HealthLine(
            "bot",
            STATUS_FAIL,
            f"Bot process not running (no PID file {pf}); start it with python trading_bot.py",
        )
    if not st.alive:
        return HealthLine(
            "bot",
            STATUS_FAIL,
            f"Bot process not running (PID {st.pid} in {pf} is gone); read "
            f"the log, then python trading_bot.py --restart",
        )
    if st.heartbeat is None:
        return HealthLine(
            "bot",
            STATUS_FAIL,
            f"Bot process {st.pid} alive but no heartbeat recorded "
            f"({st.db_error or 'bot_state has none'}); it may be stuck starting",
        )
    if not st.fresh:
        return HealthLine(
            "bot",
            STATUS_FAIL,
            f"Bot process {st.pid} alive but its heartbeat is "
            f"{st.heartbeat_age:.0f} s old (limit {st.max_age:g} s): it may "
            f"be hung; see RUNBOOK.md",
        )
    if st.halted:
        return HealthLine(
            "bot",
            STATUS_WARN,
            f"Bot process running (PID: {st.pid}) but HALTED: {st.halt_reason or 'no reason recorded'}",
        )
    return HealthLine("bot", STATUS_OK, f"Bot process running (PID: {st.pid})")


def _api_seconds(cfg: Config) -> float:
    client = PolymarketClient.from_config(cfg, timeout=API_TIMEOUT, max_retries=1, backoff_max=1.0)
    try:
        return client.health()
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _line(name: str, result: checks.CheckResult, text: str) -> HealthLine:
    value = result.value if isinstance(result.value, (int, float)) else None
    return HealthLine(name, result.status.upper(), text, value)


def check_api(cfg: Config) -> HealthLine:
    r = checks.exchange_api(
        lambda: _api_seconds(cfg),
        url=cfg.polymarket.base_url,
        slow_seconds=cfg.alerts.thresholds.api_response_seconds,
    )
    if r.failed:
        return _line("api", r, f"API connectivity: {r.message}")
    if not r.ok:
        return _line("api", r, f"API connectivity slow ({r.message})")
    return _line("api", r, f"API connectivity ({r.message})")


RESTORE_FIX = "restore it with python backup_database.py --restore FILE"


def check_database(conn: sqlite3.Connection | None, error: str | None) -> HealthLine:
    r = checks.database(conn, error=error, budget_seconds=QUICK_CHECK_BUDGET)
    if r.code == "skipped":
        return _line("database", r, f"Database accessible ({r.message})")
    if r.code == "damaged":
        return _line("database", r, f"Database {r.message}; {RESTORE_FIX}")
    if r.failed:
        return _line("database", r, f"Database {r.message}")
    return _line("database", r, "Database accessible")


def check_last_trade(cfg: Config, conn: sqlite3.Connection | None, now: float) -> HealthLine:
    if conn is None:
        return HealthLine("last_trade", STATUS_FAIL, "Last trade: unknown (database not accessible)")
    try:
        row = conn.execute("SELECT MAX(timestamp) FROM trades WHERE mode = ?", (cfg.mode,)).fetchone()
    except sqlite3.Error as exc:
        return HealthLine("last_trade", STATUS_FAIL, f"Last trade: unknown ({exc})")
    limit = cfg.health.last_trade_warn_minutes
    r = checks.freshness(
        "last_trade", row[0] if row else None, now, limit * 60, stale=checks.WARN, missing=checks.WARN
    )
    if r.code == "missing":
        return _line("last_trade", r, f"Last trade: none recorded yet ({cfg.mode} mode)")
    if not r.ok:
        return _line(
            "last_trade",
            r,
            f"Last trade: {fmt_ago(r.value)} (over {limit:g} minutes; see RUNBOOK.md, No trades executing)",
        )
    return _line("last_trade", r, f"Last trade: {fmt_ago(r.value)}")


def check_external(cfg: Config, conn: sqlite3.Connection | None) -> HealthLine | None:
    """Live: holdings of the account that are not the bot's (the first-live-start baseline and
    trades by hand; polybot/engine/external.py), shown apart. None when there are none."""
    if conn is None:
        return None
    try:
        rows = conn.execute(
            "SELECT token_id, size_micro FROM external_holdings WHERE mode='live' AND "
            "size_micro <> 0 ORDER BY size_micro DESC"
        ).fetchall()
    except sqlite3.Error:  # a database from before schema 3
        return None
    if not rows:
        return None
    shares = sum(int(r[1]) for r in rows) / 1_000_000
    top = ", ".join(f"{str(r[0])[:10]}… {int(r[1]) / 1_000_000:g}" for r in rows[:3])
    return HealthLine(
        "external",
        STATUS_OK,
        f"External holdings (not the bot's, never sold by it): {len(rows)} "
        f"token(s), {shares:g} shares ({top}{', …' if len(rows) > 3 else ''})",
    )


def log_errors_since(log_dir: Path, since: float) -> list[str]:
    """ERROR/CRITICAL lines logged since ``since`` (today's file, and yesterday's near midnight)."""
    days = {file_day(t) for t in (since, time.time())}
    found: list[str] = []
    cutoff = iso_seconds(since)
    for day in sorted(days):
        path = Path(log_dir) / f"{LOG_PREFIX}{day}.log"
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(max(0, size - LOG_TAIL_BYTES))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            continue
        for raw in text.splitlines():
            m = _LOG_LINE.match(raw)
            if m and m.group(1) >= cutoff and not m.group(3).startswith(_IGNORED_LOGGERS):
                found.append(f"{m.group(3)}: {m.group(4)}")
    return found


def check_errors(cfg: Config, conn: sqlite3.Connection | None, now: float) -> HealthLine:
    since = now - 3600
    alerts = []
    if conn is not None:
        try:
            alerts = conn.execute(
                "SELECT key, message FROM alerts WHERE level = 'critical' AND timestamp >= ? "
                "AND key NOT LIKE 'health%' ORDER BY timestamp DESC",
                (int(since),),
            ).fetchall()
        except sqlite3.Error:
            alerts = []
    if alerts:
        key, msg = alerts[0]
        return HealthLine(
            "errors",
            STATUS_FAIL,
            f"{len(alerts)} critical alert(s) in the last hour (latest: {key}: {str(msg)[:120]})",
        )
    errors = log_errors_since(cfg.log_dir, since)
    if errors:
        return HealthLine(
            "errors",
            STATUS_WARN,
            f"{len(errors)} ERROR line(s) in today's log in the last hour (latest: {errors[-1][:120]})",
        )
    return HealthLine("errors", STATUS_OK, "No critical errors")


def check_disk(cfg: Config) -> HealthLine:
    r = checks.disk(cfg)
    if r.failed:
        return _line("disk", r, f"Disk space: {r.message}; free space now — see RUNBOOK.md")
    return _line("disk", r, f"Disk space: {r.message}")


def run_health_checks(
    cfg: Config, *, now: float | None = None, check_api_connectivity: bool = True
) -> list[HealthLine]:
    """The six checks, in the checklist's order. Read-only; never raises; sends no alert."""
    now = time.time() if now is None else now
    conn, error = None, None
    try:
        conn = db.connect(cfg.database_path, readonly=True)
    except PolybotError as exc:
        error = str(exc)
    try:
        lines = [check_bot(cfg, conn, now)]
        if check_api_connectivity:
            lines.append(check_api(cfg))
        lines += [
            check_database(conn, error),
            check_last_trade(cfg, conn, now),
            check_errors(cfg, conn, now),
            check_disk(cfg),
        ]
        ext = check_external(cfg, conn)
        if ext is not None:
            lines.append(ext)
        return lines
    finally:
        if conn is not None:
            conn.close()


def summary_line(lines: list[HealthLine], now: float | None = None) -> str:
    """One timestamped line per run, so ``grep ERROR logs/health.log`` (the checklist's daily
    review) lists the failed runs: ``… Health: OK``, ``… Health: WARNING …``, ``… Health: ERROR …``."""
    stamp = iso_seconds(time.time() if now is None else now)
    status = overall(lines)
    if status == STATUS_OK:
        return f"{stamp} Health: OK ({len(lines)}/{len(lines)} checks OK)"
    bad = ", ".join(f"{h.name} {h.status}" for h in lines if h.status != STATUS_OK)
    word = "ERROR" if status == STATUS_FAIL else "WARNING"
    return f"{stamp} Health: {word} ({bad})"


def bot_never_started(cfg: Config) -> bool:
    """No PID file and no heartbeat ever recorded: the bot has not been run on this database yet
    (the data-collection phase), so "not running" is expected, not an emergency."""
    st = bot_status(cfg)
    return st.pid is None and st.heartbeat is None and st.db_error is None


def alert_failures(cfg: Config, lines: list[HealthLine]) -> None:
    """One critical alert per failing check (key ``health_<name>``, throttled by the alerts module).

    The bot line alerts only once the bot has run at least once on this database: during the
    checklist's data-collection phase a critical alert every 15 minutes would only teach the
    operator to ignore critical alerts."""
    failing = [h for h in lines if h.status == STATUS_FAIL]
    if any(h.name == "bot" for h in failing) and bot_never_started(cfg):
        failing = [h for h in failing if h.name != "bot"]
    if not failing:
        return
    send_alerts(
        cfg,
        [("critical", f"health_{h.name}", f"Health check FAIL: {h.text}") for h in failing],
        timeout=ALERT_WAIT,
    )


def warning_findings(cfg: Config, lines: list[HealthLine], now: float) -> list[Finding]:
    """The checklist's warning alerts (section "Alert Thresholds Configured"): API response time,
    win rate over the last trades, drawdown from the equity peak, and no trades for hours while the
    bot runs on fresh data. Thresholds: ``alerts.thresholds``. Read-only; never raises (a database
    that cannot be read is the database line's FAIL, not a warning)."""
    t = cfg.alerts.thresholds
    found: list[Finding | None] = []
    api = next((h for h in lines if h.name == "api"), None)
    if api is not None and api.status == STATUS_WARN and api.value is not None:
        found.append(check_api_latency(float(api.value), t))
    try:
        conn = db.connect(cfg.database_path, readonly=True)
    except PolybotError:
        return [f for f in found if f is not None]
    try:
        found.append(check_win_rate(lq.last_closing_pnls(conn, cfg.mode, int(t.win_rate_trades)), t))
        found.append(check_drawdown(lq.equity_peak_and_latest(conn, cfg.mode) or (), t))  # (peak, latest)
        if any(h.name == "bot" and h.status == STATUS_OK for h in lines):
            last_trade = conn.execute(
                "SELECT MAX(timestamp) FROM trades WHERE mode = ?", (cfg.mode,)
            ).fetchone()[0]
            last_data = conn.execute("SELECT MAX(timestamp) FROM snapshot_values").fetchone()[0]
            started = db.get_state(conn, "started_at")
            fresh = checks.freshness("data", last_data, now, cfg.collection.freshness_minutes * 60).ok
            found.append(
                check_no_trades(
                    None if last_trade is None else int(last_trade),
                    int(now),
                    fresh,
                    t,
                    since=int(float(started)) if started else None,
                )
            )
    except (sqlite3.Error, ValueError) as exc:
        log.warning("warning alerts skipped: %s", exc)
    finally:
        conn.close()
    return [f for f in found if f is not None]


def main(args) -> int:
    from ..config import load_config
    from .common import configure_quiet

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)
    lines = run_health_checks(cfg)
    for h in lines:
        print(h.line())
    status = overall(lines)
    print(summary_line(lines))
    summary = ", ".join(f"{h.name}={h.status}" for h in lines)
    (log.warning if status != STATUS_OK else log.info)("Health %s: %s", status, summary)
    if status == STATUS_FAIL and not args.no_alert:
        alert_failures(cfg, lines)
    if not args.no_alert:
        warnings = warning_findings(cfg, lines, time.time())
        send_alerts(cfg, [(f.level, f.key, f.message) for f in warnings], timeout=ALERT_WAIT)
    return EXIT_CODES[status]
