"""Email alerts over real SMTP to aiosmtpd on 127.0.0.1: plain, AUTH, STARTTLS."""

from __future__ import annotations

import ssl

from polybot.notify.email import EmailChannel
from tests.alerts.helpers import (
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpServer,
    email_section,
    free_port,
    make_workspace,
    self_signed_cert,
)  # noqa: F401

ENV = {"SMTP_PASSWORD": SMTP_PASSWORD}


def _channel(tmp_path, port, **kw):
    cfg = make_workspace(tmp_path, {"email": email_section(port, **kw)}, env=ENV, init_db=False)
    return EmailChannel(cfg.email, cfg.unset_env)


def test_plain_delivery_and_headers(tmp_path, smtp):
    result = _channel(tmp_path, smtp.port).send(
        "[polybot] 🚨 CRITICAL emergency_stop: stopped", "🚨 body\nline 2"
    )
    assert result.ok and result.detail == "mailed to operator@example.com"
    (msg,) = smtp.messages
    assert msg["Subject"] == "[polybot] 🚨 CRITICAL emergency_stop: stopped"
    assert msg["From"] == "polybot@example.com" and msg["To"] == "operator@example.com"
    assert msg["Date"] and msg["Message-ID"].endswith("@example.com>")
    assert smtp.texts() == ["🚨 body\nline 2\n"]
    assert smtp.envelopes[0].mail_from == "polybot@example.com"


def test_auth_login_with_the_password_from_the_environment(tmp_path):
    server = SmtpServer(password=SMTP_PASSWORD).start()
    try:
        result = _channel(tmp_path, server.port, password=True).send("s", "b")
    finally:
        server.stop()
    assert result.ok, result.detail
    assert server.auth_attempts == [("PLAIN", True)]
    assert len(server.messages) == 1


def test_wrong_password_is_permanent_and_names_the_fix(tmp_path):
    server = SmtpServer(password="the-right-one").start()
    try:
        result = _channel(tmp_path, server.port, password=True).send("s", "b")
    finally:
        server.stop()
    assert not result.ok and result.permanent
    assert result.detail == (
        f"the SMTP server 127.0.0.1:{server.port} refused the login for {SMTP_USER} (535); "
        f"check email.username and SMTP_PASSWORD"
    )
    assert server.messages == []


def test_unset_password_is_reported_without_connecting(tmp_path):
    cfg = make_workspace(tmp_path, {"email": email_section(free_port(), password=True)}, init_db=False)
    result = EmailChannel(cfg.email, cfg.unset_env).send("s", "b")
    assert not result.ok and result.permanent
    assert result.detail == "email.password is not set for user alerts@example.com; export SMTP_PASSWORD"


def test_unreachable_server_is_transient(tmp_path):
    port = free_port()
    result = _channel(tmp_path, port).send("s", "b")
    assert not result.ok and not result.permanent
    assert result.detail.startswith(f"cannot reach the SMTP server 127.0.0.1:{port}")


def test_starttls_required_but_not_offered_is_permanent(tmp_path, smtp):
    result = _channel(tmp_path, smtp.port, starttls=True).send("s", "b")
    assert not result.ok and result.permanent
    assert "does not support" in result.detail and "STARTTLS" in result.detail
    assert smtp.messages == []


def _tls_server(tmp_path, password=None):
    cert, key = self_signed_cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return SmtpServer(password=password, tls_context=ctx), cert


def test_starttls_then_auth(tmp_path, monkeypatch):
    server, cert = _tls_server(tmp_path, password=SMTP_PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate
    server.start()
    try:
        result = _channel(tmp_path, server.port, password=True, starttls=True).send("s", "over TLS")
    finally:
        server.stop()
    assert result.ok, result.detail
    assert server.auth_attempts == [("PLAIN", True)]
    assert server.texts() == ["over TLS\n"]


def test_starttls_with_an_untrusted_certificate_is_refused(tmp_path):
    server, _ = _tls_server(tmp_path)
    server.start()
    try:
        result = _channel(tmp_path, server.port, starttls=True).send("s", "b")
    finally:
        server.stop()
    assert not result.ok and result.permanent
    assert result.detail.startswith(f"TLS with 127.0.0.1:{server.port} failed")
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail or "certificate verify failed" in result.detail
    assert server.messages == []
