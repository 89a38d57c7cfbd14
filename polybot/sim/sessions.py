"""Per-account heartbeat sessions (the dead-man switch) and the exchange-wide trading
mode (RULES.md §4-§5).

Heartbeat ids: py-sdk ``models/clob/order_heartbeats.py`` — an accepted heartbeat
returns ``{"heartbeat_id": ...}`` to carry on the next call; a wrong id answers 400
``OrderHeartbeatMismatchResponse`` = ``{"error_msg": "Invalid Heartbeat ID",
"heartbeat_id": <expected>}``. Trading modes: Docs ``/resources/error-codes`` and
``/trading/matching-engine`` (docs/dev/api_notes.md §8).
"""

from __future__ import annotations

import hashlib
import uuid

from .api import ApiError

CANCEL_ONLY_MSG = "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."
DISABLED_MSG = "Trading is currently disabled. Check polymarket.com for updates"
POST_ONLY_MSG = "post-only mode: only post-only orders and cancels are allowed"
MODES = ("normal", "cancel-only", "post-only", "disabled")


def _new_id(ex) -> str:
    ex._hb_seq += 1
    digest = hashlib.sha256(f"{ex.sim.seed}:heartbeat:{ex._hb_seq}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def heartbeat(ex, acct, heartbeat_id, real_now: float) -> dict:
    """Accept the heartbeat (and rotate the id) or raise the 400 carrying the expected id."""
    sent = "" if heartbeat_id is None else str(heartbeat_id)
    expected = acct.heartbeat_id
    if expected is None and sent != "":
        expected = ""  # no session yet: the first heartbeat carries no id
    if sent != (expected or ""):
        raise ApiError(
            400,
            "Invalid Heartbeat ID",
            body={"error_msg": "Invalid Heartbeat ID", "heartbeat_id": expected or ""},
        )
    acct.heartbeat_at = real_now
    acct.heartbeat_id = _new_id(ex)
    return {"heartbeat_id": acct.heartbeat_id}


def check_heartbeats(ex, real_now: float) -> None:
    """Cancel every open order of an account whose armed session missed its window."""
    timeout = ex.sim.heartbeat_timeout
    for acct in ex.accounts.values():
        if acct.heartbeat_at is not None and real_now - acct.heartbeat_at > timeout:
            acct.heartbeat_at = None  # disarmed until the next accepted heartbeat
            ex.cancel_where(lambda o, a=acct: o.account is a, "heartbeat expired")


def set_mode(ex, mode: str, seconds=None, t: float = 0.0) -> dict:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    ex.mode = mode
    ex.mode_until = None if (mode == "normal" or seconds in (None, "")) else t + float(seconds)
    return mode_json(ex, t)


def current_mode(ex, t: float) -> str:
    if ex.mode_until is not None and t >= ex.mode_until:
        ex.mode, ex.mode_until = "normal", None
    return ex.mode


def mode_json(ex, t: float) -> dict:
    return {"mode": current_mode(ex, t), "until": None if ex.mode_until is None else int(ex.mode_until)}


def require_orders_allowed(ex, t: float, bodies: list) -> None:
    """503 for new orders in cancel-only / disabled mode, and for non-post-only orders in
    post-only mode (the whole request, as a global error)."""
    mode = current_mode(ex, t)
    if mode == "disabled":
        raise ApiError(503, DISABLED_MSG)
    if mode == "cancel-only":
        raise ApiError(503, CANCEL_ONLY_MSG)
    if mode == "post-only" and not all(isinstance(b, dict) and b.get("postOnly") is True for b in bodies):
        left = max(1, int(round(ex.mode_until - t))) if ex.mode_until is not None else 120
        raise ApiError(
            503,
            POST_ONLY_MSG,
            body={"error": POST_ONLY_MSG, "code": "post_only_mode", "retry_after_seconds": left},
        )


def require_not_disabled(ex, t: float) -> None:
    """Cancels and heartbeats work in every mode but ``disabled``."""
    if current_mode(ex, t) == "disabled":
        raise ApiError(503, DISABLED_MSG)
