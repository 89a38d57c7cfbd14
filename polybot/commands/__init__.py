"""The ``polybot`` command: one subcommand per top-level script.

``polybot backtest --start-date ...`` and ``python backtest.py --start-date ...`` run the same
parser and the same ``main`` through :func:`polybot.cli.run` (``umask 077``, exit codes, one plain
sentence instead of a traceback). :data:`COMMANDS` is the one table of commands: the name, the
root script that is its shim, a one-line summary for ``polybot --help``, and where the parser and
the ``main`` live (``"module:function"``, imported only when that command runs, so ``polybot
--help`` stays fast). docs/dev/commands.md has the table and how to add a command.

This module imports only the standard library at import time, so that the Python version check
in :func:`require_python` runs before any code that needs 3.11.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

PROG = "polybot"


@dataclass(frozen=True)
class Command:
    name: str  # the subcommand: polybot <name>
    script: str | None  # the top-level shim (python <script>), None for a package-only command
    summary: str  # one line for polybot --help
    parser: str  # "module:function" returning the argparse parser (no argument)
    main: str  # "module:function" taking the parsed arguments, returning the exit code
    description: str | None = None  # "module:NAME" of a text passed to the parser function

    def build_parser(self) -> argparse.ArgumentParser:
        build = _resolve(self.parser)
        parser: argparse.ArgumentParser = build(_resolve(self.description)) if self.description else build()
        return parser

    def main_function(self) -> Callable[[argparse.Namespace], int | None]:
        main: Callable[[argparse.Namespace], int | None] = _resolve(self.main)
        return main


_D = "polybot.commands.data"
_O = "polybot.ops.cli"
_T = "polybot.commands.trading"
_A = "polybot.commands.alerting"

# Grouped as in the operator's checklist. Keep docs/dev/commands.md in step (a test compares them).
COMMANDS: tuple[Command, ...] = (
    # set-up
    Command("init-config", None, "Write config.yaml from the bundled example", f"{_O}:init_config_parser", f"{_O}:init_config_main"),
    Command("validate-config", "validate_config.py", "Validate config.yaml", f"{_O}:validate_config_parser", "polybot.validation:main"),
    Command("init-db", "initialize_db.py", "Create or upgrade the database", f"{_O}:init_db_parser", "polybot.ops.init_db:main"),
    Command("test-api", "test_api_connectivity.py", "Test the connection to the Polymarket APIs", f"{_T}:api_connectivity_parser", f"{_T}:api_connectivity_main"),
    # data
    Command("collect", "collect_market_data.py", "Collect market data (one 5-minute cycle)", "polybot.collect.main:collect_parser", "polybot.collect.main:collect_main", f"{_D}:COLLECT"),
    Command("verify-collection", "verify_data_collection.py", "Verify data collection (cycles, gaps)", "polybot.collect.main:verify_parser", "polybot.collect.main:verify_main", f"{_D}:VERIFY"),
    Command("data-quality", "data_quality_check.py", "Data quality check of the collected data", "polybot.collect.main:quality_parser", "polybot.collect.main:quality_main", f"{_D}:QUALITY"),
    Command("export-data", "export_data.py", "Export market data to Parquet or CSV, one file per day", f"{_D}:export_parser", "polybot.ops.export:main", f"{_D}:EXPORT"),
    # validation
    Command("correlation", "correlation_analysis.py", "Correlation matrix of the tracked markets", "polybot.analysis.cli:correlation_parser", "polybot.analysis.cli:correlation_main", f"{_D}:CORRELATION"),
    Command("plot-correlations", "plot_correlations.py", "Heatmap of the correlation matrix", "polybot.analysis.cli:plot_parser", "polybot.analysis.cli:plot_main", f"{_D}:PLOT"),
    Command("backtest", "backtest.py", "Backtest the strategy on stored snapshots", "polybot.backtest.cli:build_parser", "polybot.backtest.cli:main", f"{_D}:BACKTEST"),
    Command("test-risk-limits", "test_risk_limits.py", "Check that every risk limit is enforced", f"{_T}:risk_limits_parser", "polybot.engine.scenarios_risk:main"),
    Command("test-breakers", "test_circuit_breakers.py", "Trip each circuit breaker, check the bot stops", f"{_T}:breakers_parser", "polybot.engine.scenarios_breakers:main"),
    # trading
    Command("trade", "trading_bot.py", "The trading bot (paper or live)", f"{_T}:trade_parser", "polybot.engine.bot:main"),
    Command("paper-report", "paper_trading_report.py", "Paper trading results", f"{_T}:paper_report_parser", "polybot.engine.paper_report:main"),
    Command("dashboard", "dashboard.py", "The web dashboard", f"{_T}:dashboard_parser", "polybot.dashboard.server:main"),
    # alerts
    Command("test-alerts", "test_alerts.py", "Send a test alert through every channel", f"{_A}:test_alerts_parser", "polybot.alerts.cli:test_alerts_main"),
    Command("telegram-chat-id", "get_telegram_chat_id.py", "Print the Telegram chat id(s) for config.yaml", f"{_A}:chat_id_parser", "polybot.alerts.cli:chat_id_main"),
    Command("notify", "telegram_notifier.py", "Send a Telegram notification now", f"{_A}:notifier_parser", "polybot.alerts.cli:notifier_main"),
    # operations
    Command("health", "health_check.py", "Health check (cron every 5 minutes)", f"{_O}:health_parser", "polybot.ops.health:main"),
    Command("backup", "backup_database.py", "Back up (or list, restore) the database", f"{_O}:backup_parser", "polybot.ops.backup:main"),
    Command("audit-backups", "audit_backups.py", "Monthly backup audit", f"{_O}:audit_parser", "polybot.ops.audit:main"),
    Command("maintain-db", "maintain_database.py", "Weekly database maintenance", f"{_O}:maintenance_parser", "polybot.ops.maintenance:main"),
    Command("daily-report", "daily_report.py", "Daily (or weekly) performance report", f"{_O}:daily_report_parser", "polybot.ops.reports:main"),
    Command("scheduler", "run_scheduler.py", "Run every periodic job in one process", f"{_O}:scheduler_parser", "polybot.ops.scheduler:main"),
    Command("pre-launch", "pre_launch_check.py", "Final go-live verification (GO / NO-GO)", f"{_O}:prelaunch_parser", "polybot.ops.prelaunch:main"),
    # the bundled simulator
    Command("demo", "demo.py", "The whole system on the bundled simulator", f"{_T}:demo_parser", "polybot.demo:main"),
)  # fmt: skip

# Top-level modules that are imported, not run: the checklist's `from logger import setup_logger`.
LIBRARY_SHIMS = ("logger.py",)


def _resolve(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def get(name: str) -> Command:
    """The command called ``name`` (KeyError if there is none)."""
    for cmd in COMMANDS:
        if cmd.name == name:
            return cmd
    raise KeyError(name)


def for_script(script: str) -> Command:
    """The command whose shim is ``script`` (a file name such as ``backtest.py``)."""
    for cmd in COMMANDS:
        if cmd.script == script:
            return cmd
    raise KeyError(script)


def require_python() -> None:
    """Exit with one sentence on an interpreter older than 3.11 (the package needs 3.11)."""
    # noqa reason: the check exists for interpreters older than the target version ruff assumes.
    if sys.version_info < (3, 11):  # noqa: UP036  # pragma: no cover - only on old interpreters
        major, minor = sys.version_info[:2]
        sys.stderr.write(
            f"polybot needs Python 3.11 or newer (this is Python {major}.{minor}); install Python 3.11+ "
            f"and recreate the virtualenv (python3.11 -m venv .venv).\n"
        )
        sys.exit(2)


def prepare_process() -> None:
    """Process-wide settings every command needs before it imports its modules.

    One BLAS thread: on a 2-core machine OpenBLAS's threads make the strategies' small matrix
    products ~20x slower. It must be set before anything imports numpy, and child processes
    (the scheduler's jobs, the scenario runs) inherit it.
    """
    require_python()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _execute(cmd: Command, argv: Sequence[str], prog: str | None) -> int:
    prepare_process()
    from polybot.cli import run

    parser = cmd.build_parser()
    if prog is not None:
        parser.prog = prog
    return run(cmd.main_function(), parser, argv)


def run_command(name: str, argv: Sequence[str] | None = None) -> int:
    """``polybot <name> argv`` in this process; returns the exit code."""
    cmd = get(name)
    return _execute(cmd, list(sys.argv[1:] if argv is None else argv), f"{PROG} {cmd.name}")


def run_script(script: str) -> NoReturn:
    """The body of a top-level shim: ``python <script> args`` (usage line says ``<script>``)."""
    sys.exit(_execute(for_script(script), sys.argv[1:], None))


def usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = [
        f"usage: {PROG} [-h] [--version] COMMAND [ARGS ...]",
        "",
        "polybot — automated trading on Polymarket prediction markets. Run it in the project",
        "directory (config.yaml, data/, logs/ live there; or pass --config / set POLYBOT_CONFIG).",
        "",
        "commands (python SCRIPT ARGS does the same):",
    ]
    for cmd in COMMANDS:
        shim = f"  [{cmd.script}]" if cmd.script else ""
        lines.append(f"  {cmd.name:<{width}}  {cmd.summary}{shim}")
    lines += ["", f"Help for one command: {PROG} COMMAND --help"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``polybot`` console script: ``polybot COMMAND ARGS``."""
    require_python()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(usage())
        return 2
    first, rest = args[0], args[1:]
    if first in ("-h", "--help", "help") and not rest:
        sys.stdout.write(usage())
        return 0
    if first == "help" and rest:  # polybot help backtest = polybot backtest --help
        first, rest = rest[0], ["--help"]
    if first == "--version":
        from polybot import __version__

        print(f"{PROG} {__version__}")
        return 0
    try:
        cmd = get(first)
    except KeyError:
        sys.stderr.write(_unknown(first))
        return 2
    return _execute(cmd, rest, f"{PROG} {cmd.name}")


def _unknown(word: str) -> str:
    scripts = {c.script: c.name for c in COMMANDS if c.script}
    if word in scripts or f"{word}.py" in scripts:
        hint = f" (the command for {word.removesuffix('.py')}.py is '{scripts.get(word) or scripts[word + '.py']}')"
    else:
        close = difflib.get_close_matches(word, [c.name for c in COMMANDS], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{PROG}: unknown command '{word}'{hint}; run '{PROG} --help' for the list.\n"


def child_argv(name: str, *args: str, python: str | None = None) -> list[str]:
    """The argv that runs ``polybot <name> args`` in a child process with this interpreter."""
    get(name)  # a typo fails here, not in the child
    return [python or sys.executable, "-m", "polybot", name, *args]


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) made to import the polybot that is running.

    Installed, the child finds polybot in site-packages anyway; from a checkout that is not
    installed (the tests, ``python trading_bot.py`` in a clone) the package's import location is
    added to ``PYTHONPATH`` so the child runs this very code. This is where the *code* lives, never
    where the operator's data lives (that is the working directory / ``--config``).
    """
    out = dict(os.environ if env is None else env)
    root = import_root()
    if root is not None:
        paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in paths:
            out["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return out


def import_root() -> str | None:
    """The directory the running polybot package is imported from: a clone's root (which also
    holds the top-level scripts) or site-packages. Where the *code* lives, never the data."""
    spec = importlib.util.find_spec("polybot")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.dirname(os.path.abspath(locations[0])) if locations else None
