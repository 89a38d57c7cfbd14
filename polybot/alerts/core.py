"""The Alerter: routing, throttling, storage and background delivery.

``send`` only masks the message, writes the log line and puts the alert on an
in-memory queue; it never blocks on the network or the database and never raises.
A daemon worker thread (one per Alerter, started on first use, with its own SQLite
connection) then records the row (throttle check + insert in one transaction),
delivers to the level's channels in parallel (one thread per channel, each bounded by
its timeout, so a dead channel neither blocks nor stops the others), stores the result
per channel, and every ``retry_interval`` seconds retries due rows — including rows left
pending by other processes (see polybot/alerts/store.py).

Scripts that exit right after sending call :meth:`Alerter.flush` (or :meth:`close`); an
``atexit`` hook flushes briefly as a safety net. Without a database (not initialized
yet) alerts are still logged and delivered, throttled in memory.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..logs import REDACTOR, redact
from ..notify import DeliveryResult
from ..notify.email import EmailChannel
from ..notify.formatting import email_subject, format_alert
from ..notify.telegram import TelegramChannel
from . import store
from .checks import Finding

log = logging.getLogger("polybot.alerts")
LEVELS = ("critical", "warning", "info")
_LOG_METHOD = {"critical": log.critical, "warning": log.warning, "info": log.info}
_STOP = object()
QUEUE_MAX = 10_000


@dataclass
class _Item:
    level: str
    key: str
    message: str
    ts: int


def _database_file(conn: sqlite3.Connection) -> Path | None:
    try:
        for row in conn.execute("PRAGMA database_list").fetchall():
            if row[1] == "main" and row[2]:
                return Path(row[2])
    except Exception:  # noqa: BLE001 - any problem: fall back to the config's path
        return None
    return None


class Alerter:
    """``Alerter(cfg, conn=None)``; ``conn`` (optional) only tells which database file to use."""

    def __init__(self, cfg: Config, conn: sqlite3.Connection | None = None, *, retry_interval: float = 30.0):
        self.cfg = cfg
        self.retry_interval = float(retry_interval)
        self.db_path = (_database_file(conn) if conn is not None else None) or Path(cfg.database_path)
        REDACTOR.add(cfg.secret_values())
        self.channels: dict[str, TelegramChannel | EmailChannel] = {
            "telegram": TelegramChannel(cfg.telegram, cfg.unset_env),
            "email": EmailChannel(cfg.email, cfg.unset_env),
        }
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_MAX)
        self._unfinished = 0
        self._cond = threading.Condition()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._db_warned = False
        self._not_before: dict[str, float] = {}  # channel → flood-control end
        self._mem: dict[str, list] = {}  # key → [anchor ts, repeats] (no DB)
        self._last_scan = 0.0
        self._closing = False
        _LIVE.add(self)

    # ------------------------------------------------------------------ public API
    def send(self, level: str, key: str, message: str, *, now: int | None = None) -> None:
        """Log, store and deliver an alert in the background. Returns at once; never raises."""
        try:
            lvl = str(level).lower()
            if lvl not in LEVELS:
                log.error("Unknown alert level %r for %s; sending it as a warning", level, key)
                lvl = "warning"
            key = str(key) or "alert"
            text = redact(str(message))
            ts = int(time.time()) if now is None else int(now)
            _LOG_METHOD[lvl]("ALERT %s [%s] %s", lvl.upper(), key, text)
            self._enqueue(_Item(lvl, key, text, ts))
        except Exception:  # noqa: BLE001 - alerts must never crash the caller
            with contextlib.suppress(Exception):  # not even by failing to log
                log.exception("Could not queue alert %s", key)
        return None

    def critical(self, key: str, message: str, **kw) -> None:
        return self.send("critical", key, message, **kw)

    def warning(self, key: str, message: str, **kw) -> None:
        return self.send("warning", key, message, **kw)

    def info(self, key: str, message: str, **kw) -> None:
        return self.send("info", key, message, **kw)

    def report(self, finding: Finding | None, **kw) -> None:
        """Send a :class:`Finding` from a ``check_*`` helper (None: nothing to do)."""
        if finding is not None:
            self.send(finding.level, finding.key, finding.message, **kw)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every alert queued so far is recorded and delivered (or failed).

        Returns False if ``timeout`` seconds passed first.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._unfinished:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Flush (up to ``timeout``), stop the worker, close its connections. Idempotent.

        Alerts still queued after the timeout (a channel hangs) are stored as pending rows
        without being sent, so the next process's Alerter delivers them. Returns True if
        everything was delivered.
        """
        ok = self.flush(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
            self._closing = True
        if not ok:
            self._persist_queued()
        if thread is not None and thread.is_alive():
            with contextlib.suppress(queue.Full):  # a full queue: the worker is busy, join() waits
                self._queue.put_nowait(_STOP)
            thread.join(max(0.1, min(timeout, 2.0)))
        for conn in list(self._conns):
            with contextlib.suppress(Exception):  # closing is best effort on the way out
                conn.close()
        self._conns.clear()
        self._local = threading.local()
        with self._lock:
            self._closing = False
        return ok

    def _persist_queued(self) -> None:
        """Store every queued alert as a pending row (no delivery now; retried later)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                continue
            try:
                self._record_only(item)
            except Exception:  # noqa: BLE001
                log.exception("Could not store queued alert %s", item.key)
            finally:
                self._done()

    def _record_only(self, item: _Item) -> None:
        conn = self._conn()
        if conn is None:
            return
        rec = store.record(
            conn,
            level=item.level,
            key=item.key,
            message=item.message,
            channels=self.routes(item.level),
            ts=item.ts,
            throttle_minutes=self.cfg.alerts.throttle_minutes,
            real_now=time.time(),
            lease=False,
        )
        if not rec.throttled:
            log.warning(
                "Alert %s [%s] stored for later delivery (closing while a channel is slow)",
                rec.row_id,
                item.key,
            )

    def routes(self, level: str) -> list[str]:
        """The channels for ``level``: "log" first, then the configured ones."""
        out = ["log"]
        for ch in getattr(self.cfg.alerts, level.lower(), ()):
            if ch not in out:
                out.append(ch)
        return out

    def deliver_now(self, level: str, key: str, message: str) -> dict[str, DeliveryResult]:
        """Deliver synchronously through every channel of ``level`` (no throttling, no retry)
        and record the row. Used by test_alerts.py; returns {channel: result}."""
        level = level.lower()
        message = redact(message)
        ts = int(time.time())
        _LOG_METHOD.get(level, log.info)("ALERT %s [%s] %s", level.upper(), key, message)
        channels = self.routes(level)
        results = {"log": DeliveryResult("log", True, "written to the log file")}
        results.update(self._deliver(level, key, message, ts, [c for c in channels if c != "log"]))
        conn = self._conn()
        if conn is not None:
            try:
                store.insert_delivered(
                    conn,
                    level=level,
                    key=key,
                    message=message,
                    channels=channels,
                    ts=ts,
                    results={c: r for c, r in results.items() if c != "log"},
                )
            except sqlite3.Error as exc:
                log.error("Could not record alert %s: %s", key, exc)
        return results

    def retry_pending(self, *, now: float | None = None) -> int:
        """Retry due deliveries (from any process); returns how many rows were attempted."""
        conn = self._conn()
        if conn is None:
            return 0
        real = time.time() if now is None else float(now)
        try:
            rows = store.claim_due(conn, real_now=real)
        except sqlite3.Error as exc:
            log.error("Could not read pending alerts: %s", exc)
            return 0
        for row in rows:
            channels = [c for c in row.delivery.get("_retry", []) if c in self.channels]
            results = self._deliver(row.level, row.key, row.message, row.timestamp, channels, now=real)
            try:
                status = store.finish(conn, row.id, results, real_now=real)
                log.info("Alert %s [%s] retried: %s", row.id, row.key, status)
            except sqlite3.Error as exc:
                log.error("Could not store the retry of alert %s: %s", row.id, exc)
        return len(rows)

    # ------------------------------------------------------------------ internals
    def _enqueue(self, item: _Item) -> None:
        with self._cond:
            self._unfinished += 1
            _BUSY.add(self)  # a temporary Alerter(cfg).critical(...) lives until delivered
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._done()
            log.error("Alert queue full (%d); dropped alert %s (it is in the log)", QUEUE_MAX, item.key)
            return
        self._ensure_worker()

    def _done(self) -> None:
        with self._cond:
            self._unfinished -= 1
            if self._unfinished <= 0:
                self._unfinished = 0
                _BUSY.discard(self)
                self._cond.notify_all()

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            # The thread holds only a weak reference: when the Alerter is dropped, it ends.
            self._thread = threading.Thread(
                target=_worker, args=(weakref.ref(self), self._queue), name="polybot-alerts", daemon=True
            )
            self._thread.start()

    def _run_once(self, item: _Item | None) -> None:
        """One step of the worker: process ``item`` (or, when idle, retry due rows)."""
        if item is not None:
            try:
                if self._closing:
                    self._record_only(item)
                else:
                    self._process(item)
            except Exception:  # noqa: BLE001 - the worker must survive anything
                log.exception("Alert worker failed on %s", getattr(item, "key", "?"))
            finally:
                self._done()
            return
        if time.monotonic() - self._last_scan >= self.retry_interval:
            self._last_scan = time.monotonic()
            try:
                self.retry_pending()
            except Exception:  # noqa: BLE001
                log.exception("Retrying pending alerts failed")

    def _conn(self) -> sqlite3.Connection | None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        from ..db import connect

        try:
            conn = connect(self.db_path, check_same_thread=False)
            conn.execute("SELECT 1 FROM alerts LIMIT 1")
        except Exception as exc:  # noqa: BLE001 - no database: deliver anyway
            if not self._db_warned:
                self._db_warned = True
                log.warning(
                    "Alerts are not stored in the database (%s); they are still logged and sent.",
                    redact(str(exc)),
                )
            return None
        self._local.conn = conn
        self._conns.append(conn)
        return conn

    def _process(self, item: _Item) -> None:
        channels = self.routes(item.level)
        real = time.time()
        rec: store.Recorded | None = None
        conn = self._conn()
        if conn is not None:
            try:
                rec = store.record(
                    conn,
                    level=item.level,
                    key=item.key,
                    message=item.message,
                    channels=channels,
                    ts=item.ts,
                    throttle_minutes=self.cfg.alerts.throttle_minutes,
                    real_now=real,
                )
            except sqlite3.Error as exc:
                log.error("Could not record alert %s (%s); delivering it anyway", item.key, exc)
        if rec is None:
            rec = self._record_in_memory(item)
        if rec.throttled:
            return
        external = [c for c in channels if c != "log"]
        if not external:
            return
        results = self._deliver(item.level, item.key, rec.message, item.ts, external)
        summary = ", ".join(f"{c} {r.status}" for c, r in results.items())
        failed = any(not r.ok and not r.skipped for r in results.values())
        (log.warning if failed else log.info)(
            "Alert %s [%s] delivery: %s", rec.row_id or "-", item.key, summary
        )
        if conn is not None and rec.row_id is not None:
            try:
                store.finish(conn, rec.row_id, results, real_now=time.time())
            except sqlite3.Error as exc:
                log.error("Could not store the delivery of alert %s: %s", rec.row_id, exc)

    def _record_in_memory(self, item: _Item) -> store.Recorded:
        window = float(self.cfg.alerts.throttle_minutes) * 60
        state = self._mem.get(item.key)
        if state and window > 0 and item.ts - state[0] < window:
            state[1] += 1
            return store.Recorded(None, True, item.message)
        message = item.message
        if state and state[1]:
            message += "\n" + store.summary_line(state[1], state[0], self.cfg.alerts.throttle_minutes)
        self._mem[item.key] = [item.ts, 0]
        return store.Recorded(None, False, message)

    def _deliver(
        self, level: str, key: str, message: str, ts: int, channels: list[str], *, now: float | None = None
    ) -> dict[str, DeliveryResult]:
        """Send to ``channels`` in parallel; every channel gets a result, none can block the rest."""
        text = format_alert(level, key, message, ts, mode=self.cfg.mode)
        subject = email_subject(level, key, message)
        real = time.time() if now is None else now
        results: dict[str, DeliveryResult] = {}
        threads = []
        for ch in channels:
            channel = self.channels.get(ch)
            if channel is None:
                results[ch] = DeliveryResult(ch, False, f"unknown channel {ch}", permanent=True)
                continue
            problem = channel.problem()
            if problem and problem.startswith("disabled"):
                results[ch] = DeliveryResult(ch, False, problem, skipped=True)
                continue
            if self._not_before.get(ch, 0) > real:
                wait = self._not_before[ch] - real
                results[ch] = DeliveryResult(
                    ch, False, f"deferred by flood control ({wait:.0f} s)", retry_after=wait
                )
                continue

            def work(ch=ch, channel=channel) -> None:
                try:
                    res = channel.send(text) if ch == "telegram" else channel.send(subject, text)
                except Exception as exc:  # noqa: BLE001 - channels should not raise; be sure
                    res = DeliveryResult(ch, False, redact(f"{type(exc).__name__}: {exc}"))
                results[ch] = res
                if res.retry_after:
                    self._not_before[ch] = time.time() + float(res.retry_after)

            t = threading.Thread(target=work, name=f"polybot-alert-{ch}", daemon=True)
            t.start()
            threads.append((ch, t, self._channel_timeout(ch)))
        for ch, t, limit in threads:
            t.join(limit)
            if t.is_alive() and ch not in results:
                results[ch] = DeliveryResult(ch, False, f"{ch} did not finish within {limit:.0f} s")
        return {ch: results[ch] for ch in channels if ch in results}

    def _channel_timeout(self, ch: str) -> float:
        t = self.cfg.telegram.timeout_seconds if ch == "telegram" else self.cfg.email.timeout_seconds
        return 4 * float(t) + 5


def _worker(ref: weakref.ref[Alerter], q: queue.Queue) -> None:
    while True:
        alerter = ref()
        if alerter is None:
            return
        wait = max(0.05, alerter.retry_interval / 2)
        del alerter
        try:
            item = q.get(timeout=min(wait, 5.0))
        except queue.Empty:
            item = None
        if item is _STOP:
            return
        alerter = ref()
        if alerter is None:
            return
        alerter._run_once(item)
        del alerter


_LIVE: weakref.WeakSet[Alerter] = weakref.WeakSet()
_BUSY: set[Alerter] = set()  # alerters with queued work (kept alive until it is done)


@atexit.register
def _close_at_exit() -> None:
    """Safety net for scripts that forget close(): a few seconds to deliver, then whatever is
    still queued is stored as pending for the next process."""
    deadline = time.monotonic() + 5.0
    for alerter in list(_LIVE):
        with contextlib.suppress(Exception):  # at exit nothing may raise
            alerter.close(max(0.0, deadline - time.monotonic()))
