"""Alerts: critical / warning / info, routed per config (STUB — being completed).

Public API (stable; other modules call it):

    alerter = Alerter(cfg)                      # opens its own DB connection lazily
    alerter.critical(key, message)              # also .warning / .info
    alerter.send(level, key, message) -> int    # alert row id

Every alert is logged and stored in the ``alerts`` table. Sending never raises.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Optional

from .logs import redact

log = logging.getLogger("polybot.alerts")
LEVELS = ("critical", "warning", "info")


class Alerter:
    def __init__(self, cfg, conn=None):
        self.cfg = cfg
        self._conn = conn

    def _db(self):
        if self._conn is None:
            from .db import open_database
            self._conn = open_database(self.cfg)
        return self._conn

    def send(self, level: str, key: str, message: str, *, now: Optional[int] = None) -> Optional[int]:
        level = level.lower()
        message = redact(message)
        getattr(log, {"critical": "critical", "warning": "warning"}.get(level, "info"))(
            "ALERT %s [%s] %s", level.upper(), key, message)
        try:
            conn = self._db()
            cur = conn.execute(
                "INSERT INTO alerts(timestamp, level, key, message, channels, delivery, status) "
                "VALUES (?,?,?,?,?,?,?)",
                (int(time.time()) if now is None else now, level, key, message, json.dumps(["log"]),
                 json.dumps({"log": "sent"}), "logged"))
            return cur.lastrowid
        except Exception:  # never crash the caller
            log.exception("could not store alert %s", key)
            return None

    def critical(self, key: str, message: str, **kw) -> Optional[int]:
        return self.send("critical", key, message, **kw)

    def warning(self, key: str, message: str, **kw) -> Optional[int]:
        return self.send("warning", key, message, **kw)

    def info(self, key: str, message: str, **kw) -> Optional[int]:
        return self.send("info", key, message, **kw)
