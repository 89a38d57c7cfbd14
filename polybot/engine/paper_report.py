"""``paper_trading_report.py``: what paper trading did over the last N days, and how it
compares with a backtest of the same strategy over the same window.

- days running (first to last loop recorded in ``performance``);
- simulated trades (fills, settlements) and round trips (a position opened and closed
  again; its P&L is the sum of the realised P&L of its closing trades — the backtest's
  definition);
- simulated P&L: equity change over the window (realised + unrealised), from the
  ``performance`` rows, which value positions at the best bid;
- win rate over the closed round trips;
- errors and alerts in the period: ERROR/CRITICAL lines of the dated logs, alerts by
  level, circuit-breaker halts, rejected orders;
- the backtester (:class:`polybot.backtest.engine.Backtester`) replayed on the snapshots
  of the same window with the configured strategy, side by side.

Trading times are the exchange clock (like every record of the bot); alerts, halts and
log files are local time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from polybot import db
from polybot import ledger_queries as lq
from polybot.config import Config, load_config
from polybot.domain import BUY, SELL
from polybot.errors import DataError, PolybotError
from polybot.logs import LOG_PREFIX, configure_from
from polybot.money import MICRO, fmt_usd
from polybot.timefmt import file_day, utc_minute

log = logging.getLogger("polybot.engine")
DAY = 86_400


def round_trips(conn, mode: str, start: int, end: int) -> list[dict]:
    """Closed round trips whose last trade falls in [start, end]."""
    open_: dict[str, dict] = {}
    out = []
    for t in conn.execute("SELECT * FROM trades WHERE mode=? AND timestamp <= ? ORDER BY id", (mode, end)):
        p = open_.setdefault(
            t["token_id"], {"size": 0, "pnl": 0, "opened": t["timestamp"], "market_id": t["market_id"]}
        )
        if t["side"] == BUY:
            if p["size"] <= 0:
                p.update(size=0, pnl=0, opened=t["timestamp"])
            p["size"] += t["size_micro"]
        else:
            p["size"] -= t["size_micro"]
            p["pnl"] += t["realized_pnl_micro"] or 0
            if p["size"] <= 0:
                if t["timestamp"] >= start:
                    out.append(
                        {
                            "token_id": t["token_id"],
                            "market_id": p["market_id"],
                            "pnl_micro": p["pnl"],
                            "opened": p["opened"],
                            "closed": t["timestamp"],
                        }
                    )
                del open_[t["token_id"]]
    return out


def log_errors(log_dir: Path, start_wall: float, end_wall: float) -> tuple[int, int]:
    """(ERROR lines, CRITICAL lines) in the dated log files of the period."""
    errors = critical = 0
    day = int(start_wall) // DAY * DAY
    while day <= end_wall:
        path = Path(log_dir) / f"{LOG_PREFIX}{file_day(day)}.log"
        if path.exists():
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if " [ERROR] " in line:
                        errors += 1
                    elif " [CRITICAL] " in line:
                        critical += 1
        day += DAY
    return errors, critical


def backtest_same_window(cfg: Config, conn, start: int, end: int) -> tuple[dict | None, str]:
    try:
        from polybot.backtest.engine import Backtester
        from polybot.backtest.metrics import compute_metrics
        from polybot.engine.drill import register_drill
        from polybot.strategy.registry import from_config

        register_drill()
        strategy = from_config(cfg)
        from polybot.backtest.coverage import data_coverage

        bt = Backtester(
            conn, cfg, strategy, start_ts=start, end_ts=end, capital_micro=int(round(cfg.capital * MICRO))
        )
        res = bt.run()
        # measured, so the verdict is the backtest's own and not "coverage not measured"
        coverage = data_coverage(conn, bt.feed.tokens, start, end, grid_seconds=bt.interval)
        return compute_metrics(res, cfg.backtest, coverage=coverage), strategy.name
    except PolybotError as exc:
        return None, str(exc)


def main(args) -> int:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg)
    days = float(args.days)
    conn = db.open_database(cfg, readonly=True)
    try:
        return report(cfg, conn, days, backtest=not getattr(args, "no_backtest", False))
    finally:
        conn.close()


def report(cfg: Config, conn, days: float, *, backtest: bool = True) -> int:
    mode = "paper"
    latest = lq.latest_performance(conn, mode)
    if latest is None:
        raise DataError(
            "No paper trading is recorded in the database; start it with "
            "python trading_bot.py --paper-trading and run this report after a few days."
        )
    end = int(latest["timestamp"])
    start = end - int(days * DAY)
    first_ts = lq.first_performance_ts(conn, mode)
    first = end if first_ts is None else first_ts
    end_wall = time.time()
    start_wall = end_wall - days * DAY
    print(f"Paper trading report: {utc_minute(max(start, first))} → {utc_minute(end)} (last {days:g} days)")
    print(
        f"Days running: {(end - first) / DAY:.1f} (first loop {utc_minute(first)}, last loop {utc_minute(end)})"
    )

    fills = conn.execute(
        "SELECT side, COUNT(*) FROM trades WHERE mode=? AND kind='fill' AND timestamp BETWEEN ? AND ? "
        "GROUP BY side",
        (mode, start, end),
    ).fetchall()
    fills = dict(fills)
    settlements = conn.execute(
        "SELECT COUNT(*) FROM trades WHERE mode=? AND kind='settlement' AND timestamp BETWEEN ? AND ?",
        (mode, start, end),
    ).fetchone()[0]
    trips = round_trips(conn, mode, start, end)
    n_fills = fills.get(BUY, 0) + fills.get(SELL, 0)
    print(
        f"Simulated trades executed: {n_fills} ({fills.get(BUY, 0)} buys, {fills.get(SELL, 0)} sells) "
        f"+ {settlements} settlement(s); {len(trips)} round trip(s) closed"
    )

    base = lq.equity_at(conn, mode, start, strictly_before=True)
    base_equity = base if base is not None else int(round(cfg.capital * MICRO))
    pnl = latest["equity_micro"] - base_equity
    realised = lq.realized_pnl_micro(conn, mode, since=start, until=end + 1)  # [start, end]
    ret = pnl / base_equity if base_equity else 0.0
    print(
        f"Simulated P&L: {fmt_usd(pnl, signed=True)} ({ret:+.2%}); realised {fmt_usd(realised, signed=True)}, "
        f"unrealised now {fmt_usd(latest['unrealized_pnl_micro'], signed=True)}; equity {fmt_usd(latest['equity_micro'])}, "
        f"cash {fmt_usd(latest['cash_micro'])}, {latest['open_positions']} open position(s)"
    )
    wins = sum(1 for t in trips if t["pnl_micro"] > 0)
    win_rate = wins / len(trips) if trips else 0.0
    print(
        f"Win rate: {win_rate:.1%} ({wins} of {len(trips)} round trips)"
        if trips
        else "Win rate: - (no round trip closed yet)"
    )

    err, crit = log_errors(cfg.log_dir, start_wall, end_wall)
    alerts = dict(
        conn.execute(
            "SELECT level, COUNT(*) FROM alerts WHERE timestamp >= ? GROUP BY level", (int(start_wall),)
        ).fetchall()
    )
    halts = conn.execute(
        "SELECT breaker, reason FROM halts WHERE mode=? AND timestamp >= ? ORDER BY id",
        (mode, int(start_wall)),
    ).fetchall()
    rejected = conn.execute(
        "SELECT COUNT(*) FROM orders WHERE mode=? AND status='REJECTED' AND created_at BETWEEN ? AND ?",
        (mode, start, end),
    ).fetchone()[0]
    print(
        f"Errors: {err} ERROR and {crit} CRITICAL log line(s); {len(halts)} circuit-breaker halt(s); "
        f"{rejected} rejected order(s)"
    )
    for breaker, reason in halts[-3:]:
        print(f"    halt {breaker}: {reason[:120]}")
    print(
        f"Alerts: {alerts.get('critical', 0)} critical, {alerts.get('warning', 0)} warning, "
        f"{alerts.get('info', 0)} info"
    )

    if backtest:
        m, name = backtest_same_window(cfg, conn, max(start, first), end)
        if m is None:
            print(f"Backtest over the same window: not available ({name})")
        else:
            print(
                f"Backtest over the same window ({name}): {m['total_trades']} round trips, win rate "
                f"{m['win_rate']:.1%}, return {m['total_return']:+.2%}, max drawdown {m['max_drawdown']:.1%}"
            )
            diff = ret - m["total_return"]
            close = abs(diff) <= 0.05 and (
                not trips or not m["total_trades"] or abs(win_rate - m["win_rate"]) <= 0.15
            )
            print(
                f"Paper vs backtest: return {ret:+.2%} vs {m['total_return']:+.2%} ({diff * 100:+.2f} points), "
                f"win rate {win_rate:.1%} vs {m['win_rate']:.1%} → "
                + (
                    "roughly consistent"
                    if close
                    else "DIFFERENT: review fills, slippage and data before going live"
                )
            )
    critical = alerts.get("critical", 0) + crit + len(halts)
    mark = "✓" if critical == 0 else "✗"
    print(
        f"{mark} {'No critical errors' if critical == 0 else f'{critical} critical error(s)/halt(s) in the period'}"
    )
    return 0
