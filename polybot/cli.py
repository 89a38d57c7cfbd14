"""The one wrapper every command goes through (``polybot COMMAND``, ``python SCRIPT.py``, both
dispatched by :mod:`polybot.commands`).

``run(main, parser, argv)`` sets ``umask 077`` (so the database, backups and logs
are created owner-only), parses the arguments, runs ``main(args)`` and maps the
project's exceptions to exit codes with one plain sentence and no traceback. An
unexpected exception is a bug: its traceback goes to the log file and the operator
gets one sentence saying where to find it.
"""

from __future__ import annotations

import argparse
import errno
import io
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from .errors import PolybotError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def add_config_arg(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help="config file (default: $POLYBOT_CONFIG or ./config.yaml)",
    )
    return parser


def _say(message: str) -> None:
    from .logs import redact

    sys.stderr.write(redact(message).rstrip() + "\n")
    sys.stderr.flush()


def _ensure_utf8_stdout() -> None:
    """✓/✗ lines must print on Windows consoles and cron pipes alike."""
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):  # replaced (tests, pythonw): leave it alone
            continue
        try:
            if stream.encoding and stream.encoding.lower() not in ("utf-8", "utf8"):
                stream.reconfigure(encoding="utf-8", errors="replace")
        except ValueError:
            pass


def _logging_configured() -> bool:
    return any(getattr(h, "_polybot", False) for h in logging.getLogger().handlers)


def _database_error_sentence(text: str) -> str:
    """The one sentence for an SQLite error, by what the operator has to do about it."""
    low = text.lower()
    if "full" in low:
        return (
            "Error: the disk is full (SQLite could not write); free disk space and run again — "
            "the interrupted transaction was rolled back."
        )
    if "locked" in low or "busy" in low:
        return (
            "Error: the database stayed locked for 30 s by another process; check for a stuck job "
            "(python health_check.py) and run again."
        )
    if "readonly" in low or "unable to open" in low:
        # Not damage: restoring a backup here would overwrite a healthy database.
        return (
            f"Error: the database cannot be written ({text}); make the data directory and the "
            f"database file writable by this user — the database itself is not damaged."
        )
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return (
            f"Error: the database file is damaged ({text}); stop the bot and the collector, check it "
            f"with python maintain_database.py and restore the newest good backup with "
            f"python backup_database.py --restore FILE."
        )
    return (
        f"Error: database failure ({text}); run python maintain_database.py to check integrity, "
        f"and restore with python backup_database.py --restore FILE if it is corrupt."
    )


def _os_error_sentence(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return (
            f"Error: the filesystem holding {exc.filename or 'that path'} is mounted read-only; "
            f"remount it read-write and run again — nothing was changed."
        )
    if exc.errno == errno.ENOSPC:
        return f"Error: the disk is full ({exc.filename or 'writing'}); free disk space and run again."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"Error: permission denied for {exc.filename}; check the owner and mode of that path."
    return f"Error: {exc.strerror or exc} ({exc.filename or ''}); check the path and try again."


def run(
    main: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> int:
    """Run ``main`` and return the exit code (``run_script`` exits with it)."""
    os.umask(0o077)
    _ensure_utf8_stdout()
    args = parser.parse_args(argv)
    log = logging.getLogger("polybot.cli")
    try:
        code = main(args)
        return EXIT_OK if code is None else int(code)
    except PolybotError as exc:
        if _logging_configured():  # else logging's last-resort handler would print it twice
            log.error("%s: %s", type(exc).__name__, exc, extra={"console": False})
        _say(f"Error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("Interrupted.")
        return EXIT_INTERRUPTED
    except sqlite3.DatabaseError as exc:
        if _logging_configured():
            log.exception("database error", extra={"console": False})
        _say(_database_error_sentence(str(exc)))
        return 3
    except OSError as exc:
        if _logging_configured():
            log.exception("OS error", extra={"console": False})
        _say(_os_error_sentence(exc))
        return EXIT_FAILURE
    except Exception as exc:  # a bug: keep the traceback in the log, one sentence on screen
        missing = _missing_package(exc)
        if missing:  # not a bug: an install without one of requirements.txt's packages
            _say(
                f"Error: the Python package {missing} is not installed in this environment (requirements.txt "
                f"pins it); run pip install -r requirements.txt and try again."
            )
            return EXIT_FAILURE
        if _logging_configured():
            log.exception("Unexpected error", extra={"console": False})
        handlers = _logging_configured()
        where = "the log file in logs/" if handlers else "no log file (logging was not set up yet)"
        _say(f"Unexpected error: {type(exc).__name__}: {exc}. The traceback is in {where}; please report it.")
        if not handlers:
            import traceback

            traceback.print_exc()
        return EXIT_FAILURE


def _missing_package(exc: Exception) -> str | None:
    """The third-party package an import failed to find (never our own modules: that is a bug)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    return None if top == "polybot" else top


def run_script(
    main: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> NoReturn:
    sys.exit(run(main, parser, argv))
