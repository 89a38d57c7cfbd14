"""Request/response plumbing shared by the simulator's API modules."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias, overload

# (HTTP method, path regex, handler(sim, req, t, **path groups) -> JSON body or Response)
Route: TypeAlias = tuple[str, str, Callable[..., Any]]


class ApiError(Exception):
    """An HTTP error answer: ``{"error": message}`` (or ``body``) with ``status``."""

    def __init__(self, status: int, message: str, body: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.body = body if body is not None else {"error": message}
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str  # path inside the API family, e.g. "/book" (no query)
    full_path: str  # e.g. "/clob/book"
    query: dict  # name -> [values]
    headers: Any  # case-insensitive mapping (http.client.HTTPMessage)
    body: bytes = b""

    @overload
    def q(self, name: str, default: str) -> str: ...
    @overload
    def q(self, name: str, default: None = None) -> str | None: ...
    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def qs(self, name: str) -> list[str]:
        """All values of a repeatable parameter (``id=1&id=2`` or ``id=1,2``)."""
        out: list[str] = []
        for v in self.query.get(name, []):
            out.extend(x for x in v.split(",") if x != "")
        return out

    @overload
    def q_bool(self, name: str, default: bool) -> bool: ...
    @overload
    def q_bool(self, name: str, default: None = None) -> bool | None: ...
    def q_bool(self, name: str, default: bool | None = None) -> bool | None:
        v = self.q(name)
        if v is None or v == "":
            return default
        return v.strip().lower() in ("1", "true", "yes")

    @overload
    def q_float(self, name: str, default: float) -> float: ...
    @overload
    def q_float(self, name: str, default: None = None) -> float | None: ...
    def q_float(self, name: str, default: float | None = None) -> float | None:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return float(v)
        except ValueError:
            raise ApiError(
                422, f"invalid {name}", {"type": "validation error", "error": f"invalid {name}"}
            ) from None

    @overload
    def q_int(self, name: str, default: int, status: int = 400) -> int: ...
    @overload
    def q_int(self, name: str, default: None = None, status: int = 400) -> int | None: ...
    def q_int(self, name: str, default: int | None = None, status: int = 400) -> int | None:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return int(float(v))
        except ValueError:
            raise ApiError(status, f"invalid {name}") from None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self, error: str = "Invalid payload") -> Any:
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, error) from None


@dataclass
class Response:
    body: Any = None
    status: int = 200
    headers: dict = field(default_factory=dict)
    raw: bytes | None = None  # pre-encoded JSON body (hot paths)


def num_str(x: float, places: int = 6) -> str:
    """0.50 -> "0.5", 800.00 -> "800" (decimal strings as the CLOB prints them)."""
    s = f"{x:.{places}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def micro_str(micro: int) -> str:
    """Micro-units -> decimal string ("12.5", "800")."""
    if micro < 0:
        return "-" + micro_str(-micro)
    q, r = divmod(micro, 1_000_000)
    return f"{q}.{r:06d}".rstrip("0") if r else str(q)


_PRICE_TABLES: dict = {}


def price_table(nt: int) -> list:
    """["0", "0.01", ..., "1"] for ticks of 1/nt (cached)."""
    table = _PRICE_TABLES.get(nt)
    if table is None:
        places = len(str(nt)) - 1
        table = _PRICE_TABLES[nt] = [num_str(k / nt, places) for k in range(nt + 1)]
    return table


def price_str(ticks: int, nt: int) -> str:
    """Price in ticks of 1/nt -> "0.5", "0.001" (table lookup: this is on the hot path)."""
    return price_table(nt)[ticks] if 0 <= ticks <= nt else num_str(ticks / nt, len(str(nt)) - 1)


def encode_cursor(offset: int) -> str:
    """CLOB-style cursor: base64 of the offset ("MA==" = 0, "LTE=" = -1 = end)."""
    return base64.b64encode(str(int(offset)).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid next_cursor") from None


END_CURSOR = "LTE="
