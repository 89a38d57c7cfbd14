"""Issue 15, the dashboard's cells of the resource matrix: a 0-byte, truncated or damaged
database. The real server (waitress on 127.0.0.1), a logged-in session: every answer is one
sentence naming the problem (an empty page with the reason, or 503), never a traceback or a
dead server, and the advice to restore appears only for a damaged file."""

from __future__ import annotations

import os
import sqlite3

import pytest

from polybot import db
from tests.dashboard.helpers import dashboard_config, load, login, running

DAMAGE = {
    "zero": ("exists but is empty", True),
    "truncated": ("damaged", True),
    "garbage": ("could not be read", False),
}


def _damage(path, kind: str) -> None:
    for suffix in ("-wal", "-shm"):
        (path.parent / (path.name + suffix)).unlink(missing_ok=True)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        if kind == "zero":
            fh.truncate(0)
        elif kind == "truncated":
            fh.truncate(size // 2)
        else:
            fh.seek(size // 2)
            fh.write(os.urandom(16384))


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_dashboard_on_a_damaged_database(tmp_path, kind):
    dashboard_config(tmp_path)
    cfg = load(tmp_path)
    db.initialize(cfg.database_path)
    conn = sqlite3.connect(cfg.database_path)
    conn.execute("CREATE TABLE filler(x)")  # pages for the damage to land in
    conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 400,) for _ in range(3000)])
    conn.executemany(
        "INSERT INTO alerts(timestamp, level, key, message) VALUES (?,?,?,?)",
        [(1000 + i, "info", "k", "m" * 200) for i in range(500)],
    )
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    _damage(cfg.database_path, kind)
    phrase, restore_advised = DAMAGE[kind]
    with running(cfg, health=False) as server:
        s, resp = login(server.url)
        assert resp.status_code in (302, 303), resp.text
        for _ in range(2):  # and the server is still there after it
            r = s.get(f"{server.url}/api/state", timeout=10)
            assert r.status_code in (200, 503), r.text
            body = r.json()
            text = body.get("error") or body.get("empty_detail") or ""
            assert "Traceback" not in r.text
            if kind != "garbage" or r.status_code == 503:
                assert text, body
            page = s.get(f"{server.url}/", timeout=10)
            assert page.status_code in (200, 503) and "Traceback" not in page.text
        if kind != "garbage":  # where the damage lands decides what a read hits
            assert phrase in text, text
            assert ("--restore" in text) == restore_advised, text
