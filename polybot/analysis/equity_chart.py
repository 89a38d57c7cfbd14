"""The equity and drawdown chart (matplotlib, Agg backend), drawn once for every caller: the
backtest report's PNG (polybot/backtest/report.py) and the live ledger's chart that ``/report``
and the scheduled ``daily_report.py`` send to Telegram (polybot/ops/charts.py).
"""

from __future__ import annotations

import io
from typing import Any

from ..money import MICRO

BUCKETS = 1000  # a longer series is drawn from each bucket's lowest and highest point


def extremes(values: Any, buckets: int = BUCKETS) -> Any:
    """Indices (ascending) of the lowest and highest value of each of ``buckets`` equal slices of
    ``values`` (a numpy array), plus the last one: a line through them looks like the full line
    (every peak and trough is kept, so the drawn worst drawdown is the real one) at a fraction
    of the drawing time. All indices when the series is short."""
    import numpy as np

    n = len(values)
    if n <= 2 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1, dtype=int)
    picked = [n - 1]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        seg = values[a:b]
        picked += [a + int(seg.argmin()), a + int(seg.argmax())]
    return np.unique(np.array(picked))


def equity_drawdown_png(
    series: list[tuple[int, int]],
    capital_micro: int,
    *,
    title: str,
    label: str = "equity",
    drawdown_in_title: bool = True,
    figsize: tuple[float, float] = (9, 5.5),
    dpi: int = 100,
) -> bytes | None:
    """PNG bytes of equity (top) and drawdown % (bottom) over ``series`` ((ts, equity µUSD),
    oldest first; the starting capital counts as the first peak), the worst drawdown in the
    title unless ``drawdown_in_title`` is False; None when there are fewer than two points
    (nothing to draw)."""
    if len(series) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np

    when = np.array([t for t, _ in series], dtype="datetime64[s]")  # UTC: numpy has no zones
    eq = np.array([e for _, e in series], dtype=float) / MICRO
    peak = np.maximum.accumulate(np.concatenate(([capital_micro / MICRO], eq)))[1:]
    dd = np.where(peak > 0, eq / peak - 1.0, 0.0) * 100
    at_eq, at_dd = extremes(eq), extremes(dd)
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=figsize, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    try:
        ax1.plot(when[at_eq], eq[at_eq], color="#1f77b4", lw=1.4, label=label)
        ax1.axhline(capital_micro / MICRO, color="grey", lw=0.8, ls="--", label="capital")
        ax1.set_ylabel("USDC")
        suffix = f" — max drawdown {float(-dd.min()):.1f}%" if drawdown_in_title else ""
        ax1.set_title(title + suffix, fontsize=10)
        ax1.legend(loc="best", fontsize=8)
        ax1.grid(alpha=0.3)
        ax2.fill_between(when[at_dd], dd[at_dd], 0, color="#d62728", alpha=0.4, step="post")
        ax2.set_ylabel("drawdown %")
        ax2.grid(alpha=0.3)
        ax2.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        fig.autofmt_xdate()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()
