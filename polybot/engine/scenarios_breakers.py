"""``test_circuit_breakers.py``: trip each of the five circuit breakers for real.

Each scenario starts ``trading_bot.py`` as a separate process (paper mode) in a fresh
temporary workspace against the bundled simulator (accelerated clock), provokes the
failure, and checks that the bot STOPPED: it exited non-zero, the database holds the
halt with its reason (bot_state + a ``halts`` row), a critical alert was recorded, and a
new start without ``--restart`` is refused.

1. API failure: the simulator drops every connection → 3 consecutive errors;
2. daily loss: today's realised loss is beyond daily_loss_limit;
3. position anomaly: a position above max_position_size appears in the records;
4. database corruption: an index page of the running bot's database is overwritten;
5. manual emergency stop: ``touch EMERGENCY_STOP`` (in the workspace) while positions
   are open → they are closed and the bot exits.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import traceback
from pathlib import Path

from polybot import db
from polybot.config import Config
from polybot.domain import BUY, SELL
from polybot.engine import ledger
from polybot.engine.scenarios import ScenarioFailed, Scenarios, operator_config, query, report, wait_for
from polybot.money import MICRO, to_micro

STOP_TIMEOUT = 90


def _running(sc: Scenarios, root: Path, cfg: Config, *, positions: int = 0) -> subprocess.Popen[bytes]:
    proc = sc.start_bot(root)
    if positions:
        wait_for(
            lambda: (
                proc.poll() is not None
                or query(cfg, "SELECT COUNT(*) FROM positions WHERE status='open'")[0][0] >= positions
            ),
            STOP_TIMEOUT,
            f"{positions} open position(s)",
        )
    else:
        wait_for(
            lambda: proc.poll() is not None or query(cfg, "SELECT COUNT(*) FROM performance")[0][0] >= 1,
            STOP_TIMEOUT,
            "the first loop",
        )
    if proc.poll() is not None:
        raise ScenarioFailed(f"the bot exited early (code {proc.returncode}); see {root / 'bot.out'}")
    return proc


def _stopped(sc: Scenarios, proc: subprocess.Popen[bytes], root: Path, cfg: Config, breaker: str) -> str:
    try:
        code = proc.wait(timeout=STOP_TIMEOUT)
    except Exception as exc:
        proc.kill()
        raise ScenarioFailed(f"the bot did not stop within {STOP_TIMEOUT} s") from exc
    return _halted(sc, code, root, cfg, breaker)


def _halted(sc: Scenarios, code: int, root: Path, cfg: Config, breaker: str) -> str:
    if code == 0:
        raise ScenarioFailed("the bot exited 0: a STOP must exit non-zero")
    state = dict(query(cfg, "SELECT key, value FROM bot_state"))
    if state.get("halted") != "1" or state.get("halt_breaker") != breaker:
        raise ScenarioFailed(
            f"the database is not halted by {breaker}: {state.get('halted')!r} {state.get('halt_breaker')!r}"
        )
    rows = query(cfg, "SELECT breaker, reason FROM halts WHERE cleared_at IS NULL")
    if not rows or rows[-1][0] != breaker:
        raise ScenarioFailed("no halts row records the stop")
    if not query(cfg, "SELECT 1 FROM alerts WHERE level='critical'"):
        raise ScenarioFailed("no critical alert was recorded")
    again = sc.run_bot(root, "--once")
    if again.returncode == 0 or "--restart" not in again.stderr:
        raise ScenarioFailed("a new start without --restart was not refused")
    return f"exit {code}; halted: {state['halt_reason'][:110]}; restart without --restart refused"


def api_failure(sc: Scenarios) -> str:
    root, cfg = sc.workspace("api_failure")
    proc = _running(sc, root, cfg)
    sc.sim.sim.set_faults(outage=True)
    try:
        return _stopped(sc, proc, root, cfg, "api_errors")
    finally:
        sc.sim.sim.clear_faults()


def daily_loss(sc: Scenarios) -> str:
    root, cfg = sc.workspace("daily_loss")
    conn = db.connect(cfg.database_path)
    try:
        token, market = conn.execute(
            "SELECT token_id, market_id FROM market_tokens ORDER BY token_id"
        ).fetchone()
        from polybot.exchange.client import PolymarketClient

        with PolymarketClient.from_config(cfg) as client:
            now = client.get_server_time()
        limit = to_micro(cfg.risk_limits.daily_loss_limit)
        shares = -(-(limit + 10 * MICRO) * MICRO // 500_000) // 10_000 * 10_000  # lose 0.50 a share
        with db.atomic(conn):
            ledger.record_trade(
                conn,
                mode="paper",
                trade_id="scenario-buy",
                token_id=token,
                market_id=market,
                side=BUY,
                price_micro=800_000,
                size_micro=shares,
                fee_micro=0,
                ts=now,
            )
            ledger.record_trade(
                conn,
                mode="paper",
                trade_id="scenario-sell",
                token_id=token,
                market_id=market,
                side=SELL,
                price_micro=300_000,
                size_micro=shares,
                fee_micro=0,
                ts=now,
            )
    finally:
        conn.close()
    proc = sc.start_bot(root)
    return _stopped(sc, proc, root, cfg, "daily_loss")


def position_anomaly(sc: Scenarios) -> str:
    root, cfg = sc.workspace("position_anomaly")
    proc = _running(sc, root, cfg)
    conn = db.connect(cfg.database_path)
    try:
        token, market = conn.execute(
            "SELECT token_id, market_id FROM market_tokens ORDER BY token_id"
        ).fetchone()
        size = to_micro(cfg.risk_limits.max_position_size) * 3 // 2 * MICRO // 500_000 // 10_000 * 10_000
        with db.atomic(conn):  # e.g. a fill found at the exchange that nobody asked for
            ledger.record_trade(
                conn,
                mode="paper",
                trade_id="scenario-external",
                token_id=token,
                market_id=market,
                side=BUY,
                price_micro=500_000,
                size_micro=size,
                fee_micro=0,
                ts=1,
                reason="external fill",
            )
    finally:
        conn.close()
    return _stopped(sc, proc, root, cfg, "position_anomaly")


def database_corruption(sc: Scenarios) -> str:
    root, cfg = sc.workspace("database", {"trading": {"quick_check_interval_minutes": 0.02}})
    proc = _running(sc, root, cfg)
    path = cfg.database_path
    c = sqlite3.connect(path)
    try:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = c.execute("PRAGMA page_size").fetchone()[0]
        root_page = c.execute("SELECT rootpage FROM sqlite_master WHERE name='idx_job_runs'").fetchone()[0]
    finally:
        c.close()
    with open(path, "r+b") as f:  # overwrite one index page (the bot never writes it)
        f.seek((root_page - 1) * page_size)
        f.write(b"\xde\xad\xbe\xef" * (page_size // 4))
    return _stopped(sc, proc, root, cfg, "database")


def emergency_stop(sc: Scenarios) -> str:
    root, cfg = sc.workspace("emergency_stop")
    proc = _running(sc, root, cfg, positions=2)
    cfg.emergency_stop_file.touch()
    detail = _stopped(sc, proc, root, cfg, "emergency_stop")
    left = query(cfg, "SELECT COUNT(*) FROM positions WHERE status='open'")[0][0]
    closed = query(cfg, "SELECT COUNT(*) FROM orders WHERE strategy='emergency_stop' AND status='FILLED'")[0][
        0
    ]
    if left:
        raise ScenarioFailed(f"{left} position(s) still open after the emergency stop")
    return f"{closed} position(s) closed, open orders cancelled; " + detail


SCENARIOS = [
    ("Circuit breaker #1: API failure ({n} errors) → STOP", api_failure),
    ("Circuit breaker #2: Daily loss limit → STOP", daily_loss),
    ("Circuit breaker #3: Position size anomaly → STOP", position_anomaly),
    ("Circuit breaker #4: Database corruption → STOP", database_corruption),
    ("Circuit breaker #5: Manual emergency stop → STOP", emergency_stop),
]


def main(args: argparse.Namespace) -> int:
    base, where = operator_config(getattr(args, "config", None))
    n = base.trading.max_consecutive_api_errors
    print(
        f"Circuit breaker scenarios: trading_bot.py runs on the bundled simulator in temporary workspaces "
        f"(your database, EMERGENCY_STOP file and Polymarket are not touched); settings from {where}",
        flush=True,
    )
    failures = 0
    with Scenarios(base, speed=60.0, keep=getattr(args, "keep", False)) as sc:
        for line, fn in SCENARIOS:
            line = line.format(n=n)
            try:
                report(True, line, fn(sc))
            except ScenarioFailed as exc:
                failures += 1
                report(False, line.replace("→ STOP", "did NOT stop"), str(exc))
            except Exception as exc:  # noqa: BLE001 — a scenario that crashes is a failed scenario
                failures += 1
                report(False, f"{line}: the scenario crashed", f"{type(exc).__name__}: {exc}")
                traceback.print_exc()
        if failures:
            sc.failed = True
            print(f"{failures} scenario(s) failed; workspaces and logs kept in {sc.dir}", flush=True)
        else:
            print("PASS: every circuit breaker stops the bot", flush=True)
    return 1 if failures else 0
