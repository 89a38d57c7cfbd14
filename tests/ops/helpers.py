"""Helpers for the operations tests (backup, maintenance, health, reports, scheduler, pre-launch):
an initialized workspace, a "running bot" (a live process's PID in the PID file + a fresh
heartbeat), trades, and a tiny local HTTP server standing in for the CLOB."""

from __future__ import annotations

import http.server
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from polybot import db
from polybot.config import load_config
from tests.conftest import write_config


def init_workspace(root: Path, overrides: dict | None = None):
    """config.yaml (paper mode + overrides) and an initialized database; returns the Config."""
    write_config(root, overrides or {})
    cfg = load_config(root / "config.yaml", require_mode_secrets=False)
    db.initialize(cfg.database_path)
    return cfg


def connect(cfg) -> sqlite3.Connection:
    return db.connect(cfg.database_path)


def add_trade(
    conn,
    *,
    ts: int,
    mode: str = "paper",
    trade_id: str | None = None,
    side: str = "BUY",
    price: int = 500_000,
    size: int = 10_000_000,
    fee: int = 0,
    pnl: int | None = None,
    token: str = "tok1",
    market: str = "m1",
) -> None:
    notional = price * size // 1_000_000
    with db.atomic(conn):
        conn.execute(
            "INSERT INTO trades(trade_id, timestamp, mode, token_id, market_id, side, price_micro, size_micro, "
            "notional_micro, fee_micro, realized_pnl_micro) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                trade_id or f"t-{ts}-{side}-{token}",
                ts,
                mode,
                token,
                market,
                side,
                price,
                size,
                notional,
                fee,
                pnl,
            ),
        )


def add_alert(
    conn, *, ts: int, level: str = "critical", key: str = "daily_loss_limit", message: str = "boom"
) -> None:
    with db.atomic(conn):
        conn.execute(
            "INSERT INTO alerts(timestamp, level, key, message) VALUES (?,?,?,?)", (ts, level, key, message)
        )


class Sleeper:
    """A real live process whose PID stands in for the trading bot's."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def simulate_running_bot(cfg, pid: int, *, heartbeat: int | None = None, halted: bool = False) -> None:
    """What the trading bot writes: the PID file and the bot_state keys."""
    pid_file = cfg.database_path.parent / "trading_bot.pid"
    pid_file.write_text(f"{pid}\n")
    conn = connect(cfg)
    try:
        with db.atomic(conn):
            now = int(time.time())
            db.set_state(conn, "heartbeat", str(heartbeat if heartbeat is not None else now))
            db.set_state(conn, "pid", str(pid))
            db.set_state(conn, "mode", cfg.mode)
            db.set_state(conn, "halted", "1" if halted else "0")
    finally:
        conn.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        body = b'"OK"'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LocalClob:
    """A tiny HTTP server on 127.0.0.1 answering GET / like the CLOB does."""

    def __init__(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def backups_in(cfg) -> list[Path]:
    from polybot.ops.backup import list_backups

    return [b.path for b in list_backups(cfg.backup_dir)]
