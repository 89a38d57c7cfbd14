"""Logging: one dated file per UTC day, secrets masked on every handler.

- File: ``logs/trading_system_YYYYMMDD.log`` (the name the checklist tails), opened in
  append mode so the bot, the collector and cron jobs can share it; a new file starts
  at UTC midnight; files older than ``retention_days`` (90) are deleted. ``logs/`` is
  700 and files are 640 (the checklist's permissions).
- Format: ``2026-11-24T18:00:00Z [INFO] polybot.engine: message`` (UTC).
- Masking: a :class:`RedactingFormatter` on every handler replaces configured secret
  values and token/key patterns (Telegram bot tokens inside httpx URLs, ``sk-…`` keys,
  ``api_key=…`` pairs, POLY_* auth headers) with ``****`` — after formatting, so
  tracebacks and child loggers are covered too. httpx/httpcore/urllib3 are quieted to
  WARNING because they log full request URLs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .config import Config

from .timefmt import ISO_SECONDS, file_day

LOG_PREFIX = "trading_system_"
FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
DATEFMT = ISO_SECONDS
MASK = "****"

_PATTERNS = [
    # Telegram bot token in a URL path or text: bot123456:ABC-def...
    (re.compile(r"(bot)?(\d{6,12}):[A-Za-z0-9_-]{25,}"), lambda m: (m.group(1) or "") + MASK),
    # OpenAI-style keys the checklist greps for
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), lambda m: "sk-" + MASK),
    # key=value / "key": "value" pairs for secret-looking names
    (
        re.compile(
            r"(?i)((?:api[_-]?key|api[_-]?secret|secret|passphrase|password|private[_-]?key|bot[_-]?token|token)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&]{4,})"
        ),
        lambda m: m.group(1) + MASK,
    ),
    # POLY_* auth headers
    (
        re.compile(r"(?i)(POLY_(?:API_KEY|PASSPHRASE|SIGNATURE)[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]+)"),
        lambda m: m.group(1) + MASK,
    ),
]

_SECRET_ENV_HINTS = ("TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "PRIVATE_KEY", "API_KEY")


class Redactor:
    """Masks known secret values and secret-looking patterns in text."""

    def __init__(self, values: Iterable[str] = ()):
        self.values: set[str] = set()
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        for v in values:
            if v and len(str(v)) >= 4:
                self.values.add(str(v))

    def add_from_environment(self, env: Mapping[str, str] | None = None) -> None:
        source = os.environ if env is None else env
        self.add(v for k, v in source.items() if any(h in k.upper() for h in _SECRET_ENV_HINTS))

    def __call__(self, text: str) -> str:
        for v in sorted(self.values, key=len, reverse=True):
            if v in text:
                text = text.replace(v, MASK)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Mask secrets in any text (also used for alert messages and exception sentences)."""
    return REDACTOR(str(text))


class RedactingFormatter(logging.Formatter):
    """Formats, then masks — so messages, arguments and tracebacks are all covered."""

    # staticmethod: a plain function here would be bound as a method (the stdlib relies on
    # time.localtime being a builtin that does not bind); the behaviour is the same.
    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        return REDACTOR(super().format(record))


class DailyFileHandler(logging.Handler):
    """Appends to ``<dir>/trading_system_YYYYMMDD.log`` for the current UTC day."""

    def __init__(self, log_dir: Path, retention_days: int = 90, prefix: str = LOG_PREFIX):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.retention_days = retention_days
        self.prefix = prefix
        self._day: str | None = None
        self._stream: TextIO | None = None

    def path_for(self, day: str) -> Path:
        return self.log_dir / f"{self.prefix}{day}.log"

    def _open(self, day: str) -> TextIO:
        if self._stream:
            self._stream.close()
        path = self.path_for(day)
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        stream = self._stream = os.fdopen(fd, "a", encoding="utf-8")
        if new and os.name == "posix":
            with contextlib.suppress(OSError):
                os.chmod(path, 0o640)  # umask 077 would otherwise give 600
        self._day = day
        prune_logs(self.log_dir, self.retention_days, prefix=self.prefix)
        return stream

    failure: str | None = None  # why the log file cannot be written now (None = fine)
    failed_records = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            day = file_day(record.created)
            stream = self._stream if day == self._day and self._stream is not None else self._open(day)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except OSError as exc:
            self._failed(exc)
        except Exception:
            self.handleError(record)
        else:
            if self.failure is not None:
                lost, self.failure, self.failed_records = self.failed_records, None, 0
                _notify_log_failure(None)
                stream.write(
                    self.format(
                        logging.makeLogRecord(
                            {
                                "name": "polybot.logs",
                                "levelno": logging.WARNING,
                                "levelname": "WARNING",
                                "msg": "log file writable again; %d records were lost while it was not",
                                "args": (lost,),
                            }
                        )
                    )
                    + "\n"
                )
                stream.flush()

    def _failed(self, exc: OSError) -> None:
        """A full or read-only logs/ filesystem: say so ONCE (stderr + listeners such as the
        engine, which halts, and the alert channels, which need no disk), never print a
        traceback per record (issue 15 #5); retry opening the file at the next record."""
        self.failed_records += 1
        try:
            if self._stream:
                self._stream.close()
        except OSError:
            pass
        self._stream = None
        if self.failure is not None:
            return
        what = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or type(exc).__name__)
        self.failure = (
            f"the log file in {self.log_dir} cannot be written ({what}); free space or fix "
            f"the permissions of {self.log_dir} — nothing is being logged until then"
        )
        try:
            sys.stderr.write(f"Error: {self.failure}.\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        _notify_log_failure(self.failure)

    def close(self) -> None:
        try:
            if self._stream:
                self._stream.close()
                self._stream = None
        finally:
            super().close()


_LOG_FAILURE_LISTENERS: list[Callable[[str | None], None]] = []


def on_log_failure(listener: Callable[[str | None], None]) -> None:
    """Call ``listener(sentence)`` when the log file stops being writable and
    ``listener(None)`` when it recovers. Listeners must not log (they run inside a handler)."""
    if listener not in _LOG_FAILURE_LISTENERS:
        _LOG_FAILURE_LISTENERS.append(listener)


def log_file_failure() -> str | None:
    """Why the configured log file cannot be written now, or None."""
    fh = _CONFIGURED.get("file")
    return getattr(fh, "failure", None)


def _notify_log_failure(sentence: str | None) -> None:
    for listener in list(_LOG_FAILURE_LISTENERS):
        with contextlib.suppress(Exception):  # a listener must never break logging
            listener(sentence)


def prune_logs(
    log_dir: Path, retention_days: int, *, prefix: str = LOG_PREFIX, now: float | None = None
) -> list[Path]:
    """Delete dated log files older than ``retention_days``; return what was deleted."""
    if retention_days <= 0:
        return []
    now = time.time() if now is None else now
    cutoff = file_day(now - retention_days * 86400)
    removed = []
    for path in Path(log_dir).glob(f"{prefix}*.log"):
        day = path.stem[len(prefix) :]
        if day.isdigit() and len(day) == 8 and day < cutoff:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def today_log_path(log_dir: Path) -> Path:
    return Path(log_dir) / f"{LOG_PREFIX}{file_day(time.time())}.log"


_CONFIGURED: dict[str, Any] = {}  # dir (resolved str), file (DailyFileHandler), console

# Attribute set on the handlers setup_logging adds, so a re-setup (and cli/ops.common,
# through getattr) can tell them from handlers someone else installed.
_MARKER = "_polybot"


def setup_logging(
    log_dir: Path | str = "logs",
    *,
    level: str = "INFO",
    console_level: str = "WARNING",
    secrets: Iterable[str] = (),
    retention_days: int = 90,
    name: str = "polybot",
) -> logging.Logger:
    """Configure the root logger once per process (idempotent) and return ``name``'s logger."""
    from .db import ensure_private_dir

    log_dir = Path(log_dir)
    REDACTOR.add(secrets)
    REDACTOR.add_from_environment()
    root = logging.getLogger()
    key = str(log_dir.resolve())
    if _CONFIGURED.get("dir") != key:
        for h in list(root.handlers):
            if getattr(h, _MARKER, False):
                root.removeHandler(h)
                h.close()
        ensure_private_dir(log_dir)
        formatter = RedactingFormatter(FORMAT, DATEFMT)
        fh = DailyFileHandler(log_dir, retention_days)
        fh.setFormatter(formatter)
        setattr(fh, _MARKER, True)
        root.addHandler(fh)
        ch = logging.StreamHandler(sys.stderr)
        ch.setFormatter(formatter)
        # Records logged with extra={"console": False} go to the file only (e.g. the
        # error sentence run_script already prints once).
        ch.addFilter(lambda record: getattr(record, "console", True))
        setattr(ch, _MARKER, True)
        root.addHandler(ch)
        _CONFIGURED.update(dir=key, file=fh, console=ch)
    _CONFIGURED["file"].setLevel(level.upper())
    _CONFIGURED["console"].setLevel(console_level.upper())
    root.setLevel(min(logging.getLevelName(level.upper()), logging.getLevelName(console_level.upper())))
    for noisy in ("httpx", "httpcore", "urllib3", "telegram", "waitress", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(name)


def setup_logger(
    name: str = "polybot", config_path: str | None = None, *, console_level: str = "INFO"
) -> logging.Logger:
    """The checklist's ``from logger import setup_logger; logger = setup_logger()``.

    Uses log_dir, log_level and secrets from config.yaml when it loads; otherwise
    ``logs/`` in the current directory at INFO.
    """
    from .config import load_config
    from .errors import ConfigError

    log_dir, level, secrets, retention = Path("logs"), "INFO", [], 90
    try:
        cfg = load_config(config_path, require_mode_secrets=False)
        log_dir, level, secrets = cfg.log_dir, cfg.log_level, cfg.secret_values()
        retention = cfg.maintenance.log_retention_days
    except ConfigError:
        pass
    return setup_logging(
        log_dir,
        level=level,
        console_level=console_level,
        secrets=secrets,
        retention_days=retention,
        name=name,
    )


def configure_from(cfg: Config, *, console_level: str = "WARNING", name: str = "polybot") -> logging.Logger:
    """Configure logging from a loaded Config (what every script does)."""
    return setup_logging(
        cfg.log_dir,
        level=cfg.log_level,
        console_level=console_level,
        secrets=cfg.secret_values(),
        retention_days=cfg.maintenance.log_retention_days,
        name=name,
    )
