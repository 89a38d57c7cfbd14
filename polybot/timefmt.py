"""How polybot writes a moment as text: every format once, named for what it is for.

All times are epoch seconds and always rendered in UTC, whatever the machine's time zone
(``TZ``) says. Fractions of a second are dropped (``int(ts)``), never rounded up.

Formats that are stored, compared or sent (keep them byte-identical):

- :func:`iso_seconds` ``2026-12-06T07:54:47Z`` — JSON reports (``generated_at``), API query
  parameters (Gamma ``end_date_min``), the simulator's API payloads, log lines;
- :func:`iso_ms` ``2026-12-06T07:54:47.000Z`` — the simulator's Gamma fields that the real API
  sends with milliseconds (``createdAt``, ``updatedAt``, ``startDate``);
- :func:`utc_day` ``2026-12-06`` — a UTC day (backtest JSON ``daily_equity``, review-log headings);
- :func:`file_stamp` ``20261206_075447`` and :func:`file_day` ``20261206`` — parts of file names
  (backups, reports, dated log files), which sort in time order.

Formats for people (screens, reports, alerts):

- :func:`utc_text` ``2026-12-06 07:54:47 UTC`` — a moment to the second;
- :func:`utc_minute` ``2026-12-06 07:54 UTC`` — a moment to the minute (periods, windows; also
  the correlation report's ``start`` / ``end``, read back with :func:`parse_utc_minute`);
- :func:`utc_hhmm` ``07:54 UTC`` — a time of day;
- :func:`iso_week` ``2026-W49`` — an ISO week (Telegram's /weekly).

``None`` (a moment that is unknown or never happened) becomes ``missing`` (default ``"-"``);
:func:`utc_text_or_none` keeps it ``None`` for JSON, where the page shows its own word.
"""

from __future__ import annotations

from datetime import UTC, datetime

MISSING = "-"
ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"  # strftime pattern of iso_seconds (also the log lines' time, polybot.logs)
_UTC_MINUTE = "%Y-%m-%d %H:%M UTC"  # written by utc_minute, read back by parse_utc_minute


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


# ----------------------------------------------------------------------- stored / sent
def iso_seconds(ts: float | None, missing: str = MISSING) -> str:
    """``2026-12-06T07:54:47Z``: ISO 8601 to the second, for JSON, API parameters and logs."""
    return missing if ts is None else _utc(ts).strftime(ISO_SECONDS)


def iso_ms(ts: float) -> str:
    """``2026-12-06T07:54:47.000Z``: ISO 8601 with (zero) milliseconds, as Gamma writes its
    ``createdAt`` / ``updatedAt`` / ``startDate`` fields (the simulator's payloads)."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"


def utc_day(ts: float) -> str:
    """``2026-12-06``: the UTC day of ``ts``."""
    return _utc(ts).strftime("%Y-%m-%d")


def file_stamp(ts: float) -> str:
    """``20261206_075447``: a moment in a file name (sorts in time order)."""
    return _utc(ts).strftime("%Y%m%d_%H%M%S")


def file_day(ts: float) -> str:
    """``20261206``: a UTC day in a file name (dated logs, weekly reports)."""
    return _utc(ts).strftime("%Y%m%d")


# ----------------------------------------------------------------------- for people
def utc_text(ts: float | None, missing: str = MISSING) -> str:
    """``2026-12-06 07:54:47 UTC``: a moment to the second, for screens, reports and alerts."""
    return missing if ts is None else _utc(ts).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_text_or_none(ts: float | None) -> str | None:
    """:func:`utc_text`, or ``None`` when the moment is unknown (JSON for the dashboard)."""
    return None if ts is None else utc_text(ts)


def utc_minute(ts: float | None, missing: str = MISSING) -> str:
    """``2026-12-06 07:54 UTC``: a moment to the minute (report periods, windows, cycles)."""
    return missing if ts is None else _utc(ts).strftime(_UTC_MINUTE)


def parse_utc_minute(text: str) -> int:
    """Epoch seconds of a :func:`utc_minute` text (the correlation report's ``end``, read back by
    the backtester); ``ValueError`` when ``text`` is not in that format."""
    return int(datetime.strptime(text, _UTC_MINUTE).replace(tzinfo=UTC).timestamp())


def iso_week(ts: float) -> str:
    """``2026-W49``: the ISO week (Monday to Sunday, UTC) of ``ts``."""
    return _utc(ts).strftime("%G-W%V")


def utc_hhmm(ts: float) -> str:
    """``07:54 UTC``: the time of day."""
    return _utc(ts).strftime("%H:%M UTC")
