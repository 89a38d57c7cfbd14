"""Everything the dashboard shows, read from the bot's database in one read transaction.

:func:`build_state` returns one JSON-ready dict: the page renders it at load and the browser
re-fetches it from ``/api/state`` every ``dashboard.refresh_seconds``. Display strings are
formatted here (money with :func:`polybot.money.fmt_usd`, times with
:func:`polybot.timefmt.utc_text`), so the browser only copies text into the page.

Definitions (the same as ``daily_report.py`` and the backtester, so the numbers agree; the ledger
figures come from :mod:`polybot.ledger_queries`, the one read side of the ledger):

- **P&L** — from the latest ``performance`` row the bot writes every loop: equity (cash +
  positions marked by the bot), total P&L = equity − ``capital``, today's P&L, realised and
  unrealised P&L. Without performance rows: realised P&L from ``trades`` only.
- **Open positions** — entry = cost basis (fees included) ÷ shares; mark = latest best bid in
  ``snapshot_values`` (what selling now would fetch); unrealised = shares × mark − cost;
  stop = entry × (1 − ``risk_limits.stop_loss_percent``), computed like the engine does.
- **Win rate** — closing trades (SELL fills and settlements, the rows with
  ``realized_pnl_micro``) whose realised P&L is > 0, divided by all closing trades.
- **Sharpe ratio** — :func:`polybot.backtest.metrics.sharpe_ratio`: daily equity returns
  (equity at the end of each UTC day from ``performance``, day 0 = ``capital``), mean ÷ stdev
  (ddof 1) × √365; "n/a" before two days of history.
- **Active markets** — the tracked universe (``markets.tracked = 1``) with each outcome's
  latest snapshot (found through the ``(token_id, timestamp)`` index) and its age.

Every query uses an index, so the page stays fast with millions of snapshots
(``benchmarks/bench_dashboard.py``).
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

from .. import ledger_queries as lq
from ..config import Config
from ..ledger_queries import latest_performance
from ..money import MICRO, fmt_usd, to_micro
from ..timefmt import utc_text_or_none

DAY = 86_400
EMPTY_MESSAGE = "No data yet — run python collect_market_data.py --initial"
CHART_POINTS = 400
TRADES_LIMIT = 200
MARKETS_LIMIT = 100
ALERTS_LIMIT = 20


# --------------------------------------------------------------------------- formatting
def ago(seconds: float | None) -> str:
    """'12 s ago', '5 min ago', '3.0 h ago', '2.1 d ago' ('in the future' when negative)."""
    if seconds is None:
        return "never"
    if seconds < -5:
        return "in the future (clock skew?)"
    s = max(0.0, float(seconds))
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    if s < 2 * DAY:
        return f"{s / 3600:.1f} h ago"
    return f"{s / DAY:.1f} d ago"


def fmt_price(micro: int | None) -> str:
    return "—" if micro is None else f"{micro / MICRO:.4f}"


def fmt_shares(micro: int) -> str:
    return f"{micro / MICRO:,.2f}"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def money(micro: int | None, *, signed: bool = False) -> dict | None:
    """A money figure for the browser: exact micro-units, dollars, display text, sign."""
    if micro is None:
        return None
    micro = int(micro)
    return {
        "micro": micro,
        "usd": micro / MICRO,
        "text": fmt_usd(micro, signed=signed),
        "sign": (micro > 0) - (micro < 0),
    }


def label(question: str | None, outcome: str | None, fallback: str) -> str:
    if question and outcome:
        return f"{question} [{outcome}]"
    return question or f"token {fallback[:12]}…"


# --------------------------------------------------------------------------- sections
def _one(conn: sqlite3.Connection, sql: str, args=()) -> Any:
    row = conn.execute(sql, args).fetchone()
    return row[0] if row is not None else None


def pnl_section(conn: sqlite3.Connection, cfg: Config, now: float, perf: sqlite3.Row | None) -> dict:
    mode, capital = cfg.mode, to_micro(cfg.capital)
    realized_24h = lq.realized_pnl_micro(conn, mode, since=now - DAY)
    out: dict = {"capital": money(capital), "realized_24h": money(realized_24h, signed=True)}
    if perf is None:
        realized = lq.realized_pnl_micro(conn, mode)
        out.update(
            source="trades",
            as_of=None,
            as_of_ago=None,
            equity=None,
            cash=None,
            exposure=None,
            total=money(realized, signed=True),
            total_pct=fmt_pct(realized / capital),
            daily=None,
            realized=money(realized, signed=True),
            unrealized=None,
            open_positions=None,
        )
        return out
    equity = int(perf["equity_micro"])
    out.update(
        source="performance",
        as_of=utc_text_or_none(perf["timestamp"]),
        as_of_ago=ago(now - perf["timestamp"]),
        equity=money(equity),
        cash=money(perf["cash_micro"]),
        exposure=money(perf["exposure_micro"]),
        total=money(equity - capital, signed=True),
        total_pct=fmt_pct((equity - capital) / capital),
        daily=money(perf["daily_pnl_micro"], signed=True),
        realized=money(perf["realized_pnl_micro"], signed=True),
        unrealized=money(perf["unrealized_pnl_micro"], signed=True),
        open_positions=int(perf["open_positions"]),
    )
    return out


def equity_points(
    conn: sqlite3.Connection, mode: str, first_ts: int, last_ts: int, n: int = CHART_POINTS
) -> list[tuple[int, int]]:
    """At most about ``n`` (timestamp, equity) points: every row when there are few, else the
    last row at or before each of ``n`` evenly spaced times (one index seek each)."""
    few = conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM performance WHERE mode = ? LIMIT ?)", (mode, n + 1)
    ).fetchone()[0]
    if few <= n:
        return lq.equity_series(conn, mode)
    out: list[tuple[int, int]] = []
    span = max(1, last_ts - first_ts)
    seen = set()
    for i in range(n + 1):
        t = first_ts + span * i // n
        row = conn.execute(
            "SELECT id, timestamp, equity_micro FROM performance WHERE mode = ? AND timestamp <= ? "
            "ORDER BY timestamp DESC, id DESC LIMIT 1",
            (mode, t),
        ).fetchone()
        if row is not None and row[0] not in seen:
            seen.add(row[0])
            out.append((int(row[1]), int(row[2])))
    return out


def daily_equity(conn: sqlite3.Connection, mode: str, first_ts: int, last_ts: int) -> list[tuple[int, int]]:
    """(UTC day start, equity at the end of that day) from the first to the last performance day."""
    out = []
    for day in range(first_ts // DAY, last_ts // DAY + 1):
        e = lq.equity_at(conn, mode, (day + 1) * DAY, strictly_before=True)
        if e is not None:  # always: the first day holds the first row
            out.append((day * DAY, e))
    return out


def sharpe_section(daily: list[tuple[int, int]], capital_micro: int) -> dict:
    if len(daily) < 2:
        return {
            "value": None,
            "text": "n/a",
            "days": len(daily),
            "note": "needs at least 2 days of equity history",
        }
    import numpy as np

    from ..backtest.metrics import sharpe_ratio

    value = sharpe_ratio(np.array([e for _, e in daily], dtype=np.int64), capital_micro)
    return {
        "value": value,
        "text": f"{value:.2f}",
        "days": len(daily),
        "note": f"daily equity returns over {len(daily)} UTC days, annualised ×√365",
    }


def chart_section(conn: sqlite3.Connection, cfg: Config, perf: sqlite3.Row | None) -> tuple[dict, list]:
    capital = to_micro(cfg.capital)
    if perf is None:
        return {"points": [], "capital": capital / MICRO}, []
    last = int(perf["timestamp"])
    first_ts = lq.first_performance_ts(conn, cfg.mode)
    first = last if first_ts is None else first_ts
    pts = equity_points(conn, cfg.mode, first, last)
    chart = {
        "points": [[t, e / MICRO] for t, e in pts],
        "capital": capital / MICRO,
        "first": utc_text_or_none(first),
        "last": utc_text_or_none(last),
    }
    return chart, daily_equity(conn, cfg.mode, first, last)


def win_rate_section(conn: sqlite3.Connection, mode: str) -> dict:
    c = lq.closing_trades(conn, mode)
    return {
        "value": c.win_rate,
        "text": fmt_pct(c.win_rate),
        "wins": c.wins,
        "closed": c.count,
        "detail": f"{c.wins} of {c.count} closing trades" if c.count else "no closing trades yet",
        "realized": money(c.realized_micro, signed=True),
    }


def positions_section(conn: sqlite3.Connection, cfg: Config, now: float) -> dict:
    slp = cfg.risk_limits.stop_loss_percent
    items, total_unreal, total_cost = [], 0, 0
    for named in lq.open_positions_named(conn, cfg.mode):
        p = named.position
        size, cost = p.size_micro, p.cost_micro
        entry = p.avg_price_micro
        stop = lq.stop_price_micro(entry, slp)
        snap = lq.latest_mark(conn, p.token_id, "best_bid")  # what selling now would fetch
        mark = snap.price_micro if snap is not None else None
        unreal = lq.unrealized_micro(size, cost, mark) if mark is not None else None
        total_cost += cost
        total_unreal += unreal or 0
        items.append(
            {
                "token_id": p.token_id,
                "market_id": p.market_id,
                "label": label(named.question, named.outcome, p.token_id),
                "shares": fmt_shares(size),
                "size_micro": size,
                "cost": money(cost),
                "entry": fmt_price(entry),
                "entry_micro": entry,
                "mark": fmt_price(mark),
                "mark_micro": mark,
                "mark_age": ago(now - snap.timestamp) if snap is not None else "no snapshot",
                "unrealized": money(unreal, signed=True),
                "unrealized_pct": fmt_pct(unreal / cost) if unreal is not None and cost else "n/a",
                "stop": fmt_price(stop),
                "stop_micro": stop,
                "below_stop": mark is not None and mark <= stop,
                "opened": utc_text_or_none(p.opened_at),
                "opened_ago": ago(now - p.opened_at),
            }
        )
    return {
        "items": items,
        "count": len(items),
        "cost": money(total_cost),
        "unrealized": money(total_unreal, signed=True),
        "stop_loss_percent": fmt_pct(slp),
        "external": external_section(conn, cfg.mode),
    }


def external_section(conn: sqlite3.Connection, mode: str) -> dict:
    """Live: holdings of the account that are not the bot's (the first-live-start baseline and
    trades by hand, polybot/engine/external.py) — shown apart, never in the bot's P&L."""
    from polybot.engine.external import for_display

    items = [
        {"token_id": tok, "label": label(q, o, tok), "shares": fmt_shares(size), "size_micro": size}
        for tok, size, q, o in for_display(conn, mode)
    ]
    note = (
        (
            "External holdings (not the bot's; never sold by it unless trading_bot.py --close-external): "
            + "; ".join(f"{i['label']} {i['shares']} shares" for i in items)
        )
        if items
        else ""
    )
    return {"items": items, "count": len(items), "note": note}


def trades_section(conn: sqlite3.Connection, mode: str, now: float) -> dict:
    since = int(now - DAY)
    activity = lq.trade_activity(conn, mode, since=since)
    rows = conn.execute(
        "SELECT t.*, m.question, mt.outcome FROM trades t LEFT JOIN markets m ON m.id = t.market_id "
        "LEFT JOIN market_tokens mt ON mt.token_id = t.token_id WHERE t.timestamp >= ? AND t.mode = ? "
        "ORDER BY t.timestamp DESC, t.id DESC LIMIT ?",
        (since, mode, TRADES_LIMIT),
    ).fetchall()
    items = [
        {
            "trade_id": r["trade_id"],
            "time": utc_text_or_none(r["timestamp"]),
            "ago": ago(now - r["timestamp"]),
            "label": label(r["question"], r["outcome"], r["token_id"]),
            "token_id": r["token_id"],
            "side": r["side"],
            "kind": r["kind"],
            "price": fmt_price(r["price_micro"]),
            "shares": fmt_shares(r["size_micro"]),
            "notional": money(r["notional_micro"]),
            "fee": money(r["fee_micro"]),
            "realized": money(r["realized_pnl_micro"], signed=True),
            "reason": r["reason"] or "",
        }
        for r in rows
    ]
    return {
        "items": items,
        "count": activity.count,
        "shown": len(items),
        "fees": money(activity.fees_micro),
        "notional": money(activity.notional_micro),
    }


def markets_section(conn: sqlite3.Connection, cfg: Config, now: float) -> dict:
    fresh_s = cfg.collection.freshness_minutes * 60
    total = int(_one(conn, "SELECT COUNT(*) FROM markets WHERE tracked = 1") or 0)
    markets = conn.execute(
        "SELECT id, question, volume_24h, liquidity, end_date, accepting_orders, closed FROM markets "
        "WHERE tracked = 1 ORDER BY COALESCE(liquidity, 0) DESC, id LIMIT ?",
        (MARKETS_LIMIT,),
    ).fetchall()
    by_id: dict[str, dict] = {}
    items = []
    for m in markets:
        d = {
            "market_id": m["id"],
            "question": m["question"],
            "volume_24h": _usd0(m["volume_24h"]),
            "liquidity": _usd0(m["liquidity"]),
            "ends": utc_text_or_none(m["end_date"]),
            "status": "closed"
            if m["closed"]
            else ("open" if m["accepting_orders"] else "not accepting orders"),
            "outcomes": [],
            "last_ts": None,
        }
        by_id[m["id"]] = d
        items.append(d)
    if by_id:
        marks = ",".join("?" * len(by_id))
        rows = conn.execute(
            "SELECT mt.market_id, mt.token_id, mt.outcome, s.timestamp, s.best_bid, s.best_ask, s.mid "
            "FROM market_tokens mt LEFT JOIN snapshot_values s ON s.token_id = mt.token_id AND s.timestamp = "
            "(SELECT MAX(timestamp) FROM snapshot_values WHERE token_id = mt.token_id) "
            f"WHERE mt.market_id IN ({marks}) ORDER BY mt.market_id, mt.outcome_index",
            list(by_id),
        ).fetchall()
        for r in rows:
            d = by_id[r["market_id"]]
            d["outcomes"].append(
                {
                    "outcome": r["outcome"],
                    "token_id": r["token_id"],
                    "bid": _p(r["best_bid"]),
                    "ask": _p(r["best_ask"]),
                    "mid": _p(r["mid"]),
                }
            )
            if r["timestamp"] is not None and (d["last_ts"] is None or r["timestamp"] > d["last_ts"]):
                d["last_ts"] = int(r["timestamp"])
    stale = 0
    for d in items:
        t = d["last_ts"]
        d["updated"] = ago(now - t) if t is not None else "no snapshot"
        d["fresh"] = t is not None and now - t <= fresh_s
        stale += not d["fresh"]
    last_snap = _one(conn, "SELECT MAX(timestamp) FROM snapshot_values")
    cyc = conn.execute(
        "SELECT cycle_ts, finished_at, status, markets, snapshots, errors FROM collection_cycles "
        "ORDER BY cycle_ts DESC, id DESC LIMIT 1"
    ).fetchone()
    data = {
        "last_snapshot": utc_text_or_none(last_snap),
        "last_snapshot_ago": ago(now - last_snap) if last_snap else "never",
        "fresh": last_snap is not None and now - last_snap <= fresh_s,
        "freshness_minutes": cfg.collection.freshness_minutes,
        "last_cycle": (
            f"{cyc['status']} at {utc_text_or_none(cyc['cycle_ts'])}: {cyc['markets']} markets, "
            f"{cyc['snapshots']} snapshots, {cyc['errors']} errors"
        )
        if cyc
        else "none yet",
    }
    return {"items": items, "count": total, "shown": len(items), "stale": stale, "data": data}


def _p(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _usd0(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"${x:,.0f}"


def system_section(conn: sqlite3.Connection, cfg: Config, now: float) -> dict:
    state = dict(conn.execute("SELECT key, value FROM bot_state").fetchall())
    hb = _int(state.get("heartbeat"))
    halted = state.get("halted") == "1"
    halts = [
        {
            "time": utc_text_or_none(r["timestamp"]),
            "breaker": r["breaker"],
            "reason": r["reason"],
            "cleared": utc_text_or_none(r["cleared_at"]) if r["cleared_at"] else None,
            "cleared_by": r["cleared_by"],
        }
        for r in conn.execute(
            "SELECT * FROM halts WHERE mode = ? ORDER BY timestamp DESC, id DESC LIMIT 5", (cfg.mode,)
        )
    ]
    b = conn.execute(
        "SELECT timestamp, path, size_bytes, integrity, offsite FROM backups "
        "ORDER BY timestamp DESC, id DESC LIMIT 1"
    ).fetchone()
    backup: dict | None
    if b is not None:
        backup = {
            "name": Path(b["path"]).name,
            "time": utc_text_or_none(b["timestamp"]),
            "ago": ago(now - b["timestamp"]),
            "size": f"{b['size_bytes'] / 1e6:.1f} MB",
            "integrity": b["integrity"],
            "offsite": b["offsite"] or "none",
        }
    else:
        backup = _backup_from_files(cfg, now)
    return {
        "bot": {
            "mode": state.get("mode"),
            "pid": state.get("pid"),
            "heartbeat": utc_text_or_none(hb),
            "heartbeat_ago": ago(now - hb) if hb is not None else "never",
            "started": utc_text_or_none(_int(state.get("started_at"))),
        },
        "halt": {
            "halted": halted,
            "reason": state.get("halt_reason") if halted else None,
            "breaker": state.get("halt_breaker") if halted else None,
            "recent": halts,
            "emergency_stop_file": Path(cfg.emergency_stop_file).exists(),
        },
        "backup": backup,
    }


def _backup_from_files(cfg: Config, now: float) -> dict | None:
    try:
        from ..ops.backup import list_backups

        files = list_backups(cfg.backup_dir)
    except Exception:  # the panel must render even if the backup module cannot
        return None
    if not files:
        return None
    f = files[-1]
    return {
        "name": f.name,
        "time": utc_text_or_none(f.timestamp),
        "ago": ago(now - f.timestamp),
        "size": f"{f.size / 1e6:.1f} MB",
        "integrity": "not recorded",
        "offsite": "unknown",
    }


def _int(v: str | None) -> int | None:
    try:
        return int(float(v)) if v not in (None, "") else None
    except ValueError:
        return None


def alerts_section(conn: sqlite3.Connection, now: float) -> list[dict]:
    from ..logs import redact

    return [
        {
            "time": utc_text_or_none(r["timestamp"]),
            "ago": ago(now - r["timestamp"]),
            "level": r["level"],
            "key": r["key"],
            "message": redact(r["message"])[:500],
            "status": r["status"],
            "repeat": int(r["repeat_count"]),
        }
        for r in conn.execute(
            "SELECT * FROM alerts ORDER BY timestamp DESC, id DESC LIMIT ?", (ALERTS_LIMIT,)
        )
    ]


# --------------------------------------------------------------------------- the whole state
def _has_data(conn: sqlite3.Connection) -> bool:
    return bool(
        _one(
            conn,
            "SELECT EXISTS(SELECT 1 FROM markets) OR EXISTS(SELECT 1 FROM trades) "
            "OR EXISTS(SELECT 1 FROM performance) OR EXISTS(SELECT 1 FROM snapshot_values)",
        )
    )


def empty_state(cfg: Config, now: float, detail: str) -> dict:
    return {
        "empty": True,
        "empty_message": EMPTY_MESSAGE,
        "empty_detail": detail,
        "mode": cfg.mode,
        "generated": utc_text_or_none(now),
        "generated_ts": int(now),
    }


def build_state(
    cfg: Config, conn: sqlite3.Connection | None, *, now: float, db_error: str | None = None
) -> dict:
    """The dashboard's data (without the health panel, which the app adds from its cache)."""
    if conn is None:
        return empty_state(cfg, now, db_error or f"The database {cfg.database_path} does not exist yet.")
    conn.execute("BEGIN")  # one consistent snapshot across every query
    try:
        try:
            has = _has_data(conn)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return empty_state(cfg, now, "The database has no tables yet; run python initialize_db.py.")
            raise
        if not has:
            return empty_state(cfg, now, "The database has no market data and no trades yet.")
        perf = latest_performance(conn, cfg.mode)
        chart, daily = chart_section(conn, cfg, perf)
        return {
            "empty": False,
            "mode": cfg.mode,
            "generated": utc_text_or_none(now),
            "generated_ts": int(now),
            "pnl": pnl_section(conn, cfg, now, perf),
            "chart": chart,
            "sharpe": sharpe_section(daily, to_micro(cfg.capital)),
            "win_rate": win_rate_section(conn, cfg.mode),
            "positions": positions_section(conn, cfg, now),
            "trades": trades_section(conn, cfg.mode, now),
            "markets": markets_section(conn, cfg, now),
            "system": system_section(conn, cfg, now),
            "alerts": alerts_section(conn, now),
        }
    finally:
        conn.execute("COMMIT")
