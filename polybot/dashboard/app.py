"""The Flask application: routes, the login gate, security headers, one read-only connection per
request.

Routes: ``/`` (the page), ``/api/state`` (its JSON), ``/login``, ``/logout`` and
``/assets/<name>`` (the app's own script and stylesheet). Everything except ``/login`` and the
stylesheet the login page needs requires a session: JSON under ``/api/`` answers 401, anything
else redirects to ``/login`` — including unknown paths, so nothing is learnt without logging in.

Every response carries ``Content-Security-Policy: default-src 'self'`` (no inline script or
style, no external origin), ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``; HSTS when served over HTTPS.
When bound to loopback without a trusted proxy, requests whose ``Host`` is not a loopback name
are refused (400): a web page cannot reach the dashboard through DNS rebinding.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue

from .. import db
from ..config import Config
from ..errors import PolybotError
from . import auth
from .monitor import HealthMonitor
from .queries import build_state

log = logging.getLogger("polybot.dashboard")
HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
PUBLIC_ENDPOINTS = frozenset({"auth.login"})
PUBLIC_ASSETS = frozenset({"app.css", "favicon.svg"})  # what the login page loads (no data in them)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


@dataclass
class DashboardExt:
    cfg: Config
    secret: auth.Secret
    sessions: auth.Sessions
    limiter: auth.FailureLimiter
    health: HealthMonitor | None
    secure_cookie: bool | None
    check_host: bool
    clock: Callable[[], float] = time.time


class _SessionInterface(SecureCookieSessionInterface):
    """Signed-cookie session whose Secure flag follows the request (or the config)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forced = app.extensions["polybot_dashboard"].secure_cookie
        return bool(forced) if forced is not None else request.is_secure


def host_is_loopback(host: str) -> bool:
    import ipaddress

    h = host.strip().strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _request_host_name() -> str:
    host = request.host or ""
    if host.startswith("["):  # [::1]:5000
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(
    cfg: Config,
    secret: auth.Secret,
    *,
    bind_host: str = "127.0.0.1",
    health: HealthMonitor | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """The dashboard app for ``cfg``; ``secret`` is the password (or one-time token)."""
    app = Flask(__name__, static_folder=None, template_folder=str(HERE / "templates"))
    app.config.update(
        SECRET_KEY=os.urandom(32),  # per process: a restart logs everyone out
        SESSION_COOKIE_NAME="polybot_dashboard",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=_dt.timedelta(seconds=auth.SESSION_SECONDS),
        MAX_CONTENT_LENGTH=16 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if isinstance(app.json, DefaultJSONProvider):  # Flask's default provider: keep our key order
        app.json.sort_keys = False
    app.session_interface = _SessionInterface()
    dcfg = cfg.dashboard
    app.extensions["polybot_dashboard"] = DashboardExt(
        cfg=cfg,
        secret=secret,
        sessions=auth.Sessions(),
        limiter=auth.FailureLimiter(),
        health=health,
        secure_cookie=dcfg.secure_cookie,
        check_host=host_is_loopback(bind_host) and not dcfg.trust_proxy,
        clock=clock,
    )
    if dcfg.trust_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Flask documents wrapping wsgi_app in middleware by assignment; mypy sees a method
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=0
        )
    app.register_blueprint(auth.bp)
    _register(app)
    return app


def _ext() -> DashboardExt:
    from flask import current_app

    return current_app.extensions["polybot_dashboard"]


def get_conn() -> tuple[sqlite3.Connection | None, str | None]:
    """This request's read-only connection (``mode=ro``), or (None, why) if there is no database."""
    if "db" not in g:
        cfg = _ext().cfg
        try:
            g.db, g.db_error = db.connect(cfg.database_path, readonly=True), None
        except PolybotError as exc:
            g.db, g.db_error = None, str(exc)
    return g.db, g.db_error


def current_state() -> dict[str, Any]:
    ext = _ext()
    conn, error = get_conn()
    now = ext.clock()
    state = build_state(ext.cfg, conn, now=now, db_error=error)
    state["health"] = (
        ext.health.snapshot()
        if ext.health
        else {"status": "DISABLED", "lines": [], "checked": None, "checked_ago": "disabled"}
    )
    state["refresh_seconds"] = ext.cfg.dashboard.refresh_seconds
    return state


def _register(app: Flask) -> None:
    _register_gate(app)
    _register_hooks(app)
    _register_pages(app)
    _register_error_pages(app)


def _register_gate(app: Flask) -> None:
    """Before every request: the Host check, then login (public endpoints and assets excepted)."""

    @app.before_request
    def gate():
        ext = _ext()
        if ext.check_host and _request_host_name().lower() not in LOOPBACK_HOSTS:
            return make_response(
                "Bad Host header: this dashboard only answers to 127.0.0.1 / localhost.\n",
                400,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if request.endpoint == "asset" and (request.view_args or {}).get("name") in PUBLIC_ASSETS:
            return None
        if auth.logged_in():
            return None
        if request.path.startswith("/api/"):
            return jsonify(error="login required", login="/login"), 401
        nxt = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("auth.login", next=nxt if nxt and nxt != "/" else None))


def _register_hooks(app: Flask) -> None:
    """Security headers on every response; the request's database connection closed after it."""

    @app.after_request
    def headers(resp: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            resp.headers[k] = v  # also over send_file's caching headers: no-store everywhere
        if request.is_secure:
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        resp.headers["Server"] = "polybot-dashboard"
        return resp

    @app.teardown_request
    def close_db(_exc: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()


def _register_pages(app: Flask) -> None:
    """The page, its JSON state and its static assets."""

    @app.route("/", endpoint="index")
    def index():
        state = current_state()
        return render_template(
            "index.html",
            state=state,
            csrf=auth.csrf_token(),
            refresh_seconds=_ext().cfg.dashboard.refresh_seconds,
        )

    @app.route("/api/state", endpoint="api_state")
    def api_state():
        return jsonify(current_state())

    @app.route("/assets/<path:name>", endpoint="asset")
    def asset(name: str):
        # explicit types: with nosniff, a registry that maps .js to text/plain (Windows) would block the script
        mimetype = ASSET_TYPES.get(Path(name).suffix.lower())
        return send_from_directory(ASSETS, name, max_age=0, mimetype=mimetype)


def _register_error_pages(app: Flask) -> None:
    """Not found, and a database that cannot be read (503: the page retries)."""

    @app.errorhandler(404)
    def not_found(_e: Exception) -> ResponseReturnValue:
        if request.path.startswith("/api/"):
            return jsonify(error="not found"), 404
        return make_response("Not found.\n", 404, {"Content-Type": "text/plain; charset=utf-8"})

    @app.errorhandler(sqlite3.Error)
    def db_failure(exc: sqlite3.Error) -> ResponseReturnValue:
        log.warning("Dashboard database read failed: %s", exc)
        msg = (
            f"The database could not be read ({exc}); the page retries on the next refresh — if it persists "
            f"run python health_check.py."
        )
        if request.path.startswith("/api/"):
            return jsonify(error=msg), 503
        return make_response(msg + "\n", 503, {"Content-Type": "text/plain; charset=utf-8"})
