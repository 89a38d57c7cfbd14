"""The checklist's alert triggers: keys, levels and pure detection helpers.

Each ``check_*`` helper returns a :class:`Finding` ``(level, key, message)`` when the
trigger fires and ``None`` otherwise, so a caller writes::

    finding = check_drawdown(equity_series, cfg.alerts.thresholds)
    if finding:
        alerter.send(*finding)          # or alerter.report(finding)

The helpers never read the clock or the network (``check_disk`` reads free space unless
``free_bytes`` is given); each decides with the one implementation of its fact in
:mod:`polybot.checks` and only words the alert. Thresholds come from ``cfg.alerts.thresholds``
(the disk's from ``cfg.health``; defaults are the checklist's). Messages are short and
phone-readable: what happened, the numbers, what to do.

Critical (``alerts.critical`` channels)
    ``daily_loss_limit``     :func:`check_daily_loss` (daily P&L vs risk_limits.daily_loss_limit)
    ``api_auth_failure``     :func:`api_auth_failure` (exchange refused the credentials)
    ``database_corruption``  :func:`check_database` (``db.quick_check`` result is not "ok")
    ``emergency_stop``       :func:`emergency_stop` (EMERGENCY_STOP found / breaker tripped)
    ``position_over_limit``  :func:`check_position_sizes` (a position above max_position_size)
Warning (``alerts.warning`` channels)
    ``win_rate_low``         :func:`check_win_rate` (< 50% over the last 20 closed trades)
    ``drawdown``             :func:`check_drawdown` (> 15% below the equity peak)
    ``api_slow``             :func:`check_api_latency` (> 3 s response)
    ``no_trades``            :func:`check_no_trades` (none for 4 h while markets are active)
    ``disk_space_low``       :func:`check_disk` (< health.disk_fail_gb, 2 GB, free)
Info (``alerts.info`` channels)
    ``daily_summary``        :func:`daily_summary`
    ``weekly_pnl``           :func:`weekly_report`
    ``new_market``           :func:`new_markets` (one alert listing the new markets)
Also used by this package: ``emergency_stop_requested`` (info: /stop from Telegram) and
``test_alert`` (test_alerts.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .. import checks as core
from ..money import fmt_usd, to_micro

GB = core.GB


class Finding(NamedTuple):
    level: str
    key: str
    message: str


KEYS: dict[str, tuple[str, str]] = {
    "daily_loss_limit": ("critical", "Daily loss limit exceeded"),
    "api_auth_failure": ("critical", "API authentication failure"),
    "database_corruption": ("critical", "Database corruption"),
    "emergency_stop": ("critical", "Emergency stop triggered"),
    "position_over_limit": ("critical", "Unexpected position above max_position_size"),
    "win_rate_low": ("warning", "Win rate below 50% over the last 20 trades"),
    "drawdown": ("warning", "Drawdown above 15%"),
    "api_slow": ("warning", "API response time above 3 s"),
    "no_trades": ("warning", "No trades in 4 h during market activity"),
    "disk_space_low": ("warning", "Disk space below 2 GB"),
    "daily_summary": ("info", "Daily performance summary"),
    "weekly_pnl": ("info", "Weekly P&L report"),
    "new_market": ("info", "New market detected"),
    "emergency_stop_requested": ("info", "EMERGENCY_STOP created from Telegram /stop"),
    "test_alert": ("info", "Test alert from test_alerts.py (sent at the level tested)"),
    # raised directly by other modules (listed here so the operator can look them up)
    "api_errors": ("critical", "Circuit breaker #1: consecutive API errors (engine)"),
    "backup_failed": ("critical", "Backup failed (ops/backup)"),
    "backup_offsite": ("warning", "Off-site backup copy failed (ops/backup)"),
    "backup_audit": ("critical", "Monthly backup audit failed (ops/audit)"),
    "database_restored": ("info", "Database restored from a backup (ops/restore)"),
    "resource_exhausted": ("critical", "Circuit breaker #4 on a full or read-only disk or log file (engine)"),
    "maintenance_failed": ("critical", "Maintenance could not open the database (disk full / read-only)"),
    "prelaunch_test": ("critical", "Pre-launch test alert (pre_launch_check.py)"),
    "health_<check>": (
        "critical",
        "health_check.py check failing: bot, api, database, last_trade, errors, disk",
    ),
}


def _thresholds(t):
    if t is None:
        from ..config import AlertThresholds

        return AlertThresholds()
    return getattr(t, "thresholds", t)  # accept cfg.alerts or cfg.alerts.thresholds


def _health(h):
    if h is None:
        from ..config import HealthConfig

        return HealthConfig()
    return getattr(h, "health", h)  # accept cfg or cfg.health


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _hours(seconds: float) -> str:
    h = seconds / 3600
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


# --------------------------------------------------------------------------- critical
def check_daily_loss(daily_pnl_micro: int, daily_loss_limit: float) -> Finding | None:
    """Critical when today's P&L (micro-units, UTC day) is a loss ≥ the limit ($, config)."""
    limit = to_micro(daily_loss_limit)
    if not core.daily_loss(daily_pnl_micro, limit).failed:
        return None
    return Finding(
        "critical",
        "daily_loss_limit",
        f"Daily loss {fmt_usd(daily_pnl_micro)} reached the limit of {fmt_usd(limit)} "
        f"(UTC day). Trading stops.\nWhat to do: review today's trades with /pnl and "
        f"/positions; resume with python trading_bot.py --restart only after the review.",
    )


def api_auth_failure(detail: str = "") -> Finding:
    """Critical: the exchange refused the credentials (HTTP 401/403)."""
    extra = f" ({detail})" if detail else ""
    return Finding(
        "critical",
        "api_auth_failure",
        f"Polymarket refused the API credentials{extra}. Trading stops.\n"
        f"What to do: check POLYMARKET_API_KEY/SECRET/PASSPHRASE and the funder address, "
        f"run python validate_config.py, then python trading_bot.py --restart.",
    )


def check_database(quick_check_result: str | core.CheckResult, path: Any = "the database") -> Finding | None:
    """Critical when ``db.quick_check`` did not answer ``ok`` (its text, or the
    :func:`polybot.checks.database` result)."""
    if isinstance(quick_check_result, core.CheckResult):
        if quick_check_result.ok:
            return None
        quick_check_result = str(quick_check_result.value)
    if str(quick_check_result).strip().lower() == "ok":
        return None
    return Finding(
        "critical",
        "database_corruption",
        f"Database integrity check failed for {path}: {str(quick_check_result)[:300]}. "
        f"Trading stops.\nWhat to do: stop the bot (touch EMERGENCY_STOP) and restore the "
        f"latest backup with python backup_database.py --restore FILE.",
    )


def emergency_stop(
    reason: str = "EMERGENCY_STOP file found", *, open_positions: int | None = None
) -> Finding:
    """Critical: the emergency stop (file or breaker) stopped trading."""
    pos = "" if open_positions is None else f" Open positions: {open_positions}."
    return Finding(
        "critical",
        "emergency_stop",
        f"Emergency stop: {reason}. Trading is stopped.{pos}\nWhat to do: find the cause; "
        f"to resume: rm EMERGENCY_STOP and python trading_bot.py --restart.",
    )


def check_position_sizes(
    positions: Iterable[Mapping[str, Any]],
    max_position_size: float,
) -> Finding | None:
    """Critical when a position's value is above ``max_position_size`` ($).

    Each position is a mapping with ``token_id`` and ``value_micro`` (current value) or
    ``cost_micro`` (cost basis) — e.g. rows of the ``positions`` table.
    """
    limit = to_micro(max_position_size)
    over = []
    for p in positions:
        value = p.get("value_micro", p.get("cost_micro"))
        if value is not None and int(value) > limit:
            over.append((str(p.get("token_id", "?")), int(value)))
    if not over:
        return None
    lines = "; ".join(f"{tok[:12]}… {fmt_usd(v)}" for tok, v in over[:5])
    more = f" and {len(over) - 5} more" if len(over) > 5 else ""
    return Finding(
        "critical",
        "position_over_limit",
        f"{len(over)} position(s) above max_position_size {fmt_usd(limit)}: {lines}{more}. "
        f"Trading stops.\nWhat to do: check /positions against Polymarket, reduce by hand "
        f"if needed, then python trading_bot.py --restart.",
    )


# --------------------------------------------------------------------------- warning
def _pnl_of(trade: Any) -> float | None:
    if isinstance(trade, Mapping) or hasattr(trade, "keys"):
        keys = list(trade.keys())
        name = "realized_pnl_micro" if "realized_pnl_micro" in keys else ("pnl" if "pnl" in keys else None)
        v = trade[name] if name else None
        return None if v is None else float(v)
    return None if trade is None else float(trade)


def check_win_rate(trades: Sequence[Any], thresholds=None) -> Finding | None:
    """Warning when fewer than ``win_rate`` of the last ``win_rate_trades`` closed trades won.

    ``trades``: oldest first, each a realized P&L number or a mapping/row with
    ``realized_pnl_micro`` (trades without a realized P&L are skipped). A win is P&L > 0.
    Fewer closed trades than the window: no verdict (None).
    """
    t = _thresholds(thresholds)
    pnls = [p for p in (_pnl_of(x) for x in trades) if p is not None]
    window = pnls[-int(t.win_rate_trades) :]
    if len(window) < int(t.win_rate_trades):
        return None
    wins = sum(1 for p in window if p > 0)
    rate = wins / len(window)
    if rate >= t.win_rate:
        return None
    return Finding(
        "warning",
        "win_rate_low",
        f"Win rate {_pct(rate)} over the last {len(window)} trades ({wins} won) is below "
        f"{_pct(t.win_rate)}.\nWhat to do: review the strategy's recent trades; consider "
        f"pausing (touch EMERGENCY_STOP) if it keeps falling.",
    )


def check_drawdown(equity_series: Sequence[float], thresholds=None) -> Finding | None:
    """Warning when the latest equity is more than ``drawdown`` below its running peak.

    ``equity_series``: equity values oldest first (micro-units or dollars — any unit).
    """
    t = _thresholds(thresholds)
    values = [float(v) for v in equity_series if v is not None]
    if len(values) < 2:
        return None
    peak = max(values)
    last = values[-1]
    if peak <= 0:
        return None
    dd = (peak - last) / peak
    if dd <= t.drawdown:
        return None
    return Finding(
        "warning",
        "drawdown",
        f"Drawdown {_pct(dd)} from the equity peak (limit {_pct(t.drawdown)}).\n"
        f"What to do: check /pnl and /positions; reduce risk or stop if it deepens.",
    )


def check_api_latency(seconds: float, thresholds=None, *, endpoint: str = "Polymarket API") -> Finding | None:
    """Warning when one API call took longer than ``api_response_seconds``."""
    t = _thresholds(thresholds)
    if seconds is None or core.api_latency(seconds, t.api_response_seconds).ok:
        return None
    return Finding(
        "warning",
        "api_slow",
        f"{endpoint} answered in {seconds:.1f} s (threshold {t.api_response_seconds:g} s).\n"
        f"What to do: check the network and status.polymarket.com; orders may fill late.",
    )


def check_no_trades(
    last_trade_ts: int | None,
    now: int,
    market_active: bool,
    thresholds=None,
    *,
    since: int | None = None,
) -> Finding | None:
    """Warning when no trade happened for ``no_trades_hours`` while markets are active.

    ``last_trade_ts``: epoch s of the last trade (None if never); ``since``: when the bot
    started (used when there was no trade yet). Inactive markets: no warning.
    """
    t = _thresholds(thresholds)
    if not market_active:
        return None
    ref = last_trade_ts if last_trade_ts is not None else since
    r = core.freshness("no_trades", ref, now, t.no_trades_hours * 3600)
    if r.code != "stale":
        return None
    idle = r.value
    what = "since the last trade" if last_trade_ts is not None else "since the bot started (no trade yet)"
    return Finding(
        "warning",
        "no_trades",
        f"No trades for {_hours(idle)} {what} while markets are active "
        f"(threshold {t.no_trades_hours:g} h).\nWhat to do: check /status and "
        f"python health_check.py; the bot may be stuck or halted.",
    )


def check_disk(path: Path | str, health=None, *, free_bytes: int | None = None) -> Finding | None:
    """Warning when the disk holding ``path`` has less than ``health.disk_fail_gb`` free (the
    level at which health_check.py FAILs; ``health``: ``cfg``, ``cfg.health`` or None for the
    defaults)."""
    h = _health(health)
    r = core.disk_space(path, warn_gb=h.disk_warn_gb, fail_gb=h.disk_fail_gb, free=free_bytes)
    if not r.failed:
        return None
    return Finding(
        "warning",
        "disk_space_low",
        f"Disk space low: {r.value / GB:.2f} GB free at {path} (threshold {h.disk_fail_gb:g} GB).\n"
        f"What to do: delete old backups/logs or run python maintain_database.py; "
        f"SQLite stops writing when the disk is full.",
    )


# --------------------------------------------------------------------------- info
def daily_summary(
    day: str,
    *,
    equity_micro: int,
    daily_pnl_micro: int,
    trades: int,
    open_positions: int,
    win_rate: float | None = None,
) -> Finding:
    """Info: the daily performance summary (``day`` as YYYY-MM-DD)."""
    wr = f", win rate {_pct(win_rate)}" if win_rate is not None else ""
    return Finding(
        "info",
        "daily_summary",
        f"Daily summary {day}: P&L {fmt_usd(daily_pnl_micro, signed=True)}, equity "
        f"{fmt_usd(equity_micro)}, {trades} trades{wr}, {open_positions} open positions.",
    )


def weekly_report(
    week: str,
    *,
    pnl_micro: int,
    equity_micro: int,
    trades: int,
    win_rate: float | None = None,
    max_drawdown: float | None = None,
) -> Finding:
    """Info: the weekly P&L report (``week`` e.g. '2026-W47')."""
    extra = ""
    if win_rate is not None:
        extra += f", win rate {_pct(win_rate)}"
    if max_drawdown is not None:
        extra += f", max drawdown {_pct(max_drawdown)}"
    return Finding(
        "info",
        "weekly_pnl",
        f"Weekly P&L {week}: {fmt_usd(pnl_micro, signed=True)}, equity {fmt_usd(equity_micro)}, "
        f"{trades} trades{extra}.",
    )


def new_markets(markets: Sequence[Mapping[str, Any]], *, limit: int = 10) -> Finding | None:
    """Info: one alert listing newly detected markets (mappings with ``question``)."""
    if not markets:
        return None
    lines = [f"• {str(m.get('question') or m.get('id'))[:100]}" for m in markets[:limit]]
    more = f"\n… and {len(markets) - limit} more" if len(markets) > limit else ""
    return Finding(
        "info", "new_market", f"{len(markets)} new market(s) detected:\n" + "\n".join(lines) + more
    )
