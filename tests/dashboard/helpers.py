"""Helpers for the dashboard tests: a seeded database with known answers, the real waitress
server in a thread, and a logged-in ``requests`` session."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import requests

from tests.conftest import write_config

M = 1_000_000
DAY = 86_400
PASSWORD = "correct-horse-battery-staple"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, fails fast


def chromium_path() -> str | None:
    if CHROMIUM.exists():
        return str(CHROMIUM)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dashboard_config(root: Path, **overrides) -> Path:
    base = {
        "dashboard": {"password": "${DASHBOARD_PASSWORD}", "refresh_seconds": 2, "health_seconds": 30},
        "polymarket": {"base_url": CLOSED_PORT_URL, "timeout_seconds": 1, "max_retries": 1},
        "alerts": {"critical": ["log"], "warning": ["log"], "info": ["log"]},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return write_config(root, base)


def load(root: Path, password: str | None = PASSWORD):
    from polybot.config import load_config

    env = {"DASHBOARD_PASSWORD": password} if password else {}
    return load_config(root / "config.yaml", env=env, require_mode_secrets=False)


@contextlib.contextmanager
def running(cfg, *, secret=None, health: bool = True) -> Iterator:
    """The real waitress server on a free 127.0.0.1 port, in a thread."""
    from polybot.dashboard import build_server

    server, token = build_server(cfg, "127.0.0.1", 0, secret=secret, health=health)
    server.token = token
    server.start()
    try:
        yield server
    finally:
        server.stop()


CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_from(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def login(
    base_url: str,
    password: str = PASSWORD,
    *,
    session: requests.Session | None = None,
    headers: dict | None = None,
) -> tuple[requests.Session, requests.Response]:
    s = session or requests.Session()
    page = s.get(f"{base_url}/login", headers=headers, timeout=10)
    resp = s.post(
        f"{base_url}/login",
        data={"csrf": csrf_from(page.text), "password": password, "next": "/"},
        headers=headers,
        allow_redirects=False,
        timeout=10,
    )
    return s, resp


def raw_login(base_url: str, password: str = PASSWORD, headers: dict | None = None) -> requests.Response:
    """Log in passing the cookie by hand (a Secure cookie is not sent back over plain http by a
    cookie jar; a TLS-terminating proxy would)."""
    page = requests.get(f"{base_url}/login", headers=headers, timeout=10)
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    return requests.post(
        f"{base_url}/login",
        data={"csrf": csrf_from(page.text), "password": password},
        headers={**(headers or {}), "Cookie": cookie},
        allow_redirects=False,
        timeout=10,
    )


def half_up_div(a: int, b: int) -> int:
    return int((Decimal(a) / Decimal(b)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- a seeded database
def seed(cfg, now: int) -> dict:
    """Fill the database with a small, fully known history (answers returned for the asserts).

    Three markets (two tracked), 5 days of performance rows, two round trips (one win, one
    loss), one open position with snapshots whose latest bid differs from older ones, an old
    trade outside the 24 h window, alerts, a cleared and an active halt, a backup row.
    """
    from polybot import db
    from polybot.engine import ledger

    db.initialize(cfg.database_path)
    conn = db.connect(cfg.database_path)
    slp = cfg.risk_limits.stop_loss_percent
    with db.atomic(conn):
        markets = [
            ("m1", "Will it rain in Lisbon?", 1, 5000.0),
            ("m2", "Will BTC close above $100k?", 1, 9000.0),
            ("m3", "Old untracked market?", 0, 100.0),
        ]
        for mid, q, tracked, liq in markets:
            conn.execute(
                "INSERT INTO markets(id, condition_id, question, token_ids, outcomes, tracked, liquidity, "
                "volume_24h, first_seen, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    mid,
                    "c" + mid,
                    q,
                    f'["{mid}y","{mid}n"]',
                    '["Yes","No"]',
                    tracked,
                    liq,
                    liq / 2,
                    now - 10 * DAY,
                    now,
                ),
            )
            for i, o in enumerate(("Yes", "No")):
                conn.execute(
                    "INSERT INTO market_tokens VALUES (?,?,?,?)", (f"{mid}{o[0].lower()}", mid, o, i)
                )
        # snapshots: every 5 minutes for 2 hours; the latest prices are the ones to show
        for k in range(25):
            ts = now - 7200 + 300 * k
            for tok, base in (("m1y", 0.40), ("m1n", 0.58), ("m2y", 0.70), ("m2n", 0.28)):
                bid = round(base + 0.001 * k, 3)
                conn.execute(
                    "INSERT INTO snapshot_values(timestamp, token_id, market_id, best_bid, best_ask, mid, "
                    "spread) VALUES (?,?,?,?,?,?,?)",
                    (ts, tok, tok[:2], bid, bid + 0.02, bid + 0.01, 0.02),
                )
        trades = [  # (id, token, market, side, price, shares, fee, ts)
            ("t-old", "m3y", "m3", "BUY", 0.50, 10, 0, now - 3 * DAY),
            ("t-old-s", "m3y", "m3", "SELL", 0.40, 10, 0, now - 3 * DAY + 60),  # a loss, outside 24 h
            ("t1", "m2y", "m2", "BUY", 0.60, 50, 150_000, now - 6 * 3600),
            ("t2", "m2y", "m2", "SELL", 0.66, 50, 150_000, now - 5 * 3600),  # a win
            ("t3", "m1y", "m1", "BUY", 0.45, 100, 200_000, now - 3600),  # still open
        ]
        for tid, tok, mid, side, price, shares, fee, ts in trades:
            ledger.record_trade(
                conn,
                mode=cfg.mode,
                trade_id=tid,
                token_id=tok,
                market_id=mid,
                side=side,
                price_micro=int(round(price * M)),
                size_micro=shares * M,
                fee_micro=fee,
                ts=ts,
                strategy="test",
                reason=f"seed {tid}",
                stop_loss_percent=slp,
            )
        equity = [500 * M, 503 * M, 498 * M, 507 * M, 505 * M, 509 * M]
        first_day = (now // DAY - 4) * DAY
        for d in range(5):  # 5 UTC days, 3 rows a day
            for j, frac in enumerate((0.25, 0.5, 0.75)):
                ts = min(first_day + d * DAY + int(frac * DAY), now - 60)
                e = equity[d + 1] + (j - 2) * M // 10 if j < 2 else equity[d + 1]
                conn.execute(
                    "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
                    "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (ts, cfg.mode, e, e - 45 * M, 45 * M, 1_000_000, -200_000, e - equity[d], 1),
                )
        for i, (level, key, msg) in enumerate(
            (
                ("info", "daily_summary", "All good"),
                ("warning", "win_rate_low", "Win rate below 50%"),
                ("critical", "daily_loss_limit", "Daily loss limit hit"),
            )
        ):
            conn.execute(
                "INSERT INTO alerts(timestamp, level, key, message, status) VALUES (?,?,?,?,?)",
                (now - 600 + i, level, key, msg, "sent"),
            )
        conn.execute(
            "INSERT INTO halts(timestamp, mode, breaker, reason, cleared_at, cleared_by) VALUES "
            "(?,?,?,?,?,?)",
            (now - 2 * DAY, cfg.mode, "api_errors", "3 API errors in a row", now - DAY, "operator"),
        )
        conn.execute(
            "INSERT INTO halts(timestamp, mode, breaker, reason) VALUES (?,?,?,?)",
            (now - 300, cfg.mode, "daily_loss", "daily loss $101 over the $100 limit"),
        )
        for k, v in (
            ("halted", "1"),
            ("halt_reason", "daily loss $101 over the $100 limit"),
            ("halt_breaker", "daily_loss"),
            ("heartbeat", str(now - 5)),
            ("mode", cfg.mode),
            ("pid", "4242"),
        ):
            db.set_state(conn, k, v, now=now)
        conn.execute(
            "INSERT INTO backups(timestamp, path, size_bytes, sha256, integrity) VALUES (?,?,?,?,?)",
            (
                now - 4 * 3600,
                str(cfg.backup_dir / "polymarket_backup_20261124_020000.db"),
                2_500_000,
                "ab" * 32,
                "ok",
            ),
        )
        conn.execute(
            "INSERT INTO collection_cycles(started_at, cycle_ts, finished_at, status, markets, snapshots) "
            "VALUES (?,?,?,?,?,?)",
            (now - 300, now - 300, now - 299, "ok", 2, 4),
        )
    conn.close()
    return {"first_day": first_day, "equity_days": equity[1:]}


def rows(cfg, sql: str, *args) -> list[sqlite3.Row]:
    from polybot import db

    conn = db.connect(cfg.database_path, readonly=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


__all__ = [
    "M",
    "DAY",
    "PASSWORD",
    "chromium_path",
    "dashboard_config",
    "load",
    "running",
    "login",
    "seed",
    "rows",
    "csrf_from",
    "half_up_div",
    "raw_login",
    "free_port",
    "CHROMIUM_ARGS",
    "write_config",
]
