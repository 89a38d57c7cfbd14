"""``dashboard.py``: serve the dashboard with waitress (a production WSGI server).

Binding rules: loopback (127.0.0.1, ::1, localhost) by default. Any other address is refused
unless ``dashboard.password`` is set (at least 12 characters): the page would otherwise be
reachable from the network; ``dashboard.trust_proxy: true`` (published through nginx/Caddy) needs
the password too. On loopback without a password a one-time token is generated and printed at
start (it is never logged); it changes at every start.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import signal
import sys
import threading

from ..config import Config
from ..errors import ConfigError
from .app import create_app, host_is_loopback
from .auth import MIN_PASSWORD_CHARS, Secret
from .monitor import HealthMonitor

log = logging.getLogger("polybot.dashboard")
THREADS = 8


def resolve_secret(cfg: Config, host: str) -> tuple[Secret, str | None]:
    """(secret, one-time token or None). Raises ConfigError when ``host`` may not be used."""
    password = cfg.dashboard.password
    unset = dict(cfg.unset_env).get("dashboard.password")
    if password:
        if len(password) < MIN_PASSWORD_CHARS:
            raise ConfigError(
                f"dashboard.password is only {len(password)} characters; use at least "
                f'{MIN_PASSWORD_CHARS} characters (e.g. python -c "import secrets; print(secrets.token_urlsafe(18))").'
            )
        return Secret(password, is_token=False), None
    if cfg.dashboard.trust_proxy:
        raise ConfigError(
            "dashboard.trust_proxy is true (the dashboard is published through a reverse proxy) but no "
            "password is set; export DASHBOARD_PASSWORD (at least 12 characters) or set trust_proxy: "
            "false for local use."
        )
    if not host_is_loopback(host):
        how = (
            f"export {unset}"
            if unset
            else "set dashboard.password to ${DASHBOARD_PASSWORD} in config.yaml and export DASHBOARD_PASSWORD"
        )
        raise ConfigError(
            f"Refusing to serve the dashboard on {host} (reachable from other machines) without a "
            f"password; {how}, or use --host 127.0.0.1."
        )
    secret, token = Secret.one_time_token()
    return secret, token


class DashboardServer:
    """A waitress server for the app; ``serve()`` blocks, ``start()`` runs it in a thread."""

    def __init__(
        self, cfg: Config, host: str, port: int, secret: Secret, *, health: HealthMonitor | None = None
    ):
        from waitress import create_server

        self.cfg, self.host = cfg, host
        self.health = health
        self.app = create_app(cfg, secret, bind_host=host, health=health)
        try:
            self._server = create_server(
                self.app,
                host=host,
                port=port,
                threads=THREADS,
                ident="polybot-dashboard",
                clear_untrusted_proxy_headers=not cfg.dashboard.trust_proxy,
                expose_tracebacks=False,
                channel_timeout=60,
            )
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
                raise ConfigError(
                    f"Port {port} on {host} is already in use; stop the other program or pass --port N."
                ) from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise ConfigError(
                    f"Cannot listen on {host}:{port} ({exc.strerror}); pick another --host or --port."
                ) from None
            raise
        self.port = int(self._server.effective_port)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}"

    def serve(self) -> None:
        """Serve until :meth:`stop` (or Ctrl-C); closes every connection on the way out."""
        from waitress import wasyncore

        if self.health:
            self.health.start()
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.5, map=self._server._map, use_poll=True, count=1)
        finally:
            wasyncore.close_all(self._server._map)
            self._server.task_dispatcher.shutdown()
            if self.health:
                self.health.stop(timeout=1)

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self.serve, name="polybot-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):  # wakes the loop; a closed server needs no wake-up
            self._server.pull_trigger()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def build_server(
    cfg: Config,
    host: str | None = None,
    port: int | None = None,
    *,
    secret: Secret | None = None,
    health: bool = True,
) -> tuple[DashboardServer, str | None]:
    """(server, one-time token or None) for ``cfg``; host/port default to the config."""
    host = host or cfg.dashboard.host
    port = cfg.dashboard.port if port is None else int(port)
    token = None
    if secret is None:
        secret, token = resolve_secret(cfg, host)
    monitor = HealthMonitor(cfg, cfg.dashboard.health_seconds) if health else None
    return DashboardServer(cfg, host, port, secret, health=monitor), token


def main(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..logs import REDACTOR
    from ..ops.common import configure_quiet

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)  # the log file gets everything; the console only our lines
    server, token = build_server(cfg, args.host, args.port)
    if token:
        REDACTOR.add([token])  # never in a log file, even by accident
    if not host_is_loopback(server.host):
        print(
            f"Warning: serving plain HTTP on {server.host}; put it behind HTTPS (nginx or Caddy, see "
            f"docs/dashboard.md) and allow only your own IP addresses in the firewall.",
            file=sys.stderr,
        )
    print(f"Dashboard running at {server.url} (Ctrl-C to stop)", flush=True)
    if token:
        print(
            "No dashboard.password is configured: log in with this one-time token (valid until the dashboard "
            f"stops):\n    {token}",
            flush=True,
        )
    log.info("Dashboard started on %s (%s mode data, database %s)", server.url, cfg.mode, cfg.database_path)

    def _term(_sig: int, _frame: object) -> None:
        server.stop(timeout=0)

    with contextlib.suppress(ValueError, AttributeError):  # not the main thread / no SIGTERM (Windows)
        signal.signal(signal.SIGTERM, _term)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    print("Dashboard stopped.", flush=True)
    log.info("Dashboard stopped")
    return 0
