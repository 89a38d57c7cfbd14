"""The system-health panel: :func:`polybot.ops.health.run_health_checks` in a background thread.

The health check calls the exchange (up to a few seconds) and runs ``PRAGMA quick_check`` (up to
2 s), far too slow for a page that refreshes every few seconds. So a daemon thread re-runs it every
``dashboard.health_seconds`` and the page shows the latest result with its age.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..ops.health import overall, run_health_checks
from ..timefmt import utc_text_or_none
from .queries import ago

log = logging.getLogger("polybot.dashboard")


class HealthMonitor:
    def __init__(
        self,
        cfg: Config,
        interval: float,
        *,
        check: Callable[[], list] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.cfg = cfg
        self.interval = float(interval)
        self._check = check or (lambda: run_health_checks(cfg))
        self._clock = clock
        self._result: tuple[float, list] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HealthMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="polybot-dashboard-health", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh_now(self) -> None:
        self._wake.set()

    def run_once(self) -> None:
        try:
            lines = self._check()
        except Exception:  # run_health_checks never raises; a bug must not kill the thread
            log.exception("Dashboard health check failed")
            return
        with self._lock:
            self._result = (self._clock(), list(lines))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._wake.wait(self.interval)
            self._wake.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            result = self._result
        if result is None:
            return {"status": "PENDING", "lines": [], "checked": None, "checked_ago": "running now…"}
        at, lines = result
        return {
            "status": overall(lines),
            "checked": utc_text_or_none(at),
            "checked_ago": ago(self._clock() - at),
            "lines": [{"name": h.name, "status": h.status, "text": h.text, "line": h.line()} for h in lines],
        }
