"""The ``alerts`` table: recording, throttling and the retry queue.

Rows (schema v1): ``timestamp`` (the alert's time), ``level``, ``key``, ``message``,
``channels`` (JSON list: "log" plus the channels routed for the level), ``delivery``
(JSON ``{channel: "sent" | "pending" | "failed: …" | "skipped: …"}``), ``status`` and
``repeat_count``.

Throttling, per key, across processes (the check and the insert share one
``BEGIN IMMEDIATE`` transaction): an alert whose key was last recorded (not throttled)
less than ``throttle_minutes`` ago is not delivered; it is counted in ONE row per window
with status ``throttled`` whose ``repeat_count`` is the number of suppressed repeats and
whose ``message`` is the latest one. The next alert of that key after the window carries
the summary ("… repeated 37 times since 14:05 UTC") and is delivered normally. So
``SUM(repeat_count)`` over a key is the number of times it fired.

Status: ``sent`` (every routed channel delivered), ``partial`` (some did), ``pending``
(none yet, retry scheduled), ``failed`` (none did and no retry is left), ``logged`` (no
channel but the log), ``throttled``. Retry bookkeeping lives in the delivery JSON under
keys starting with ``_`` (``_retry`` channels, ``_attempts``, ``_next`` and ``_lease``
epoch seconds, ``_t0`` first attempt), so any process can pick up a due row: it claims it
with a compare-and-swap on the delivery text, so two processes never send it twice.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ..db import atomic
from ..timefmt import utc_hhmm

LEASE_SECONDS = 180  # a claimed row is someone's for this long
MAX_ATTEMPTS = 12  # 30 s, 1, 2, 4, 8, 16, 32 min, then hourly — about 5 h in all
MAX_AGE_SECONDS = 24 * 3600  # never retry an alert older than a day
BACKOFF_BASE = 30.0
BACKOFF_CAP = 3600.0


@dataclass
class Recorded:
    row_id: int | None
    throttled: bool
    message: str  # the message to deliver (with the repeat summary, if any)
    repeats: int = 0


@dataclass
class DueRow:
    id: int
    timestamp: int
    level: str
    key: str
    message: str
    delivery: dict[str, Any]
    raw_delivery: str


def backoff(attempts: int) -> float:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def summary_line(repeats: int, since_ts: int, throttle_minutes: float) -> str:
    times = "time" if repeats == 1 else "times"
    return (
        f"(This alert repeated {repeats} {times} since {utc_hhmm(since_ts)}; repeats are sent "
        f"at most once per {throttle_minutes:g} min.)"
    )


def record(
    conn: sqlite3.Connection,
    *,
    level: str,
    key: str,
    message: str,
    channels: list[str],
    ts: int,
    throttle_minutes: float,
    real_now: float,
    lease: bool = True,
) -> Recorded:
    """Throttle check + insert, in one transaction.

    ``lease``: the new row is reserved for the caller, who delivers it now; without it the
    row is left for any process's retry (``claim_due``) at once.
    """
    window = float(throttle_minutes) * 60
    with atomic(conn):
        last = conn.execute(
            "SELECT id, timestamp FROM alerts WHERE key = ? AND status != 'throttled' "
            "ORDER BY id DESC LIMIT 1",
            (key,),
        ).fetchone()
        if last is not None and window > 0 and ts - last["timestamp"] < window:
            agg = conn.execute(
                "SELECT id FROM alerts WHERE key = ? AND status = 'throttled' AND id > ? "
                "ORDER BY id DESC LIMIT 1",
                (key, last["id"]),
            ).fetchone()
            info = json.dumps({"last_seen": ts, "throttled_by": last["id"]})
            if agg is not None:
                conn.execute(
                    "UPDATE alerts SET repeat_count = repeat_count + 1, message = ?, level = ?, "
                    "delivery = ? WHERE id = ?",
                    (message, level, info, agg["id"]),
                )
                return Recorded(agg["id"], True, message)
            cur = conn.execute(
                "INSERT INTO alerts(timestamp, level, key, message, channels, delivery, status, "
                "repeat_count) VALUES (?,?,?,?,?,?,?,1)",
                (ts, level, key, message, "[]", info, "throttled"),
            )
            return Recorded(cur.lastrowid, True, message)
        repeats = 0
        if last is not None:
            row = conn.execute(
                "SELECT COALESCE(SUM(repeat_count), 0) FROM alerts WHERE key = ? AND "
                "status = 'throttled' AND id > ?",
                (key, last["id"]),
            ).fetchone()
            repeats = int(row[0])
        if repeats:
            message = f"{message}\n{summary_line(repeats, last['timestamp'], throttle_minutes)}"
        delivery: dict[str, Any] = {ch: ("sent" if ch == "log" else "pending") for ch in channels}
        external = [ch for ch in channels if ch != "log"]
        if external:
            delivery.update(
                _retry=external,
                _attempts=0,
                _next=real_now,
                _lease=real_now + LEASE_SECONDS if lease else 0,
                _t0=real_now,
            )
        status = "pending" if external else "logged"
        cur = conn.execute(
            "INSERT INTO alerts(timestamp, level, key, message, channels, delivery, status, "
            "repeat_count) VALUES (?,?,?,?,?,?,?,1)",
            (ts, level, key, message, json.dumps(channels), json.dumps(delivery), status),
        )
        return Recorded(cur.lastrowid, False, message, repeats)


def insert_delivered(
    conn: sqlite3.Connection,
    *,
    level: str,
    key: str,
    message: str,
    channels: list[str],
    ts: int,
    results: dict[str, Any],
) -> int:
    """Record an alert delivered synchronously (test alerts): no throttling, no retry."""
    delivery = {ch: r.status for ch, r in results.items()}
    status = _status(channels, delivery, retrying=False)
    with atomic(conn):
        cur = conn.execute(
            "INSERT INTO alerts(timestamp, level, key, message, channels, delivery, status, "
            "repeat_count) VALUES (?,?,?,?,?,?,?,1)",
            (ts, level, key, message, json.dumps(channels), json.dumps(delivery), status),
        )
    assert cur.lastrowid is not None  # set by every INSERT
    return cur.lastrowid


def _status(channels: list[str], delivery: dict[str, Any], *, retrying: bool) -> str:
    tried = [ch for ch in channels if ch != "log" and not str(delivery.get(ch, "")).startswith("skipped")]
    if not tried:
        return "logged"
    sent = [ch for ch in tried if delivery.get(ch) == "sent"]
    if len(sent) == len(tried):
        return "sent"
    if sent:
        return "partial"
    return "pending" if retrying else "failed"


def finish(conn: sqlite3.Connection, row_id: int, results: dict[str, Any], *, real_now: float) -> str:
    """Store the results of one delivery attempt; schedule or give up the retries. Returns status."""
    with atomic(conn):
        row = conn.execute("SELECT channels, delivery FROM alerts WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            return "missing"
        channels = json.loads(row["channels"] or "[]")
        delivery = json.loads(row["delivery"] or "{}")
        attempts = int(delivery.get("_attempts", 0)) + 1
        t0 = float(delivery.get("_t0", real_now))
        retry, wait = [], 0.0
        for ch, res in results.items():
            delivery[ch] = res.status
            if not res.ok and not res.permanent and not res.skipped:
                retry.append(ch)
                wait = max(wait, float(res.retry_after or 0))
        # channels still owed from before but not attempted this time stay owed
        for ch in delivery.get("_retry", []):
            if ch not in results and ch not in retry and delivery.get(ch) != "sent":
                retry.append(ch)
        for key in ("_retry", "_attempts", "_next", "_lease", "_t0"):
            delivery.pop(key, None)
        if retry and (attempts >= MAX_ATTEMPTS or real_now - t0 > MAX_AGE_SECONDS):
            for ch in retry:
                delivery[ch] = f"{delivery.get(ch, 'failed')} (gave up after {attempts} attempts)"
            retry = []
        if retry:
            delivery.update(
                _retry=retry, _attempts=attempts, _t0=t0, _next=real_now + max(backoff(attempts), wait)
            )
        status = _status(channels, delivery, retrying=bool(retry))
        conn.execute(
            "UPDATE alerts SET delivery = ?, status = ? WHERE id = ?", (json.dumps(delivery), status, row_id)
        )
    return status


def claim_due(conn: sqlite3.Connection, *, real_now: float, limit: int = 20) -> list[DueRow]:
    """Rows whose retry is due and not leased by another process; claims (leases) them."""
    rows = conn.execute(
        "SELECT id, timestamp, level, key, message, delivery FROM alerts "
        "WHERE status IN ('pending', 'partial') ORDER BY id DESC LIMIT 500"
    ).fetchall()
    claimed: list[DueRow] = []
    for r in rows:
        try:
            d = json.loads(r["delivery"] or "{}")
        except ValueError:
            continue
        if not d.get("_retry") or float(d.get("_next", 0)) > real_now or float(d.get("_lease", 0)) > real_now:
            continue
        d["_lease"] = real_now + LEASE_SECONDS
        new = json.dumps(d)
        with atomic(conn):
            cur = conn.execute(
                "UPDATE alerts SET delivery = ? WHERE id = ? AND delivery = ?", (new, r["id"], r["delivery"])
            )
        if cur.rowcount == 1:
            claimed.append(DueRow(r["id"], r["timestamp"], r["level"], r["key"], r["message"], d, new))
            if len(claimed) >= limit:
                break
    return list(reversed(claimed))  # oldest first
