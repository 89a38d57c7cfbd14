#!/usr/bin/env python3
"""Heatmap of the market correlation matrix (checklist: Validation Phase 1, visual inspection).

Same data and method as correlation_analysis.py; markets in clustered order so correlated ones sit
together; at most --max-markets markets (the most strongly connected).
Example: python plot_correlations.py --days 7 --output reports/correlation_heatmap_7day.png
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from polybot.analysis.cli import plot_main, plot_parser  # noqa: E402
from polybot.cli import run_script  # noqa: E402

if __name__ == "__main__":
    run_script(plot_main, plot_parser(__doc__))
