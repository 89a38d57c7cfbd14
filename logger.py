"""The checklist's logging entry point: ``from logger import setup_logger``.

Writes logs/trading_system_YYYYMMDD.log (UTC day, 90 days kept, secrets masked).
"""

from polybot.logs import setup_logger

__all__ = ["setup_logger"]
