"""Shared field helpers for the Polymarket parsers (parse.py, parse_account.py).

Helpers raise :class:`Bad` for a field-level problem; :func:`guarded` turns it (and any
KeyError/TypeError/ValueError from a missing or mistyped field) into ONE
:class:`polybot.errors.DataError` sentence naming the record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, overload

from polybot.errors import DataError
from polybot.exchange.json_decode import loads
from polybot.exchange.models import ParseIssue
from polybot.money import to_micro

# Cursors that mean "no more pages" on the CLOB ("LTE=" is base64 of "-1").
END_CURSORS = frozenset({"", "LTE=", "-1"})

_PARSE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, InvalidOperation)


class Bad(Exception):
    """Internal: a field-level problem; turned into a DataError naming the record."""


# ----------------------------------------------------------------------------- helpers


def _fail(kind: str, rid: str, reason: str) -> DataError:
    return DataError(
        f"{kind} {rid} is malformed ({reason}); it is skipped — "
        "re-fetch it later or report it if it persists."
    )


def guarded(kind: str, rid: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` and turn any field-level failure into one DataError sentence."""
    try:
        return fn()
    except DataError:
        raise
    except Bad as exc:
        raise _fail(kind, rid, str(exc)) from None
    except _PARSE_ERRORS as exc:
        raise _fail(kind, rid, f"{type(exc).__name__}: {exc}") from None


def collect(
    records: Iterable[Any], parse: Callable[[Any], Any], rid: Callable[[Any, int], str]
) -> tuple[list, list[ParseIssue]]:
    """Parse every record, skipping the bad ones with a ParseIssue each."""
    out: list = []
    issues: list[ParseIssue] = []
    for i, rec in enumerate(records):
        try:
            out.append(parse(rec))
        except DataError as exc:
            issues.append(ParseIssue(rid(rec, i), str(exc)))
    return out, issues


def record_id(*keys: str) -> Callable[[Any, int], str]:
    def _rid(rec: Any, i: int) -> str:
        if isinstance(rec, dict):
            for k in keys:
                v = rec.get(k)
                if v not in (None, ""):
                    return str(v)
        return f"#{i}"

    return _rid


def as_list(v: Any, name: str) -> list:
    """A list, or a JSON-encoded string holding a list (Gamma's ⚠ fields). None → []."""
    if v is None or v == "":
        return []
    if isinstance(v, str):
        try:
            v = loads(v)
        except ValueError:
            raise Bad(f"{name} is not valid JSON: {v[:60]!r}") from None
        if v is None:
            return []
    if not isinstance(v, list):
        raise Bad(f"{name} is not a list")
    return v


@overload
def num(v: Any, name: str, default: float) -> float: ...
@overload
def num(v: Any, name: str, default: None = None) -> float | None: ...
def num(v: Any, name: str, default: float | None = None) -> float | None:
    """A finite float from a number or numeric string; None/"" → default."""
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise Bad(f"{name} is a boolean, not a number")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise Bad(f"{name} is not a number: {v!r}") from None
    if not math.isfinite(f):
        raise Bad(f"{name} is not finite: {v!r}")
    return f


def req_num(v: Any, name: str) -> float:
    """A required finite float (None/"" is an error)."""
    f = num(v, name)
    if f is None:
        raise Bad(f"{name} is missing")
    return f


@overload
def price(v: Any, name: str, default: float) -> float: ...
@overload
def price(v: Any, name: str, default: None = None) -> float | None: ...
def price(v: Any, name: str, default: float | None = None) -> float | None:
    """A price in [0, 1]."""
    f = num(v, name, default)
    if f is not None and not 0.0 <= f <= 1.0:
        raise Bad(f"{name} {f} is outside [0, 1]")
    return f


def req_price(v: Any, name: str) -> float:
    """A required price in [0, 1] (None/"" is an error)."""
    f = price(v, name)
    if f is None:
        raise Bad(f"{name} is missing")
    return f


def micro(v: Any, name: str, default: int = 0) -> int:
    """Exact integer micro-units from a decimal string/number; None/"" → default."""
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise Bad(f"{name} is a boolean, not a number")
    try:
        return to_micro(v)
    except ValueError:
        raise Bad(f"{name} is not a number: {v!r}") from None


def price_micro(v: Any, name: str) -> int:
    m = micro(v, name)
    if not 0 <= m <= 1_000_000:
        raise Bad(f"{name} {v} is outside [0, 1]")
    return m


def flag(v: Any, default: bool = False) -> bool:
    if v is None or v == "":
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def text(v: Any) -> str:
    return "" if v is None else str(v)


def opt_text(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def opt_int(v: Any, name: str) -> int | None:
    f = num(v, name)
    return None if f is None else int(f)


def epoch(v: Any, name: str = "timestamp") -> int | None:
    """UTC epoch seconds from an ISO-8601 string (``Z``, ``+00``, date-only) or an epoch
    number/string in seconds or milliseconds. None/""/0 → None."""
    if v is None or v == "" or v == 0 or v == "0":
        return None
    is_number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if is_number or (isinstance(v, str) and v.strip().lstrip("-").replace(".", "", 1).isdigit()):
        f = req_num(v, name)  # v is neither None nor "" here
        return int(f // 1000) if f > 1e11 else int(f)
    if not isinstance(v, str):
        raise Bad(f"{name} is not a date: {v!r}")
    s = v.strip()
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        raise Bad(f"{name} is not an ISO date: {v!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return int(d.timestamp())


def tag_labels(tags: Any) -> tuple[str, ...]:
    """Gamma tags are objects ``{id,label,slug}``; CLOB tags are plain strings."""
    out = []
    for t in tags or ():
        if isinstance(t, dict):
            label = t.get("label") or t.get("slug")
            if label:
                out.append(str(label))
        elif t not in (None, ""):
            out.append(str(t))
    return tuple(out)


def payout_vector(prices: list) -> tuple[float, ...] | None:
    """Exact payouts from final prices: each 0, 0.5 or 1 and summing to 1, else None."""
    if not prices:
        return None
    try:
        ds = [Decimal(str(p).strip()) for p in prices]
    except (InvalidOperation, ValueError):
        return None
    allowed = (Decimal(0), Decimal("0.5"), Decimal(1))
    if any(d not in allowed for d in ds) or sum(ds) != 1:
        return None
    return tuple(float(d) for d in ds)


def next_cursor(obj: Any) -> str | None:
    """The next-page cursor of a CLOB ``{data, next_cursor}`` page, Gamma keyset envelope
    or Data-API v2 ``pagination``; None on the last page."""
    if not isinstance(obj, dict):
        return None
    cur = obj.get("next_cursor")
    pag = obj.get("pagination")
    if cur is None and isinstance(pag, dict):
        if pag.get("has_more") is False:
            return None
        cur = pag.get("next_cursor")
    if cur is None:
        return None
    cur = str(cur)
    return None if cur in END_CURSORS else cur


def records_of(obj: Any, *keys: str) -> list:
    """The record list of a bare array or of an envelope under one of ``keys``/"data"."""
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for k in (*keys, "data"):
            v = obj.get(k)
            if isinstance(v, list):
                return v
        raise DataError(
            f"Response has none of the expected keys {', '.join((*keys, 'data'))}; "
            "check that the base URL points at the right Polymarket API."
        )
    raise DataError(
        "Response is not a JSON list or object; check that the base URL points at the right Polymarket API."
    )
