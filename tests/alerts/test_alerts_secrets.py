"""The bot token and the SMTP password never reach a log line, an alert row, a printed
sentence or an exception message — checked through the real stack (PTB + httpx + smtplib,
the project's logging at DEBUG) against the fake Bot API and aiosmtpd, with right and
wrong credentials (PTB's InvalidToken message contains the token)."""

from __future__ import annotations

import pytest

from polybot.notify.email import EmailChannel
from polybot.notify.telegram import TelegramChannel, classify
from tests.alerts.helpers import (
    CHAT_ID,
    SMTP_PASSWORD,
    SmtpServer,
    alert_rows,
    email_section,
    make_workspace,
    telegram_section,
)
from tests.conftest import run_cli, run_python
from tests.fake_telegram import FakeTelegram

PATTERN_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
ODD_TOKEN = "tok-Zq81-no-standard-shape"  # not caught by the token regex: masked by value

SCRIPT = """
import argparse, threading, time
from polybot.cli import run
from polybot.config import load_config
from polybot.logs import configure_from
from polybot.alerts import Alerter
from polybot.notify.commands import start_command_listener
cfg = load_config('config.yaml', require_mode_secrets=False)
configure_from(cfg, console_level='DEBUG')
import logging
logging.getLogger('httpx').setLevel('INFO')          # request URLs carry the token
logging.getLogger('telegram').setLevel('DEBUG')      # PTB logs its base URL at DEBUG
a = Alerter(cfg)
a.critical('api_auth_failure', 'request failed: ' + cfg.telegram.bot_token + ' / ' + cfg.email.password)
a.flush(60)
stop = threading.Event()
t = start_command_listener(cfg, stop, poll_seconds=1)
time.sleep(1.5)
stop.set(); t.join(10)
a.close()
def main(args):
    raise RuntimeError('boom with ' + cfg.telegram.bot_token)
print('exit', run(main, argparse.ArgumentParser(), []))
"""


@pytest.mark.parametrize("token", [PATTERN_TOKEN, ODD_TOKEN])
@pytest.mark.parametrize("credentials_right", [True, False])
def test_no_secret_anywhere(tmp_path, token, credentials_right):
    server_token = token if credentials_right else "555:server-expects-another-token-value"
    server_password = SMTP_PASSWORD if credentials_right else "another-password"
    env = {"TELEGRAM_BOT_TOKEN": token, "SMTP_PASSWORD": SMTP_PASSWORD}
    with FakeTelegram(server_token) as fake:
        smtp = SmtpServer(password=server_password).start()
        try:
            cfg = make_workspace(
                tmp_path,
                {
                    "log_level": "DEBUG",
                    "telegram": telegram_section(fake, token_var=True),
                    "email": email_section(smtp.port, password=True),
                    "alerts": {"critical": ["telegram", "email"], "warning": ["telegram"], "info": ["email"]},
                },
                env=env,
            )
            fake.add_message(int(CHAT_ID), "hi")
            fake.add_message(98765, "/stop", username="stranger")
            outputs = []
            for script, args in (
                ("test_alerts.py", ("--level", "critical")),
                ("get_telegram_chat_id.py", ()),
            ):
                res = run_cli(script, *args, cwd=tmp_path, env=env)
                outputs += [res.stdout, res.stderr]
                assert res.returncode == (0 if credentials_right else 1), res.stdout + res.stderr
            res = run_python(
                "from telegram_notifier import send_notification; send_notification('hello')",
                cwd=tmp_path,
                env=env,
            )
            outputs += [res.stdout, res.stderr]
            res = run_python(SCRIPT, cwd=tmp_path, env=env)
            outputs += [res.stdout, res.stderr]
            assert "exit 1" in res.stdout and "RuntimeError" in res.stderr  # it ran to the end
        finally:
            smtp.stop()
        # the secrets were really used on the wire
        assert fake.requests and all(r.token == token for r in fake.requests)
        assert smtp.auth_attempts and all(ok == credentials_right for _, ok in smtp.auth_attempts)
        if credentials_right:
            assert any("[TEST]" in m for m in fake.messages(CHAT_ID))
            assert len(smtp.messages) >= 2
    logs = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "logs").glob("*.log"))
    assert "HTTP Request: POST http://127.0.0.1" in logs and "/bot****/getMe" in logs
    assert "DEBUG" in logs  # the DEBUG level was on
    rows = alert_rows(cfg)
    assert rows
    text = "\n".join([logs, *outputs, *(str(r) for r in rows)])
    secret_part = token.split(":", 1)[-1]
    assert token not in text and secret_part not in text
    assert SMTP_PASSWORD not in text
    assert "****" in text


def test_channel_results_and_exception_sentences_hold_no_secret(tmp_path):
    with FakeTelegram("555:server-expects-another-token-value") as fake:
        cfg = make_workspace(
            tmp_path,
            {"telegram": telegram_section(fake, token_var=True)},
            env={"TELEGRAM_BOT_TOKEN": ODD_TOKEN},
            init_db=False,
        )
        result = TelegramChannel(cfg.telegram).send("hello")
    assert not result.ok and result.permanent
    assert "rejected the bot token" in result.detail and ODD_TOKEN not in result.detail

    from telegram.error import InvalidToken, NetworkError

    for exc in (
        InvalidToken(f"The token `{ODD_TOKEN}` was rejected by the server."),
        NetworkError(f"httpx.ConnectError: http://x/bot{ODD_TOKEN}/sendMessage"),
    ):
        assert ODD_TOKEN not in classify(exc, ODD_TOKEN).detail

    (tmp_path / "e").mkdir()
    with _smtp("another-password") as smtp:
        cfg = make_workspace(
            tmp_path / "e",
            {"email": email_section(smtp.port, password=True)},
            env={"SMTP_PASSWORD": SMTP_PASSWORD},
            init_db=False,
        )
        result = EmailChannel(cfg.email).send("subject", "body")
    assert not result.ok and result.permanent
    assert "refused the login for alerts@example.com" in result.detail
    assert SMTP_PASSWORD not in result.detail


class _smtp:
    def __init__(self, password):
        self.server = SmtpServer(password=password)

    def __enter__(self):
        return self.server.start()

    def __exit__(self, *exc):
        self.server.stop()


def test_alert_text_is_masked_before_storage_and_delivery(tmp_path):
    with FakeTelegram(ODD_TOKEN) as fake:
        cfg = make_workspace(
            tmp_path,
            {"telegram": telegram_section(fake, token_var=True), "alerts": {"warning": ["telegram"]}},
            env={"TELEGRAM_BOT_TOKEN": ODD_TOKEN},
        )
        from polybot.alerts import Alerter

        a = Alerter(cfg)
        a.warning("api_slow", f"call to https://example/bot{ODD_TOKEN}/x took 4 s")
        assert a.flush(30)
        a.close()
        sent = [r.params.get("text", "") for r in fake.calls("sendMessage")]
    (row,) = alert_rows(cfg)
    assert ODD_TOKEN not in row["message"] and "****" in row["message"]
    assert len(sent) == 1 and ODD_TOKEN not in sent[0] and "bot****/x" in sent[0]
