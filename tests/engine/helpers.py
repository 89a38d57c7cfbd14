"""Helpers for the engine tests: a workspace wired to a simulator, the bot as a real
subprocess, and the invariants every database must satisfy after any run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, SECRET_ENV_PREFIXES, run_cli, sim_urls, write_config

M = 1_000_000


def engine_config(handle, **overrides) -> dict:
    cfg = {
        "capital": 500,
        "trading": {"loop_interval_seconds": 0.2, "quick_check_interval_minutes": 0.05},
        "strategy": {"name": "drill", "params": {"hold_seconds": 300, "size_usd": 20, "max_holdings": 2}},
        "collection": {"min_volume_24h": 0, "min_liquidity": 0, "max_markets": 12},
        "alerts": {"critical": ["log"], "warning": ["log"], "info": ["log"]},
    }
    cfg.update(sim_urls(handle))
    cfg["polymarket"]["max_retries"] = 1
    cfg["polymarket"]["timeout_seconds"] = 2

    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v
        return a

    return merge(cfg, overrides)


def make_workspace(root: Path, handle, **overrides) -> Path:
    """config.yaml + initialized database + one initial collection cycle (the universe)."""
    write_config(root, engine_config(handle, **overrides))
    from polybot.collect.cycle import seed_universe
    from polybot.config import load_config

    res = seed_universe(load_config(root / "config.yaml", require_mode_secrets=False))
    assert res.markets > 0, res.failure
    return root


def load(root: Path):
    from polybot.config import load_config

    return load_config(root / "config.yaml", require_mode_secrets=False)


def connect(root: Path):
    from polybot import db

    return db.connect(load(root).database_path)


def bot_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIXES)}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def start_bot(root: Path, *args: str, log_name: str = "bot.out") -> subprocess.Popen:
    out = open(root / log_name, "a", encoding="utf-8")  # noqa: SIM115 — the bot process writes to it after we return
    return subprocess.Popen(
        [sys.executable, str(ROOT / "trading_bot.py"), *args],
        cwd=root,
        env=bot_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def run_bot(
    root: Path, *args: str, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``python trading_bot.py args`` in ``root``, run in process (see ``run_cli``); for a bot
    that must be signalled or killed use :func:`start_bot` (a real process)."""
    return run_cli("trading_bot.py", *args, cwd=root, env=env, timeout=timeout)


def wait_for(predicate, timeout: float = 60, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def query(root: Path, sql: str, *args):
    conn = connect(root)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


# ----------------------------------------------------------------------------- invariants
def assert_consistent(root: Path, mode: str = "paper") -> dict:
    """Positions and cash equal what the recorded trades imply; no duplicates."""
    from polybot.engine import ledger

    cfg = load(root)
    conn = connect(root)
    try:
        assert ledger.position_differences(conn, mode) == []
        n, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT trade_id) FROM trades").fetchone()
        assert n == distinct
        n, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT client_order_id) FROM orders").fetchone()
        assert n == distinct
        # every order's recorded fills never exceed its size, and filled_micro is their sum
        for oid, size, filled, total in conn.execute(
            "SELECT o.id, o.size_micro, o.filled_micro, COALESCE(SUM(t.size_micro),0) FROM orders o "
            "LEFT JOIN trades t ON t.order_id = o.id GROUP BY o.id"
        ):
            assert total <= size, (oid, size, total)
            assert filled == total, (oid, filled, total)
        cash = ledger.paper_cash_micro(conn, mode, int(cfg.capital * M))
        flows = conn.execute(
            "SELECT side, notional_micro, fee_micro FROM trades WHERE mode=?", (mode,)
        ).fetchall()
        assert cash == int(cfg.capital * M) + sum(-(n + f) if s == "BUY" else n - f for s, n, f in flows)
        # the paper exchange rebuilt from the records agrees
        if mode == "paper":
            from polybot.exchange.models import FeeSchedule
            from polybot.exchange.paper import PaperExchange

            ex = PaperExchange.from_records(
                lambda t: None,
                fees_by_token=lambda t: FeeSchedule(),
                clock=lambda: 0,
                initial_cash_micro=int(cfg.capital * M),
                fills=ledger.fills_of_mode(conn, mode),
                settlements=ledger.settlements_of_mode(conn, mode),
            )
            assert ex.balance_micro() == cash
            pos = {p.token_id: p.size for p in ex.positions()}
            db_pos = {p.token_id: p.size_micro for p in ledger.open_positions(conn, mode)}
            assert pos == db_pos
        return {"cash": cash, "trades": len(flows)}
    finally:
        conn.close()


def assert_limits_respected(root: Path, mode: str = "paper") -> dict:
    """Replay the trades and check every risk limit at every step (from the database)."""
    cfg = load(root)
    r = cfg.risk_limits
    cap = int(cfg.capital * M)
    conn = connect(root)
    try:
        rows = conn.execute("SELECT * FROM trades WHERE mode=? ORDER BY id", (mode,)).fetchall()
    finally:
        conn.close()
    pos: dict[str, list[int]] = {}
    cash = cap
    stats = {"buys": 0, "sells": 0, "settlements": 0, "max_positions": 0, "max_exposure": 0, "max_cost": 0}
    for t in rows:
        size, notional, fee = t["size_micro"], t["notional_micro"], t["fee_micro"]
        p = pos.setdefault(t["token_id"], [0, 0, 0])  # size, cost, fees paid
        if t["side"] == "BUY":
            stats["buys"] += 1
            was_open = p[0] > 0
            p[0] += size
            p[1] += notional + fee
            p[2] += fee
            cash -= notional + fee
            open_n = sum(1 for v in pos.values() if v[0] > 0)
            exposure = sum(v[1] for v in pos.values() if v[0] > 0)
            fees = sum(v[2] for v in pos.values() if v[0] > 0)
            assert p[1] <= int(r.max_position_size * M) + p[2], ("max_position_size", t["trade_id"], p)
            assert exposure <= int(r.max_portfolio_exposure * cap) + fees, (
                "exposure",
                t["trade_id"],
                exposure,
            )
            if not was_open:
                assert open_n <= r.max_positions, ("max_positions", t["trade_id"], open_n)
            assert cash >= 0, ("leverage", t["trade_id"], cash)
            stats["max_positions"] = max(stats["max_positions"], open_n)
            stats["max_exposure"] = max(stats["max_exposure"], exposure)
            stats["max_cost"] = max(stats["max_cost"], p[1])
        else:
            stats["settlements" if t["kind"] == "settlement" else "sells"] += 1
            removed = p[1] if size >= p[0] else p[1] * size // max(p[0], 1)
            p[0] -= size
            p[1] -= removed
            if p[0] <= 0:
                p[:] = [0, 0, 0]
            cash += notional - fee
    return stats
