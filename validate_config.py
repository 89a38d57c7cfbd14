#!/usr/bin/env python3
"""Validate config.yaml: YAML syntax, keys, environment variables, risk bounds, secrets, paths.

Prints one ✓/✗ line per check and exits 0 only if every check passes.
Example: python validate_config.py --config config.yaml
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.validation import main

if __name__ == "__main__":
    run_script(main, add_config_arg(argparse.ArgumentParser(description=__doc__)))
