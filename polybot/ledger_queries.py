"""What the SQLite ledger says: the one read side of the bot's books.

:mod:`polybot.engine.ledger` WRITES the ledger (trades, positions, capital flows, performance
rows); this module READS it for everyone who shows or checks money: the engine, the dashboard,
the daily and weekly reports, Telegram, the paper-trading report, pre-launch and the backtest
verdict. It imports only the standard library and :mod:`polybot.money`, so any layer can use
it without an import cycle.

Definitions (integer micro-units throughout):

- **Realised P&L** — Σ ``trades.realized_pnl_micro`` of the mode: the engine records it on each
  position-reducing trade (SELL fills and settlements), net of fees (average-cost
  accounting). A FAILED fill has it set to NULL when it is reversed, and its reversal row
  carries none, so the sum leaves out what never happened.
- **Periods** are half-open ``[since, until)`` in epoch seconds (trade times are integers);
  ``None`` = unbounded.
- **The day** is the UTC day: it starts at 00:00:00 UTC (:func:`day_start`). The daily-loss
  limit, "today" in every report and the per-day figures all use this boundary.
- **Daily P&L** — equity now − the equity at the start of the UTC day, in today's capital
  terms (a deposit or withdrawal made since is added to the baseline, so a capital change is
  never P&L): :func:`daily_pnl_micro`.
- **Closing trades / win rate** — trades with a realised P&L (the rows
  ``realized_pnl_micro IS NOT NULL``); a win is realised P&L > 0.
- **Unrealised P&L at a mark** — shares × mark (half-up to the micro-unit) − cost basis
  (fees included): :func:`unrealized_micro`. Which price is the mark is the caller's choice
  (:func:`latest_mark`: the latest best bid or mid of ``snapshot_values``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from polybot.money import average_price_micro, notional_micro, to_micro

DAY = 86_400


def day_start(ts: float) -> int:
    """00:00:00 UTC of the day of ``ts`` (epoch seconds): the one day boundary."""
    return int(ts) - int(ts) % DAY


def _period(sql: str, args: list, since: float | None, until: float | None, col: str = "timestamp") -> str:
    if since is not None:
        sql += f" AND {col} >= ?"
        args.append(int(since))
    if until is not None:
        sql += f" AND {col} < ?"
        args.append(int(until))
    return sql


# ----------------------------------------------------------------------------- positions
@dataclass(frozen=True)
class PositionRow:
    """One ``positions`` row."""

    mode: str
    token_id: str
    market_id: str
    size_micro: int
    cost_micro: int
    realized_pnl_micro: int
    opened_at: int
    updated_at: int
    closed_at: int | None
    status: str
    stop_price_micro: int | None
    strategy: str | None
    group_key: str | None

    @property
    def avg_price_micro(self) -> int:
        """Average entry price: cost basis (fees included) ÷ shares, half-up."""
        return average_price_micro(self.cost_micro, self.size_micro)

    @classmethod
    def from_row(cls, r: sqlite3.Row | Mapping) -> PositionRow:
        return cls(**{k: r[k] for k in cls.__dataclass_fields__})


def stop_price_micro(avg_price_micro: int, stop_loss_percent: float) -> int:
    """The stop-loss price of a position: average entry × (1 − ``stop_loss_percent``), truncated
    (what the engine stores in ``positions.stop_price_micro``)."""
    return int(avg_price_micro * (1 - stop_loss_percent))


def get_position(conn: sqlite3.Connection, mode: str, token_id: str) -> PositionRow | None:
    r = conn.execute("SELECT * FROM positions WHERE mode=? AND token_id=?", (mode, token_id)).fetchone()
    return PositionRow.from_row(r) if r else None


def open_positions(conn: sqlite3.Connection, mode: str) -> list[PositionRow]:
    """The mode's open positions, oldest first (ties by token id)."""
    rows = conn.execute(
        "SELECT * FROM positions WHERE mode=? AND status='open' ORDER BY opened_at, token_id", (mode,)
    ).fetchall()
    return [PositionRow.from_row(r) for r in rows]


def open_position_count(conn: sqlite3.Connection, mode: str) -> int:
    return int(
        conn.execute("SELECT COUNT(*) FROM positions WHERE mode=? AND status='open'", (mode,)).fetchone()[0]
    )


@dataclass(frozen=True)
class NamedPosition:
    """An open position with its market's question and outcome (None when not in ``markets``)."""

    position: PositionRow
    question: str | None
    outcome: str | None


def open_positions_named(conn: sqlite3.Connection, mode: str) -> list[NamedPosition]:
    """:func:`open_positions` with the market question and outcome, for screens and reports."""
    rows = conn.execute(
        "SELECT p.*, m.question AS _question, t.outcome AS _outcome FROM positions p "
        "LEFT JOIN markets m ON m.id = p.market_id LEFT JOIN market_tokens t ON t.token_id = p.token_id "
        "WHERE p.mode = ? AND p.status = 'open' ORDER BY p.opened_at, p.token_id",
        (mode,),
    ).fetchall()
    return [NamedPosition(PositionRow.from_row(r), r["_question"], r["_outcome"]) for r in rows]


# ----------------------------------------------------------------------------- marks
@dataclass(frozen=True)
class Mark:
    """A price to value shares at, and when it was seen."""

    price_micro: int
    timestamp: int


def latest_mark(conn: sqlite3.Connection, token_id: str, price: Literal["best_bid", "mid"]) -> Mark | None:
    """The latest non-null ``best_bid`` (what selling now would fetch) or ``mid`` of a token in
    ``snapshot_values``; None when there is none."""
    column = {"best_bid": "best_bid", "mid": "mid"}[price]  # never interpolate caller text
    r = conn.execute(
        f"SELECT timestamp, {column} FROM snapshot_values WHERE token_id = ? AND {column} IS NOT NULL "
        "ORDER BY timestamp DESC LIMIT 1",
        (token_id,),
    ).fetchone()
    if r is None:
        return None
    return Mark(price_micro=to_micro(r[1]), timestamp=int(r[0]))


def unrealized_micro(size_micro: int, cost_micro: int, mark_micro: int) -> int:
    """shares × mark (half-up to the micro-unit) − cost basis."""
    return notional_micro(mark_micro, size_micro) - int(cost_micro)


@dataclass(frozen=True)
class MarkedPosition:
    """An open position valued at a mark (None = unknown: valued at its average entry price)."""

    position: PositionRow
    mark_micro: int | None

    @property
    def value_micro(self) -> int:
        mark = self.position.avg_price_micro if self.mark_micro is None else self.mark_micro
        return notional_micro(mark, self.position.size_micro)

    @property
    def unrealized_micro(self) -> int:
        return self.value_micro - self.position.cost_micro


@dataclass(frozen=True)
class Portfolio:
    mode: str
    cash_micro: int
    holdings: tuple[MarkedPosition, ...] = ()
    realized_micro: int = 0

    @property
    def exposure_micro(self) -> int:
        """Capital at risk: the cost basis of the open positions."""
        return sum(h.position.cost_micro for h in self.holdings)

    @property
    def market_value_micro(self) -> int:
        return sum(h.value_micro for h in self.holdings)

    @property
    def unrealized_micro(self) -> int:
        return sum(h.unrealized_micro for h in self.holdings)

    @property
    def equity_micro(self) -> int:
        return self.cash_micro + self.market_value_micro

    def holding(self, token_id: str) -> MarkedPosition | None:
        return next((h for h in self.holdings if h.position.token_id == token_id), None)


def portfolio(
    conn: sqlite3.Connection, mode: str, cash_micro: int, marks: Mapping[str, int | None]
) -> Portfolio:
    """The open positions valued at ``marks`` (token → micro price), with the realised P&L."""
    holdings = tuple(MarkedPosition(p, marks.get(p.token_id)) for p in open_positions(conn, mode))
    return Portfolio(
        mode=mode,
        cash_micro=int(cash_micro),
        holdings=holdings,
        realized_micro=realized_pnl_micro(conn, mode),
    )


# ----------------------------------------------------------------------------- trades
def realized_pnl_micro(
    conn: sqlite3.Connection, mode: str, *, since: float | None = None, until: float | None = None
) -> int:
    """Σ realised P&L of the mode's trades in ``[since, until)`` (net of fees)."""
    args: list = [mode]
    sql = _period("SELECT COALESCE(SUM(realized_pnl_micro), 0) FROM trades WHERE mode=?", args, since, until)
    return int(conn.execute(sql, args).fetchone()[0])


def realized_pnl_by_day(conn: sqlite3.Connection, mode: str) -> dict[int, int]:
    """UTC day start → Σ realised P&L of that day, for every day with at least one trade
    (0 on a day with trades but none closing)."""
    return {
        int(d) * DAY: int(p)
        for d, p in conn.execute(
            "SELECT timestamp / ? AS d, COALESCE(SUM(realized_pnl_micro), 0) FROM trades WHERE mode=? "
            "GROUP BY d ORDER BY d",
            (DAY, mode),
        )
    }


@dataclass(frozen=True)
class TradeActivity:
    """Every trade row of a period: fills, settlements and reversals (a FAILED fill and its
    reversal are two rows; their fees cancel out)."""

    count: int
    fees_micro: int
    notional_micro: int


def trade_activity(
    conn: sqlite3.Connection, mode: str, *, since: float | None = None, until: float | None = None
) -> TradeActivity:
    args: list = [mode]
    sql = _period(
        "SELECT COUNT(*), COALESCE(SUM(fee_micro), 0), COALESCE(SUM(notional_micro), 0) FROM trades "
        "WHERE mode=?",
        args,
        since,
        until,
    )
    n, fees, notional = conn.execute(sql, args).fetchone()
    return TradeActivity(int(n), int(fees), int(notional))


@dataclass(frozen=True)
class ClosingTrades:
    """The trades with a realised P&L (SELL fills, settlements) of a period."""

    count: int
    wins: int
    realized_micro: int
    best_micro: int | None
    worst_micro: int | None

    @property
    def win_rate(self) -> float | None:
        """Wins ÷ closing trades; None before the first closing trade."""
        return self.wins / self.count if self.count else None


def closing_trades(
    conn: sqlite3.Connection, mode: str, *, since: float | None = None, until: float | None = None
) -> ClosingTrades:
    args: list = [mode]
    sql = _period(
        "SELECT COUNT(*), COALESCE(SUM(realized_pnl_micro > 0), 0), COALESCE(SUM(realized_pnl_micro), 0), "
        "MAX(realized_pnl_micro), MIN(realized_pnl_micro) FROM trades "
        "WHERE mode=? AND realized_pnl_micro IS NOT NULL",
        args,
        since,
        until,
    )
    n, wins, total, best, worst = conn.execute(sql, args).fetchone()
    return ClosingTrades(
        int(n),
        int(wins),
        int(total),
        None if best is None else int(best),
        None if worst is None else int(worst),
    )


def last_closing_pnls(conn: sqlite3.Connection, mode: str, limit: int) -> list[int]:
    """The realised P&L of the last ``limit`` closing trades, oldest first (the input of
    :func:`polybot.alerts.checks.check_win_rate`)."""
    rows = conn.execute(
        "SELECT realized_pnl_micro FROM trades WHERE mode=? AND realized_pnl_micro IS NOT NULL "
        "ORDER BY timestamp DESC, id DESC LIMIT ?",
        (mode, int(limit)),
    ).fetchall()
    return [int(r[0]) for r in reversed(rows)]


def losing_trades(conn: sqlite3.Connection, mode: str, *, since: float | None = None) -> list[sqlite3.Row]:
    """Trades with a realised loss (< 0), oldest first: ``trade_id, timestamp, side,
    notional_micro, fee_micro, realized_pnl_micro, token_id``."""
    args: list = [mode]
    sql = _period(
        "SELECT trade_id, timestamp, side, notional_micro, fee_micro, realized_pnl_micro, token_id FROM trades "
        "WHERE mode=? AND realized_pnl_micro < 0",
        args,
        since,
        None,
    )
    return conn.execute(sql + " ORDER BY timestamp", args).fetchall()


def trade_count(conn: sqlite3.Connection, mode: str) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM trades WHERE mode=?", (mode,)).fetchone()[0])


def cash_flow_micro(conn: sqlite3.Connection, mode: str, *, until: int | None = None) -> int:
    """Σ cash flows of the mode's trades before ``until``: BUY −(notional + fee), SELL and
    settlement +(notional − fee); a reversal row undoes its trade's flow."""
    args: list = [mode]
    sql = _period(
        "SELECT COALESCE(SUM(CASE WHEN side='BUY' THEN -(notional_micro+fee_micro) "
        "ELSE notional_micro-fee_micro END),0) FROM trades WHERE mode=?",
        args,
        None,
        until,
    )
    return int(conn.execute(sql, args).fetchone()[0])


def paper_cash_micro(conn: sqlite3.Connection, mode: str, capital_micro: int) -> int:
    """Paper cash = capital + Σ recorded trade cash flows (survives restarts)."""
    return int(capital_micro) + cash_flow_micro(conn, mode)


# ----------------------------------------------------------------------------- equity
def latest_performance(conn: sqlite3.Connection, mode: str) -> sqlite3.Row | None:
    """The newest ``performance`` row the bot wrote for the mode (None before the first loop)."""
    return conn.execute(
        "SELECT * FROM performance WHERE mode = ? ORDER BY timestamp DESC, id DESC LIMIT 1", (mode,)
    ).fetchone()


def first_performance_ts(conn: sqlite3.Connection, mode: str) -> int | None:
    """When the bot wrote its first ``performance`` row for the mode (None: never)."""
    r = conn.execute("SELECT MIN(timestamp) FROM performance WHERE mode = ?", (mode,)).fetchone()
    return None if r is None or r[0] is None else int(r[0])


def equity_series(
    conn: sqlite3.Connection, mode: str, *, since: float | None = None
) -> list[tuple[int, int]]:
    """(timestamp, equity) of every ``performance`` row from ``since`` on, oldest first (rows with
    the same time in the order they were written)."""
    args: list = [mode]
    sql = _period("SELECT timestamp, equity_micro FROM performance WHERE mode = ?", args, since, None)
    return [(int(t), int(e)) for t, e in conn.execute(sql + " ORDER BY timestamp, id", args)]


def equity_peak_and_latest(conn: sqlite3.Connection, mode: str) -> tuple[int, int] | None:
    """(highest equity ever recorded, latest equity) for the mode — what a drawdown is measured
    on — in two indexed reads instead of the whole history; None before the first row."""
    latest = latest_performance(conn, mode)
    if latest is None:
        return None
    peak = conn.execute("SELECT MAX(equity_micro) FROM performance WHERE mode = ?", (mode,)).fetchone()[0]
    return int(peak), int(latest["equity_micro"])


def equity_at(conn: sqlite3.Connection, mode: str, ts: float, *, strictly_before: bool = False) -> int | None:
    """The equity of the last ``performance`` row at or before ``ts`` (strictly before with
    ``strictly_before``); None when the bot recorded none by then."""
    op = "<" if strictly_before else "<="
    r = conn.execute(
        f"SELECT equity_micro FROM performance WHERE mode = ? AND timestamp {op} ? "
        "ORDER BY timestamp DESC, id DESC LIMIT 1",
        (mode, int(ts)),
    ).fetchone()
    return None if r is None else int(r[0])


def capital_flows_micro(conn: sqlite3.Connection, mode: str, *, after: int) -> int:
    """Σ deposits − withdrawals recorded strictly after ``after`` (epoch s)."""
    return int(
        conn.execute(
            "SELECT COALESCE(SUM(amount_micro), 0) FROM capital_flows WHERE mode=? AND timestamp > ?",
            (mode, int(after)),
        ).fetchone()[0]
    )


def day_low_equity_micro(conn: sqlite3.Connection, mode: str, now: int) -> int | None:
    """The lowest equity recorded today (UTC), each value in today's capital terms (+ the
    deposits/withdrawals made after it), so a capital change is never a low."""
    r = conn.execute(
        "SELECT MIN(p.equity_micro + (SELECT COALESCE(SUM(f.amount_micro), 0) FROM capital_flows f "
        "WHERE f.mode = p.mode AND f.timestamp > p.timestamp)) FROM performance p "
        "WHERE p.mode = ? AND p.timestamp >= ?",
        (mode, day_start(now)),
    ).fetchone()
    return None if r is None or r[0] is None else int(r[0])


def daily_baseline_micro(
    conn: sqlite3.Connection, mode: str, now: int, *, capital_micro: int, paper: bool
) -> int | None:
    """Equity at the start of the current UTC day in today's capital terms (a deposit or
    withdrawal since is added), None = unknown: no history yet.

    The last ``performance`` row before 00:00 UTC; without one, paper: capital + the cash flows
    before today + the cost of the positions opened before today (bought at cost); live: the
    first row of today."""
    start = day_start(now)
    r = conn.execute(
        "SELECT timestamp, equity_micro FROM performance WHERE mode=? AND timestamp < ? "
        "ORDER BY timestamp DESC, id DESC LIMIT 1",
        (mode, start),
    ).fetchone()
    if r is not None:
        return int(r[1]) + capital_flows_micro(conn, mode, after=int(r[0]))
    if paper:
        return (
            int(capital_micro)
            + cash_flow_micro(conn, mode, until=start)
            + sum(
                int(x[0])
                for x in conn.execute(
                    "SELECT cost_micro FROM positions WHERE mode=? AND status='open' AND opened_at < ?",
                    (mode, start),
                )
            )
        )
    r = conn.execute(
        "SELECT timestamp, equity_micro FROM performance WHERE mode=? AND timestamp >= ? "
        "ORDER BY timestamp, id LIMIT 1",
        (mode, start),
    ).fetchone()
    return int(r[1]) + capital_flows_micro(conn, mode, after=int(r[0])) if r is not None else None


def daily_pnl_micro(
    conn: sqlite3.Connection, mode: str, equity_micro: int, now: int, *, capital_micro: int, paper: bool
) -> int:
    """``equity_micro`` − :func:`daily_baseline_micro` (0 when there is no baseline yet)."""
    base = daily_baseline_micro(conn, mode, now, capital_micro=capital_micro, paper=paper)
    return 0 if base is None else int(equity_micro) - base
