"""``python -m polybot COMMAND ARGS`` = ``polybot COMMAND ARGS`` (the scheduler and the scenario
runs start their child processes this way, with the running interpreter)."""

import sys

from polybot.commands import main

if __name__ == "__main__":
    sys.exit(main())
