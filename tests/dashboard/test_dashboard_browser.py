"""The dashboard in a real browser (headless Debian Chromium through Playwright) against a
database filled by a real paper run: the operator's commands against the simulator
(initialize_db.py, collect_market_data.py --initial, trading_bot.py --paper-trading
--max-runtime 20, backup_database.py). Every figure on the page is checked against the
database; a trade written while the page is open appears without a reload.

Skipped, with the reason, when Chromium is not installed (CI installs Debian's chromium)."""

from __future__ import annotations

import itertools
import math
import secrets
import statistics
import time
from decimal import ROUND_HALF_UP, Decimal

import pytest

from polybot.errors import HaltedError
from polybot.money import fmt_usd, notional_micro, to_micro
from polybot.sim.server import start_simulator
from tests.conftest import ROOT, run_cli, sim_urls
from tests.dashboard.helpers import (
    CHROMIUM_ARGS,
    DAY,
    PASSWORD,
    chromium_path,
    dashboard_config,
    half_up_div,
    load,
    rows,
    running,
)

# One paper run and one browser for the module (module-scoped fixtures): one xdist worker runs them
# all (tests/conftest.py ONE_WORKER_MODULES).
pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACT = ROOT / "test-artifacts" / "dashboard.png"
HALTED_EXIT = HaltedError.exit_code  # the bot stopped on a circuit breaker


@pytest.fixture(scope="module")
def chromium():
    path = chromium_path()
    if not path:
        pytest.skip(
            "Chromium is not installed (/usr/bin/chromium missing): the browser tests of the dashboard "
            "need it — apt-get install chromium (make test does it as root on Debian)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        pytest.skip("the playwright Python package is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """A workspace whose database was filled by the operator's commands against the simulator.

    The simulator clock starts 30 minutes ago and runs 60× fast, so the 20 s run covers 20 simulated
    minutes that end in the past: every trade falls in the dashboard's last-24-hours window."""
    root = tmp_path_factory.mktemp("dashboard_paper")
    handle = start_simulator(port=0, seed=42, n_markets=24, speed=60, start_time=int(time.time()) - 1800)
    try:
        urls = sim_urls(handle)
        urls["polymarket"].update(max_retries=1, timeout_seconds=2)
        dashboard_config(
            root,
            **urls,
            capital=500,
            trading={"loop_interval_seconds": 0.2, "quick_check_interval_minutes": 0.05},
            strategy={
                "name": "drill",
                "params": {
                    "size_usd": 40,
                    "max_holdings": 3,
                    "hold_seconds": 300,
                    "max_spread": 0.1,
                    "min_price": 0.1,
                    "max_price": 0.9,
                },
            },
            collection={"min_volume_24h": 0, "min_liquidity": 0, "max_markets": 12},
        )
        env = {"DASHBOARD_PASSWORD": PASSWORD}
        for script, *args in (
            ("initialize_db.py",),
            ("collect_market_data.py", "--initial"),
            ("trading_bot.py", "--paper-trading", "--max-runtime", "20"),
            ("backup_database.py",),
        ):
            res = run_cli(script, *args, cwd=root, env=env, timeout=180)
            # a circuit breaker may legitimately halt a losing paper run (exit 5): the page must show it
            ok = (0, HALTED_EXIT) if script == "trading_bot.py" else (0,)
            assert res.returncode in ok, f"{script}: {res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        cfg = load(root)
        from polybot.alerts import Alerter

        alerter = Alerter(cfg)
        alerter.warning("dashboard_browser_test", "Browser test alert: drawdown above 15%")
        alerter.close()
        assert rows(cfg, "SELECT COUNT(*) FROM trades")[0][0] > 0, "the paper run made no trade"
        yield cfg, handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def dash(paper_run):
    cfg, _ = paper_run
    with running(cfg) as srv:
        yield srv


@pytest.fixture
def page(chromium, dash):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    pg.requests_seen, pg.console_errors = [], []
    pg.on("request", lambda r: pg.requests_seen.append(r.url))
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    try:
        yield pg
    finally:
        context.close()


def log_in(page, base: str, password: str = PASSWORD) -> None:
    page.goto(base + "/")
    assert page.url.startswith(base + "/login")
    page.fill("#password", password)
    page.click("#login-submit")


def wait_for_health(page) -> None:
    page.wait_for_selector("#health-lines li[data-check='disk']", timeout=30_000)


# --------------------------------------------------------------------------- expected values from the DB
def expected(cfg, now: float) -> dict:
    mode = cfg.mode
    perf = rows(cfg, "SELECT * FROM performance WHERE mode=? ORDER BY timestamp DESC, id DESC LIMIT 1", mode)[
        0
    ]
    closing = [
        r[0]
        for r in rows(
            cfg, "SELECT realized_pnl_micro FROM trades WHERE mode=? AND realized_pnl_micro IS NOT NULL", mode
        )
    ]
    win_rate = f"{sum(p > 0 for p in closing) / len(closing) * 100:.1f}%" if closing else "n/a"
    by_day: dict[int, int] = {}
    for ts, eq in rows(
        cfg, "SELECT timestamp, equity_micro FROM performance WHERE mode=? ORDER BY timestamp, id", mode
    ):
        by_day[ts // DAY] = eq
    series = [to_micro(cfg.capital)]
    for d in range(min(by_day), max(by_day) + 1):
        series.append(by_day.get(d, series[-1]))
    rets = [b / a - 1 for a, b in itertools.pairwise(series)]
    sharpe = (
        f"{statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(365):.2f}"
        if len(rets) >= 2 and statistics.stdev(rets) > 0
        else ("0.00" if len(rets) >= 2 else "n/a")
    )
    positions = []
    for p in rows(
        cfg,
        "SELECT p.*, m.question, t.outcome FROM positions p JOIN markets m ON m.id=p.market_id "
        "JOIN market_tokens t ON t.token_id=p.token_id WHERE p.mode=? AND p.status='open' "
        "ORDER BY p.opened_at, p.token_id",
        mode,
    ):
        entry = half_up_div(p["cost_micro"] * 1_000_000, p["size_micro"])
        bid = rows(
            cfg,
            "SELECT best_bid FROM snapshot_values WHERE token_id=? AND best_bid IS NOT NULL "
            "ORDER BY timestamp DESC LIMIT 1",
            p["token_id"],
        )[0][0]
        bid_micro = int((Decimal(str(bid)) * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        stop = int(entry * (1 - cfg.risk_limits.stop_loss_percent))
        positions.append(
            {
                "token": p["token_id"],
                "label": f"{p['question']} [{p['outcome']}]",
                "entry": f"{entry / 1e6:.4f}",
                "mark": f"{bid_micro / 1e6:.4f}",
                "unrealized": fmt_usd(
                    notional_micro(bid_micro, p["size_micro"]) - p["cost_micro"], signed=True
                ),
                "stop": f"{stop / 1e6:.4f}",
                "engine_stop": p["stop_price_micro"],
                "stop_micro": stop,
            }
        )
    trades = [
        r[0]
        for r in rows(
            cfg,
            "SELECT trade_id FROM trades WHERE mode=? AND timestamp >= ? ORDER BY timestamp DESC, id DESC",
            mode,
            int(now - DAY),
        )
    ]
    tracked = rows(cfg, "SELECT COUNT(*) FROM markets WHERE tracked=1")[0][0]
    backup = rows(cfg, "SELECT path FROM backups ORDER BY timestamp DESC LIMIT 1")
    return {
        "equity": fmt_usd(perf["equity_micro"]),
        "total": fmt_usd(perf["equity_micro"] - to_micro(cfg.capital), signed=True),
        "daily": fmt_usd(perf["daily_pnl_micro"], signed=True),
        "win_rate": win_rate,
        "closing": len(closing),
        "sharpe": sharpe,
        "positions": positions,
        "trades": trades,
        "tracked": tracked,
        "backup": backup[0][0].rsplit("/", 1)[-1] if backup else None,
    }


# --------------------------------------------------------------------------- the tests
def test_login_required_and_wrong_password_rejected(page, dash):
    page.goto(dash.url + "/api/state")
    assert "login required" in page.content()
    page.goto(dash.url + "/")
    assert page.url.startswith(dash.url + "/login")
    assert page.locator("#equity").count() == 0
    log_in(page, dash.url, "definitely-not-it")
    assert page.locator("#login-error").inner_text() == "Wrong password."
    assert page.url.startswith(dash.url + "/login") and page.locator("#equity").count() == 0
    page.console_errors.clear()  # the 401s above are logged by the browser as failed loads
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#equity")
    assert page.url == dash.url + "/"
    assert not [u for u in page.requests_seen if not u.startswith(dash.url)], "a request left the dashboard"
    assert not page.console_errors, page.console_errors


def test_every_metric_matches_the_database(page, dash, paper_run):
    cfg, _ = paper_run
    log_in(page, dash.url)
    page.wait_for_selector("#equity")
    wait_for_health(page)
    now = float(page.evaluate("document.body.dataset.generated"))
    exp = expected(cfg, now)

    assert page.inner_text("#mode") == "PAPER"
    assert page.is_hidden("#empty")
    assert page.inner_text("#equity") == exp["equity"]
    assert page.inner_text("#total-pnl") == exp["total"]
    assert page.inner_text("#daily-pnl") == exp["daily"]
    assert page.inner_text("#win-rate") == exp["win_rate"]
    assert page.inner_text("#sharpe") == exp["sharpe"]
    assert page.locator("#equity-chart polyline.equity").count() == 1

    shown = page.locator("#positions tbody tr[data-token]")
    assert shown.count() == len(exp["positions"])
    for i, p in enumerate(exp["positions"]):
        cells = shown.nth(i).locator("td").all_inner_texts()
        assert cells[0] == p["label"]
        assert cells[2] == p["entry"] and cells[3] == p["mark"] and cells[5] == p["stop"]
        assert cells[4].startswith(p["unrealized"] + " (")
        if p["engine_stop"] is not None:  # the engine's own stop level agrees
            assert abs(p["engine_stop"] - p["stop_micro"]) <= 1

    ids = page.locator("#trades tbody tr[data-trade-id]").evaluate_all("rs => rs.map(r => r.dataset.tradeId)")
    assert ids == exp["trades"][:200] and ids
    assert page.inner_text("#trades-count").startswith(f"({len(exp['trades'])}")

    assert page.locator("#markets tbody tr[data-market]").count() == exp["tracked"] > 0
    assert page.inner_text("#markets-count").startswith(f"({exp['tracked']} tracked")

    checks = page.locator("#health-lines li").evaluate_all(
        "ls => ls.map(l => [l.dataset.check, l.textContent])"
    )
    assert [c for c, _ in checks] == ["bot", "api", "database", "last_trade", "errors", "disk"]
    by = dict(checks)
    assert by["database"] == "[OK] Database accessible"
    assert by["bot"].startswith("[FAIL] Bot process not running")  # the paper run has ended
    assert by["api"].startswith("[OK] API connectivity")  # the simulator is still up
    state = {k: v for k, v in rows(cfg, "SELECT key, value FROM bot_state")}
    if state.get("halted") == "1":
        assert page.inner_text("#halt-state").startswith(
            f"HALTED by {state['halt_breaker']}: {state['halt_reason']}"
        )
        assert page.is_visible("#halt") and "Trading halted" in page.inner_text("#halt")
    else:
        assert page.inner_text("#halt-state") == "no" and page.is_hidden("#halt")
    assert exp["backup"] and exp["backup"] in page.inner_text("#last-backup")
    assert "Browser test alert: drawdown above 15%" in page.inner_text("#alerts")
    assert not page.console_errors, page.console_errors
    assert not [u for u in page.requests_seen if not u.startswith(dash.url)]


def test_page_updates_after_a_new_trade_and_screenshot(page, dash, paper_run):
    from polybot import db

    cfg, _ = paper_run
    log_in(page, dash.url)
    page.wait_for_selector("#trades tbody tr[data-trade-id]")
    before = page.inner_text("#trades-count")
    marker = page.evaluate("document.body.dataset.generated")
    page.evaluate("window.__noReload = 'still here'")  # a full reload would wipe it
    token, market = rows(cfg, "SELECT token_id, market_id FROM market_tokens LIMIT 1")[0]
    trade_id = f"dashboard-live-{secrets.token_hex(4)}"
    conn = db.connect(cfg.database_path)
    try:
        with db.atomic(conn):
            conn.execute(
                "INSERT INTO trades(trade_id, timestamp, mode, kind, token_id, market_id, side, price_micro, "
                "size_micro, notional_micro, fee_micro, strategy, reason) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    trade_id,
                    int(time.time()),
                    cfg.mode,
                    "fill",
                    token,
                    market,
                    "BUY",
                    420_000,
                    10_000_000,
                    4_200_000,
                    0,
                    "manual",
                    "written by the dashboard test",
                ),
            )
    finally:
        conn.close()
    row = page.locator(f"#trades tbody tr[data-trade-id='{trade_id}']")
    row.wait_for(timeout=5_000 + 3 * cfg.dashboard.refresh_seconds * 1000)
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "BUY" and cells[3] == "0.4200" and cells[5] == "$4.20" and cells[8] == trade_id
    assert page.inner_text("#trades-count") != before
    assert page.evaluate("document.body.dataset.generated") != marker
    assert page.evaluate("window.__noReload") == "still here"  # updated in place, not reloaded
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACT), full_page=True)
    assert ARTIFACT.stat().st_size > 10_000
    print(f"\ndashboard screenshot: {ARTIFACT}")
    assert not page.console_errors, page.console_errors


def test_logged_out_page_goes_back_to_login(page, dash):
    log_in(page, dash.url)
    page.wait_for_selector("#equity")
    page.click(".logout button")
    page.wait_for_url(dash.url + "/login")
    page.goto(dash.url + "/")
    assert page.url.startswith(dash.url + "/login")
