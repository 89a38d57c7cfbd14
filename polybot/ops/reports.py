"""``daily_report.py``: the daily review (and ``--weekly`` P&L report).

Reads the database read-only for the configured mode (paper or live), through
:mod:`polybot.ledger_queries` (the definitions every screen shares):

- P&L: today's (the engine's daily P&L: equity − equity at 00:00 UTC, a capital change since
  not counted), over the last 24 h (the review log's "P&L" line: consecutive daily reports
  cover every hour once), 7 days and since start (from the ``performance`` rows the bot
  writes; realised-only when there are none yet), realised P&L (sum of
  ``trades.realized_pnl_micro``, which the engine records net of fees) and unrealised P&L of
  the open positions marked at their latest snapshot mid;
- open positions, trades of the last 24 h, win rate (closing trades with realised P&L > 0),
  unusual trades (a closing trade that lost more than 10% of its cost basis, where
  basis = notional − fee − realised), alerts and ERROR log lines of the day, halts, the last
  backup, market-data freshness.

The report is printed, appended to ``reports/daily_review_log.md`` in the checklist's format
(re-running on the same UTC day replaces that day's section) and sent as the info alert
``daily_summary``. ``--weekly`` prints the 7-day P&L, writes ``reports/weekly_pnl_YYYYMMDD.txt``
and sends the info alert ``weekly_pnl``; its seven rows are the 24-hour windows ending now, each
labelled with the UTC date it ends on. Other days are UTC days.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import checks, db
from .. import ledger_queries as lq
from ..config import Config
from ..money import MICRO, fmt_usd, to_micro
from ..timefmt import file_day, utc_day, utc_text
from .backup import list_backups, read_checksum
from .common import fmt_ago, send_alert
from .health import log_errors_since

log = logging.getLogger("polybot.reports")
DAY = 86400
UNUSUAL_LOSS = 0.10
BACKUP_MAX_AGE_H = 26
LOG_NAME = "daily_review_log.md"


@dataclass
class Position:
    token_id: str
    label: str
    size_micro: int
    cost_micro: int
    mark_micro: int | None  # latest mid (micro-USDC per share), None if no snapshot

    @property
    def unrealized_micro(self) -> int | None:
        if self.mark_micro is None:
            return None
        return lq.unrealized_micro(self.size_micro, self.cost_micro, self.mark_micro)


@dataclass
class DailyReport:
    now: float
    mode: str
    empty: bool = True
    pnl_today: int = 0
    pnl_24h: int = 0
    pnl_7d: int = 0
    pnl_total: int = 0
    pnl_source: str = "performance"
    realized_24h: int = 0
    realized_7d: int = 0
    realized_total: int = 0
    unrealized: int = 0
    equity: int | None = None
    positions: list[Position] = field(default_factory=list)
    external: list[tuple[str, int]] = field(default_factory=list)  # (label, shares micro): not the bot's
    trades_24h: int = 0
    fees_24h: int = 0
    notional_24h: int = 0
    closed_total: int = 0
    wins_total: int = 0
    unusual: list[str] = field(default_factory=list)
    alert_counts: dict = field(default_factory=dict)
    alert_lines: list[str] = field(default_factory=list)
    log_errors: int = 0
    halts: list[str] = field(default_factory=list)
    halted: str | None = None
    last_backup: str | None = None
    backup_age_h: float | None = None
    data_last_ts: int | None = None  # the newest market snapshot (epoch s); None: none yet
    data_detail: str = "no market data yet"
    issues: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def win_rate(self) -> float | None:
        return self.wins_total / self.closed_total if self.closed_total else None

    def win_rate_text(self) -> str:
        r = self.win_rate
        return "n/a" if r is None else f"{r * 100:.0f}%"


def _one(conn: sqlite3.Connection, sql: str, params=()) -> int | None:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _positions(conn: sqlite3.Connection, mode: str) -> list[Position]:
    out = []
    for named in lq.open_positions_named(conn, mode):
        p, question, outcome = named.position, named.question, named.outcome
        mark = lq.latest_mark(conn, p.token_id, "mid")
        label = f"{question} [{outcome}]" if question and outcome else (question or p.token_id[:16])
        out.append(
            Position(p.token_id, label, p.size_micro, p.cost_micro, mark.price_micro if mark else None)
        )
    return out


def _external(conn: sqlite3.Connection, mode: str) -> list[tuple[str, int]]:
    """Live: holdings of the account that are not the bot's (polybot/engine/external.py)."""
    from polybot.engine.external import for_display

    return [
        (f"{q} [{o}]" if q and o else (q or tok[:16]), size) for tok, size, q, o in for_display(conn, mode)
    ]


def build_daily(cfg: Config, conn: sqlite3.Connection, *, now: float | None = None) -> DailyReport:
    now = time.time() if now is None else now
    mode = cfg.mode
    r = DailyReport(now, mode)
    n_trades = lq.trade_count(conn, mode)
    n_perf = _one(conn, "SELECT COUNT(*) FROM performance WHERE mode = ?", (mode,)) or 0
    r.positions = _positions(conn, mode)
    r.external = _external(conn, mode)
    r.empty = not (n_trades or n_perf or r.positions)

    r.realized_24h = lq.realized_pnl_micro(conn, mode, since=now - DAY)
    r.realized_7d = lq.realized_pnl_micro(conn, mode, since=now - 7 * DAY)
    r.realized_total = lq.realized_pnl_micro(conn, mode)
    r.unrealized = sum(p.unrealized_micro or 0 for p in r.positions)
    if n_perf:
        capital = to_micro(cfg.capital)
        r.equity = lq.equity_at(conn, mode, now)

        def base(ts: float) -> int:  # equity then; the starting capital if the bot started later
            e = lq.equity_at(conn, mode, ts)
            return e if e is not None else capital

        eq = r.equity if r.equity is not None else capital
        r.pnl_today = lq.daily_pnl_micro(
            conn, mode, eq, int(now), capital_micro=capital, paper=mode == "paper"
        )
        r.pnl_24h = eq - base(now - DAY)
        r.pnl_7d, r.pnl_total = eq - base(now - 7 * DAY), eq - capital
    else:
        r.pnl_source = "realised"
        r.pnl_today = lq.realized_pnl_micro(conn, mode, since=lq.day_start(now))
        r.pnl_24h, r.pnl_7d, r.pnl_total = r.realized_24h, r.realized_7d, r.realized_total + r.unrealized

    activity = lq.trade_activity(conn, mode, since=now - DAY)
    r.trades_24h, r.fees_24h, r.notional_24h = activity.count, activity.fees_micro, activity.notional_micro
    closing = lq.closing_trades(conn, mode)
    r.closed_total, r.wins_total = closing.count, closing.wins
    for tid, ts, side, notional, fee, pnl, token in lq.losing_trades(conn, mode, since=now - DAY):
        basis = notional - fee - pnl
        if basis > 0 and -pnl / basis > UNUSUAL_LOSS:
            r.unusual.append(
                f"{utc_text(ts)} {side} {token[:16]}: {fmt_usd(pnl, signed=True)} "
                f"({-pnl / basis * 100:.0f}% of {fmt_usd(basis)}) [{tid}]"
            )

    start = lq.day_start(now)
    r.alert_counts = dict(
        conn.execute(
            "SELECT level, COUNT(*) FROM alerts WHERE timestamp >= ? GROUP BY level", (start,)
        ).fetchall()
    )
    for ts, level, key, msg in conn.execute(
        "SELECT timestamp, level, key, message FROM alerts WHERE timestamp >= ? AND level IN "
        "('critical','warning') ORDER BY timestamp DESC LIMIT 10",
        (start,),
    ):
        r.alert_lines.append(f"{utc_text(ts)} {level.upper()} {key}: {str(msg)[:140]}")
    r.log_errors = len(log_errors_since(cfg.log_dir, start))
    for ts, breaker, reason in conn.execute(
        "SELECT timestamp, breaker, reason FROM halts WHERE mode = ? AND timestamp >= ? ORDER BY timestamp",
        (mode, start),
    ):
        r.halts.append(f"{utc_text(ts)} {breaker}: {reason}")
    if db.get_state(conn, "halted") == "1":
        r.halted = db.get_state(conn, "halt_reason") or "no reason recorded"

    backups = list_backups(cfg.backup_dir)
    if backups:
        b = backups[-1]
        r.backup_age_h = (now - b.timestamp) / 3600
        r.last_backup = (
            f"{b.name} ({fmt_ago(now - b.timestamp)}{', sha256 recorded' if read_checksum(b.path) else ''})"
        )
    last_snap = _one(conn, "SELECT MAX(timestamp) FROM snapshot_values")
    if last_snap is not None:
        r.data_last_ts = last_snap
        cyc = conn.execute(
            "SELECT status, markets, snapshots FROM collection_cycles ORDER BY cycle_ts DESC LIMIT 1"
        ).fetchone()
        r.data_detail = f"last snapshot {fmt_ago(now - last_snap)}" + (
            f"; last cycle {cyc[0]} ({cyc[1]} markets, {cyc[2]} snapshots)" if cyc else ""
        )
    _issues(cfg, r)
    return r


def _issues(cfg: Config, r: DailyReport) -> None:
    crit = r.alert_counts.get("critical", 0)
    if r.halted:
        r.issues.append(f"trading halted ({r.halted})")
        r.actions.append(
            "investigate the halt (RUNBOOK.md), then rm EMERGENCY_STOP and python trading_bot.py --restart"
        )
    if crit:
        r.issues.append(f"{crit} critical alert(s) today")
        r.actions.append("review today's critical alerts (listed in the report) with RUNBOOK.md")
    if r.unusual:
        r.issues.append(f"{len(r.unusual)} trade(s) lost more than {UNUSUAL_LOSS:.0%}")
        r.actions.append("review the unusual trades listed in the report")
    if r.backup_age_h is None or r.backup_age_h > BACKUP_MAX_AGE_H:
        r.issues.append("no backup in the last 26 hours")
        r.actions.append("run python backup_database.py and check its schedule (crontab -l | grep backup)")
    data = checks.freshness("market data", r.data_last_ts, r.now, cfg.collection.freshness_minutes * 60)
    if not data.ok:
        r.issues.append("no market data collected" if data.code == "missing" else "market data is stale")
        r.actions.append("check the collector: tail logs/cron.log and python data_quality_check.py")
    if r.log_errors:
        r.issues.append(f"{r.log_errors} ERROR line(s) in today's log")
        r.actions.append("grep ERROR logs/trading_system_$(date -u +%Y%m%d).log")


def render_daily(r: DailyReport, cfg: Config) -> str:
    L = [f"Daily report — {utc_text(r.now)} — {r.mode.upper()} mode"]
    if r.empty:
        L.append(
            f"No trading activity recorded yet ({r.mode} mode): no trades, positions or performance rows."
        )
    src = "" if r.pnl_source == "performance" else " (realised only: no performance rows yet)"
    L.append(
        f"P&L{src}: today (UTC) {fmt_usd(r.pnl_today, signed=True)}, last 24 h {fmt_usd(r.pnl_24h, signed=True)}, "
        f"7 days {fmt_usd(r.pnl_7d, signed=True)}, "
        f"total {fmt_usd(r.pnl_total, signed=True)}" + (f"; equity {fmt_usd(r.equity)}" if r.equity else "")
    )
    L.append(
        f"Realised: last 24 h {fmt_usd(r.realized_24h, signed=True)}, 7 days "
        f"{fmt_usd(r.realized_7d, signed=True)}, total {fmt_usd(r.realized_total, signed=True)}; "
        f"unrealised {fmt_usd(r.unrealized, signed=True)}"
    )
    L.append(f"Open positions: {len(r.positions)}")
    for p in r.positions:
        u = p.unrealized_micro
        mark = (
            f"mark {p.mark_micro / MICRO:.3f}, unrealised {fmt_usd(u, signed=True)}"
            if p.mark_micro is not None and u is not None
            else "no mark yet"
        )
        L.append(f"  - {p.label}: {p.size_micro / 1e6:g} shares, cost {fmt_usd(p.cost_micro)}, {mark}")
    if r.external:
        L.append(
            f"External holdings (not the bot's, not in its P&L; sold only with --close-external): "
            f"{len(r.external)}"
        )
        L += [f"  - {label}: {size / 1e6:g} shares" for label, size in r.external]
    L.append(
        f"Trades (last 24 h): {r.trades_24h} (notional {fmt_usd(r.notional_24h)}, fees {fmt_usd(r.fees_24h)})"
    )
    L.append(f"Win rate: {r.win_rate_text()} ({r.wins_total} of {r.closed_total} closing trades)")
    L.append(f"Unusual trades (loss > {UNUSUAL_LOSS:.0%}, last 24 h): {len(r.unusual) or 'none'}")
    L += [f"  - {u}" for u in r.unusual]
    counts = ", ".join(f"{r.alert_counts.get(k, 0)} {k}" for k in ("critical", "warning", "info"))
    L.append(f"Alerts today: {counts}; ERROR log lines today: {r.log_errors}")
    L += [f"  - {a}" for a in r.alert_lines]
    if r.halts:
        L.append("Halts today:")
        L += [f"  - {h}" for h in r.halts]
    L.append(f"Last backup: {r.last_backup or 'none — run python backup_database.py'}")
    L.append(f"Data freshness: {r.data_detail}")
    L.append(f"Issues: {'; '.join(r.issues) or 'None'}")
    L.append(f"Action items: {'; '.join(r.actions) or 'None'}")
    return "\n".join(L)


def review_section(r: DailyReport) -> str:
    date = utc_day(r.now)
    return (
        f"## {date}\n- P&L: {fmt_usd(r.pnl_24h, signed=True)}\n- Open positions: {len(r.positions)}\n"
        f"- Win rate: {r.win_rate_text()}\n- Issues: {'; '.join(r.issues) or 'None'}\n"
        f"- Action items: {'; '.join(r.actions) or 'None'}\n"
    )


def append_review_log(path: Path, section: str) -> None:
    """Add the day's section to the review log; a section for the same date is replaced."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Daily Review Log\n\n"
    heading = section.splitlines()[0]
    pattern = re.compile(rf"^{re.escape(heading)}\n(?:(?!## ).*\n?)*", re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    db.ensure_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------- weekly
def build_weekly(cfg: Config, conn: sqlite3.Connection, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    mode = cfg.mode
    L = [f"Weekly P&L report — 7 days to {utc_text(now)} — {mode.upper()} mode"]
    total = 0
    for i in range(7, 0, -1):  # seven 24-hour windows ending now, each shown with the UTC date it ends on
        a, b = now - i * DAY, now - (i - 1) * DAY
        ea, eb = lq.equity_at(conn, mode, a), lq.equity_at(conn, mode, b)
        if eb is not None:
            pnl = eb - (ea if ea is not None else to_micro(cfg.capital))
        else:
            pnl = lq.realized_pnl_micro(conn, mode, since=a, until=b)
        n = lq.trade_activity(conn, mode, since=a, until=b).count
        total += pnl
        L.append(f"  {utc_day(b)}: {fmt_usd(pnl, signed=True):>10}  ({n} trades)")
    week = lq.closing_trades(conn, mode, since=now - 7 * DAY)
    closed = week.count
    L.append(f"Week P&L: {fmt_usd(total, signed=True)}")
    L.append(
        f"Closing trades: {closed}, win rate: {f'{week.wins / closed * 100:.0f}%' if closed else 'n/a'}"
        + (
            f", best {fmt_usd(week.best_micro or 0, signed=True)}, worst {fmt_usd(week.worst_micro or 0, signed=True)}"
            if closed
            else ""
        )
    )
    eq = [e for _, e in lq.equity_series(conn, mode, since=now - 7 * DAY)]
    peak, dd = None, 0.0
    for e in eq:
        peak = e if peak is None or e > peak else peak
        if peak and peak > 0:
            dd = max(dd, (peak - e) / peak)
    L.append(
        f"Max drawdown this week: {dd * 100:.1f}%"
        if eq
        else "Max drawdown this week: n/a (no performance rows)"
    )
    if not closed and not eq:
        L.append(f"No trading activity in the last 7 days ({mode} mode).")
    return "\n".join(L)


def main(args) -> int:
    from ..config import load_config
    from .common import configure_quiet

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)
    now = time.time()
    conn = db.connect(cfg.database_path, readonly=True)
    try:
        if args.weekly:
            text = build_weekly(cfg, conn, now=now)
            rep = None
        else:
            rep = build_daily(cfg, conn, now=now)
            text = render_daily(rep, cfg)
    finally:
        conn.close()
    print(text)
    if args.weekly:
        path = Path(cfg.report_dir) / f"weekly_pnl_{file_day(now)}.txt"
        db.ensure_private_dir(path.parent)
        path.write_text(text + "\n", encoding="utf-8")
        print(f"Report written: {path}")
        send_alert(cfg, "info", "weekly_pnl", text)
        return 0
    assert rep is not None  # the daily branch above built it
    path = Path(cfg.report_dir) / LOG_NAME
    append_review_log(path, review_section(rep))
    print(f"Appended to {path}")
    summary = (
        f"Daily summary ({rep.mode}): P&L 24h {fmt_usd(rep.pnl_24h, signed=True)}, total "
        f"{fmt_usd(rep.pnl_total, signed=True)}; open positions {len(rep.positions)}; trades 24h "
        f"{rep.trades_24h}; win rate {rep.win_rate_text()}; issues: {'; '.join(rep.issues) or 'none'}"
    )
    send_alert(cfg, "info", "daily_summary", summary)
    log.info("%s", summary)
    return 0
