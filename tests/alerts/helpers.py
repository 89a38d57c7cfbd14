"""Fixtures and helpers for the alert tests: a local SMTP server (aiosmtpd), the fake
Telegram Bot API, and an alert workspace (config.yaml + initialized database)."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import time
import warnings
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.fake_telegram import FakeTelegram

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
CHAT_ID = "424242"
SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "Sm7p-pa55word-do-not-log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 recording every message; optional AUTH and STARTTLS."""

    def __init__(self, port: int | None = None, *, password: str | None = None, tls_context=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.port = port or free_port()
        self.messages: list = []
        self.envelopes: list = []
        self.auth_attempts: list[tuple[str, bool]] = []
        server = self

        class Handler:
            async def handle_DATA(self, srv, session, envelope):
                server.envelopes.append(envelope)
                server.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted"

        def authenticator(srv, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == SMTP_USER
                and auth_data.password.decode() == password
            )
            server.auth_attempts.append((mechanism, ok))
            return AuthResult(success=ok, handled=False)  # False: the server answers 535

        kwargs: dict = {}
        if password is not None:
            kwargs.update(
                authenticator=authenticator, auth_required=True, auth_require_tls=tls_context is not None
            )
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        with warnings.catch_warnings():  # "AUTH without TLS" is what the test wants
            warnings.simplefilter("ignore")
            self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def texts(self) -> list[str]:
        return [m.get_content().replace("\r\n", "\n") for m in self.messages]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


def email_section(port: int, *, password: bool = False, starttls: bool = False) -> dict:
    sec = {
        "enabled": True,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "starttls": starttls,
        "from_addr": "polybot@example.com",
        "to_addrs": ["operator@example.com"],
        "timeout_seconds": 5,
    }
    if password:
        sec.update(username=SMTP_USER, password="${SMTP_PASSWORD}")
    return sec


def telegram_section(fake: FakeTelegram, *, timeout: float = 5, token_var: bool = False) -> dict:
    return {
        "enabled": True,
        "bot_token": "${TELEGRAM_BOT_TOKEN}" if token_var else TOKEN,
        "chat_id": CHAT_ID,
        "base_url": fake.base_url,
        "timeout_seconds": timeout,
    }


def make_workspace(root: Path, overrides: dict, *, init_db: bool = True, env: dict | None = None):
    """Write config.yaml under ``root``, initialize the database, return the loaded Config."""
    from polybot.config import load_config
    from polybot.db import initialize

    write_config(root, overrides)
    cfg = load_config(root / "config.yaml", env=env, require_mode_secrets=False)
    if init_db:
        initialize(cfg.database_path)
    return cfg


def alert_rows(cfg) -> list[dict]:
    conn = sqlite3.connect(str(cfg.database_path))
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id")]
    finally:
        conn.close()
    for r in rows:
        r["delivery_json"] = json.loads(r["delivery"])
        r["channels_json"] = json.loads(r["channels"])
    return rows


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with the openssl CLI (skips the test if absent)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl command not available to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
