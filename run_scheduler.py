#!/usr/bin/env python3
"""Run every periodic job in one process (an alternative to cron / Task Scheduler — use one,
not both): collection and health check every 5 minutes, backup daily 02:00, maintenance Sunday
03:00, daily report 18:00 (weekly report Sunday 18:00), backup audit monthly — times from
schedule: in config.yaml, in local time. Each job runs as its own subprocess with a timeout.
  python run_scheduler.py                       # run until Ctrl-C
  python run_scheduler.py --once backup         # run one job now
  python run_scheduler.py --list
  python run_scheduler.py --print-crontab       # the crontab lines for this workspace
  python run_scheduler.py --print-windows-tasks # the schtasks commands
"""

import argparse

from polybot.cli import add_config_arg, run_script
from polybot.ops.scheduler import add_arguments, main

if __name__ == "__main__":
    parser = add_config_arg(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    add_arguments(parser)
    run_script(main, parser)
