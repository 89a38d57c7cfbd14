"""Fixtures of the compact snapshot storage tests (polybot/snapshots/)."""

from __future__ import annotations

import pytest


@pytest.fixture
def snapshot_db(tmp_path):
    """A connection to a fresh database at the latest schema (a real SQLite file)."""
    from polybot import db

    path = tmp_path / "snapshots.db"
    db.initialize(path)
    conn = db.connect(path)
    try:
        yield conn
    finally:
        conn.close()
