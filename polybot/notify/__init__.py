"""Notification channels: Telegram (python-telegram-bot) and email (smtplib).

Each channel has a synchronous ``send(...) -> DeliveryResult`` that never raises and
never puts a secret in its result: network problems are ``transient`` (the alerter
retries them later with backoff), refusals that a retry cannot fix (bad chat id, wrong
token, login refused) are ``permanent``. ``retry_after`` carries Telegram's flood-control
wait. The alerter (polybot.alerts) decides routing, throttling, storage and retries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryResult:
    channel: str  # "telegram" | "email" | "log"
    ok: bool
    detail: str = ""  # one sentence, secrets masked
    permanent: bool = False  # a retry cannot help
    retry_after: float | None = None  # seconds (Telegram flood control)
    skipped: bool = False  # channel disabled in config: not tried

    @property
    def status(self) -> str:
        """What goes in the alerts.delivery JSON for this channel."""
        if self.ok:
            return "sent"
        return f"skipped: {self.detail}" if self.skipped else f"failed: {self.detail}"


__all__ = ["DeliveryResult"]
