"""initialize_db.py and the SQLite helper on real files."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from polybot import db
from polybot.errors import DatabaseError
from polybot.schema import CHECKLIST_TABLES, LATEST_VERSION, MIGRATIONS
from tests.conftest import run_cli


def test_initialize_twice(workspace):
    first = run_cli("initialize_db.py", cwd=workspace)
    assert first.returncode == 0, first.stderr
    assert "✓ Database created" in first.stdout
    dbfile = workspace / "data" / "polymarket.db"
    assert stat.filemode(dbfile.stat().st_mode) == "-rw-------"
    assert stat.S_IMODE((workspace / "data").stat().st_mode) == 0o700
    conn = sqlite3.connect(dbfile)
    names = {r[0] for r in conn.execute('SELECT name FROM sqlite_master WHERE type="table"')}
    assert set(CHECKLIST_TABLES) <= names
    conn.execute("INSERT INTO bot_state(key, value, updated_at) VALUES ('x', 'kept', 1)")
    conn.commit()
    conn.close()
    second = run_cli("initialize_db.py", cwd=workspace)
    assert second.returncode == 0
    assert f"✓ Schema version {LATEST_VERSION} (up to date, nothing changed)" in second.stdout
    conn = sqlite3.connect(dbfile)
    assert conn.execute("SELECT value FROM bot_state WHERE key='x'").fetchone()[0] == "kept"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrates_old_database_with_rows_intact(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    # Build a version-1 database exactly as the first release did.
    for statement in db._split_sql(MIGRATIONS[0][2]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO trades(trade_id, timestamp, mode, token_id, market_id, side, price_micro, "
        "size_micro, notional_micro) VALUES ('t1', 100, 'paper', 'tok', 'm', 'BUY', 500000, "
        "10000000, 5000000)"
    )
    conn.commit()
    conn.close()
    result = db.initialize(path)
    assert result["before"] == 1 and result["version"] == LATEST_VERSION
    assert result["applied"] == [v for v, _, _ in MIGRATIONS if v > 1]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT trade_id, notional_micro FROM trades").fetchall() == [("t1", 5000000)]
    assert "orders" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_not_a_database_is_a_clear_error(workspace):
    dbfile = workspace / "data" / "polymarket.db"
    dbfile.parent.mkdir()
    dbfile.write_bytes(b"this is not sqlite at all" * 100)
    res = run_cli("initialize_db.py", cwd=workspace)
    assert res.returncode == 3
    assert "is not a SQLite database" in res.stderr
    assert "Traceback" not in res.stderr
    assert dbfile.read_bytes().startswith(b"this is not sqlite")  # untouched


def test_unwritable_path_is_a_clear_error(tmp_path):
    import os

    if os.geteuid() == 0:
        # root ignores permissions; use a path under a regular file instead
        (tmp_path / "file").write_text("x")
        from tests.conftest import write_config

        write_config(tmp_path, {"database_path": "file/sub/polymarket.db"})
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        from tests.conftest import write_config

        write_config(tmp_path, {"database_path": "locked/data/polymarket.db"})
    res = run_cli("initialize_db.py", cwd=tmp_path)
    assert res.returncode == 3
    assert "Cannot create directory" in res.stderr and "Traceback" not in res.stderr


def test_atomic_rolls_back_and_nests(tmp_path):
    conn = db.connect(tmp_path / "a.db", create=True)
    db.migrate(conn)
    with pytest.raises(RuntimeError), db.atomic(conn):
        db.set_state(conn, "a", "1")
        raise RuntimeError("boom")
    assert db.get_state(conn, "a") is None
    with db.atomic(conn):
        db.set_state(conn, "a", "1")
        with pytest.raises(RuntimeError), db.atomic(conn):
            db.set_state(conn, "b", "2")
            raise RuntimeError("inner")
    assert db.get_state(conn, "a") == "1" and db.get_state(conn, "b") is None


def test_missing_database_tells_what_to_run(tmp_path):
    with pytest.raises(DatabaseError, match="run python initialize_db.py first"):
        db.connect(tmp_path / "missing.db")
