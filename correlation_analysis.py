#!/usr/bin/env python3
"""Correlation matrix of the tracked markets (checklist: Validation Phase 1).

Aligns each market's YES price on the 5-minute grid, correlates price CHANGES over the last
--days days, writes reports/correlation_{days}day.csv and reports/correlation_groups.json (the
risk manager's correlated-group cap), and prints the strong (r > 0.7) and weak (r < 0.3) pairs.
Exit code: 0 done, 2 not enough data or bad arguments, 3 database problem.
Example: python correlation_analysis.py --days 7
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small matrix products: 1 BLAS thread is fastest

from polybot.analysis.cli import correlation_main, correlation_parser  # noqa: E402
from polybot.cli import run_script  # noqa: E402

if __name__ == "__main__":
    run_script(correlation_main, correlation_parser(__doc__))
