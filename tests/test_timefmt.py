"""polybot.timefmt: each time format, exact text for known moments (epochs checked with
``date -u -d @<epoch>``), None handling, and UTC whatever the machine's time zone."""

from __future__ import annotations

import re
import time

import pytest

from polybot import timefmt

T = 1_796_543_687  # 2026-12-06 07:54:47 UTC
LEAP = 1_709_251_199  # 2024-02-29 23:59:59 UTC
Y2K_EVE = 946_684_799  # 1999-12-31 23:59:59 UTC


@pytest.mark.parametrize(
    ("fmt", "ts", "text"),
    [
        (timefmt.iso_seconds, T, "2026-12-06T07:54:47Z"),
        (timefmt.iso_seconds, 0, "1970-01-01T00:00:00Z"),
        (timefmt.iso_seconds, LEAP, "2024-02-29T23:59:59Z"),
        (timefmt.iso_ms, T, "2026-12-06T07:54:47.000Z"),
        (timefmt.iso_ms, Y2K_EVE, "1999-12-31T23:59:59.000Z"),
        (timefmt.utc_text, T, "2026-12-06 07:54:47 UTC"),
        (timefmt.utc_text, LEAP, "2024-02-29 23:59:59 UTC"),
        (timefmt.utc_minute, T, "2026-12-06 07:54 UTC"),
        (timefmt.utc_hhmm, T, "07:54 UTC"),
        (timefmt.utc_day, T, "2026-12-06"),
        (timefmt.utc_day, LEAP, "2024-02-29"),
        (timefmt.file_stamp, T, "20261206_075447"),
        (timefmt.file_stamp, Y2K_EVE, "19991231_235959"),
        (timefmt.file_day, T, "20261206"),
    ],
)
def test_exact_text_for_known_epochs(fmt, ts, text):
    assert fmt(ts) == text


def test_fractions_of_a_second_are_dropped_not_rounded_up():
    # datetime.fromtimestamp(59.9999999) rounds to 00:01:00; the time has not come yet
    assert timefmt.iso_seconds(59.9999999) == "1970-01-01T00:00:59Z"
    assert timefmt.utc_text(86_399.9999999) == "1970-01-01 23:59:59 UTC"
    assert timefmt.utc_day(86_399.9999999) == "1970-01-01"
    assert timefmt.iso_seconds(T + 0.5) == "2026-12-06T07:54:47Z"


def test_none_is_the_missing_text():
    assert timefmt.iso_seconds(None) == "-"
    assert timefmt.utc_text(None) == "-"
    assert timefmt.utc_minute(None) == "-"
    assert timefmt.utc_text(None, missing="never") == "never"
    assert timefmt.iso_seconds(None, missing="") == ""
    assert timefmt.utc_text_or_none(None) is None
    assert timefmt.utc_text_or_none(T) == "2026-12-06 07:54:47 UTC"


def test_parse_utc_minute_reads_back_what_utc_minute_writes():
    assert timefmt.parse_utc_minute("2026-12-06 07:54 UTC") == T - 47
    assert timefmt.parse_utc_minute(timefmt.utc_minute(LEAP)) == LEAP - 59
    for bad in ("2026-12-06T07:54:47Z", "2026-12-06 07:54", ""):
        with pytest.raises(ValueError):
            timefmt.parse_utc_minute(bad)


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="time.tzset is POSIX only")
@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Asia/Kolkata", "Pacific/Kiritimati"])
def test_utc_whatever_the_machine_time_zone(tz, monkeypatch):
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert time.localtime(T).tm_hour != 7  # the zone really is in force (07:54 UTC is not local)
        assert timefmt.iso_seconds(T) == "2026-12-06T07:54:47Z"
        assert timefmt.utc_text(T) == "2026-12-06 07:54:47 UTC"
        assert timefmt.utc_day(LEAP) == "2024-02-29"
        assert timefmt.file_stamp(T) == "20261206_075447"
        assert timefmt.parse_utc_minute("2026-12-06 07:54 UTC") == T - 47
    finally:
        monkeypatch.undo()
        time.tzset()


# Modules that still turn an epoch into text themselves, each for a reason:
# a new module formatting times should use polybot.timefmt instead of growing this list.
FORMATS_ITS_OWN = {
    "polybot/timefmt.py": "the one place",
    "polybot/sim/world.py": "market questions in words ('December 6, 2026')",
    "polybot/ops/audit.py": "calendar dates of backups and a YYYYMM report name",
}


def test_times_are_formatted_in_timefmt_only():
    from pathlib import Path

    import polybot

    # strftime / fromtimestamp / gmtime calls, .isoformat() of a date, and f"{moment:%Y...}"
    copy = re.compile(r"strftime\(|\.fromtimestamp\(|gmtime\(|(?<!from)isoformat\(|\{[^{}'\"]+:%")
    root = Path(polybot.__file__).resolve().parent
    formatting = {
        path.relative_to(root.parent).as_posix()
        for path in root.rglob("*.py")
        if copy.search(path.read_text(encoding="utf-8"))
    }
    offenders = sorted(formatting - FORMATS_ITS_OWN.keys())
    assert offenders == [], f"format times with polybot.timefmt, not in place: {offenders}"
    stale = sorted(FORMATS_ITS_OWN.keys() - formatting)
    assert stale == [], f"these no longer format times themselves; remove them from FORMATS_ITS_OWN: {stale}"


def test_iso_week():
    assert timefmt.iso_week(T) == "2026-W49"  # Sunday 2026-12-06 closes the week of Monday 11-30
    assert timefmt.iso_week(1_798_761_600) == "2026-W53"  # Friday 2027-01-01: 2026 has 53 ISO weeks
    assert timefmt.iso_week(1_799_020_800) == "2027-W01"  # Monday 2027-01-04
