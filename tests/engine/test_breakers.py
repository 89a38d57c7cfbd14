"""Each circuit breaker tripped against the simulator with the bot as a real subprocess:
the database ends halted with the reason, a critical alert is recorded, a restart without
--restart refuses, and --restart resumes trading after reconciliation."""

from __future__ import annotations

import getpass
import sqlite3

from tests.engine.helpers import (
    M,
    assert_consistent,
    connect,
    load,
    make_workspace,
    query,
    run_bot,
    start_bot,
    wait_for,
)


def _state(root):
    return dict(query(root, "SELECT key, value FROM bot_state"))


def assert_halted(root, breaker: str, reason_part: str) -> None:
    st = _state(root)
    assert st["halted"] == "1", st
    assert st["halt_breaker"] == breaker and reason_part in st["halt_reason"], st
    rows = query(root, "SELECT breaker, reason, cleared_at FROM halts ORDER BY id")
    assert rows and rows[-1][0] == breaker and rows[-1][2] is None
    assert query(root, "SELECT COUNT(*) FROM alerts WHERE level='critical'")[0][0] >= 1


def assert_refused(root, *args) -> str:
    res = run_bot(root, "--once", *args)
    assert res.returncode == 5, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--restart" in lines[0], res.stderr
    return lines[0]


def restart_and_resume(root, *, runtime: float = 3.0) -> str:
    before = query(root, "SELECT COUNT(*) FROM performance")[0][0]
    res = run_bot(root, "--restart", "--max-runtime", str(runtime))
    assert res.returncode == 0, res.stderr
    assert "Restart by " + getpass.getuser() in res.stderr and "cleared after reconciliation" in res.stderr
    assert _state(root)["halted"] == "0"
    cleared = query(root, "SELECT cleared_at, cleared_by FROM halts ORDER BY id DESC LIMIT 1")[0]
    assert cleared[0] is not None and getpass.getuser() in cleared[1]
    assert query(root, "SELECT COUNT(*) FROM performance")[0][0] > before  # the loop ran again
    return res.stderr


def run_until_trading(root):
    proc = start_bot(root)
    wait_for(
        lambda: query(root, "SELECT 1 FROM positions WHERE status='open'") or proc.poll() is not None,
        90,
        what="an open position",
    )
    assert proc.poll() is None, (root / "bot.out").read_text()[-3000:]
    return proc


def test_breaker_1_api_errors(tmp_path, fast_sim):
    root = make_workspace(tmp_path, fast_sim)
    proc = run_until_trading(root)
    fast_sim.sim.set_faults(outage=True)
    try:
        assert proc.wait(timeout=60) == 5
    finally:
        fast_sim.sim.clear_faults()
    assert_halted(root, "api_errors", "3 consecutive API errors")
    assert "Circuit breaker #1 (API failure) tripped" in (root / "bot.out").read_text()
    assert_refused(root)
    restart_and_resume(root)
    assert_consistent(root)


def test_breaker_2_daily_loss(tmp_path, fast_sim):
    root = make_workspace(
        tmp_path,
        fast_sim,
        risk_limits={"daily_loss_limit": 15},
        strategy={"name": "drill", "params": {"size_usd": 20, "max_holdings": 1, "hold_seconds": 3000}},
    )
    proc = run_until_trading(root)
    market_id, token_id = query(root, "SELECT market_id, token_id FROM positions WHERE status='open'")[0]
    index = query(root, "SELECT outcome_index FROM market_tokens WHERE token_id=?", token_id)[0][0]
    fast_sim.sim.resolve(market_id, "NO" if index == 0 else "YES")  # the held outcome loses
    assert proc.wait(timeout=60) == 5
    assert_halted(root, "daily_loss", "daily_loss_limit")
    assert query(root, "SELECT price_micro FROM trades WHERE kind='settlement'")[0][0] == 0
    assert_refused(root)
    err = restart_and_resume(root)
    # the loss is acknowledged for the day: no new entries, the bot keeps running
    assert "halt acknowledged by the operator" in err
    assert "risk rejected ENTER" in err and "daily_loss_limit" in err
    assert_consistent(root)


def test_breaker_3_position_anomaly(tmp_path, fast_sim):
    root = make_workspace(tmp_path, fast_sim)
    proc = run_until_trading(root)
    from polybot import db
    from polybot.engine import ledger

    conn = connect(root)
    token, market = conn.execute(
        "SELECT token_id, market_id FROM market_tokens ORDER BY token_id LIMIT 1"
    ).fetchone()
    with db.atomic(conn):  # a fill nobody asked for, e.g. found at the exchange
        ledger.record_trade(
            conn,
            mode="paper",
            trade_id="external-1",
            token_id=token,
            market_id=market,
            side="BUY",
            price_micro=500_000,
            size_micro=300 * M,
            fee_micro=0,
            ts=1,
            reason="external fill",
        )
    conn.close()
    assert proc.wait(timeout=60) == 5
    assert_halted(root, "position_anomaly", "above max_position_size")
    assert_refused(root)
    conn = connect(root)
    with db.atomic(conn):  # the operator reduced it by hand
        ledger.record_trade(
            conn,
            mode="paper",
            trade_id="external-2",
            token_id=token,
            market_id=market,
            side="SELL",
            price_micro=500_000,
            size_micro=300 * M,
            fee_micro=0,
            ts=2,
            reason="reduced by hand",
        )
    conn.close()
    restart_and_resume(root)
    assert_consistent(root)


def _corrupt_index(db_path, index: str = "idx_job_runs") -> None:
    """Overwrite the root page of an index the bot never writes (quick_check fails)."""
    c = sqlite3.connect(db_path)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = c.execute("PRAGMA page_size").fetchone()[0]
    root_page = c.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (index,)).fetchone()[0]
    c.close()
    with open(db_path, "r+b") as f:
        f.seek((root_page - 1) * page_size)
        f.write(b"\xde\xad\xbe\xef" * (page_size // 4))


def test_breaker_4_database_corruption_while_running(tmp_path, fast_sim):
    root = make_workspace(tmp_path, fast_sim)
    db_path = load(root).database_path
    backup = tmp_path / "backup.db"
    src = sqlite3.connect(db_path)
    dst = sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    proc = run_until_trading(root)
    _corrupt_index(db_path)
    assert proc.wait(timeout=60) == 5
    out = (root / "bot.out").read_text()
    assert "Circuit breaker #4 (Database corruption) tripped" in out
    halt_file = db_path.parent / "trading_bot.halted"
    assert halt_file.exists() and "database" in halt_file.read_text()
    assert_halted(root, "database", "integrity check failed")
    assert_refused(root)
    # the operator restores the backup (taken before the corruption); the halt survives it
    for suffix in ("-wal", "-shm"):
        (db_path.parent / (db_path.name + suffix)).unlink(missing_ok=True)
    db_path.write_bytes(backup.read_bytes())
    line = assert_refused(root)
    assert "integrity check failed" in line
    res = run_bot(root, "--restart", "--max-runtime", "3")
    assert res.returncode == 0, res.stderr
    assert not halt_file.exists() and _state(root)["halted"] == "0"


def test_breaker_4_corrupt_database_at_start(tmp_path, sim):
    root = make_workspace(tmp_path, sim)
    _corrupt_index(load(root).database_path)
    res = run_bot(root, "--once")
    assert res.returncode == 5
    assert "Circuit breaker #4 (Database corruption) tripped" in res.stderr
    assert "backup_database.py --restore" in res.stderr.strip().splitlines()[-1]
    assert (load(root).database_path.parent / "trading_bot.halted").exists()


def test_breaker_5_emergency_stop_closes_positions(tmp_path, fast_sim):
    root = make_workspace(
        tmp_path,
        fast_sim,
        strategy={"name": "drill", "params": {"size_usd": 20, "max_holdings": 3, "hold_seconds": 3000}},
    )
    proc = start_bot(root)
    wait_for(
        lambda: query(root, "SELECT COUNT(*) FROM positions WHERE status='open'")[0][0] >= 2,
        90,
        what="two open positions",
    )
    (root / "EMERGENCY_STOP").touch()
    assert proc.wait(timeout=60) == 5
    out = (root / "bot.out").read_text()
    assert "Circuit breaker #5 (Manual emergency stop) tripped" in out
    assert out.count("close-out: token") >= 2
    assert query(root, "SELECT COUNT(*) FROM positions WHERE status='open'")[0][0] == 0
    closing = query(root, "SELECT status, filled_micro FROM orders WHERE strategy='emergency_stop'")
    assert len(closing) >= 2 and all(s == "FILLED" and f > 0 for s, f in closing)
    assert_halted(root, "emergency_stop", "EMERGENCY_STOP")
    assert query(root, "SELECT COUNT(*) FROM alerts WHERE key='emergency_stop'")[0][0] == 1
    # starting while the file exists: one sentence, non-zero exit, nothing touched
    n = query(root, "SELECT COUNT(*) FROM performance")[0][0]
    res = run_bot(root)
    assert res.returncode == 5
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "EMERGENCY_STOP" in res.stderr
    assert query(root, "SELECT COUNT(*) FROM performance")[0][0] == n
    (root / "EMERGENCY_STOP").unlink()
    restart_and_resume(root)
    assert_consistent(root)


def test_emergency_stop_acknowledged_by_removing_the_file(tmp_path, sim):
    """The checklist's update procedure: touch EMERGENCY_STOP … rm EMERGENCY_STOP;
    python trading_bot.py (no --restart) — removing the file is the acknowledgement."""
    root = make_workspace(tmp_path, sim)
    (root / "EMERGENCY_STOP").touch()
    proc = start_bot(root)
    assert proc.wait(timeout=60) == 5  # refused at start: the file exists
    assert query(root, "SELECT COUNT(*) FROM halts")[0][0] == 0
    (root / "EMERGENCY_STOP").unlink()
    proc = start_bot(root)
    wait_for(lambda: query(root, "SELECT COUNT(*) FROM performance")[0][0] >= 1, 60, what="a loop")
    (root / "EMERGENCY_STOP").touch()
    assert proc.wait(timeout=60) == 5
    assert_halted(root, "emergency_stop", "EMERGENCY_STOP")
    (root / "EMERGENCY_STOP").unlink()
    res = run_bot(root, "--once")
    assert res.returncode == 0, res.stderr
    assert "EMERGENCY_STOP removed" in query(root, "SELECT cleared_by FROM halts")[0][0]
    # any other breaker needs --restart
    conn = connect(root)
    from polybot import db

    with db.atomic(conn):
        conn.execute(
            "INSERT INTO halts(timestamp, mode, breaker, reason) VALUES (1,'paper','api_errors','test')"
        )
        db.set_state(conn, "halted", "1")
        db.set_state(conn, "halt_breaker", "api_errors")
        db.set_state(conn, "halt_reason", "test")
    conn.close()
    assert "circuit breaker #1 (API failure)" in assert_refused(root)
