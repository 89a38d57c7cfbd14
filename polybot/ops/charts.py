"""The equity and drawdown chart of the live ledger as a PNG (matplotlib, Agg backend).

Sent as a Telegram photo by ``/report`` and by the scheduled ``daily_report.py``. The data
are the ``performance`` rows the bot writes each loop (:func:`polybot.ledger_queries.equity_series`);
the drawdown is measured from the running peak of those rows (the starting capital counts as
the first peak), the same way the backtest chart draws it.
"""

from __future__ import annotations

import sqlite3

from .. import ledger_queries as lq
from ..analysis.equity_chart import equity_drawdown_png

CHART_DAYS = 30  # the chart's window


def ledger_chart_png(
    conn: sqlite3.Connection, mode: str, capital_micro: int, now: float, *, days: int = CHART_DAYS
) -> bytes | None:
    """The chart of the mode's last ``days`` days of ``performance`` rows (None: fewer than two)."""
    series = lq.equity_series(conn, mode, since=now - days * lq.DAY)
    return equity_drawdown_png(series, capital_micro, title=f"Equity, last {days} days ({mode.upper()})")
