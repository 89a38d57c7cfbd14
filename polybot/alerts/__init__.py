"""Alerts: critical / warning / info, routed per config, stored, throttled, retried.

Public API (stable; other modules call it)::

    from polybot.alerts import Alerter
    alerter = Alerter(cfg)                 # or Alerter(cfg, conn): conn only names the DB file
    alerter.critical(key, message)         # also .warning / .info / .send(level, key, message)
    alerter.report(check_drawdown(equity, cfg.alerts.thresholds))   # a Finding, or None
    alerter.flush(timeout)                 # scripts: wait for delivery before exiting
    alerter.close()

Routing (config.yaml)::

    alerts:
      critical: [telegram, email]
      warning: [telegram]
      info: [email]
      throttle_minutes: 15

The log always gets the alert (``ALERT CRITICAL [key] message``). ``send`` returns at
once and never raises: a background worker stores the row in ``alerts`` (level, key,
message, channels, delivery per channel, status, repeat_count), delivers, and retries
network failures with backoff (also rows left pending by other processes). Repeats of a
key within ``throttle_minutes`` are counted, not sent; the next alert after the window
says "… repeated N times". Details: polybot/alerts/core.py and store.py.

Trigger keys and detection helpers: polybot/alerts/checks.py (``check_win_rate``,
``check_drawdown``, ``check_api_latency``, ``check_no_trades``, ``check_disk``,
``check_daily_loss``, ``check_position_sizes``, ``check_database``, ``api_auth_failure``,
``emergency_stop``, ``daily_summary``, ``weekly_report``, ``new_markets``; ``KEYS``).
"""

from __future__ import annotations

from .checks import (
    KEYS,
    Finding,
    api_auth_failure,
    check_api_latency,
    check_daily_loss,
    check_database,
    check_disk,
    check_drawdown,
    check_no_trades,
    check_position_sizes,
    check_win_rate,
    daily_summary,
    emergency_stop,
    new_markets,
    weekly_report,
)
from .core import LEVELS, Alerter

__all__ = [
    "Alerter",
    "LEVELS",
    "KEYS",
    "Finding",
    "api_auth_failure",
    "check_api_latency",
    "check_daily_loss",
    "check_database",
    "check_disk",
    "check_drawdown",
    "check_no_trades",
    "check_position_sizes",
    "check_win_rate",
    "daily_summary",
    "emergency_stop",
    "new_markets",
    "weekly_report",
]
