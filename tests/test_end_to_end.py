"""End to end: docs/DEPLOYMENT_CHECKLIST.md walked top to bottom, as an operator types it.

One temporary workspace (module scope) against the in-process simulator and the fake
Telegram Bot API; every script runs as a real subprocess with cwd = the workspace. The
phases run in order and share that workspace; when one fails, the later ones are skipped
with the name of the failed phase (see tests/journey.py). Durations are shortened:
collection cycles are driven by advancing the simulator clock to the next 5-minute grid
point, and paper trading runs the simulator clock at 600× until the bot holds a position
(at most SIM_LAG − SIM_MARGIN of simulated time; the clock never passes the wall clock). Every
phase has something to check: the paper bot must open a position (a planted dip that the
strategy buys), or the phase fails.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import yaml

from tests.conftest import ROOT
from tests.fake_telegram import FakeTelegram
from tests.journey import (
    CHAT_ID,
    GRID,
    TOKEN,
    Journey,
    assert_lines,
    assert_prefixes,
    line_starting,
    lines_of,
    operator_env_for,
    phase,
    replace_section,
    show,
    utc_day,
)

# One journey, phase after phase, in one workspace: the whole module runs on one xdist worker
# (tests/conftest.py ONE_WORKER_MODULES).
pytestmark = pytest.mark.slow

SIX_TABLES = {"markets", "market_snapshots", "trades", "positions", "performance", "alerts"}
TABLES_ONE_LINER = (
    "import sqlite3; conn = sqlite3.connect('data/polymarket.db'); print('Tables:', "
    "conn.execute('SELECT name FROM sqlite_master WHERE type=\"table\"').fetchall()); conn.close()"
)
COUNTS_ONE_LINER = (
    "import sqlite3; conn = sqlite3.connect('data/polymarket.db'); print('Markets:', "
    "conn.execute('SELECT COUNT(*) FROM markets').fetchone()[0]); print('Snapshots:', "
    "conn.execute('SELECT COUNT(*) FROM market_snapshots').fetchone()[0]); conn.close()"
)
PATHS_ONE_LINER = (
    "import os; print('Workspace:', os.getcwd()); print('Config:', os.path.exists('config.yaml')); "
    "print('Data:', os.path.exists('data'))"
)
IMPORTS_ONE_LINER = (
    "import pandas, numpy, requests, yaml, telegram, schedule; print('✓ All imports successful')"
)
LOGGER_ONE_LINER = (
    "from logger import setup_logger; logger = setup_logger(); "
    "logger.info('Production deployment test'); logger.error('Test error message')"
)
TELEGRAM_ONE_LINER = (
    "from telegram_notifier import send_notification; "
    "send_notification('🚀 Production deployment test - ignore')"
)
RISK_LINES = [
    "✓ Position size limit enforced",
    "✓ Portfolio exposure limit enforced",
    "✓ Daily loss limit enforced",
    "✓ Stop loss triggers correctly",
]
BREAKER_LINES = [
    "✓ Circuit breaker #1: API failure (3 errors) → STOP",
    "✓ Circuit breaker #2: Daily loss limit → STOP",
    "✓ Circuit breaker #3: Position size anomaly → STOP",
    "✓ Circuit breaker #4: Database corruption → STOP",
    "✓ Circuit breaker #5: Manual emergency stop → STOP",
]
STARTUP_LINES = [
    "Trading bot started (PAPER MODE)",
    "Capital: $500.00",
    "Risk limits: max_position=$100, max_exposure=0.8",
    "Monitoring markets...",
]
BOT_MAX_RUNTIME = 120  # a safety net only: the emergency stop ends the bot long before
SIM_LAG = 6 * 3600  # the simulator's clock starts this far behind the wall clock …
SIM_MARGIN = 10 * 60  # … and the 600× burst stops at the latest this far behind it


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _usd(text: str) -> float:
    """'-$1,234.56' / '+$3.00' / '$0.00' → float."""
    return float(text.replace("$", "").replace(",", "").replace("+", ""))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    from polybot.sim.server import start_simulator

    ws = tmp_path_factory.mktemp("operator_workspace")
    console_dir = tmp_path_factory.mktemp("bot_console")
    # A real-time exchange clock (speed 1) that starts SIM_LAG behind the wall clock. The test
    # moves it forward (three 5-minute cron ticks, a 600× burst of paper trading) but never past
    # the wall clock: the bot stamps trades and performance rows with the exchange clock, while
    # the daily report, the health check and the pre-launch check compare them with the local
    # clock — harmless in production, where the two agree to within seconds.
    handle = start_simulator(port=0, seed=42, n_markets=60, speed=1.0, start_time=int(time.time()) - SIM_LAG)
    tg = FakeTelegram(TOKEN).start()
    journey = Journey(ws=ws, sim=handle, tg=tg, console_dir=console_dir, env=operator_env_for(handle))
    try:
        yield journey
    finally:
        journey.stop_bots()
        if os.environ.get("E2E_TIMINGS"):  # E2E_TIMINGS=1 pytest -s …: per-command times
            for cmd, secs in journey.timings:
                print(f"{secs:6.1f} s  {cmd}")
            print(f"emergency stop → exit: {journey.facts.get('stop_seconds', float('nan')):.1f} s")
        if os.environ.get("E2E_TRANSCRIPT"):  # E2E_TRANSCRIPT=file: every command and its output
            with open(os.environ["E2E_TRANSCRIPT"], "w", encoding="utf-8") as fh:
                fh.write("".join(f"{secs:6.1f} s  {cmd}\n" for cmd, secs in journey.timings))
                fh.write("\n".join(journey.transcript))
                for bot in journey.bots:
                    fh.write(
                        f"\n\n=== {bot.args} console (exit {bot.returncode}) ===\n{journey.console(bot)}"
                    )
        tg.stop()
        handle.stop()


# ================================================================ Pre-Deployment
@phase("1. Environment setup")
def test_01_environment(e2e):
    res = e2e.py("import sys; print('Python', sys.version.split()[0])")
    major, minor = (int(x) for x in res.stdout.split()[1].split(".")[:2])
    assert (major, minor) >= (3, 11), "checklist: Python 3.11.x or higher" + show(res)

    res = e2e.py(IMPORTS_ONE_LINER)
    assert res.stdout.strip() == "✓ All imports successful", show(res)

    # pip list | grep -E "pandas|numpy|requests|pyyaml|python-telegram-bot|schedule"
    import importlib.metadata as md

    for dist in ("pandas", "numpy", "requests", "PyYAML", "python-telegram-bot", "schedule"):
        assert md.version(dist), dist

    res = e2e.py(PATHS_ONE_LINER)
    assert_lines(res, [f"Workspace: {e2e.ws}", "Config: False", "Data: False"])  # nothing copied yet
    probe = e2e.ws / "test_write.tmp"  # touch test_write.tmp && rm test_write.tmp
    probe.touch()
    probe.unlink()


@phase("2. Configuration validation")
def test_02_configuration(e2e):
    shutil.copyfile(ROOT / "config.yaml.example", e2e.config_path)  # cp config.yaml.example config.yaml
    os.chmod(e2e.config_path, 0o600)  # chmod 600 config.yaml
    # The operator's edits: endpoints → the simulator; shortened durations for the test.
    e2e.edit_config(
        "polymarket",
        base_url=e2e.sim.clob_url,
        gamma_url=e2e.sim.gamma_url,
        data_url=e2e.sim.data_url,
        timeout_seconds=5,
    )
    e2e.edit_config("collection", max_markets=16, min_volume_24h=0, min_liquidity=0)
    e2e.edit_config("trading", loop_interval_seconds=2)
    data = yaml.safe_load(e2e.config_path.read_text(encoding="utf-8"))
    assert data["polymarket"]["base_url"] == e2e.sim.clob_url
    assert data["polymarket"]["api_key"] == "${POLYMARKET_API_KEY}"  # the example's ${VAR}, untouched
    assert data["paper_trading"] is True
    assert _mode(e2e.config_path) == 0o600

    # python -c "import yaml; yaml.safe_load(open('config.yaml'))" && echo "✓ Valid YAML"
    res = e2e.py("import yaml; yaml.safe_load(open('config.yaml'))")
    assert res.stdout == "" and res.stderr == "", show(res)

    res = e2e.run("validate_config.py")
    assert_lines(res, ["PASS: configuration valid"])
    assert "✗" not in res.stdout, show(res)
    assert_prefixes(
        res,
        [
            "✓ Valid YAML",
            "✓ All referenced environment variables are set",
            "✓ Mode: PAPER trading",
            "✓ No hardcoded secrets",
            "✓ config.yaml permissions 600",
        ],
    )


@phase("3. Database initialization")
def test_03_database(e2e):
    res = e2e.run("initialize_db.py")
    assert_prefixes(res, ["✓ Database created"])

    res = e2e.py(TABLES_ONE_LINER)
    out = res.stdout.strip()
    assert out.startswith("Tables: "), show(res)
    tables = {row[0] for row in ast.literal_eval(out[len("Tables: ") :])}
    assert tables >= SIX_TABLES, f"missing tables {SIX_TABLES - tables}" + show(res)

    dbp = e2e.ws / "data" / "polymarket.db"
    assert stat.filemode(dbp.stat().st_mode) == "-rw-------", stat.filemode(dbp.stat().st_mode)
    assert _mode(e2e.ws / "data") == 0o700, oct(_mode(e2e.ws / "data"))

    res = e2e.py(PATHS_ONE_LINER)
    assert_lines(res, [f"Workspace: {e2e.ws}", "Config: True", "Data: True"])


@phase("4. API connectivity")
def test_04_api_connectivity(e2e):
    res = e2e.run("test_api_connectivity.py")
    # ✓, or ⚠ when a step took over 2 s: a timing advisory about this machine's load, which a
    # test does not assert on (the step itself succeeded either way)
    for step in ("API authentication successful", "Market data retrieved", "Account balance retrieved"):
        assert any(ln.startswith((f"✓ {step}", f"⚠ {step}")) for ln in lines_of(res)), step + show(res)
    assert_prefixes(res, ["✓ Rate limits: OK"])
    assert "✗" not in res.stdout, show(res)


@phase("5. Telegram")
def test_05_telegram(e2e):
    tg = e2e.tg
    # curl https://api.telegram.org/bot${TELEGRAM_BOT_TOKEN}/getMe → JSON with the bot's username and id
    me = requests.get(f"{tg.base_url}{TOKEN}/getMe", timeout=5).json()
    assert me["ok"] and me["result"]["username"] and me["result"]["id"], me

    # The operator sends a message to the bot, points the config at the token, asks for the chat id.
    tg.add_message(CHAT_ID, "hello bot", first_name="Olive", username="operator")
    e2e.edit_config("telegram", bot_token="${TELEGRAM_BOT_TOKEN}", base_url=tg.base_url)
    res = e2e.run("get_telegram_chat_id.py")
    m = re.search(r'chat_id: "(-?\d+)"', res.stdout)
    assert m and m.group(1) == str(CHAT_ID), "the chat id is not printed" + show(res)
    assert f"chat_id {CHAT_ID}" in res.stdout, show(res)

    # "Chat ID added to config.yaml"; alerts routed to Telegram (no SMTP server in this workspace).
    e2e.edit_config("telegram", enabled=True, chat_id=m.group(1))
    e2e.edit_config("alerts", critical=["telegram"], warning=["telegram"], info=["log"])
    res = e2e.run("validate_config.py")
    assert_lines(res, ["PASS: configuration valid"])

    before = len(tg.messages(CHAT_ID))
    res = e2e.py(TELEGRAM_ONE_LINER)
    sent = tg.messages(CHAT_ID)[before:]
    assert any("🚀 Production deployment test - ignore" in t for t in sent), f"fake got {sent}" + show(res)
    assert f"✓ Sent to Telegram chat {CHAT_ID}." in res.stdout, show(res)
    assert all(r.token == TOKEN for r in tg.requests), "a request used another token"


@phase("6. Backup system")
def test_06_backup(e2e):
    res = e2e.run("backup_database.py")
    assert_prefixes(res, ["✓ Backup created"])
    backups = sorted((e2e.ws / "backups").glob("*.db"))
    assert len(backups) == 1, f"{backups}" + show(res)
    assert re.fullmatch(r"polymarket_backup_\d{8}_\d{6}\.db", backups[0].name), backups[0].name
    assert stat.filemode(backups[0].stat().st_mode) == "-rw-------"
    assert _mode(e2e.ws / "backups") == 0o700, oct(_mode(e2e.ws / "backups"))

    res = e2e.run("audit_backups.py")
    assert_prefixes(res, ["PASS"])
    assert list((e2e.ws / "reports").glob("backup_audit_??????.txt")), "no reports/backup_audit_YYYYMM.txt"
    res = e2e.run("backup_database.py", "--list")
    assert backups[0].name in res.stdout, show(res)


@phase("7. Logging")
def test_07_logging(e2e):
    day_before = utc_day()
    res = e2e.py(LOGGER_ONE_LINER)
    days = {day_before, utc_day()}  # the UTC day may turn during the call
    logs = [e2e.ws / "logs" / f"trading_system_{d}.log" for d in sorted(days)]
    logs = [p for p in logs if p.exists()]
    assert logs, f"no logs/trading_system_{day_before}.log; logs/ has {os.listdir(e2e.ws / 'logs')}" + show(
        res
    )
    text = "".join(p.read_text(encoding="utf-8") for p in logs)
    info = [ln for ln in text.splitlines() if "Production deployment test" in ln]
    error = [ln for ln in text.splitlines() if "Test error message" in ln]
    assert info and error, f"log lines missing:\n{text}"
    stamp = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"
    assert re.search(stamp, info[0]) and "INFO" in info[0], info[0]  # timestamp, level, message
    assert re.search(stamp, error[0]) and "ERROR" in error[0], error[0]
    for p in logs:
        assert _mode(p) == 0o640, f"{p.name} is {oct(_mode(p))}"
    assert _mode(e2e.ws / "logs") == 0o700


# ================================================================ Data collection phase
@phase("8. Data collection and quality")
def test_08_data_collection(e2e):
    e2e.set_speed(0)  # from here on the test is cron: one cycle per 5-minute grid point
    res = e2e.run("collect_market_data.py", "--initial")
    cycles = re.findall(r"Cycle (\S+Z): (\d+) markets, (\d+) snapshots, (\d+) errors", res.stdout)
    assert cycles and int(cycles[0][1]) > 0 and cycles[0][3] == "0", show(res)

    res = e2e.run("collect_market_data.py", "--backfill", "--days", "30", timeout=300)
    assert re.search(r"rows written, 0 errors", res.stdout), show(res)

    stamps = [cycles[0][0]]
    for _ in range(3):
        e2e.advance_to_next_cycle()
        res = e2e.run("collect_market_data.py")
        m = re.search(r"Cycle (\S+Z): (\d+) markets, (\d+) snapshots, 0 errors", res.stdout)
        assert m and int(m.group(3)) > 0, show(res)
        stamps.append(m.group(1))
    epochs = [int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()) for s in stamps]
    assert [b - a for a, b in itertools.pairwise(epochs)] == [GRID] * 3, (
        f"cycles not on consecutive grid points: {stamps}"
    )

    res = e2e.py(COUNTS_ONE_LINER)
    counts = dict(re.findall(r"^(Markets|Snapshots): (\d+)$", res.stdout, re.M))
    assert int(counts.get("Markets", 0)) > 0 and int(counts.get("Snapshots", 0)) > 0, show(res)

    res = e2e.run("verify_data_collection.py")
    assert_prefixes(res, ["PASS"])

    res = e2e.run("data_quality_check.py")
    assert_lines(
        res,
        [
            "✓ No NULL values in critical fields",
            "✓ Timestamps sequential",
            "✓ Prices within bounds (0.01 to 0.99)",
            "✓ No duplicate snapshots",
            "PASS: Data quality check passed",
        ],
    )
    lines = lines_of(res)
    assert any(re.fullmatch(r"✓ Data fresh \(last update: \d+ minutes? ago\)", ln) for ln in lines), show(res)
    assert any(re.fullmatch(r"✓ Coverage: \d+% of target markets", ln) for ln in lines), show(res)
    assert sum(ln.startswith("✓ ") for ln in lines) == 6 and "✗" not in res.stdout, show(res)


# ================================================================ Validation phase
@phase("9. Correlation")
def test_09_correlation(e2e):
    res = e2e.run("correlation_analysis.py", "--days", "7")
    csv = e2e.ws / "reports" / "correlation_7day.csv"
    assert csv.exists(), show(res)
    rows = [ln for ln in csv.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(rows) > 2, f"correlation_7day.csv has {len(rows)} line(s)"

    res = e2e.run("plot_correlations.py", "--days", "7", "--output", "reports/correlation_heatmap_7day.png")
    png = e2e.ws / "reports" / "correlation_heatmap_7day.png"
    assert png.exists(), show(res)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"


@phase("10. Backtest")
def test_10_backtest(e2e):
    end = datetime.fromtimestamp(e2e.sim_time(), UTC).date()
    start = end - timedelta(days=29)
    res = e2e.run(
        "backtest.py",
        "--start-date",
        start.isoformat(),
        "--end-date",
        end.isoformat(),
        "--capital",
        "500",
        expect=(0, 1, 6),
        timeout=300,
    )
    assert_prefixes(res, ["Total trades:", "Win rate:", "Sharpe ratio:", "Max drawdown:", "Final capital: $"])
    verdicts = [ln.strip() for ln in lines_of(res) if ln.strip() in ("PASS", "FAIL", "INSUFFICIENT_DATA")]
    assert len(verdicts) == 1, "expected one PASS, FAIL or INSUFFICIENT_DATA line" + show(res)
    assert res.returncode == {"PASS": 0, "FAIL": 1, "INSUFFICIENT_DATA": 6}[verdicts[0]], (
        "exit code does not match the verdict" + show(res)
    )
    report = e2e.ws / "reports" / "backtest_30day.json"
    assert report.exists(), show(res)
    data = json.loads(report.read_text(encoding="utf-8"))
    verdict = str(data.get("verdict") or (data.get("metrics") or {}).get("verdict") or "").upper()
    assert verdict == verdicts[0], f"report verdict {verdict!r} vs printed {verdicts[0]!r}"
    e2e.facts["backtest"] = verdicts[0]


@phase("11. Paper trading")
def test_11_paper_trading(e2e):
    grep = [ln for ln in e2e.config_path.read_text(encoding="utf-8").splitlines() if "paper_trading" in ln]
    assert any(ln.strip().startswith("paper_trading: true") for ln in grep), (
        grep
    )  # grep paper_trading config.yaml

    # The paper run must open a position, so that the emergency stop has something to close.
    # correlation_pairs (the example's strategy) finds no significant pair in the simulator's
    # world, so this run uses the single-market baseline the example names (mean_reversion) and a
    # market whose YES book the simulator drops well below its recorded 12-hour mean: a dip the
    # strategy buys at its next decision. The example's strategy comes back after the stop.
    e2e.facts["config_before_paper"] = e2e.config_path.read_text(encoding="utf-8")
    e2e.config_path.write_text(
        replace_section(e2e.facts["config_before_paper"], "strategy", "  name: mean_reversion\n"),
        encoding="utf-8",
    )
    e2e.facts["dip"] = e2e.plant_dip()

    e2e.set_speed(600)  # 10 simulated minutes per real second, until a position opens
    marks = e2e.log_marks()
    bot = e2e.start_bot("--paper-trading", "--max-runtime", str(BOT_MAX_RUNTIME))
    e2e.facts["bot"] = bot
    text = e2e.wait_for_log(marks, STARTUP_LINES, timeout=60, proc=bot)
    for msg in STARTUP_LINES:  # checklist: "[INFO] Trading bot started (…)" etc.
        assert any("[INFO]" in ln and ln.rstrip().endswith(msg) for ln in text.splitlines()), (
            f"no '[INFO] … {msg}' line:\n{text[-4000:]}"
        )

    res = e2e.run("health_check.py", expect=(0, 1))
    assert_lines(res, [f"[OK] Bot process running (PID: {bot.pid})"])
    assert "[FAIL]" not in res.stdout, show(res)

    # Back to real time as soon as the bot holds a position, and before the simulator's clock
    # catches up with the wall clock. No position by then fails the phase (and the journey).
    burst_from = e2e.sim_time()
    while not e2e.query("SELECT COUNT(*) FROM positions WHERE status = 'open'")[0][0]:
        assert bot.poll() is None, f"the bot exited with {bot.returncode}:\n{e2e.console(bot)[-4000:]}"
        assert time.time() - e2e.sim_time() > SIM_MARGIN, (
            f"the paper bot opened no position in {(e2e.sim_time() - burst_from) / 3600:.1f} simulated "
            f"hours despite the dip {e2e.facts['dip']}:\n{e2e.log_since(marks)[-4000:]}"
        )
        time.sleep(0.2)
    e2e.set_speed(1)
    bought = e2e.query("SELECT token_id FROM trades WHERE side = 'BUY'")
    assert (e2e.facts["dip"]["token_id"],) in bought, f"the dip was not bought: {bought}"


# ================================================================ Go-live phase: risk and breakers
@phase("12. Risk limits and circuit breakers")
def test_12_risk_and_breakers(e2e):
    res = e2e.run("test_risk_limits.py", timeout=300)
    assert_lines(res, RISK_LINES)
    assert "✗" not in res.stdout, show(res)
    res = e2e.run("test_circuit_breakers.py", timeout=600)
    assert_lines(res, BREAKER_LINES)
    assert "✗" not in res.stdout, show(res)
    bot = e2e.facts["bot"]
    assert bot.poll() is None, (
        "the workspace's bot stopped during the scenario scripts "
        f"(exit {bot.returncode}):\n{e2e.console(bot)[-4000:]}"
    )
    assert not (e2e.ws / "EMERGENCY_STOP").exists()


@phase("13. Emergency stop and recovery")
def test_13_emergency_stop(e2e):
    bot = e2e.facts["bot"]
    open_before = e2e.query("SELECT COUNT(*) FROM positions WHERE status = 'open'")[0][0]
    (e2e.ws / "EMERGENCY_STOP").touch()  # touch EMERGENCY_STOP
    t0 = time.monotonic()
    try:
        code = bot.wait(timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"the bot did not stop within 60 s of EMERGENCY_STOP:\n{e2e.console(bot)[-4000:]}"
        ) from exc
    e2e.facts["stop_seconds"] = time.monotonic() - t0
    console = e2e.console(bot)
    assert code != 0, f"exit code {code} after an emergency stop:\n{console[-4000:]}"
    assert "Traceback" not in console, console[-6000:]
    assert "rm EMERGENCY_STOP" in console, f"no recovery instruction on the console:\n{console[-3000:]}"

    alerts = e2e.query("SELECT level, status, delivery FROM alerts WHERE key = 'emergency_stop'")
    assert [a[:2] for a in alerts] == [("critical", "sent")], (
        f"want one critical emergency_stop alert, sent: {alerts}"
    )
    still_open = e2e.query("SELECT market_id, size_micro FROM positions WHERE status = 'open'")
    assert not still_open, f"positions left open after the stop (had {open_before}): {still_open}"
    assert open_before, "no position was open before the stop: the drill had nothing to close"
    # "Positions closed automatically": one close-out sale each
    closeouts = [ln for ln in console.splitlines() if "STOP: close-out:" in ln]
    assert len(closeouts) == open_before, console[-4000:]
    assert all("0 shares of the bot's left" in ln for ln in closeouts), console[-4000:]
    halts = e2e.query("SELECT breaker FROM halts")
    assert ("emergency_stop",) in halts, halts
    # "Notification sent when triggered": the critical alert reached the operator's Telegram.
    texts = e2e.tg.messages(CHAT_ID)
    assert any("CRITICAL" in t and "emergency stop" in t.lower() for t in texts), f"Telegram got: {texts}"

    # the paper run's strategy and the planted dip end with it: the example's strategy is back
    e2e.clear_book(e2e.facts["dip"]["token_id"])
    e2e.config_path.write_text(e2e.facts["config_before_paper"], encoding="utf-8")

    (e2e.ws / "EMERGENCY_STOP").unlink()  # rm EMERGENCY_STOP
    marks = e2e.log_marks()
    res = e2e.run("trading_bot.py", "--restart", "--max-runtime", "3", timeout=120)
    text = e2e.log_since(marks)
    assert re.search(r"Restart by .* halt 'emergency_stop' .* cleared after reconciliation", text), (
        f"no restart/reconciliation line in the log:\n{text[-4000:]}" + show(res)
    )
    assert "Trading bot started (PAPER MODE)" in text, text[-4000:]


@phase("14. Reports and health after the stop")
def test_14_reports(e2e):
    res = e2e.run("paper_trading_report.py", "--days", "1")
    trades = re.search(r"Simulated trades executed: (\d+)", res.stdout)
    assert trades, show(res)
    assert int(trades.group(1)) >= 2, "want the entry and its emergency close-out" + show(res)
    pnl = re.search(
        r"^Simulated P&L: [+-]?\$[\d,]+\.\d\d .*; realised ([+-]?\$[\d,]+\.\d\d)", res.stdout, re.M
    )
    assert pnl, show(res)
    paper_realised = _usd(pnl.group(1))

    res = e2e.run("health_check.py", expect=(2,))
    assert line_starting(res, "[FAIL] Bot process").startswith("[FAIL] Bot process not running"), show(res)

    day_before = datetime.now(UTC).date().isoformat()
    res = e2e.run("daily_report.py")
    realised = re.search(r"^Realised: .*total ([+-]?\$[\d,]+\.\d\d)", res.stdout, re.M)
    assert realised and _usd(realised.group(1)) == paper_realised, (
        f"daily report and paper trading report disagree on realised P&L ({paper_realised})" + show(res)
    )
    days = {day_before, datetime.now(UTC).date().isoformat()}
    log = e2e.ws / "reports" / "daily_review_log.md"
    assert log.exists(), show(res)
    text = log.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# Daily Review Log", text
    entry = re.search(r"^## (\d{4}-\d{2}-\d{2})\n((?:- .*\n?)+)", text, re.M)
    assert entry and entry.group(1) in days, f"no '## YYYY-MM-DD' entry for {days}:\n{text}"
    bullets = dict(ln.split(": ", 1) for ln in entry.group(2).splitlines() if ": " in ln)
    for key in ("- P&L", "- Open positions", "- Win rate", "- Issues", "- Action items"):
        assert key in bullets, f"'{key}:' missing from the entry:\n{text}"
    pnl_24h = re.search(r"^P&L: .*last 24 h ([+-]?\$[\d,]+\.\d\d)", res.stdout, re.M)
    assert (
        pnl_24h
        and re.fullmatch(r"[+-]?\$[\d,]+\.\d\d", bullets["- P&L"])
        and _usd(bullets["- P&L"]) == _usd(pnl_24h.group(1))
    ), f"review log P&L vs report:\n{text}" + show(res)
    n_open = e2e.query("SELECT COUNT(*) FROM positions WHERE mode = 'paper' AND status = 'open'")[0][0]
    assert bullets["- Open positions"] == str(n_open), (
        f"review log says {bullets['- Open positions']}, db {n_open}"
    )
    assert re.fullmatch(r"\d+(\.\d+)?%.*|n/a.*", bullets["- Win rate"]), bullets[
        "- Win rate"
    ]  # n/a: no exits yet


# ================================================================ Maintenance
@phase("15. Database maintenance")
def test_15_maintenance(e2e):
    res = e2e.run("maintain_database.py", timeout=300)
    assert_lines(res, ["Starting VACUUM...", "Integrity check: ok"])
    assert_prefixes(res, ["VACUUM complete"])


@phase("16. Backup audit and the GO/NO-GO decision")
def test_16_prelaunch(e2e):
    res = e2e.run("audit_backups.py")
    assert_prefixes(res, ["PASS"])

    # Security checklist: no secret value in any log or report.
    secrets = [v for v in e2e.env.values() if len(v) >= 12]
    for folder in ("logs", "reports"):
        for p in (e2e.ws / folder).rglob("*"):
            if p.is_file() and p.suffix in (".log", ".txt", ".md", ".json", ".csv"):
                body = p.read_text(encoding="utf-8", errors="replace")
                leaked = [s[:6] + "…" for s in secrets if s in body]
                assert not leaked, f"{p.relative_to(e2e.ws)} contains secret value(s) {leaked}"

    res = e2e.run("pre_launch_check.py", expect=None, timeout=600)
    assert res.returncode != 0, (
        "pre_launch_check.py said GO for a workspace with days, not weeks, of history" + show(res)
    )
    assert res.returncode == 1, show(res)
    lines = lines_of(res)
    head = [ln for ln in lines if ln.startswith("✗ NO-GO:")]
    assert len(head) == 1, "no '✗ NO-GO: N item(s)' line" + show(res)
    failed = [ln[2:].split(":")[0] for ln in lines if ln.startswith("✗ ") and not ln.startswith("✗ NO-GO:")]
    fixes = re.findall(r"^\s+(\d+)\. ([^:]+): (.+)$", res.stdout, re.M)
    n = int(re.search(r"NO-GO: (\d+) item", head[0]).group(1))
    assert n == len(failed) == len(fixes), f"{n} NO-GO, {len(failed)} ✗ lines, {len(fixes)} fixes" + show(res)
    assert [f[1] for f in fixes] == failed, "the NO-GO list does not name the ✗ items in order" + show(res)
    assert all(f[2].strip() for f in fixes), "an item has no fix" + show(res)

    # The steps this journey could not complete in minutes must be the reasons …
    # (the backtest: even a PASS needs 7 days of recorded books to go live; this journey records minutes)
    expected = {
        "Data collection running (7+ days, fresh, quality PASS)",
        "Paper trading PASSED (7+ days, no critical errors)",
        "30-day backtest PASSED",
        # live signing is proved with real credentials only (test_api_connectivity.py
        # --live-order-check), which a paper journey on the simulator does not have
        "Live order check passed (last 24 h)",
    }
    assert expected <= set(failed), f"missing NO-GO reasons {expected - set(failed)}" + show(res)
    # Not scheduled here (no cron): health checks were run by hand, not every 5 minutes. Minutes of
    # paper trading may fall below the backtest's range (or not): either is an honest answer.
    unexpected = (
        set(failed) - expected - {"Health checks running", "Paper results within the backtest's 95% range"}
    )
    assert not unexpected, f"NO-GO for steps this journey completed: {unexpected}" + show(res)
    # … and the steps it did complete must pass.
    for done in (
        "No hardcoded secrets",
        "File permissions",
        "Database integrity",
        "Recent verified backup",
        "7-day correlation report",
        "Risk limits within the checklist's bounds",
        "Risk limits enforced",
        "Circuit breakers tested",
        "Alert channels configured",
        "Emergency stop absent",
    ):
        assert any(ln.startswith(f"✓ {done}:") for ln in lines), f"'{done}' should pass" + show(res)
    paper = re.search(
        r"Paper trading PASSED \(7\+ days, no critical errors\): only -?\d+\.\d days of paper "
        r"trading \((\d+) trades\)",
        res.stdout,
    )
    assert paper, show(res)
    assert int(paper.group(1)) >= 2, show(res)
    assert list((e2e.ws / "reports").glob("pre_launch_check_*.txt")), "the decision was not recorded"
