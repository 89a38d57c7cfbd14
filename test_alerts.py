#!/usr/bin/env python3
"""Send a clearly marked test alert ("[TEST] …") through every channel configured for a level.

Prints ✓/✗ per channel (log, telegram, email) and exits 0 only if every channel delivered.
Example: python test_alerts.py --level critical
"""

import argparse

from polybot.alerts.cli import test_alerts_main
from polybot.cli import add_config_arg, run_script

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--level",
        choices=("critical", "warning", "info"),
        default="critical",
        help="which routing to test (alerts.<level> in config.yaml); default critical",
    )
    run_script(test_alerts_main, add_config_arg(parser))
