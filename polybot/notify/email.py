"""Email alerts over SMTP with the standard library (smtplib + email.message).

Settings (``email:`` in config.yaml): ``smtp_host``, ``smtp_port``, ``starttls``
(upgrade a plain connection with STARTTLS, verifying the certificate), ``username``
and ``password: ${SMTP_PASSWORD}`` (AUTH is used when a username is set),
``from_addr``, ``to_addrs``, ``timeout_seconds``. Port 465 means implicit TLS
(``SMTP_SSL``). ``send`` never raises; a refused login, a refused recipient or a
server without STARTTLS is permanent (fix the config), anything network-like is
transient (retried later). The password never appears in a result or a log line.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ..config import EmailConfig
from ..logs import REDACTOR, redact
from . import DeliveryResult

log = logging.getLogger("polybot.notify.email")


def config_problem(ecfg: EmailConfig, unset_env: Iterable[tuple[str, str]] = ()) -> str | None:
    """Why email cannot be used with this config (one sentence), or None."""
    if not ecfg.enabled:
        return "disabled in config.yaml (email.enabled: false)"
    if not ecfg.from_addr or not ecfg.to_addrs:
        return "email.from_addr or email.to_addrs is empty; fill them in config.yaml"
    if ecfg.username and not ecfg.password:
        var = dict(unset_env).get("email.password", "SMTP_PASSWORD")
        return f"email.password is not set for user {ecfg.username}; export {var}"
    return None


class EmailChannel:
    name = "email"

    def __init__(self, ecfg: EmailConfig, unset_env: Iterable[tuple[str, str]] = ()):
        self.cfg = ecfg
        self.unset_env = unset_env
        if ecfg.password:
            REDACTOR.add([ecfg.password])

    def problem(self) -> str | None:
        return config_problem(self.cfg, self.unset_env)

    def _clean(self, text: object) -> str:
        text = str(text)
        if self.cfg.password:
            text = text.replace(self.cfg.password, "****")
        return redact(text)

    def build(self, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = self.cfg.from_addr
        msg["To"] = ", ".join(self.cfg.to_addrs)
        msg["Date"] = formatdate(usegmt=True)
        sender = self.cfg.from_addr or ""
        domain = sender.rsplit("@", 1)[-1] if "@" in sender else None
        msg["Message-ID"] = make_msgid(domain=domain)
        msg.set_content(body)
        return msg

    def send(self, subject: str, body: str) -> DeliveryResult:
        problem = self.problem()
        if problem:
            return DeliveryResult(self.name, False, problem, permanent=True)
        c = self.cfg
        where = f"{c.smtp_host}:{c.smtp_port}"
        try:
            refused = self._transmit(self.build(subject, body))
        except Exception as exc:  # noqa: BLE001 - never raise into the alerter
            return self._failure(exc, where)
        if refused:
            return self._fail(
                f"the SMTP server {where} refused {', '.join(refused)}; check email.to_addrs", True
            )
        return DeliveryResult(self.name, True, f"mailed to {', '.join(c.to_addrs)}")

    def _transmit(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        """One SMTP session (SSL on port 465, else STARTTLS when configured): the recipients
        the server refused. Raises what smtplib/ssl/the socket raise."""
        c = self.cfg
        smtp: smtplib.SMTP
        if int(c.smtp_port) == 465:
            smtp = smtplib.SMTP_SSL(
                c.smtp_host, c.smtp_port, timeout=c.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout_seconds)
        try:
            smtp.ehlo()
            if c.starttls and int(c.smtp_port) != 465:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if c.username:
                smtp.login(c.username, c.password or "")
            return smtp.send_message(msg)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _failure(self, exc: Exception, where: str) -> DeliveryResult:
        """The one-sentence result for what sending raised (the most specific class first)."""
        c = self.cfg
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return self._fail(
                f"the SMTP server {where} refused the login for {c.username} "
                f"({exc.smtp_code}); check email.username and SMTP_PASSWORD",
                True,
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return self._fail(
                f"the SMTP server {where} does not support {self._clean(exc) or 'a required feature'}"
                f" (STARTTLS or AUTH); set email.starttls/username to match the server",
                True,
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return self._fail(
                f"the SMTP server {where} refused the recipients "
                f"{', '.join(exc.recipients)}; check email.to_addrs",
                True,
            )
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return self._fail(
                f"the SMTP server {where} refused the sender {exc.sender} "
                f"({exc.smtp_code}); check email.from_addr",
                exc.smtp_code >= 500,
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            return self._fail(
                f"the SMTP server {where} answered {exc.smtp_code} {self._clean(text)}", exc.smtp_code >= 500
            )
        if isinstance(exc, ssl.SSLError):
            return self._fail(
                f"TLS with {where} failed ({self._clean(exc)}); check email.smtp_port and email.starttls",
                True,
            )
        if isinstance(exc, TimeoutError):
            return self._fail(f"the SMTP server {where} did not answer in time (timed out)", False)
        if isinstance(exc, (smtplib.SMTPException, OSError)):
            reason = getattr(exc, "strerror", None) or self._clean(exc) or type(exc).__name__
            return self._fail(f"cannot reach the SMTP server {where} ({reason})", False)
        return self._fail(f"{type(exc).__name__}: {self._clean(exc)}", False)

    def _fail(self, detail: str, permanent: bool) -> DeliveryResult:
        detail = self._clean(detail)
        log.warning("Email delivery failed: %s", detail)
        return DeliveryResult(self.name, False, detail, permanent=permanent)
