"""Login for the dashboard: one shared secret, server-side sessions, CSRF tokens, rate limits.

- **The secret** is ``dashboard.password`` (from ``${DASHBOARD_PASSWORD}``), or — on loopback
  with no password configured — a random one-time token printed to the console at start (like
  Jupyter). It is compared in constant time: both sides are HMAC-SHA256'd with a per-process
  key and compared with :func:`hmac.compare_digest`, so neither content nor length leaks.
- **Sessions** are random ids kept in this process's memory (12 h, absolute); the cookie only
  carries the id, signed with a per-process random key. Logging out, or restarting the
  dashboard, invalidates every session. Cookie: HttpOnly, SameSite=Strict, Secure over HTTPS.
- **CSRF**: the login and logout forms carry a random token bound to the session; a POST
  without the matching token (or with a foreign ``Origin``) is refused with 400.
- **Rate limit**: 5 failed logins per minute per client address → 429 with ``Retry-After``;
  50 per minute in total across all clients (a backstop when the client address is spoofable).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import os
import secrets
import threading
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, make_response, redirect, render_template, request, session, url_for

SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5  # per client per window
MAX_FAILURES_GLOBAL = 50  # all clients per window
WINDOW_SECONDS = 60.0
MIN_PASSWORD_CHARS = 12


class Secret:
    """The shared secret; ``check`` is constant-time."""

    def __init__(self, value: str, *, is_token: bool):
        if not value:
            raise ValueError("empty dashboard secret")
        self._key = os.urandom(32)
        self._digest = self._mac(value)
        self.is_token = is_token

    def _mac(self, value: str) -> bytes:
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).digest()

    def check(self, candidate: str | None) -> bool:
        return hmac.compare_digest(self._mac(candidate or ""), self._digest)

    @classmethod
    def one_time_token(cls) -> tuple[Secret, str]:
        token = secrets.token_urlsafe(24)
        return cls(token, is_token=True), token


class Sessions:
    """Live session ids → expiry (monotonic seconds)."""

    def __init__(self, lifetime: float = SESSION_SECONDS):
        self.lifetime = lifetime
        self._ids: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self) -> str:
        sid = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._ids = {k: v for k, v in self._ids.items() if v > now}
            self._ids[sid] = now + self.lifetime
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid or not isinstance(sid, str):
            return False
        with self._lock:
            exp = self._ids.get(sid)
            if exp is None:
                return False
            if exp <= time.monotonic():
                del self._ids[sid]
                return False
            return True

    def revoke(self, sid: str | None) -> None:
        with self._lock:
            self._ids.pop(sid or "", None)


class FailureLimiter:
    """Sliding-window count of failed logins per client and in total."""

    def __init__(
        self,
        per_client: int = MAX_FAILURES,
        total: int = MAX_FAILURES_GLOBAL,
        window: float = WINDOW_SECONDS,
        clock=time.monotonic,
    ):
        self.per_client, self.total, self.window, self.clock = per_client, total, window, clock
        self._by_client: dict[str, collections.deque] = {}
        self._all: collections.deque = collections.deque()
        self._lock = threading.Lock()

    def _prune(self, q: collections.deque, now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def retry_after(self, client: str) -> int | None:
        """Seconds to wait if ``client`` is blocked now, else None."""
        now = self.clock()
        with self._lock:
            q = self._by_client.get(client)
            waits = []
            if q is not None:
                self._prune(q, now)
                if len(q) >= self.per_client:
                    waits.append(q[len(q) - self.per_client] + self.window - now)
            self._prune(self._all, now)
            if len(self._all) >= self.total:
                waits.append(self._all[len(self._all) - self.total] + self.window - now)
        return max(1, int(max(waits) + 0.999)) if waits else None

    def failure(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            self._by_client.setdefault(client, collections.deque()).append(now)
            self._all.append(now)
            if len(self._by_client) > 10_000:  # bound memory under a spray of addresses
                for k in [k for k, q in self._by_client.items() if not q or q[-1] <= now - self.window]:
                    del self._by_client[k]

    def success(self, client: str) -> None:
        with self._lock:
            self._by_client.pop(client, None)


# --------------------------------------------------------------------------- helpers for views
def _ext():
    return current_app.extensions["polybot_dashboard"]


def logged_in() -> bool:
    return _ext().sessions.valid(session.get("sid"))


def csrf_token() -> str:
    tok = session.get("csrf")
    if not tok:
        tok = session["csrf"] = secrets.token_urlsafe(32)
    return tok


def csrf_ok() -> bool:
    sent, want = request.form.get("csrf", ""), session.get("csrf", "")
    if not want or not hmac.compare_digest(sent.encode(), want.encode()):
        return False
    origin = request.headers.get("Origin")
    # Browsers send "Origin: null" for form posts under Referrer-Policy: no-referrer; the token
    # above is the protection, a foreign Origin is refused on top of it.
    if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
        current_app.logger.warning(
            "Dashboard form refused: Origin %s is not %s (behind a reverse proxy, set dashboard.trust_proxy: "
            "true and forward X-Forwarded-Proto and Host)",
            origin[:100],
            request.host_url.rstrip("/"),
        )
        return False
    return True


def safe_next(target: str | None) -> str:
    """Only same-site absolute paths ('/x'); anything else ('//evil', 'http://…') → '/'."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return "/"
    return target


def client_key() -> str:
    return request.remote_addr or "unknown"


bp = Blueprint("auth", __name__)


def _login_page(error: str | None = None, status: int = 200, retry_after: int | None = None):
    ext = _ext()
    resp = make_response(
        render_template(
            "login.html",
            error=error,
            token_mode=ext.secret.is_token,
            csrf=csrf_token(),
            next=safe_next(request.values.get("next")),
        ),
        status,
    )
    if retry_after:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login():
    ext = _ext()
    if request.method == "GET":
        if logged_in():
            return redirect(safe_next(request.args.get("next")))
        return _login_page()
    client = client_key()
    wait = ext.limiter.retry_after(client)
    if wait is not None:
        return _login_page(f"Too many failed logins; wait {wait} s and try again.", 429, retry_after=wait)
    if not csrf_ok():
        session.pop("csrf", None)
        return _login_page("The login form expired or came from another site; try again.", 400)
    if not ext.secret.check(request.form.get("password")):
        ext.limiter.failure(client)
        current_app.logger.warning("Dashboard login failed from %s", client)
        what = "token" if ext.secret.is_token else "password"
        return _login_page(f"Wrong {what}.", 401)
    ext.limiter.success(client)
    session.clear()  # new session id and CSRF token: no fixation
    session["sid"] = ext.sessions.create()
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    current_app.logger.info("Dashboard login from %s", client)
    return redirect(safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    if not csrf_ok():
        return redirect(url_for("index"))
    _ext().sessions.revoke(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))
