#!/usr/bin/env python3
"""Verify data collection: cycles seen, snapshots per market, gaps in the 5-minute grid
(listed with start and end), tracked markets with no recent snapshot.

Exits 0 when collection runs with no gaps, 1 otherwise.
Example (the checklist's flow): wait 30 minutes after --initial, then
  python verify_data_collection.py
"""

from polybot.cli import run_script
from polybot.collect.main import verify_main, verify_parser

if __name__ == "__main__":
    run_script(verify_main, verify_parser(__doc__))
