#!/usr/bin/env python3
"""Backtest the configured strategy on stored market snapshots (checklist: Validation Phase 2).

Replays data/polymarket.db in time order through the strategy and the same risk manager as live,
prints Total trades / Win rate / Sharpe ratio / Max drawdown / Final capital and the acceptance
criteria, and writes reports/backtest_{days}day.json and .png. Exit code: 0 PASS, 1 FAIL,
6 INSUFFICIENT_DATA (too few trades, too little data or too few recorded days), 2-5 error.
Example: python backtest.py --start-date 2026-01-01 --end-date 2026-01-30 --capital 500
Out of sample: add --walk-forward (rolling 14 days in sample / 7 days out of sample, walk_forward: in
config.yaml; the verdict is on the out-of-sample trades only) and --sweep key=v1,v2,... (repeatable;
every set is reported and the verdict is deflated for the number of sets tried).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrix products: 1 BLAS thread is fastest

from polybot.backtest.cli import build_parser, main  # noqa: E402
from polybot.cli import run_script  # noqa: E402

if __name__ == "__main__":
    run_script(main, build_parser(__doc__))
