"""Helpers of the Telegram tests."""

from __future__ import annotations

from tests.alerts.helpers import free_port, make_workspace, telegram_section


def offline_workspace(tmp_path, fake):
    """A workspace whose Telegram is the fake Bot API and whose Polymarket URLs point at a
    closed local port: nothing may leave the machine (``/health``'s API check included)."""
    dead = f"http://127.0.0.1:{free_port()}"
    return make_workspace(
        tmp_path,
        {
            "telegram": telegram_section(fake),
            "polymarket": {
                "base_url": dead + "/clob",
                "gamma_url": dead + "/gamma",
                "data_url": dead + "/data",
                "timeout_seconds": 2,
            },
        },
    )
