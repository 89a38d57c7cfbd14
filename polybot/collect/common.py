"""Shared helpers of the collection package: grid arithmetic, the exchange clock,
job locks and display formatting."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import DataError, ExchangeError

if TYPE_CHECKING:
    from ..exchange.client import PolymarketClient

log = logging.getLogger("polybot.collect")

# Exit codes of collect_market_data.py (also in its --help).
EXIT_OK = 0
EXIT_PARTIAL = 1  # cycle partial/failed for a reason other than the exchange
EXIT_CONFIG = 2
EXIT_DATABASE = 3
EXIT_EXCHANGE = 4  # exchange unreachable: nothing written for this cycle

COLLECT_LOCK = "collect_market_data.lock"
BACKFILL_LOCK = "backfill_market_data.lock"


def step_seconds(cfg: Config) -> int:
    """The collection interval in seconds (the snapshot grid step)."""
    return int(cfg.collection.interval_minutes) * 60


def floor_ts(ts: float, step: int) -> int:
    """``ts`` floored to the grid (a multiple of ``step`` seconds since the epoch)."""
    return int(ts) // step * step


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000.0
    return f"{n:,.1f} TB"


def fmt_money(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x:,.0f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def make_client(cfg: Config, **overrides: Any) -> PolymarketClient:
    """The read client for this config (imported lazily: scripts that only read the
    database must not pay for importing requests)."""
    from ..exchange.client import PolymarketClient

    return PolymarketClient.from_config(cfg, **overrides)


def exchange_now(cfg: Config, client: PolymarketClient | None = None) -> tuple[int, str]:
    """(now, source): the exchange clock (CLOB ``/time``) when it answers within a few
    seconds, else the local clock. Reports and checks compare snapshot timestamps with
    this, because the collector stamps snapshots with the exchange's clock."""
    own = client is None
    try:
        if client is None:
            client = make_client(cfg, timeout=(2.0, 3.0), max_retries=1)
        return int(client.get_server_time()), "exchange"
    except (ExchangeError, DataError) as exc:
        log.info("exchange clock unavailable (%s); using the local clock", exc)
        return int(time.time()), "local"
    finally:
        if own and client is not None:
            client.close()


def data_dir(cfg: Config) -> Path:
    return Path(cfg.database_path).parent


@contextlib.contextmanager
def job_lock(cfg: Config, name: str) -> Iterator[bool]:
    """Hold ``<data dir>/<name>`` (filelock, timeout 0). Yields False when another
    process holds it: the caller exits cleanly."""
    from filelock import FileLock, Timeout

    from ..db import ensure_private_dir

    ensure_private_dir(data_dir(cfg))
    lock = FileLock(str(data_dir(cfg) / name), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
