"""The operator's controls, stored in ``bot_state`` (no migration, no file): the entries pause and
the close requests sent from Telegram.

**Pause** ("entries paused"): the engine opens no new position and adds to none, while it keeps
managing what it holds (stop losses, exits, settlement, reconciliation). It survives a restart
because it is a database row, set and cleared by Telegram ``/pause`` / ``/resume`` or by
``python trading_bot.py --pause [--reason TEXT]`` / ``--resume`` (whether the bot runs or not).
Keys: ``paused`` ("1"/"0"), ``paused_reason``, ``paused_by``, ``paused_at`` (epoch s) and
``paused_skipped`` (entries the engine turned down since the pause began).

**Close requests**: the Telegram listener does not own the exchange, so a confirmed ``/close``
writes ``close_request.<id>`` (JSON: target ``"all"`` or a list of token ids, a label, who, when);
the engine claims it at its next iteration (a DELETE that only one claimant wins), sells through
its exit path and writes ``close_result.<id>`` (JSON: status, text). A request older than
:data:`CLOSE_TTL` seconds when the engine sees it is expired, never acted on. Ids come from
``close_request_seq``.

Every reader here tolerates a database without these keys (returns "not paused", no requests).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from . import db
from .timefmt import utc_text

PAUSED = "paused"
PAUSED_REASON = "paused_reason"
PAUSED_BY = "paused_by"
PAUSED_AT = "paused_at"
PAUSED_SKIPPED = "paused_skipped"

CLOSE_TTL = 120  # seconds: a close request the engine has not picked up by then never fires
CLOSE_REQUEST = "close_request."
CLOSE_RESULT = "close_result."
CLOSE_SEQ = "close_request_seq"
RESULT_KEEP = 86_400  # close results older than a day are deleted when a new one is written

# close result statuses
DONE = "done"  # every order was placed (see the text for what filled)
PARTIAL = "partial"  # some positions could not be sold (the text says why)
NOTHING = "nothing"  # nothing to sell (no such position any more)
EXPIRED = "expired"  # older than CLOSE_TTL: not acted on
FAILED = "failed"  # the engine stopped on an error while closing (the text says which)


@dataclass(frozen=True)
class Pause:
    reason: str
    by: str
    since: int | None
    skipped: int = 0


def _state(conn: sqlite3.Connection, key: str) -> str | None:
    try:
        return db.get_state(conn, key)
    except sqlite3.OperationalError:  # no bot_state table (a database before schema 2)
        return None


def read_pause(conn: sqlite3.Connection) -> Pause | None:
    """The stored pause, None when entries are not paused."""
    if _state(conn, PAUSED) != "1":
        return None
    since = _state(conn, PAUSED_AT)
    skipped = _state(conn, PAUSED_SKIPPED)
    return Pause(
        _state(conn, PAUSED_REASON) or "",
        _state(conn, PAUSED_BY) or "",
        int(since) if since and since.isdigit() else None,
        int(skipped) if skipped and skipped.isdigit() else 0,
    )


def set_pause(conn: sqlite3.Connection, *, reason: str, by: str, now: int) -> Pause | None:
    """Pause entries (or update the reason of a pause in force, keeping its start). Returns the
    pause that was in force before, None when entries were running."""
    with db.atomic(conn):
        before = read_pause(conn)
        db.set_state(conn, PAUSED, "1", now=now)
        db.set_state(conn, PAUSED_REASON, reason.strip()[:300], now=now)
        db.set_state(conn, PAUSED_BY, by[:200], now=now)
        if before is None:
            db.set_state(conn, PAUSED_AT, str(int(now)), now=now)
            db.set_state(conn, PAUSED_SKIPPED, "0", now=now)
    return before


def clear_pause(conn: sqlite3.Connection, *, now: int) -> Pause | None:
    """Resume entries. Returns the pause that was lifted, None when entries were not paused."""
    with db.atomic(conn):
        before = read_pause(conn)
        if before is not None:
            for key, value in ((PAUSED, "0"), (PAUSED_REASON, ""), (PAUSED_BY, ""), (PAUSED_AT, "")):
                db.set_state(conn, key, value, now=now)
    return before


def count_skipped(conn: sqlite3.Connection, n: int, *, now: int) -> None:
    """Add ``n`` entries turned down because of the pause (shown by /status)."""
    if n <= 0:
        return
    with db.atomic(conn):
        if _state(conn, PAUSED) != "1":
            return
        have = _state(conn, PAUSED_SKIPPED)
        total = (int(have) if have and have.isdigit() else 0) + n
        db.set_state(conn, PAUSED_SKIPPED, str(total), now=now)


def pause_detail(p: Pause) -> str:
    """``since 2026-… UTC by @alice: news due (2 skipped)`` (times in UTC), for status lines."""
    since = f"since {utc_text(p.since)}" if p.since else "since an unknown time"
    by = f" by {p.by}" if p.by else ""
    reason = f": {p.reason}" if p.reason else ""
    return f"{since}{by}{reason} ({p.skipped} skipped)"


def pause_sentence(p: Pause) -> str:
    """``entries paused since 2026-… UTC by @alice: news due`` (times in UTC)."""
    since = f" since {utc_text(p.since)}" if p.since else ""
    by = f" by {p.by}" if p.by else ""
    reason = f": {p.reason}" if p.reason else ""
    return f"entries paused{since}{by}{reason}"


# ----------------------------------------------------------------------------- close requests
@dataclass(frozen=True)
class CloseRequest:
    id: int
    target: str | list[str]  # "all" or token ids
    label: str  # what the operator confirmed, for the result text
    requested_at: int
    by: str


@dataclass(frozen=True)
class CloseResult:
    id: int
    status: str
    text: str
    at: int


def add_close_request(
    conn: sqlite3.Connection, *, target: str | list[str], label: str, by: str, now: int
) -> int:
    """Store a confirmed close request; returns its id."""
    with db.atomic(conn):
        seq = _state(conn, CLOSE_SEQ)
        rid = (int(seq) if seq and seq.isdigit() else 0) + 1
        db.set_state(conn, CLOSE_SEQ, str(rid), now=now)
        body = {"target": target, "label": label, "requested_at": int(now), "by": by}
        db.set_state(conn, f"{CLOSE_REQUEST}{rid}", json.dumps(body), now=now)
    return rid


def pending_close_requests(conn: sqlite3.Connection) -> list[CloseRequest]:
    """Requests not yet claimed, oldest first (an unreadable row is skipped)."""
    try:
        rows = conn.execute(
            "SELECT key, value FROM bot_state WHERE key LIKE ? ESCAPE '\\'",
            (CLOSE_REQUEST.replace("_", "\\_") + "%",),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    out = []
    for key, value in rows:
        try:
            d = json.loads(value)
            rid = int(str(key)[len(CLOSE_REQUEST) :])
            target = d["target"] if d["target"] == "all" else [str(t) for t in d["target"]]
            out.append(
                CloseRequest(
                    rid, target, str(d.get("label", "")), int(d["requested_at"]), str(d.get("by", ""))
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda r: r.id)


def claim_close_request(conn: sqlite3.Connection, rid: int) -> bool:
    """Take the request off the queue; True for the one caller that did (engine or expiry)."""
    with db.atomic(conn):
        n = conn.execute("DELETE FROM bot_state WHERE key = ?", (f"{CLOSE_REQUEST}{rid}",)).rowcount
    return n == 1


def record_close_result(conn: sqlite3.Connection, rid: int, status: str, text: str, *, now: int) -> None:
    with db.atomic(conn):
        db.set_state(conn, f"{CLOSE_RESULT}{rid}", json.dumps({"status": status, "text": text}), now=now)
        conn.execute(
            "DELETE FROM bot_state WHERE key LIKE ? ESCAPE '\\' AND updated_at < ?",
            (CLOSE_RESULT.replace("_", "\\_") + "%", int(now) - RESULT_KEEP),
        )


def read_close_result(conn: sqlite3.Connection, rid: int) -> CloseResult | None:
    try:
        row = conn.execute(
            "SELECT value, updated_at FROM bot_state WHERE key = ?", (f"{CLOSE_RESULT}{rid}",)
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    if row is None:
        return None
    try:
        d = json.loads(row[0])
        return CloseResult(rid, str(d["status"]), str(d["text"]), int(row[1]))
    except (ValueError, KeyError, TypeError):
        return None


def expire_close_request(conn: sqlite3.Connection, req: CloseRequest, *, now: int, why: str) -> bool:
    """Claim and mark ``req`` expired (nothing sold); False when someone else claimed it first."""
    if not claim_close_request(conn, req.id):
        return False
    record_close_result(
        conn,
        req.id,
        EXPIRED,
        f"Close #{req.id} ({req.label}) expired {why}; nothing was sold. Send /close again if you still mean it.",
        now=now,
    )
    return True
