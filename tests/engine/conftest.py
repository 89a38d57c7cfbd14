"""Fixtures of the trading-engine tests (bot runs against the simulator)."""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_sim():
    """The simulator at 60× (a minute per second) with a small world, for bot runs."""
    from polybot.sim.server import start_simulator

    h = start_simulator(port=0, seed=42, n_markets=24, speed=60)
    try:
        yield h
    finally:
        h.stop()
