"""The dashboard over real HTTP (waitress on a free 127.0.0.1 port, real SQLite in tmp_path):
the login gate on every route, login security (constant-time secret, CSRF, rate limit, cookie
flags, proxy headers, Host check), security headers, the numbers against the database, the empty
and missing database, and ``dashboard.py`` as the operator runs it."""

from __future__ import annotations

import itertools
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import pytest
import requests

from polybot.money import fmt_usd, notional_micro, to_micro
from tests.conftest import ROOT, SECRET_ENV_PREFIXES, run_cli
from tests.dashboard.helpers import (
    DAY,
    PASSWORD,
    csrf_from,
    dashboard_config,
    free_port,
    half_up_div,
    load,
    login,
    raw_login,
    rows,
    running,
    seed,
)

SECURITY = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def assert_security_headers(resp: requests.Response) -> None:
    for k, v in SECURITY.items():
        assert resp.headers.get(k) == v, (resp.url, resp.status_code, k, resp.headers.get(k))
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp


@pytest.fixture
def seeded(tmp_path):
    dashboard_config(tmp_path)
    cfg = load(tmp_path)
    now = int(time.time())
    seed(cfg, now)
    return cfg


@pytest.fixture
def server(seeded):
    with running(seeded) as srv:
        yield srv


# --------------------------------------------------------------------------- the gate
def _sample_url(rule) -> str:
    values = {arg: ("dashboard.js" if arg == "name" else "x") for arg in rule.arguments}
    path = rule.rule
    for arg, val in values.items():
        path = path.replace(f"<path:{arg}>", val).replace(f"<{arg}>", val)
    return path


def test_every_route_requires_a_session(server):
    rules = list(server.app.url_map.iter_rules())
    assert {r.endpoint for r in rules} >= {"index", "api_state", "auth.login", "auth.logout", "asset"}
    checked = 0
    for rule in rules:
        if rule.endpoint == "auth.login":
            continue  # the only public page
        # the rule's own methods and any other: the gate answers before routing (no 405 leak)
        for method in sorted(
            (rule.methods - {"HEAD", "OPTIONS"}) | {"GET", "POST", "PUT", "DELETE", "PATCH"}
        ):
            url = server.url + _sample_url(rule)
            resp = requests.request(method, url, allow_redirects=False, timeout=10)
            if url.split("/", 3)[3].startswith("api/"):
                assert resp.status_code == 401, (method, url, resp.status_code)
                assert resp.json()["error"] == "login required"
            else:
                assert resp.status_code == 302, (method, url, resp.status_code)
                assert resp.headers["Location"].startswith("/login"), resp.headers["Location"]
            assert_security_headers(resp)
            checked += 1
    assert checked >= 4 * 5
    # unknown paths and every static file but the login page's stylesheet and icon are gated too
    for path in ("/nope", "/api/nope", "/assets/dashboard.js", "/static/app.css", "/api/state?x=1"):
        resp = requests.get(server.url + path, allow_redirects=False, timeout=10)
        assert resp.status_code in (302, 401), (path, resp.status_code)
    for path in ("/assets/app.css", "/assets/favicon.svg", "/login"):
        resp = requests.get(server.url + path, allow_redirects=False, timeout=10)
        assert resp.status_code == 200, path
        assert_security_headers(resp)
        assert "polybot_dashboard=" not in resp.headers.get("Set-Cookie", "") or path == "/login"


def test_login_then_everything_is_reachable_with_security_headers(server):
    s, resp = login(server.url)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    types = {
        "/": "text/html",
        "/api/state": "application/json",
        "/assets/dashboard.js": "text/javascript",
        "/assets/app.css": "text/css",
    }
    for path, ctype in types.items():
        r = s.get(server.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith(ctype), (path, r.headers["Content-Type"])
        assert_security_headers(r)
    r = s.get(server.url + "/nope", timeout=10)
    assert r.status_code == 404
    assert_security_headers(r)
    page = s.get(server.url + "/", timeout=10).text
    assert '<script src="/assets/dashboard.js"></script>' in page
    refs = re.findall(r'(?:src|href|action)="([^"]*)"', page)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs  # nothing external


def test_wrong_password_rejected_then_rate_limited(server):
    s = requests.Session()
    for i in range(5):
        s, resp = login(server.url, f"wrong-password-{i}", session=s)
        assert resp.status_code == 401 and "Wrong password." in resp.text
        assert_security_headers(resp)
        assert "polybot_dashboard" not in s.cookies or not s.get(server.url + "/api/state", timeout=10).ok
    s, resp = login(server.url, PASSWORD, session=s)  # even the right password, for a minute
    assert resp.status_code == 429 and "Too many failed logins" in resp.text
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert s.get(server.url + "/api/state", timeout=10).status_code == 401


def test_login_form_needs_its_csrf_token_and_same_origin(server):
    s = requests.Session()
    s.get(server.url + "/login", timeout=10)
    resp = s.post(server.url + "/login", data={"password": PASSWORD}, allow_redirects=False, timeout=10)
    assert resp.status_code == 400
    page = s.get(server.url + "/login", timeout=10)
    resp = s.post(
        server.url + "/login",
        data={"password": PASSWORD, "csrf": csrf_from(page.text)},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 400
    # a token from another session is worthless
    other = requests.Session()
    token = csrf_from(other.get(server.url + "/login", timeout=10).text)
    resp = s.post(
        server.url + "/login", data={"password": PASSWORD, "csrf": token}, allow_redirects=False, timeout=10
    )
    assert resp.status_code == 400
    assert s.get(server.url + "/api/state", timeout=10).status_code == 401


def test_session_cookie_flags_and_logout_revokes(server):
    s, resp = login(server.url)
    cookie = resp.headers["Set-Cookie"]
    assert "polybot_dashboard=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback (auto)
    stolen = dict(s.cookies)
    page = s.get(server.url + "/", timeout=10).text
    resp = s.post(server.url + "/logout", data={"csrf": csrf_from(page)}, allow_redirects=False, timeout=10)
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    replay = requests.get(server.url + "/api/state", cookies=stolen, timeout=10)
    assert replay.status_code == 401  # the server forgot the session


def test_open_redirect_refused(server):
    s = requests.Session()
    page = s.get(server.url + "/login?next=//evil.example/x", timeout=10)
    resp = s.post(
        server.url + "/login",
        data={"csrf": csrf_from(page.text), "password": PASSWORD, "next": "//evil.example/x"},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_foreign_host_header_refused_on_loopback(server):
    resp = requests.get(server.url + "/login", headers={"Host": "evil.example"}, timeout=10)
    assert resp.status_code == 400 and "Host" in resp.text
    assert_security_headers(resp)
    assert (
        requests.get(server.url.replace("127.0.0.1", "localhost") + "/login", timeout=10).status_code == 200
    )


def test_forwarded_headers_ignored_unless_proxy_trusted(tmp_path):
    dashboard_config(tmp_path)
    cfg = load(tmp_path)
    with running(cfg, health=False) as srv:
        _, resp = login(srv.url, headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in resp.headers["Set-Cookie"]
        for i in range(5):  # spoofed client addresses do not dodge the limit
            login(srv.url, "bad", headers={"X-Forwarded-For": f"10.0.0.{i}"})
        assert login(srv.url, "bad", headers={"X-Forwarded-For": "10.0.0.99"})[1].status_code == 429
    dashboard_config(tmp_path, dashboard={"trust_proxy": True})
    cfg = load(tmp_path)
    with running(cfg, health=False) as srv:
        proxy = {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Host": "dash.example",
            "Origin": "https://dash.example",
        }
        resp = raw_login(srv.url, headers=proxy)
        assert resp.status_code == 302, resp.text
        assert "Secure" in resp.headers["Set-Cookie"]
        assert resp.headers.get("Strict-Transport-Security", "").startswith("max-age=")
        # the browser's Origin must match the public origin the proxy reports
        assert raw_login(srv.url, headers={**proxy, "Origin": "https://evil.example"}).status_code == 400
        for _ in range(5):  # per-client limit: this client is blocked ...
            raw_login(srv.url, "bad", headers={**proxy, "X-Forwarded-For": "198.51.100.1"})
        assert (
            raw_login(srv.url, "bad", headers={**proxy, "X-Forwarded-For": "198.51.100.1"}).status_code == 429
        )
        # ... and another is not
        assert (
            raw_login(srv.url, PASSWORD, headers={**proxy, "X-Forwarded-For": "198.51.100.2"}).status_code
            == 302
        )


def test_secure_cookie_forced_by_config(tmp_path):
    dashboard_config(tmp_path, dashboard={"secure_cookie": True})
    with running(load(tmp_path), health=False) as srv:
        _, resp = login(srv.url)
        assert "Secure" in resp.headers["Set-Cookie"]


# --------------------------------------------------------------------------- empty / missing database
def test_missing_database_says_no_data_yet(tmp_path):
    dashboard_config(tmp_path)
    cfg = load(tmp_path)
    assert not cfg.database_path.exists()
    with running(cfg, health=False) as srv:
        s, _ = login(srv.url)
        state = s.get(srv.url + "/api/state", timeout=10)
        assert state.status_code == 200 and state.json()["empty"] is True
        assert state.json()["empty_message"] == "No data yet — run python collect_market_data.py --initial"
        page = s.get(srv.url + "/", timeout=10)
        assert (
            page.status_code == 200
            and "No data yet — run python collect_market_data.py --initial" in page.text
        )
    assert not cfg.database_path.exists()  # read-only: nothing was created


def test_initialized_but_empty_database(tmp_path):
    from polybot import db

    dashboard_config(tmp_path)
    cfg = load(tmp_path)
    db.initialize(cfg.database_path)
    with running(cfg, health=False) as srv:
        s, _ = login(srv.url)
        state = s.get(srv.url + "/api/state", timeout=10).json()
        assert state["empty"] is True and "collect_market_data.py --initial" in state["empty_message"]


# --------------------------------------------------------------------------- the numbers
def expected_sharpe(cfg) -> str:
    perf = rows(
        cfg, "SELECT timestamp, equity_micro FROM performance WHERE mode=? ORDER BY timestamp, id", cfg.mode
    )
    by_day: dict[int, int] = {}
    for ts, eq in perf:
        by_day[ts // DAY] = eq  # the last row of each UTC day
    days = range(min(by_day), max(by_day) + 1)
    series, last = [to_micro(cfg.capital)], to_micro(cfg.capital)
    for d in days:
        last = by_day.get(d, last)
        series.append(last)
    rets = [b / a - 1 for a, b in itertools.pairwise(series)]
    if len(rets) < 2:
        return "n/a"
    return f"{statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(365):.2f}"


def test_state_matches_the_database(server, seeded):
    cfg = seeded
    s, _ = login(server.url)
    st = s.get(server.url + "/api/state", timeout=10).json()
    now = st["generated_ts"]
    assert st["empty"] is False and st["mode"] == "paper"

    perf = rows(cfg, "SELECT * FROM performance WHERE mode='paper' ORDER BY timestamp DESC, id DESC LIMIT 1")[
        0
    ]
    assert st["pnl"]["equity"]["text"] == fmt_usd(perf["equity_micro"])
    assert st["pnl"]["total"]["text"] == fmt_usd(perf["equity_micro"] - to_micro(cfg.capital), signed=True)
    assert st["pnl"]["daily"]["text"] == fmt_usd(perf["daily_pnl_micro"], signed=True)
    assert len(st["chart"]["points"]) == rows(cfg, "SELECT COUNT(*) FROM performance")[0][0]

    assert st["sharpe"]["text"] == expected_sharpe(cfg) != "n/a"
    closing = rows(
        cfg, "SELECT realized_pnl_micro FROM trades WHERE mode='paper' AND realized_pnl_micro IS NOT NULL"
    )
    wins = sum(1 for (p,) in closing if p > 0)
    assert (wins, len(closing)) == (1, 2)
    assert st["win_rate"]["text"] == f"{wins / len(closing) * 100:.1f}%" == "50.0%"

    opened = rows(cfg, "SELECT * FROM positions WHERE mode='paper' AND status='open'")
    assert [p["token_id"] for p in st["positions"]["items"]] == [p["token_id"] for p in opened] == ["m1y"]
    for item, pos in zip(st["positions"]["items"], opened, strict=True):
        entry = half_up_div(pos["cost_micro"] * 1_000_000, pos["size_micro"])
        bid = rows(
            cfg,
            "SELECT best_bid FROM snapshot_values WHERE token_id=? ORDER BY timestamp DESC LIMIT 1",
            pos["token_id"],
        )[0][0]
        assert item["entry"] == f"{entry / 1e6:.4f}" == "0.4520"
        assert item["mark"] == f"{bid:.4f}" == "0.4240"  # the LATEST bid, not an older one
        assert (
            item["unrealized"]["text"]
            == fmt_usd(notional_micro(to_micro(bid), pos["size_micro"]) - pos["cost_micro"], signed=True)
            == "-$2.80"
        )
        assert item["stop"] == f"{pos['stop_price_micro'] / 1e6:.4f}" == "0.3842"  # what the engine stored
        assert item["label"] == "Will it rain in Lisbon? [Yes]"

    recent = rows(
        cfg,
        "SELECT trade_id FROM trades WHERE mode='paper' AND timestamp >= ? ORDER BY timestamp DESC",
        now - DAY,
    )
    assert st["trades"]["count"] == len(recent) == 3
    assert [t["trade_id"] for t in st["trades"]["items"]] == [r[0] for r in recent]
    assert "t-old" not in {t["trade_id"] for t in st["trades"]["items"]}

    tracked = rows(cfg, "SELECT id FROM markets WHERE tracked=1 ORDER BY liquidity DESC")
    assert [m["market_id"] for m in st["markets"]["items"]] == [r[0] for r in tracked] == ["m2", "m1"]
    m1 = st["markets"]["items"][1]
    assert [(o["outcome"], o["bid"], o["ask"]) for o in m1["outcomes"]] == [
        ("Yes", "0.424", "0.444"),
        ("No", "0.604", "0.624"),
    ]
    assert m1["fresh"] is True and st["markets"]["data"]["fresh"] is True

    sysinfo = st["system"]
    assert sysinfo["halt"]["halted"] is True and sysinfo["halt"]["breaker"] == "daily_loss"
    assert "daily loss $101" in sysinfo["halt"]["reason"]
    assert [h["breaker"] for h in sysinfo["halt"]["recent"]] == ["daily_loss", "api_errors"]
    assert sysinfo["backup"]["name"] == "polymarket_backup_20261124_020000.db"
    assert [a["key"] for a in st["alerts"]] == ["daily_loss_limit", "win_rate_low", "daily_summary"]


def test_health_panel_uses_the_health_check(server):
    s, _ = login(server.url)
    deadline = time.monotonic() + 30
    while True:
        health = s.get(server.url + "/api/state", timeout=10).json()["health"]
        if health["lines"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    names = [h["name"] for h in health["lines"]]
    assert names == ["bot", "api", "database", "last_trade", "errors", "disk"]
    by = {h["name"]: h for h in health["lines"]}
    assert by["database"]["line"] == "[OK] Database accessible"
    assert by["bot"]["status"] == "FAIL"  # PID 4242 has no PID file: not running
    assert by["api"]["status"] == "FAIL" and health["status"] == "FAIL"


def test_sharpe_and_win_rate_without_history(tmp_path):
    from polybot import db

    dashboard_config(tmp_path)
    cfg = load(tmp_path)
    db.initialize(cfg.database_path)
    conn = db.connect(cfg.database_path)
    now = int(time.time())
    conn.execute(
        "INSERT INTO performance(timestamp, mode, equity_micro, cash_micro, exposure_micro, "
        "realized_pnl_micro, unrealized_pnl_micro, daily_pnl_micro, open_positions) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        (now, "paper", 501 * 10**6, 501 * 10**6, 0, 0, 0, 10**6, 0),
    )
    conn.close()
    with running(cfg, health=False) as srv:
        s, _ = login(srv.url)
        st = s.get(srv.url + "/api/state", timeout=10).json()
    assert st["sharpe"]["text"] == "n/a" and st["win_rate"]["text"] == "n/a"
    assert st["pnl"]["total"]["text"] == "+$1.00" and st["positions"]["items"] == []
    assert st["trades"]["count"] == 0 and st["system"]["backup"] is None


# --------------------------------------------------------------------------- dashboard.py
def test_cli_refuses_a_network_address_without_a_password(tmp_path):
    dashboard_config(tmp_path)
    res = run_cli("dashboard.py", "--host", "0.0.0.0", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Refusing to serve the dashboard on 0.0.0.0" in lines[0], res.stderr
    assert "DASHBOARD_PASSWORD" in lines[0] and "Traceback" not in res.stderr
    res = run_cli("dashboard.py", "--host", "0.0.0.0", cwd=tmp_path, env={"DASHBOARD_PASSWORD": "short"})
    assert res.returncode == 2 and "at least 12 characters" in res.stderr


def test_resolve_secret_rules(tmp_path):
    from polybot.dashboard.server import resolve_secret
    from polybot.errors import ConfigError

    dashboard_config(tmp_path)
    secret, token = resolve_secret(load(tmp_path), "0.0.0.0")  # a password: any host is allowed
    assert token is None and secret.check(PASSWORD) and not secret.check(PASSWORD + "x")
    secret, token = resolve_secret(load(tmp_path, password=None), "::1")
    assert token and secret.is_token and secret.check(token) and not secret.check("")
    with pytest.raises(ConfigError, match="Refusing"):
        resolve_secret(load(tmp_path, password=None), "192.168.1.10")
    dashboard_config(tmp_path, dashboard={"trust_proxy": True})  # published through a proxy
    with pytest.raises(ConfigError, match="trust_proxy is true .* no password"):
        resolve_secret(load(tmp_path, password=None), "127.0.0.1")


def test_cli_serves_with_a_one_time_token_and_stops_cleanly(seeded):
    root = seeded.root
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIXES)}
    env.update(PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "dashboard.py"), "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline().strip()
        assert first == f"Dashboard running at http://127.0.0.1:{port} (Ctrl-C to stop)", (first, proc.stderr)
        assert "one-time token" in proc.stdout.readline()
        token = proc.stdout.readline().strip()
        assert len(token) >= 24
        url = f"http://127.0.0.1:{port}"
        s, resp = login(url, "not-the-token")
        assert resp.status_code == 401 and "Wrong token." in resp.text
        s, resp = login(url, token)
        assert resp.status_code == 302
        st = s.get(url + "/api/state", timeout=10)
        assert st.status_code == 200 and st.json()["empty"] is False
    finally:
        if os.name == "posix":
            proc.send_signal(signal.SIGTERM)
        else:  # pragma: no cover
            proc.terminate()
        out, err = proc.communicate(timeout=30)
    if os.name == "posix":  # SIGTERM is a clean stop
        assert proc.returncode == 0, err
        assert "Dashboard stopped." in out
    logs = "".join(p.read_text() for p in (root / "logs").glob("*.log"))
    assert "Dashboard started on" in logs and token not in logs  # the token is never logged
