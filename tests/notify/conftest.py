"""Shared by the Telegram tests: command listeners started on a workspace and stopped at the end."""

from __future__ import annotations

import threading

import pytest

from polybot.notify.commands import start_command_listener


@pytest.fixture
def start_listener(fake_tg):
    """``start(cfg, clock=None)`` starts the command listener on ``cfg`` (``clock``: the
    handler's clock) and returns ``(stop, thread)``; every listener started is stopped and
    joined at the end of the test."""
    started: list[tuple[threading.Event, threading.Thread]] = []

    def start(cfg, clock=None):
        stop = threading.Event()
        thread = start_command_listener(cfg, stop, poll_seconds=1)
        if clock is not None:
            thread.listener.handler.clock = clock  # type: ignore[attr-defined]
        started.append((stop, thread))
        return stop, thread

    yield start
    for stop, thread in started:
        stop.set()
        thread.join(10)
