"""Argument parsers and entry points of the three collection scripts
(``collect_market_data.py``, ``verify_data_collection.py``, ``data_quality_check.py``)."""

from __future__ import annotations

import argparse

from ..cli import add_config_arg
from ..config import load_config
from ..logs import configure_from

COLLECT_EPILOG = """\
modes:
  (none)              one collection cycle — schedule it every 5 minutes (cron */5)
  --initial           discover the universe, print what was selected and why, collect
  --backfill --days N fill the last N days of history for the tracked tokens
                      (resumable: run it again after an interruption)
  --estimate-storage  measured bytes per snapshot, growth per day / 1 / 3 months

exit codes:
  0  ok (also: another collection is already running — this run exits quietly)
  1  partial cycle (some tracked tokens had no usable book) or failed for a reason
     other than the exchange; details in collection_cycles and the log
  2  configuration error
  3  database error (missing, locked for 30 s, corrupt)
  4  exchange unreachable: the cycle failed and nothing was written
  --backfill: 0 done, 1 no tracked markets yet or some tokens failed,
              4 interrupted (finished tokens are kept; run it again to resume)

The cycle timestamp is the exchange's clock (CLOB GET /time) floored to
collection.interval_minutes, so running the same cycle twice inserts nothing twice.
Examples:
  python collect_market_data.py --initial
  python collect_market_data.py --backfill --days 30
"""


def collect_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description, epilog=COLLECT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--initial",
        action="store_true",
        help="first run: print the selected universe (counts per filter, top markets)",
    )
    mode.add_argument(
        "--backfill", action="store_true", help="fill history for the tracked tokens from /prices-history"
    )
    mode.add_argument(
        "--estimate-storage",
        action="store_true",
        help="measure bytes per snapshot and project storage growth",
    )
    p.add_argument(
        "--days",
        type=float,
        default=30.0,
        metavar="N",
        help="with --backfill: how many days back (default 30)",
    )
    p.add_argument(
        "--verbose", "-v", action="store_true", help="print progress while running (and every skipped record)"
    )
    return add_config_arg(p)


def collect_main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg)
    if args.estimate_storage:
        from .storage import run as estimate_storage

        return estimate_storage(cfg)
    if args.backfill:
        if args.days <= 0:
            print("--days must be a positive number of days, e.g. --days 30")
            return 2
        from .backfill import run as backfill

        return backfill(cfg, args.days, verbose=args.verbose)
    from .cycle import run as collect

    return collect(cfg, initial=args.initial, verbose=args.verbose)


def verify_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--hours",
        type=float,
        default=24.0,
        metavar="N",
        help="look at the last N hours (default 24; 0 = all data)",
    )
    p.add_argument("--list", action="store_true", help="list the snapshot count of every market")
    return add_config_arg(p)


def verify_main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg)
    from .verify import run

    return run(cfg, hours=args.hours, list_all=args.list)


def quality_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--hours",
        type=float,
        default=0.0,
        metavar="N",
        help="check only the last N hours of snapshots (default 0 = all); freshness "
        "and coverage always look at now",
    )
    return add_config_arg(p)


def quality_main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg)
    from .quality import run

    return run(cfg, hours=args.hours)
