"""The ``--help`` descriptions of the data and validation commands (collect, verify-collection,
data-quality, export-data, correlation, plot-correlations, backtest); their parsers are defined
next to each command's ``main`` and take the description as their argument (see COMMANDS) —
except export-data's, which is here (:func:`export_parser`; its ``main`` is
``polybot.ops.export:main``)."""

from __future__ import annotations

import argparse

COLLECT = """Collect Polymarket market data: one 5-minute cycle (run it from cron every 5 minutes).

Selects the tracked markets from config.yaml (collection:), stores markets, tokens and one
snapshot per outcome token (best bid/ask, mid, spread, last trade, top book levels, depth,
volume, liquidity) in data/polymarket.db. See the modes and exit codes below.
"""

VERIFY = """Verify data collection: cycles seen, snapshots per market, gaps in the 5-minute grid
(listed with start and end), tracked markets with no recent snapshot.

Exits 0 when collection runs with no gaps, 1 otherwise.
Example (the checklist's flow): wait 30 minutes after --initial, then
  python verify_data_collection.py
"""

QUALITY = """Data quality check of the collected market data (the checklist's checks).

One ✓/✗ line per check — NULL critical fields, sequential timestamps, prices within
bounds, duplicates, freshness, coverage — then PASS or FAIL with the reasons. The report
is saved to reports/data_quality_YYYYMMDD_HHMMSS.txt; the exit code is 0 on PASS, 1 on FAIL.
Example: python data_quality_check.py
"""

CORRELATION = """Correlation matrix of the tracked markets (checklist: Validation Phase 1).

Aligns each market's YES price on the 5-minute grid, correlates price CHANGES over the last
--days days, tests every pair (>= 20 shared moves, Fisher-z p-value with an autocorrelation-adjusted
sample size, Benjamini-Hochberg false discovery rate across all pairs), writes
reports/correlation_{days}day.csv, reports/correlation_{days}day_pairs.csv (r, p, q, n_eff, shared
moves) and reports/correlation_groups.json (the risk manager's correlated-group cap, by |r|), and prints
the strong pairs (significant and |r| >= 0.7), the significant weaker ones, the likely coincidences
and the weak pairs (|r| < 0.3). docs/strategies.md, "Pair selection", explains the statistics.
Exit code: 0 done, 2 not enough data or bad arguments, 3 database problem.
Example: python correlation_analysis.py --days 7
"""

PLOT = """Heatmap of the market correlation matrix (checklist: Validation Phase 1, visual inspection).

Same data and method as correlation_analysis.py; markets in clustered order so correlated ones sit
together; at most --max-markets markets (the most strongly connected).
Example: python plot_correlations.py --days 7 --output reports/correlation_heatmap_7day.png
"""

BACKTEST = """Backtest the configured strategy on stored market snapshots (checklist: Validation Phase 2).

Replays data/polymarket.db in time order through the strategy and the same risk manager as live,
prints Total trades / Win rate / Sharpe ratio / Max drawdown / Final capital and the acceptance
criteria, and writes reports/backtest_{days}day.json and .png. Exit code: 0 PASS, 1 FAIL,
6 INSUFFICIENT_DATA (too few trades, too little data or too few recorded days), 2-5 error.
Example: python backtest.py --start-date 2026-01-01 --end-date 2026-01-30 --capital 500
Out of sample: add --walk-forward (rolling 14 days in sample / 7 days out of sample, walk_forward: in
config.yaml; the verdict is on the out-of-sample trades only) and --sweep key=v1,v2,... (repeatable;
every set is reported and the verdict is deflated for the number of sets tried).
"""

EXPORT = """Export the collected market data for research (pandas, R, DuckDB, spreadsheets).

One file per UTC day in --out (default exports/ in the workspace): snapshots_YYYY-MM-DD.csv or
.parquet with the decoded snapshot columns of snapshot_values (timestamp, token_id, market_id,
best_bid, best_ask, mid, spread, last_trade_price, bid_depth, ask_depth, bids, asks, volume_24h,
liquidity, source), and bars_YYYY-MM-DD.<ext> for days the retention tiers keep as hourly bars.
The last --days UTC days, ending with the day of the newest snapshot. docs/data_export.md
describes every column. Parquet needs pyarrow (requirements.txt).
Examples:
  python export_data.py --format csv --days 7
  python export_data.py --format parquet --days 30 --out /data/polymarket
"""


def _days(text: str) -> int:
    from polybot.ops.export import MAX_DAYS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_DAYS} days (got {value})")
    return value


def export_parser(description: str) -> argparse.ArgumentParser:
    from polybot.cli import add_config_arg
    from polybot.ops.export import FORMATS

    p = add_config_arg(
        argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="parquet (typed, compressed) or csv")
    p.add_argument("--days", required=True, type=_days, metavar="N", help="the last N UTC days (1–3650)")
    p.add_argument(
        "--out", metavar="DIR", default=None, help="output directory (default: exports/ in the workspace)"
    )
    return p
