#!/usr/bin/env python3
"""Create or upgrade the database (data/polymarket.db): tables, schema version, permissions.

Safe to run twice: it never deletes data; only missing migrations are applied.
Example: python initialize_db.py
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.init_db import main

if __name__ == "__main__":
    run_script(main, add_config_arg(argparse.ArgumentParser(description=__doc__)))
