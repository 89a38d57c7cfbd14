"""Fixtures of the simulator tests."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def http():
    """A plain requests session (the raw HTTP the simulator answers)."""
    with requests.Session() as s:
        yield s
