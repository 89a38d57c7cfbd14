"""Telegram's tables and charts: ``/trades``, ``/daily``, ``/weekly``, ``/balance``, ``/limits``,
``/halts``, ``/version`` and ``/report``.

:func:`answer` turns one of :data:`COMMANDS` into a reply for
:class:`polybot.notify.commands.CommandHandler`: a text, or a :class:`PhotoReply` (``/report``:
the daily report with the equity and drawdown chart, sent with ``sendPhoto``). Figures are read
through :mod:`polybot.ledger_queries` on a read-only connection that waits at most
:data:`BUSY_SECONDS` for another process's lock, so a busy or missing database is answered with
one sentence (:func:`open_read`), never with silence.

- ``/trades [n]`` — the ``n`` newest ``trades`` rows (default 10, at most 50).
- ``/daily [n]`` / ``/weekly [n]`` — realised P&L (closed trades, net of fees) per UTC day / ISO
  week (Monday 00:00 UTC), like freqtrade's: P&L, % of the equity at the start of the period
  (the configured capital before the bot's first ``performance`` row), trades (fills and
  settlements; a FAILED fill and its reversal are left out) and how many of them closed something.
- ``/balance`` — the ledger's cash (paper: capital + trade cash flows; live: the bot's last
  reading), exposure (cost basis of the open positions), their value at the latest mid and the
  equity; live mode also reads the exchange's balance now, within :data:`EXCHANGE_SECONDS`.
- ``/limits`` — every ``risk_limits`` entry and how much of it is used now.
- ``/halts [n]`` — the ``halts`` table, newest first, with reasons and whether each was cleared.
- ``/version`` — polybot's version, the database schema version and the git commit.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .. import ledger_queries as lq
from ..config import Config
from ..money import MICRO, fmt_usd, to_micro
from ..timefmt import iso_week, utc_day, utc_minute, utc_text
from .reports import mode_of

log = logging.getLogger("polybot.telegram.tables")

COMMANDS = ("trades", "daily", "weekly", "balance", "limits", "halts", "version", "report")
DEFAULTS = {"trades": 10, "daily": 7, "weekly": 4, "halts": 10}
MAX_ROWS = {"trades": 50, "daily": 90, "weekly": 52, "halts": 50}
BUSY_SECONDS = 5  # a command waits this long for another process's lock, then says "busy"
EXCHANGE_SECONDS = 8  # /balance in live mode: the exchange's balance must come within this
MESSAGE_BUDGET = 4000  # a table stays under Telegram's 4096 (UTF-16 units): rows are left off, not cut


@dataclass(frozen=True)
class PhotoReply:
    """A reply with a chart: ``text`` (the caption, or a message of its own when longer than a
    caption may be) and ``png`` (None: no chart to send, the text goes alone)."""

    text: str
    png: bytes | None
    name: str = "chart.png"


class DatabaseUnavailable(Exception):
    """The database cannot be read now; ``str(exc)`` is the sentence for the operator."""


# ----------------------------------------------------------------------------- database
def open_read(cfg: Config) -> sqlite3.Connection:
    """A read-only connection that waits at most :data:`BUSY_SECONDS` for a lock; raises
    :class:`DatabaseUnavailable` with one sentence when the file is missing, locked or unreadable."""
    from ..db import connect
    from ..errors import PolybotError

    path = Path(cfg.database_path)
    if not path.exists():
        raise DatabaseUnavailable(
            f"the database {path} does not exist; run python initialize_db.py on the machine."
        )
    try:
        return connect(path, readonly=True, busy_timeout_ms=BUSY_SECONDS * 1000)
    except PolybotError as exc:
        if getattr(exc, "cause", None) == "locked":
            raise DatabaseUnavailable(busy_sentence()) from exc
        raise DatabaseUnavailable(str(exc)) from exc
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"the database {path} cannot be read ({exc}).") from exc


def busy_sentence() -> str:
    return (
        f"the database is busy (locked by another process for more than {BUSY_SECONDS} s); "
        f"try again in a minute, or run python health_check.py on the machine if it stays locked."
    )


def answer(cfg: Config, command: str, now: int) -> str | PhotoReply:
    """The reply to ``command`` (its text, e.g. ``"/daily 5"``): a text or a :class:`PhotoReply`."""
    words = command.strip().split()
    cmd = words[0].lstrip("/").split("@")[0].lower()
    n = DEFAULTS.get(cmd)
    if cmd in MAX_ROWS and len(words) > 1:
        top = MAX_ROWS[cmd]
        try:
            n = int(words[1])
        except ValueError:
            n = 0
        if not 1 <= n <= top:
            return f"Usage: /{cmd} [n], n a whole number from 1 to {top} (default {DEFAULTS[cmd]})."
    if cmd == "version":
        return version_text(cfg)
    try:
        conn = open_read(cfg)
    except DatabaseUnavailable as exc:
        log.warning("Telegram /%s: %s", cmd, exc)
        return f"⚠️ /{cmd}: {exc}"
    try:
        if cmd == "report":
            return report_reply(conn, cfg, now)
        if cmd == "balance":
            return balance_text(conn, cfg, now)
        if cmd == "limits":
            return limits_text(conn, cfg, now)
        assert n is not None
        fn = {"trades": trades_text, "daily": daily_text, "weekly": weekly_text, "halts": halts_text}[cmd]
        return fn(conn, cfg, now, n)
    except sqlite3.OperationalError as exc:
        low = str(exc).lower()
        if "locked" in low or "busy" in low:
            log.warning("Telegram /%s: database busy (%s)", cmd, exc)
            return f"⚠️ /{cmd}: {busy_sentence()}"
        log.warning("Telegram /%s failed: %s", cmd, exc)
        return f"⚠️ /{cmd} could not read the database ({exc}); try again or run python health_check.py."
    except sqlite3.Error as exc:
        log.warning("Telegram /%s failed: %s", cmd, exc)
        return f"⚠️ /{cmd} could not read the database ({exc}); try again or run python health_check.py."
    finally:
        conn.close()


# ----------------------------------------------------------------------------- helpers
def _pct(part: int, whole: int) -> str:
    return f"{part / whole * 100:+.1f}%" if whole > 0 else "n/a"


def _share(used: int, limit: int) -> str:
    return f"{max(used, 0) / limit * 100:.0f}%" if limit > 0 else "n/a"


def _name(question: str | None, outcome: str | None, token_id: str) -> str:
    name = (question or token_id[:16] + "…")[:60]
    return f"{name} — {outcome}" if outcome else name


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # Telegram counts UTF-16 code units


def _fit(cmd: str, head: list[str], rows: list[str], tail: list[str]) -> str:
    """``head`` + as many ``rows`` as fit in :data:`MESSAGE_BUDGET` + ``tail``, one message; the rows
    left off are counted in a line of their own (totals in ``tail`` still cover them)."""
    fixed = _units("\n".join(head + tail)) + 80  # room for the "left off" line
    kept: list[str] = []
    used = fixed
    for row in rows:
        used += _units(row) + 1
        if used > MESSAGE_BUDGET:
            break
        kept.append(row)
    if len(kept) < len(rows):
        kept.append(
            f"… {len(rows) - len(kept)} more not shown (too long for one message; ask /{cmd} {len(kept)})"
        )
    return "\n".join(head + kept + tail)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ----------------------------------------------------------------------------- /trades
def trades_text(conn: sqlite3.Connection, cfg: Config, now: int, n: int) -> str:
    mode = mode_of(conn, cfg)
    rows = lq.latest_trades(conn, mode, n)
    if not rows:
        return f"🧾 No trades recorded yet ({mode.upper()})."
    head = [f"🧾 Latest {_plural(len(rows), 'trade')} ({mode.upper()}), newest first"]
    lines: list[str] = []
    for i, t in enumerate(rows, 1):
        what = {"settlement": "SETTLED", "reversal": f"REVERSAL {t.side}"}.get(t.kind, t.side)
        line = (
            f"{i}. {utc_minute(t.timestamp)} {what} {t.size_micro / MICRO:,.2f} sh @ "
            f"{t.price_micro / MICRO:.3f} = {fmt_usd(t.notional_micro)}"
        )
        if t.fee_micro:
            line += f", fee {fmt_usd(t.fee_micro)}"
        if t.realized_pnl_micro is not None:
            line += f", P&L {fmt_usd(t.realized_pnl_micro, signed=True)}"
        if t.trade_status == "FAILED":
            line += " (FAILED at the exchange: reversed)"
        elif t.trade_status != "CONFIRMED" and t.kind == "fill":
            line += f" ({t.trade_status})"
        lines.append(line + f"\n   {_name(t.question, t.outcome, t.token_id)}")
    return _fit("trades", head, lines, [])


# ----------------------------------------------------------------------------- /daily /weekly
def _base(conn: sqlite3.Connection, mode: str, start: int, capital: int) -> int:
    """Equity at the start of a period: the last row before it, else the configured capital."""
    e = lq.equity_at(conn, mode, start, strictly_before=True)
    return e if e is not None else capital


def _period_table(
    conn: sqlite3.Connection,
    cfg: Config,
    mode: str,
    starts: list[int],
    length: Callable[[int], int],
    label: Callable[[int], str],
    title: str,
    cmd: str,
) -> str:
    capital = to_micro(cfg.capital)
    by_day = lq.totals_by_day(conn, mode, since=starts[-1])
    lines: list[str] = []
    total = trades = closing = 0
    for start in starts:
        end = start + length(start)
        days = [d for d in by_day.values() if start <= d.day < end]
        pnl = sum(d.realized_micro for d in days)
        n, c = sum(d.trades for d in days), sum(d.closing for d in days)
        total, trades, closing = total + pnl, trades + n, closing + c
        lines.append(
            f"{label(start)}  {fmt_usd(pnl, signed=True)}  ({_pct(pnl, _base(conn, mode, start, capital))})  "
            f"{_plural(n, 'trade')}, {c} closing"
        )
    tail = [
        f"Total: {fmt_usd(total, signed=True)}, {_plural(trades, 'trade')}, {closing} closing",
        "Realised P&L of closed trades, net of fees; % of the equity at the start of the period.",
    ]
    return _fit(cmd, [title], lines, tail)


def daily_text(conn: sqlite3.Connection, cfg: Config, now: int, n: int) -> str:
    mode = mode_of(conn, cfg)
    today = lq.day_start(now)
    starts = [today - i * lq.DAY for i in range(n)]
    return _period_table(
        conn,
        cfg,
        mode,
        starts,
        lambda s: lq.DAY,
        utc_day,
        f"📅 Daily P&L ({mode.upper()}), last {_plural(n, 'day')} (UTC)",
        "daily",
    )


def weekly_text(conn: sqlite3.Connection, cfg: Config, now: int, n: int) -> str:
    mode = mode_of(conn, cfg)
    this_week = lq.week_start(now)
    starts = [this_week - i * 7 * lq.DAY for i in range(n)]
    return _period_table(
        conn,
        cfg,
        mode,
        starts,
        lambda s: 7 * lq.DAY,
        lambda s: f"{iso_week(s)} (from {utc_day(s)[5:]})",
        f"📆 Weekly P&L ({mode.upper()}), last {_plural(n, 'week')} (ISO weeks from Monday 00:00 UTC)",
        "weekly",
    )


# ----------------------------------------------------------------------------- /balance
def _marks(conn: sqlite3.Connection, mode: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for p in lq.open_positions(conn, mode):
        mark = lq.latest_mark(conn, p.token_id, "mid")
        out[p.token_id] = mark.price_micro if mark else None
    return out


def read_exchange_balance(cfg: Config, timeout: float = EXCHANGE_SECONDS) -> int:
    """The live exchange's USDC balance (µUSD), read now in a helper thread; raises
    ``TimeoutError`` after ``timeout`` s, or what the exchange client raises."""
    box: dict = {}

    def target() -> None:
        try:
            from ..exchange.live import LiveExchange

            ex = LiveExchange.from_config(cfg)
            try:
                box["balance"] = ex.balance_micro()
            finally:
                ex.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    t = threading.Thread(target=target, name="telegram-balance", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return int(box["balance"])


def balance_text(
    conn: sqlite3.Connection,
    cfg: Config,
    now: int,
    *,
    exchange_balance: Callable[[], int] | None = None,
) -> str:
    from ..logs import redact

    mode = mode_of(conn, cfg)
    perf = lq.latest_performance(conn, mode)
    capital = to_micro(cfg.capital)
    lines = [f"💵 Balance ({mode.upper()}), from the ledger"]
    if mode == "paper":
        cash = lq.paper_cash_micro(conn, mode, capital)
        cash_note = "capital + trade cash flows"
    elif perf is not None:
        cash = int(perf["cash_micro"])
        cash_note = f"the bot's last reading, {utc_minute(perf['timestamp'])}"
    else:
        cash = capital
        cash_note = "configured capital: the bot has recorded no balance yet"
    pf = lq.portfolio(conn, mode, cash, _marks(conn, mode))
    lines.append(f"Cash: {fmt_usd(pf.cash_micro)} ({cash_note})")
    lines.append(
        f"Exposure: {fmt_usd(pf.exposure_micro)} (cost of {_plural(len(pf.holdings), 'open position')})"
    )
    unmarked = sum(1 for h in pf.holdings if h.mark_micro is None)
    value_note = f"; {unmarked} without a price, at cost" if unmarked else ""
    lines.append(
        f"Value at the latest mid: {fmt_usd(pf.market_value_micro)} "
        f"({fmt_usd(pf.unrealized_micro, signed=True)} unrealised{value_note})"
    )
    lines.append(
        f"Equity: {fmt_usd(pf.equity_micro)} ({_pct(pf.equity_micro - capital, capital)} on capital {fmt_usd(capital)})"
    )
    if perf is not None:
        lines.append(
            f"Bot's last record ({utc_minute(perf['timestamp'])}): equity {fmt_usd(perf['equity_micro'])}, "
            f"cash {fmt_usd(perf['cash_micro'])}"
        )
    if mode == "live":
        reader = exchange_balance or (lambda: read_exchange_balance(cfg))
        try:
            lines.append(f"Exchange balance (read now): {fmt_usd(reader())} USDC")
        except Exception as exc:  # noqa: BLE001 - one sentence, never a traceback
            why = str(exc).strip() or type(exc).__name__
            lines.append(f"Exchange balance unavailable: {redact(why)}")
    lines.append(f"🕒 {utc_text(now)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- /limits
def limits_text(conn: sqlite3.Connection, cfg: Config, now: int) -> str:
    from ..db import get_state
    from ..risk import RiskManager

    mode = mode_of(conn, cfg)
    lim = cfg.risk_limits
    capital = to_micro(cfg.capital)
    first_live = get_state(conn, "first_live_day") if mode == "live" else None
    rm = RiskManager(lim, capital, first_live_day=int(first_live) if first_live else None)
    positions = lq.open_positions_named(conn, mode)
    lines = [f"🛡 Risk limits ({mode.upper()}), used now — capital {fmt_usd(capital)}"]

    if positions:
        big = max(positions, key=lambda p: p.position.cost_micro)
        lines.append(
            f"Position size: largest {fmt_usd(big.position.cost_micro)} of {fmt_usd(rm.max_position_micro)} "
            f"({_share(big.position.cost_micro, rm.max_position_micro)}) — "
            f"{_name(big.question, big.outcome, big.position.token_id)}"
        )
    else:
        lines.append(f"Position size: no open position (limit {fmt_usd(rm.max_position_micro)} each)")
    exposure = sum(p.position.cost_micro for p in positions)
    lines.append(
        f"Total exposure: {fmt_usd(exposure)} of {fmt_usd(rm.max_exposure_micro)} "
        f"({_share(exposure, rm.max_exposure_micro)}; limit {lim.max_portfolio_exposure:.0%} of capital)"
    )

    perf = lq.latest_performance(conn, mode)
    if perf is None:
        lines.append(f"Daily loss: no equity recorded yet (limit {fmt_usd(rm.daily_loss_micro)})")
    else:
        eq = int(perf["equity_micro"])
        pnl = lq.daily_pnl_micro(conn, mode, eq, now, capital_micro=capital, paper=mode == "paper")
        worst = pnl
        base = lq.daily_baseline_micro(conn, mode, now, capital_micro=capital, paper=mode == "paper")
        low = lq.day_low_equity_micro(conn, mode, now)
        if base is not None and low is not None:
            worst = min(pnl, low - base)
        used = max(0, -worst)
        low_txt = f", lowest today {fmt_usd(worst, signed=True)}" if worst < pnl else ""
        lines.append(
            f"Daily loss: today {fmt_usd(pnl, signed=True)}{low_txt}; {fmt_usd(used)} of "
            f"{fmt_usd(rm.daily_loss_micro)} used ({_share(used, rm.daily_loss_micro)})"
        )

    cap, rule = rm.max_positions_at(now)
    why = f" (ramp-up plan; max_positions {lim.max_positions})" if rule == "ramp_up" else ""
    lines.append(f"Open positions: {len(positions)} of {cap}{why}")

    groups: dict[str, int] = {}
    for p in positions:
        for g in (p.position.group_key or "").split("|"):
            if g:
                groups[g] = groups.get(g, 0) + p.position.cost_micro
    head = (
        f"Per-group exposure (limit {fmt_usd(rm.max_group_micro)} each, "
        f"{lim.max_event_exposure:.0%} of capital)"
    )
    if groups:
        lines.append(head + ":")
        for g, cost in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
            lines.append(f"  {g}: {fmt_usd(cost)} ({_share(cost, rm.max_group_micro)})")
        if len(groups) > 10:
            lines.append(f"  … and {len(groups) - 10} more groups")
    else:
        lines.append(head + ": no group held")
    lines.append(
        f"Stop loss: {lim.stop_loss_percent:.0%} below cost; no re-entry for "
        f"{lim.stop_loss_cooldown_hours:g} h after a stop"
    )
    lines.append(
        f"Leverage: max {lim.max_leverage:g}× cash; entry cost at most "
        f"{lim.max_entry_cost_share_of_stop:.0%} of the stop"
    )
    lines.append(f"🕒 {utc_text(now)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- /halts
def halts_text(conn: sqlite3.Connection, cfg: Config, now: int, n: int) -> str:
    mode = mode_of(conn, cfg)
    rows = conn.execute(
        "SELECT timestamp, breaker, reason, cleared_at, cleared_by FROM halts WHERE mode = ? "
        "ORDER BY timestamp DESC, id DESC LIMIT ?",
        (mode, n),
    ).fetchall()
    total = int(conn.execute("SELECT COUNT(*) FROM halts WHERE mode = ?", (mode,)).fetchone()[0])
    if not rows:
        return f"✅ No halts recorded ({mode.upper()})."
    head = [f"🛑 Halts ({mode.upper()}): latest {len(rows)} of {total}, newest first"]
    lines: list[str] = []
    for i, (ts, breaker, reason, cleared_at, cleared_by) in enumerate(rows, 1):
        state = (
            f"cleared {utc_minute(cleared_at)}" + (f" by {cleared_by}" if cleared_by else "")
            if cleared_at is not None
            else "NOT cleared"
        )
        lines.append(f"{i}. {utc_minute(ts)} {breaker}: {str(reason)[:200]}\n   {state}")
    return _fit("halts", head, lines, [])


# ----------------------------------------------------------------------------- /version
def git_commit(root: Path | None = None) -> str | None:
    """The short commit of the checkout polybot runs from (None: not a git checkout or no git).
    git finds the repository from the package's own folder."""
    root = root or Path(__file__).resolve().parent
    commit = _git(root, "rev-parse", "--short", "HEAD")
    if not commit:
        return None
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return commit + (" (with local changes)" if dirty else "")


def _git(root: Path, *args: str) -> str | None:
    """git's stripped output in ``root`` (None when git is missing, fails or times out)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=3, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def version_text(cfg: Config) -> str:
    import sys

    import telegram

    from ..db import schema_version
    from ..schema import LATEST_VERSION

    lines = [f"🏷 polybot {__version__}"]
    try:
        conn = open_read(cfg)
        try:
            v = schema_version(conn)
        finally:
            conn.close()
        note = (
            ""
            if v == LATEST_VERSION
            else f" (this code expects {LATEST_VERSION}: run python initialize_db.py)"
        )
        lines.append(f"Database schema: version {v}{note}")
    except (DatabaseUnavailable, sqlite3.Error) as exc:
        lines.append(f"Database schema: unknown — {exc}")
    commit = git_commit()
    lines.append(f"Git commit: {commit or 'unknown (not a git checkout)'}")
    lines.append(
        f"Python {sys.version.split()[0]}, python-telegram-bot {telegram.__version__}, mode {cfg.mode}"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- /report
def report_reply(conn: sqlite3.Connection, cfg: Config, now: int) -> PhotoReply:
    """The daily report (as ``daily_report.py`` prints it) with the equity and drawdown chart."""
    from ..ops.charts import CHART_DAYS, ledger_chart_png
    from ..ops.reports import build_daily, render_daily

    text = render_daily(build_daily(cfg, conn, now=now), cfg)
    try:
        png = ledger_chart_png(conn, cfg.mode, to_micro(cfg.capital), now)
    except sqlite3.Error:
        raise
    except Exception:  # noqa: BLE001 - the text still goes out
        log.exception("Could not draw the equity chart for /report")
        png = None
        text += "\n(The equity chart could not be drawn; see the log.)"
    else:
        if png is None:
            text += f"\n(No chart yet: fewer than two equity records in the last {CHART_DAYS} days.)"
    return PhotoReply(text, png, name=f"equity_{utc_day(now)}.png")
