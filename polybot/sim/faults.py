"""Fault injection for the simulator (set at start or changed at run time).

A fault set is a list of rules; each rule applies to requests whose path starts
with its ``path`` prefix (the full path including the API prefix, e.g.
``/clob/books``; empty = every API request). Admin requests (``/_sim/...``) are
never faulted, so a test can always clear faults.

Spec syntax (CLI ``--faults`` and ``POST /_sim/faults {"spec": ...}``): rules
separated by ``;``, each a comma-separated list of ``key=value``:

  error_rate=F          fraction F (0-1) of requests answer 500 {"error": ...}
  burst=S:N[:R]         the next N requests answer status S (500/502/503/429/425...)
                        with a ``Retry-After: R`` header (R seconds, default 1)
  latency_ms=N          every request waits N ms before being answered
  timeout=S[:N]         the next N requests (default: all) hang S seconds before
                        answering normally — set S above the client's read timeout
  malformed=F           fraction F of JSON responses are truncated mid-document
  outage=1              every request gets its connection closed without any
                        response (the client sees "connection reset / remote end
                        closed"); the listening socket stays open
  bad_market=K          Gamma listings also carry bogus market objects, one per
                        kind K: missing_id | bad_price | unparsable | all
                        (inserted in the first page of each listing)
  path=/prefix          scope of this rule (e.g. path=/clob/books)

Example: ``error_rate=0.1,latency_ms=200;burst=429:5:1,path=/clob/books``.
Randomness (error_rate, malformed) comes from a generator seeded by the
simulator seed, so a run is reproducible for the same request sequence.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass

BAD_MARKET_KINDS = ("missing_id", "bad_price", "unparsable")


@dataclass
class FaultRule:
    path: str = ""
    error_rate: float = 0.0
    burst_status: int = 0
    burst_left: int = 0
    burst_retry_after: int = 1
    latency_ms: int = 0
    timeout_s: float = 0.0
    timeout_left: int = -1  # -1: every matching request
    malformed: float = 0.0
    outage: bool = False
    bad_market: str = ""

    def matches(self, path: str) -> bool:
        return path.startswith(self.path) if self.path else True


@dataclass
class Decision:
    outage: bool = False
    sleep_s: float = 0.0
    status: int = 0
    retry_after: int | None = None
    malformed: bool = False


def _fraction(key: str, value) -> float:
    f = float(value)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"fault {key}={value} must be a fraction between 0 and 1")
    return f


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"fault outage={value} must be 1/0 or true/false")


def _set_burst(r: FaultRule, value: object) -> None:
    """``burst=STATUS:COUNT[:RETRY_AFTER]`` (or a list of those values)."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"fault burst={value} must be STATUS:COUNT[:RETRY_AFTER], e.g. burst=429:5:1")
    r.burst_status, r.burst_left = int(parts[0]), int(parts[1])
    r.burst_retry_after = int(parts[2]) if len(parts) == 3 else 1
    if not 400 <= r.burst_status <= 599:
        raise ValueError(f"fault burst status {r.burst_status} must be an HTTP error status (4xx/5xx)")


def _set_timeout(r: FaultRule, value: object) -> None:
    """``timeout=SECONDS[:COUNT]`` (or a list of those values); no count: every request."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(":")
    r.timeout_s = float(parts[0])
    r.timeout_left = int(parts[1]) if len(parts) > 1 else -1


def rule_from_dict(d: dict) -> FaultRule:
    """Build one rule from a dict using the spec keys (values may be strings or numbers)."""
    r = FaultRule()
    for key, value in d.items():
        if key == "path":
            r.path = str(value or "")
            if r.path and not r.path.startswith("/"):
                raise ValueError(f"fault path={value} must start with '/', e.g. path=/clob/books")
        elif key == "error_rate":
            r.error_rate = _fraction(key, value)
        elif key == "malformed":
            r.malformed = _fraction(key, value)
        elif key == "latency_ms":
            r.latency_ms = max(0, int(float(value)))
        elif key == "outage":
            r.outage = _bool(value)
        elif key == "burst":
            _set_burst(r, value)
        elif key == "timeout":
            _set_timeout(r, value)
        elif key == "bad_market":
            kind = str(value)
            if kind not in BAD_MARKET_KINDS + ("all", ""):
                raise ValueError(
                    f"fault bad_market={value} must be one of {', '.join(BAD_MARKET_KINDS)} or all"
                )
            r.bad_market = kind
        else:
            raise ValueError(
                f"unknown fault '{key}'; known: error_rate, burst, latency_ms, timeout, "
                f"malformed, outage, bad_market, path"
            )
    return r


def parse_spec(spec: str) -> list:
    """Parse ``key=value,...;key=value,...`` into a list of rules (see the module docstring)."""
    rules = []
    for chunk in (spec or "").split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        d = {}
        for item in chunk.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" not in item:
                raise ValueError(f"fault '{item}' must be key=value, e.g. error_rate=0.1")
            k, v = item.split("=", 1)
            d[k.strip()] = v.strip()
        rules.append(rule_from_dict(d))
    return rules


class Faults:
    """The active rule list; thread-safe; decides what happens to each request."""

    def __init__(self, seed: int = 0, rules=None):
        self._lock = threading.Lock()
        self._rng = random.Random(int(seed) ^ 0xFA17)
        self.rules: list = list(rules or [])

    def set(self, rules) -> None:
        with self._lock:
            self.rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def clear(self) -> None:
        self.set([])

    def describe(self) -> list:
        with self._lock:
            default = asdict(FaultRule())
            return [
                {k: v for k, v in asdict(r).items() if v != default[k] or k == "path"} for r in self.rules
            ]

    def bad_market_kinds(self, path: str) -> list[str]:
        with self._lock:
            kinds: list[str] = []
            for r in self.rules:
                if r.bad_market and r.matches(path):
                    kinds.extend(BAD_MARKET_KINDS if r.bad_market == "all" else (r.bad_market,))
            return list(dict.fromkeys(kinds))

    def decide(self, path: str) -> Decision:
        d = Decision()
        with self._lock:
            for r in self.rules:
                if not r.matches(path):
                    continue
                if r.outage:
                    d.outage = True
                    return d
                if r.timeout_s > 0 and r.timeout_left != 0:
                    d.sleep_s += r.timeout_s
                    if r.timeout_left > 0:
                        r.timeout_left -= 1
                d.sleep_s += r.latency_ms / 1000.0
                if not d.status and r.burst_left > 0:
                    r.burst_left -= 1
                    d.status, d.retry_after = r.burst_status, r.burst_retry_after
                if not d.status and r.error_rate > 0 and self._rng.random() < r.error_rate:
                    d.status = 500
                if r.malformed > 0 and self._rng.random() < r.malformed:
                    d.malformed = True
        return d
