#!/usr/bin/env python3
"""Data quality check of the collected market data (the checklist's checks).

One ✓/✗ line per check — NULL critical fields, sequential timestamps, prices within
bounds, duplicates, freshness, coverage — then PASS or FAIL with the reasons. The report
is saved to reports/data_quality_YYYYMMDD_HHMMSS.txt; the exit code is 0 on PASS, 1 on FAIL.
Example: python data_quality_check.py
"""

from polybot.cli import run_script
from polybot.collect.main import quality_main, quality_parser

if __name__ == "__main__":
    run_script(quality_main, quality_parser(__doc__))
