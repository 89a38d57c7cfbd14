"""Parsers of the set-up and operations commands (``polybot validate-config``, ``init-db``,
``health``, ``backup``, ``audit-backups``, ``maintain-db``, ``daily-report``, ``scheduler``,
``pre-launch`` and their top-level scripts; the table is polybot/commands/__init__.py). The
descriptions are what ``--help`` prints."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..cli import add_config_arg

VALIDATE_CONFIG = """Validate config.yaml: YAML syntax, keys, environment variables, risk bounds, secrets, paths.

Prints one ✓/✗ line per check and exits 0 only if every check passes.
Example: python validate_config.py --config config.yaml
"""

INIT_DB = """Create or upgrade the database (data/polymarket.db): tables, schema version, permissions.

Safe to run twice: it never deletes data; only missing migrations are applied.
Example: python initialize_db.py
"""

HEALTH = """Health check (cron every 5 minutes): bot process + heartbeat, API connectivity, database,
last trade, critical errors, disk space — one [OK]/[WARN]/[FAIL] line each.
Exit code 0 = all OK, 1 = a warning, 2 = a failure (a FAIL also sends a critical alert).
  python health_check.py
"""

BACKUP = """Back up the database safely while the bot and the collector keep writing.

Default: a verified copy in backups/polymarket_backup_YYYYMMDD_HHMMSS.db (UTC), made with SQLite's
backup API (never cp), checked with integrity_check, 600, sha256 recorded; old backups beyond
backup.retention_days are deleted; the off-site copy runs if configured.
  python backup_database.py
  python backup_database.py --list
  python backup_database.py --restore backups/polymarket_backup_20260206_020000.db
"""

AUDIT = """Monthly backup audit: list backups, check each one's integrity and sha256, test-restore the
newest into a temporary directory (tables and rows), compare the count with the retention policy,
check the off-site copy; writes reports/backup_audit_YYYYMM.txt. Exit code 1 if anything is wrong.
  python audit_backups.py
"""

MAINTENANCE = """Weekly database maintenance: integrity check (critical alert and stop if it fails), WAL
checkpoint, VACUUM (only with 2x the database size free), ANALYZE, PRAGMA optimize, optional
retention tiers of market snapshots (full depth, then top of book, then hourly bars; maintenance:
in config.yaml), deletion of logs older than 90 days. Never runs at the same time as a backup
(shared lock).
  python maintain_database.py
  python maintain_database.py --dry-run   # what the retention tiers would do; nothing changes
  python maintain_database.py --migrate   # move market data to the compact layout (schema 6)
"""

DAILY_REPORT = """Daily performance report: P&L (24 h / 7 days / total, realised and unrealised), open positions,
trades, win rate, unusual trades (loss > 10%), alerts and errors of the day, last backup, data
freshness. Printed, appended to reports/daily_review_log.md and sent as the daily summary alert.
  python daily_report.py
  python daily_report.py --weekly     # the weekly P&L report
"""

SCHEDULER = """Run every periodic job in one process (an alternative to cron / Task Scheduler — use one,
not both): collection and health check every 5 minutes, backup daily 02:00, maintenance Sunday
03:00, daily report 18:00 (weekly report Sunday 18:00), backup audit monthly — times from
schedule: in config.yaml, in local time. Each job runs as its own subprocess with a timeout.
  python run_scheduler.py                       # run until Ctrl-C
  python run_scheduler.py --once backup         # run one job now
  python run_scheduler.py --list
  python run_scheduler.py --print-crontab       # the crontab lines for this workspace
  python run_scheduler.py --print-windows-tasks # the schtasks commands
  python run_scheduler.py --print-systemd       # systemd units: bot, scheduler, dashboard
"""

PRELAUNCH = """Final go-live verification (the checklist's "Final Go-Live Checklist" as code): config valid for
live, no hardcoded secrets, permissions, database integrity, a recent verified backup, 7+ days of
fresh data with quality PASS, correlation report, 30-day backtest PASS, 7+ days of clean paper
trading, risk limits, risk-limit and circuit-breaker scenarios, alert channels, monitoring, disk
space, no emergency stop. Prints one ✓/✗ line each, then GO or a NO-GO list with the fixes.
  python pre_launch_check.py
  python pre_launch_check.py --send-test    # also send a test critical alert
"""


def _parser(description: str, *, raw: bool = True) -> argparse.ArgumentParser:
    if not raw:
        return add_config_arg(argparse.ArgumentParser(description=description))
    return add_config_arg(
        argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    )


def validate_config_parser() -> argparse.ArgumentParser:
    return _parser(VALIDATE_CONFIG, raw=False)


def init_db_parser() -> argparse.ArgumentParser:
    return _parser(INIT_DB, raw=False)


def health_parser() -> argparse.ArgumentParser:
    p = _parser(HEALTH)
    p.add_argument("--no-alert", action="store_true", help="print only; send no alert on FAIL")
    return p


def backup_parser() -> argparse.ArgumentParser:
    from .backup import add_arguments

    p = _parser(BACKUP)
    add_arguments(p)
    return p


def audit_parser() -> argparse.ArgumentParser:
    return _parser(AUDIT)


def maintenance_parser() -> argparse.ArgumentParser:
    p = _parser(MAINTENANCE)
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=600,
        metavar="SECONDS",
        help="wait this long for a running backup to finish (default 600)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="run the checks and print what the retention tiers would thin, bar and delete; change nothing",
    )
    p.add_argument(
        "--migrate",
        action="store_true",
        help="move the market data to the compact layout of schema 6 (backup first, resumable; "
        "the trading bot must be stopped) instead of the weekly maintenance",
    )
    p.add_argument(
        "--no-vacuum",
        action="store_true",
        help="with --migrate: no VACUUM at the end (the old table's space stays free inside the file "
        "until the weekly maintenance)",
    )
    p.add_argument(
        "--batch-rows",
        type=int,
        default=50_000,
        metavar="N",
        help="with --migrate: rows moved per transaction (default 50000)",
    )
    return p


def daily_report_parser() -> argparse.ArgumentParser:
    p = _parser(DAILY_REPORT)
    p.add_argument("--weekly", action="store_true", help="the weekly P&L report instead of the daily one")
    return p


def scheduler_parser() -> argparse.ArgumentParser:
    from .scheduler import add_arguments

    p = _parser(SCHEDULER)
    add_arguments(p)
    return p


def prelaunch_parser() -> argparse.ArgumentParser:
    p = _parser(PRELAUNCH)
    p.add_argument(
        "--send-test",
        action="store_true",
        help="send a test critical alert through the configured channels and check its delivery",
    )
    return p


INIT_CONFIG = """Write config.yaml from the annotated example shipped with polybot.

The same file as the checklist's `cp config.yaml.example config.yaml`, for an installed polybot
(pip install .) that has no clone to copy from. An existing file is never overwritten.
Example: polybot init-config   (then edit config.yaml and run python validate_config.py)
"""


def init_config_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="polybot init-config",
        description=INIT_CONFIG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--output", metavar="PATH", default="config.yaml", help="where to write (default: config.yaml)"
    )
    return p


def init_config_main(args: argparse.Namespace) -> int:
    from ..config import example_config_text
    from ..errors import ConfigError

    path = Path(args.output)
    exists = ConfigError(f"{path} already exists; edit it, or delete it first to start from the example.")
    if path.exists():
        raise exists
    # Whole file or nothing: written to a temporary file, then linked into place (a link never
    # replaces an existing file, unlike a rename).
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(example_config_text())
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise exists from None
    finally:
        tmp.unlink(missing_ok=True)
    print(f"Wrote {path} (mode 600) from the bundled example; edit it, then run: polybot validate-config")
    return 0
