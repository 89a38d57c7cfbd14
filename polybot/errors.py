"""The project's exception hierarchy.

Every expected failure is a :class:`PolybotError` whose message is one plain
sentence naming the problem and the fix; :func:`polybot.cli.run_script` prints
that sentence and exits with ``exit_code`` (no traceback). Anything else is a
bug: its traceback goes to the log file.
"""

from __future__ import annotations


class PolybotError(Exception):
    """Base class of every expected failure."""

    exit_code = 1


class ConfigError(PolybotError):
    """The configuration is missing, malformed or out of bounds."""

    exit_code = 2


class DatabaseError(PolybotError):
    """The database is unreachable, not a SQLite file, corrupt or unwritable."""

    exit_code = 3
    # Set only by db.explain_sqlite_error (full | read-only | permissions | locked | damaged |
    # other); a bare annotation, so callers' getattr(exc, "cause", default) still sees it absent.
    cause: str


class DataError(PolybotError):
    """Stored or received data is malformed or insufficient for the job."""


class ExchangeError(PolybotError):
    """A call to Polymarket (or the simulator) failed."""

    exit_code = 4


class TemporaryExchangeError(ExchangeError):
    """A transient failure (connection error, timeout, 5xx, 425, 429): retry later."""


class ExchangeUnavailable(ExchangeError):
    """Retries were exhausted: the exchange is down or unreachable.

    ``attempts`` holds how many consecutive attempts failed, so a caller
    (the circuit breaker) can count them; ``last_status`` the HTTP status of the
    last attempt (None: it got no HTTP answer, or the caller did not say).
    """

    def __init__(self, message: str, attempts: int = 0, *, last_status: int | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status


class AuthenticationError(ExchangeError):
    """The exchange refused the credentials (HTTP 401/403)."""


class RequestRejected(ExchangeError):
    """A 4xx answer that retrying cannot fix (bad parameters, not found)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class OrderRejected(ExchangeError):
    """The exchange definitively refused an order."""


class OrderOutcomeUnknown(ExchangeError):
    """An order was sent but its outcome is unknown (timeout, 5xx): reconcile, never re-sign."""


class HaltedError(PolybotError):
    """Trading is halted (circuit breaker or emergency stop) until the operator restarts."""

    exit_code = 5


class AlreadyRunning(PolybotError):
    """Another instance holds the job's lock; this run exits cleanly."""

    exit_code = 0
