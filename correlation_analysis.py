#!/usr/bin/env python3
"""Correlation matrix of the tracked markets (checklist: Validation Phase 1).

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

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrix products: 1 BLAS thread is fastest

from polybot.analysis.cli import correlation_main, correlation_parser  # noqa: E402
from polybot.cli import run_script  # noqa: E402

if __name__ == "__main__":
    run_script(correlation_main, correlation_parser(__doc__))
