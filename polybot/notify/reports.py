"""Short texts for the Telegram commands, read from the database.

Sources: ``bot_state`` (heartbeat, pid, mode, halted, halt_reason), ``performance``
(latest equity, cash, exposure, daily P&L), ``positions`` (open, with ``markets`` /
``market_tokens`` for names and the latest non-null ``snapshot_values`` mid for value),
``trades`` (realized P&L, fees), all read through :mod:`polybot.ledger_queries`. Money is
integer micro-units, shown with ``fmt_usd``.
Every function takes ``now`` (epoch s) and a read connection and returns plain text.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .. import ledger_queries as lq
from ..config import Config
from ..money import MICRO, fmt_usd, notional_micro, to_micro
from ..ops.health import run_health_checks
from ..timefmt import utc_text

HELP = (
    "🤖 polybot commands\n"
    "/status — mode, halted?, equity, open positions\n"
    "/positions — open positions with value\n"
    "/pnl — P&L today, 7 days, total\n"
    "/health — health check summary\n"
    "/stop — create EMERGENCY_STOP (asks for /confirm_stop)\n"
    "/help — this list"
)


def _state(conn: sqlite3.Connection, key: str) -> str | None:
    try:
        row = conn.execute("SELECT value FROM bot_state WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def mode_of(conn: sqlite3.Connection, cfg: Config) -> str:
    return (_state(conn, "mode") or cfg.mode).lower()


def bot_line(conn: sqlite3.Connection, cfg: Config, now: int) -> str:
    hb = _state(conn, "heartbeat")
    pid = _state(conn, "pid")
    if not hb:
        return "Bot: no heartbeat recorded (not started yet?)"
    age = now - int(float(hb))
    pid_txt = f", pid {pid}" if pid else ""
    if age > cfg.health.heartbeat_max_age_seconds:
        return f"Bot: ⚠️ last heartbeat {_ago(age)} — it may be down{pid_txt}"
    return f"Bot: running, heartbeat {_ago(age)}{pid_txt}"


def status_text(conn: sqlite3.Connection, cfg: Config, now: int) -> str:
    mode = mode_of(conn, cfg)
    lines = [f"📊 Status ({mode.upper()})", bot_line(conn, cfg, now)]
    if Path(cfg.emergency_stop_file).exists():
        lines.append("Trading: 🛑 EMERGENCY_STOP file present")
    elif _state(conn, "halted") == "1":
        reason = _state(conn, "halt_reason") or "no reason recorded"
        lines.append(f"Trading: 🛑 HALTED — {reason}")
    else:
        lines.append("Trading: active (not halted)")
    perf = lq.latest_performance(conn, mode)
    if perf is None:
        lines.append("Equity: no performance recorded yet")
    else:
        lines.append(
            f"Equity: {fmt_usd(perf['equity_micro'])} (cash {fmt_usd(perf['cash_micro'])}, "
            f"exposure {fmt_usd(perf['exposure_micro'])})"
        )
        lines.append(f"Today: {fmt_usd(perf['daily_pnl_micro'], signed=True)}")
    n = lq.open_position_count(conn, mode)
    lines.append(f"Open positions: {n} (max {cfg.risk_limits.max_positions})")
    lines.append(f"🕒 {utc_text(now)}")
    return "\n".join(lines)


def positions_text(conn: sqlite3.Connection, cfg: Config, now: int, *, limit: int = 20) -> str:
    mode = mode_of(conn, cfg)
    rows = lq.open_positions_named(conn, mode)
    if not rows:
        return f"📂 No open positions ({mode.upper()})."
    lines = [f"📂 Open positions ({mode.upper()}): {len(rows)}"]
    total_cost = total_value = 0
    have_all_values = True
    for i, named in enumerate(rows[:limit], 1):
        p = named.position
        name = (named.question or p.token_id[:16] + "…")[:70]
        outcome = f" — {named.outcome}" if named.outcome else ""
        mark = lq.latest_mark(conn, p.token_id, "mid")
        shares = p.size_micro / MICRO
        line = f"{i}. {name}{outcome}\n   {shares:,.2f} sh · cost {fmt_usd(p.cost_micro)}"
        total_cost += p.cost_micro
        if mark is not None:
            value = notional_micro(mark.price_micro, p.size_micro)
            total_value += value
            line += (
                f" · mid {mark.price_micro / MICRO:.3f} → {fmt_usd(value)} "
                f"({fmt_usd(lq.unrealized_micro(p.size_micro, p.cost_micro, mark.price_micro), signed=True)})"
            )
        else:
            have_all_values = False
        lines.append(line)
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - limit} more")
    total = f"Total cost {fmt_usd(total_cost)}"
    if have_all_values:
        total += f", value {fmt_usd(total_value)} ({fmt_usd(total_value - total_cost, signed=True)})"
    lines.append(total)
    return "\n".join(lines)


def pnl_text(conn: sqlite3.Connection, cfg: Config, now: int) -> str:
    mode = mode_of(conn, cfg)
    day_start = lq.day_start(now)
    week_start = now - 7 * lq.DAY
    lines = [f"💰 P&L ({mode.upper()})"]
    perf = lq.latest_performance(conn, mode)
    capital = to_micro(cfg.capital)
    if perf is None:
        lines.append("No performance recorded yet (the bot records it every loop).")
    else:
        eq = perf["equity_micro"]
        before_week = lq.equity_at(conn, mode, week_start)
        base_week = before_week if before_week is not None else capital
        lines.append(f"Equity: {fmt_usd(eq)} (capital {fmt_usd(capital)})")
        lines.append(f"Today: {fmt_usd(perf['daily_pnl_micro'], signed=True)}")
        lines.append(f"7 days: {fmt_usd(eq - base_week, signed=True)}")
        lines.append(f"Total: {fmt_usd(eq - capital, signed=True)}")

    rt = lq.realized_pnl_micro(conn, mode, since=day_start)
    rw = lq.realized_pnl_micro(conn, mode, since=week_start)
    ra = lq.realized_pnl_micro(conn, mode)
    fa = lq.trade_activity(conn, mode).fees_micro
    lines.append(
        f"Realized (closed trades): today {fmt_usd(rt, signed=True)}, 7 d {fmt_usd(rw, signed=True)}, "
        f"total {fmt_usd(ra, signed=True)}; fees paid {fmt_usd(fa)}"
    )
    lines.append(f"🕒 {utc_text(now)}")
    return "\n".join(lines)


def health_lines(cfg: Config, conn: sqlite3.Connection | None, now: int) -> list[str]:
    """The health check's lines (:func:`polybot.ops.health.run_health_checks`), one per check."""
    return [item.line() for item in run_health_checks(cfg)]


def health_text(cfg: Config, conn: sqlite3.Connection | None, now: int) -> str:
    lines = health_lines(cfg, conn, now)
    bad = sum(1 for ln in lines if "FAIL" in ln[:8] or "✗" in ln[:3])
    head = "🩺 Health: all checks passed" if not bad else f"🩺 Health: {bad} problem(s)"
    return "\n".join([head, *lines, f"🕒 {utc_text(now)}"])
