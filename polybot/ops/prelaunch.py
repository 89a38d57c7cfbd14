"""``pre_launch_check.py``: the checklist's "Final Go-Live Checklist" as code.

One ✓/✗ line per item, then ``✓ All systems operational`` / ``✓ Ready for live trading`` (exit
0) or a NO-GO list with the fix for each item (exit 1). The result is also written to
``reports/pre_launch_check_YYYYMMDD_HHMMSS.txt`` (the documented GO/NO-GO decision).

Inputs other modules produce (file names from the shared contracts):
``reports/data_quality_*.txt`` (newest; a line starting ``PASS`` / ``FAIL``),
``reports/correlation_7day.csv``, ``reports/backtest_30day.json`` (a top-level ``verdict`` — or
``metrics.verdict`` — ``"PASS"`` from a report whose ``config_hash`` matches config.yaml, at most
``backtest.max_report_age_days`` old, meeting the coverage / recorded-days / trades / PSR floors;
paper trading's mean daily return not below the report's lower 95 % bound), the
``trades`` / ``performance`` / ``alerts`` / ``halts`` tables (paper rows have ``mode = 'paper'``),
and the scripts ``test_risk_limits.py`` / ``test_circuit_breakers.py`` (exit 0 = every scenario
passed), looked up in the workspace first, then in the checkout. Database integrity, data freshness and
disk space are decided by :mod:`polybot.checks` (shared with health_check.py and the alerts).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import checks, db
from ..commands import child_argv, child_env, for_script
from ..config import Config, check_mode_requirements, risk_bound_problems
from ..errors import ConfigError, PolybotError
from ..timefmt import file_stamp
from .backup import list_backups, read_checksum
from .common import FAIL, OK, bot_status, fmt_ago, sha256_file
from .secrets_scan import scan_for_secrets

DAY = 86400
BACKUP_MAX_AGE_H = 26
MIN_DAYS = 7
SCENARIO_TIMEOUT = 900
SCENARIO_SCRIPTS = (
    ("Risk limits enforced", "test_risk_limits.py"),
    ("Circuit breakers tested", "test_circuit_breakers.py"),
)


@dataclass
class Item:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{OK if self.ok else FAIL} {self.name}: {self.detail}"


def _conn(cfg: Config) -> sqlite3.Connection | None:
    try:
        return db.connect(cfg.database_path, readonly=True)
    except PolybotError:
        return None


NO_DB_FIX = "run python initialize_db.py"


# --------------------------------------------------------------------------- the checks
def check_config(cfg: Config) -> Item:
    live = dataclasses.replace(cfg, paper_trading=False)
    try:
        check_mode_requirements(live)
    except ConfigError as exc:
        return Item(
            "Config valid for live trading",
            False,
            str(exc),
            "fix config.yaml / the environment, then python validate_config.py",
        )
    missing = [v for k, v in cfg.unset_env if k.startswith(("polymarket.", "telegram.", "email."))]
    if missing:
        return Item(
            "Config valid for live trading",
            False,
            f"environment variable(s) not set: {', '.join(missing)}",
            f"export {missing[0]} (Windows: setx {missing[0]} ...)",
        )
    return Item(
        "Config valid for live trading",
        True,
        "credentials set, risk bounds and secrets checks pass with paper_trading: false",
    )


def check_secrets(cfg: Config) -> Item:
    hits = scan_for_secrets(Path(cfg.root))
    if cfg.literal_secrets:
        hits = [f"config.yaml: {k} is written literally" for k in cfg.literal_secrets] + hits
    if hits:
        return Item(
            "No hardcoded secrets",
            False,
            f"{len(hits)} finding(s), first: {hits[0]}",
            "move each secret to an environment variable (${VAR} in config.yaml) and rotate it",
        )
    return Item("No hardcoded secrets", True, "the checklist's grep patterns find only ${VAR} references")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def check_permissions(cfg: Config) -> Item:
    if os.name != "posix":
        return Item("File permissions", True, "skipped on Windows — check with icacls as in RUNBOOK.md")
    bad: list[str] = []
    fixes: list[str] = []

    def want(p: Path, mode: int, mask: int, cmd: str) -> None:
        if p.exists() and _mode(p) & mask:
            bad.append(f"{p.name} is {_mode(p):o} (want {mode:o})")
            fixes.append(cmd)

    dbp = Path(cfg.database_path)
    want(dbp, 0o600, 0o077, f"chmod 600 {dbp}")
    for suffix in ("-wal", "-shm"):
        want(Path(str(dbp) + suffix), 0o600, 0o077, f"chmod 600 {dbp}{suffix}")
    if cfg.source:
        want(Path(cfg.source), 0o600, 0o077, f"chmod 600 {cfg.source}")
    want(Path(cfg.root) / ".env", 0o600, 0o077, "chmod 600 .env")
    for b in list_backups(cfg.backup_dir):
        want(b.path, 0o600, 0o077, f"chmod 600 {cfg.backup_dir}/*.db")
    for p in Path(cfg.log_dir).glob("*.log") if Path(cfg.log_dir).is_dir() else []:
        want(p, 0o640, 0o027, f"chmod 640 {cfg.log_dir}/*.log")
    for d in (dbp.parent, Path(cfg.log_dir), Path(cfg.backup_dir)):
        want(d, 0o700, 0o077, f"chmod 700 {d}")
    if bad:
        return Item(
            "File permissions",
            False,
            "; ".join(bad[:4]) + (" …" if len(bad) > 4 else ""),
            "; ".join(dict.fromkeys(fixes)),
        )
    return Item("File permissions", True, "database/config/backups 600, logs 640, directories 700")


def check_integrity(cfg: Config, conn) -> Item:
    r = checks.database(conn, full=True)
    if r.code == "missing":
        return Item("Database integrity", False, f"no database at {cfg.database_path}", NO_DB_FIX)
    if not r.ok:
        return Item(
            "Database integrity",
            False,
            f"integrity_check: {r.value}",
            "restore the latest backup: python backup_database.py --restore FILE",
        )
    return Item("Database integrity", True, "integrity_check ok")


def check_backup(cfg: Config, conn, now: float) -> Item:
    backups = list_backups(cfg.backup_dir)
    fix = "run python backup_database.py and schedule it daily (python run_scheduler.py --print-crontab)"
    if not backups:
        return Item("Recent verified backup", False, f"no backup in {cfg.backup_dir}", fix)
    b = backups[-1]
    age_h = (now - b.timestamp) / 3600
    if age_h > BACKUP_MAX_AGE_H:
        return Item(
            "Recent verified backup",
            False,
            f"newest backup {b.name} is {age_h:.0f} h old (max {BACKUP_MAX_AGE_H} h)",
            fix,
        )
    digest = read_checksum(b.path)
    if digest is None and conn is not None:
        row = conn.execute(
            "SELECT sha256 FROM backups WHERE path LIKE ? AND integrity = 'ok' ORDER BY id DESC LIMIT 1",
            (f"%{b.name}",),
        ).fetchone()
        digest = row[0] if row else None
    if digest is None or sha256_file(b.path) != digest:
        return Item("Recent verified backup", False, f"{b.name} has no matching verified checksum", fix)
    return Item("Recent verified backup", True, f"{b.name} ({age_h:.1f} h old, integrity ok, sha256 matches)")


def _latest(report_dir: Path, pattern: str) -> Path | None:
    files = [p for p in Path(report_dir).glob(pattern) if p.is_file()]
    return max(files, key=lambda p: (p.stat().st_mtime, p.name)) if files else None


def check_collection(cfg: Config, conn, now: float) -> Item:
    name = "Data collection running (7+ days, fresh, quality PASS)"
    if conn is None:
        return Item(
            name,
            False,
            "no database",
            "run python initialize_db.py, then schedule python collect_market_data.py every 5 minutes",
        )
    first, last = conn.execute(
        "SELECT MIN(timestamp), MAX(timestamp) FROM snapshot_values WHERE source = 'collected'"
    ).fetchone()
    if last is None:
        return Item(
            name,
            False,
            "no collected snapshots",
            "schedule python collect_market_data.py every 5 minutes "
            "(python run_scheduler.py --print-crontab)",
        )
    span = (last - first) / DAY
    if span < MIN_DAYS:
        return Item(
            name, False, f"only {span:.1f} days of data", f"keep collecting until {MIN_DAYS} days are stored"
        )
    if not checks.freshness("data", last, now, cfg.collection.freshness_minutes * 60).ok:
        return Item(
            name,
            False,
            f"last snapshot {fmt_ago(now - last)} (limit {cfg.collection.freshness_minutes:g} min)",
            "check the collector: tail logs/cron.log; crontab -l",
        )
    report = _latest(cfg.report_dir, "data_quality_*.txt")
    if report is None:
        return Item(
            name,
            False,
            f"{span:.1f} days, fresh, but no data quality report",
            "run python data_quality_check.py",
        )
    lines = [ln.strip() for ln in report.read_text(encoding="utf-8", errors="replace").splitlines()]
    verdicts = [ln for ln in lines if ln.startswith(("PASS", "FAIL"))]
    if not verdicts or not verdicts[-1].startswith("PASS"):
        return Item(
            name,
            False,
            f"{report.name}: {verdicts[-1] if verdicts else 'no PASS/FAIL line'}",
            "fix the data problems it lists, then python data_quality_check.py",
        )
    return Item(name, True, f"{span:.1f} days, last snapshot {fmt_ago(now - last)}, {report.name}: PASS")


def check_correlation(cfg: Config) -> Item:
    p = Path(cfg.report_dir) / "correlation_7day.csv"
    fix = "run python correlation_analysis.py --days 7"
    if not p.exists():
        return Item("7-day correlation report", False, f"{p.name} not found", fix)
    rows = [ln for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    if len(rows) < 2:
        return Item("7-day correlation report", False, f"{p.name} has no data rows", fix)
    return Item("7-day correlation report", True, f"{p.name} ({len(rows) - 1} rows)")


BACKTEST_ITEM = "30-day backtest PASSED"
PAPER_VS_BACKTEST_ITEM = "Paper results within the backtest's 95% range"
BACKTEST_RUN = "run python backtest.py --start-date YYYY-MM-DD --end-date YYYY-MM-DD --capital 500"


def _backtest_report(cfg: Config) -> tuple[Path, dict | None, str]:
    """(path, the parsed report or None, why not)."""
    p = Path(cfg.report_dir) / "backtest_30day.json"
    if not p.exists():
        return p, None, "no 30-day backtest report (reports/backtest_30day.json)"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return p, None, f"{p.name} is unreadable ({exc})"
    if not isinstance(data, dict):
        return p, None, f"{p.name} is not a backtest report"
    return p, data, ""


def check_backtest(cfg: Config, now: float | None = None) -> Item:
    """GO needs a PASS from a report of the configured strategy and parameters (config_hash), at
    most backtest.max_report_age_days old, meeting the coverage / recorded-days / trades / PSR
    floors (polybot.backtest.verdict.go_live_problems)."""
    from ..backtest.verdict import go_live_problems

    now = time.time() if now is None else now
    p, data, why = _backtest_report(cfg)
    if data is None:
        return Item(BACKTEST_ITEM, False, why, BACKTEST_RUN)
    raw_metrics = data.get("metrics")
    metrics: dict = raw_metrics if isinstance(raw_metrics, dict) else {}
    verdict = str(data.get("verdict") or metrics.get("verdict") or "").upper()
    criteria = metrics.get("criteria") or data.get("criteria") or []
    failed = [str(c.get("name")) for c in criteria if isinstance(c, dict) and not c.get("passed")]
    reasons = [str(r) for r in (data.get("reasons") or metrics.get("reasons") or [])]
    if verdict == "INSUFFICIENT_DATA":
        return Item(
            BACKTEST_ITEM,
            False,
            "verdict INSUFFICIENT_DATA" + (f": {' '.join(reasons)}" if reasons else ""),
            "collect (or backfill) the missing data, then " + BACKTEST_RUN + " over 30 days that have data; "
            "do NOT go live on too little evidence",
        )
    if verdict != "PASS":
        return Item(
            BACKTEST_ITEM,
            False,
            f"verdict {verdict or 'missing'}"
            + (f" (failed: {', '.join(failed)})" if failed else "")
            + (f": {' '.join(reasons)}" if reasons else ""),
            "adjust the strategy and re-run the backtest; do NOT go live",
        )
    try:
        problems = go_live_problems(data, cfg, now, file_mtime=p.stat().st_mtime)
    except PolybotError as exc:  # the configured strategy cannot be built: nothing to match against
        return Item(
            BACKTEST_ITEM,
            False,
            f"the configured strategy is invalid ({exc})",
            "fix strategy: in config.yaml (python validate_config.py), then re-run the backtest",
        )
    if problems:
        return Item(
            BACKTEST_ITEM,
            False,
            f"{p.name}: verdict PASS, but " + "; ".join(pr for pr, _ in problems),
            "; ".join(dict.fromkeys(fix for _, fix in problems)),
        )
    period = (
        f" ({data['start_date']} to {data['end_date']})"
        if data.get("start_date") and data.get("end_date")
        else ""
    )
    return Item(
        BACKTEST_ITEM,
        True,
        f"{p.name}: verdict PASS{period}, {data.get('total_trades', metrics.get('total_trades'))} "
        f"trades, PSR {float(data.get('psr') or 0):.2f}, coverage "
        f"{float(data.get('coverage') or 0):.0%}, {float(data.get('recorded_days') or 0):.1f} "
        f"recorded days, config_hash matches config.yaml",
    )


def check_paper_vs_backtest(cfg: Config, conn, now: float) -> Item:
    """Paper trading's mean daily return must not be below the backtest's lower 95 % bound of the
    mean daily return (polybot.backtest.verdict.paper_vs_backtest)."""
    from ..backtest.verdict import paper_daily_returns, paper_vs_backtest

    _, data, why = _backtest_report(cfg)
    if data is None:
        return Item(PAPER_VS_BACKTEST_ITEM, False, f"not compared: {why}", BACKTEST_RUN)
    if conn is None:
        return Item(PAPER_VS_BACKTEST_ITEM, False, "not compared: no database", NO_DB_FIX)
    returns, source = paper_daily_returns(conn, cfg.capital, now)
    ok, text = paper_vs_backtest(data, returns)
    if ok:
        return Item(PAPER_VS_BACKTEST_ITEM, True, f"{text} (from {source})")
    if not returns:
        return Item(
            PAPER_VS_BACKTEST_ITEM, False, text, "run python trading_bot.py --paper-trading for 7+ days"
        )
    if "no 95 % interval" in text:
        return Item(PAPER_VS_BACKTEST_ITEM, False, text, BACKTEST_RUN + " with the current backtest.py")
    return Item(
        PAPER_VS_BACKTEST_ITEM,
        False,
        f"{text} (from {source}): paper trading does worse than the backtest promised",
        "find why paper and backtest differ (python "
        "paper_trading_report.py compares them on the same window); do NOT "
        "go live",
    )


def check_paper(cfg: Config, conn, now: float) -> Item:
    name = "Paper trading PASSED (7+ days, no critical errors)"
    if conn is None:
        return Item(
            name,
            False,
            "no database",
            "run python initialize_db.py, then python trading_bot.py --paper-trading for 7+ days",
        )
    t_first = [
        r[0]
        for r in conn.execute(
            "SELECT MIN(timestamp) FROM trades WHERE mode = 'paper' UNION ALL "
            "SELECT MIN(timestamp) FROM performance WHERE mode = 'paper'"
        )
        if r[0] is not None
    ]
    if not t_first:
        return Item(
            name,
            False,
            "no paper trades or performance rows",
            "run python trading_bot.py --paper-trading for at least 7 days",
        )
    start = min(t_first)
    days = (now - start) / DAY
    n = conn.execute("SELECT COUNT(*) FROM trades WHERE mode = 'paper'").fetchone()[0]
    if days < MIN_DAYS:
        return Item(
            name,
            False,
            f"only {days:.1f} days of paper trading ({n} trades)",
            f"keep paper trading until {MIN_DAYS} days have passed",
        )
    since = int(now - MIN_DAYS * DAY)
    crit = conn.execute(
        "SELECT COUNT(*), MAX(key) FROM alerts WHERE level = 'critical' AND timestamp >= ? AND "
        "key NOT LIKE 'health%' AND key NOT LIKE 'prelaunch%'",
        (since,),
    ).fetchone()
    halts = conn.execute(
        "SELECT COUNT(*) FROM halts WHERE mode = 'paper' AND timestamp >= ? AND breaker != 'emergency_stop'",
        (since,),
    ).fetchone()[0]
    if crit[0] or halts:
        return Item(
            name,
            False,
            f"{crit[0]} critical alert(s) and {halts} circuit-breaker halt(s) in the last {MIN_DAYS} days",
            "fix the cause (RUNBOOK.md) and paper trade 7 clean days",
        )
    from ..ledger_queries import realized_pnl_micro
    from ..money import fmt_usd

    pnl = realized_pnl_micro(conn, "paper")

    return Item(
        name,
        True,
        f"{days:.1f} days, {n} trades, realised {fmt_usd(pnl, signed=True)}, no critical "
        f"errors in the last {MIN_DAYS} days",
    )


def check_risk(cfg: Config) -> Item:
    problems = risk_bound_problems(cfg)
    if problems:
        return Item(
            "Risk limits within the checklist's bounds", False, problems[0], "edit risk_limits in config.yaml"
        )
    r = cfg.risk_limits
    return Item(
        "Risk limits within the checklist's bounds",
        True,
        f"max_position ${r.max_position_size:g}, max_positions {r.max_positions}, exposure "
        f"{r.max_portfolio_exposure:g}, stop loss {r.stop_loss_percent:g}, daily loss ${r.daily_loss_limit:g}, "
        f"leverage {r.max_leverage:g} for ${cfg.capital:g}",
    )


def _scenario(cfg: Config, label: str, script: str) -> Item:
    # The workspace's copy of the script (a clone), else the same command of the installed package.
    path = Path(cfg.root) / script
    try:
        argv = [sys.executable, str(path)] if path.exists() else child_argv(for_script(script).name)
    except KeyError:
        return Item(
            label, False, f"{script} not available", f"{script} must exist and pass before going live"
        )
    env = child_env(dict(os.environ, PYTHONIOENCODING="utf-8"))
    if cfg.source:
        env["POLYBOT_CONFIG"] = str(cfg.source)
    try:
        proc = subprocess.run(
            argv,
            cwd=str(cfg.root),
            env=env,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Item(
            label,
            False,
            f"{script} did not finish in {SCENARIO_TIMEOUT} s",
            f"run python {script} and fix it",
        )
    out = [ln for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    if proc.returncode != 0:
        return Item(
            label,
            False,
            f"{script} exit code {proc.returncode}: {out[-1] if out else 'no output'}",
            f"run python {script}, fix every ✗ scenario",
        )
    passed = sum(1 for ln in out if ln.lstrip().startswith("✓"))
    return Item(label, True, f"{script} passed" + (f" ({passed} scenarios)" if passed else ""))


def check_alert_channels(cfg: Config, send_test: bool) -> Item:
    name = "Alert channels configured"
    used = {ch for lvl in ("critical", "warning", "info") for ch in getattr(cfg.alerts, lvl)}
    problems = []
    if "telegram" in used:
        t = cfg.telegram
        if not t.enabled:
            problems.append("alerts use telegram but telegram.enabled is false")
        elif not (t.bot_token and t.chat_id):
            problems.append("telegram needs bot_token (TELEGRAM_BOT_TOKEN) and chat_id")
    if "email" in used:
        e = cfg.email
        if not e.enabled:
            problems.append("alerts use email but email.enabled is false")
        elif not (e.smtp_host and e.from_addr and e.to_addrs):
            problems.append("email needs smtp_host, from_addr and to_addrs")
    if not [c for c in cfg.alerts.critical if c != "log"]:
        problems.append("alerts.critical has no channel that reaches your phone or inbox")
    if problems:
        return Item(
            name,
            False,
            "; ".join(problems),
            "fix telegram:/email:/alerts: in config.yaml (python get_telegram_chat_id.py for the chat id)",
        )
    detail = f"critical → {', '.join(cfg.alerts.critical)}"
    if send_test:
        failed = _send_test_alert(cfg)
        if failed:
            return Item(
                name,
                False,
                f"test alert not delivered: {failed}",
                "check the channel settings (python test_alerts.py --level critical), then "
                "python pre_launch_check.py --send-test",
            )
        detail += "; test alert sent"
    return Item(name, True, detail)


def _send_test_alert(cfg: Config) -> str | None:
    """Deliver a critical test alert synchronously; return what failed (None = all delivered)."""
    from ..alerts import Alerter

    alerter = Alerter(cfg)
    try:
        results = alerter.deliver_now(
            "critical", "prelaunch_test", "Pre-launch test alert from pre_launch_check.py — ignore"
        )
    finally:
        alerter.close(15)
    bad = [f"{ch}: {r.detail}" for ch, r in results.items() if not r.ok]
    return "; ".join(bad) or None


def check_disk(cfg: Config) -> Item:
    """GO needs the disk above the WARN threshold (``health.disk_warn_gb``): going live on a
    disk the health check already warns about would be starting in trouble."""
    r = checks.disk(cfg)
    if not r.ok:
        free = f"{r.value / checks.GB:.1f} GB free"
        return Item("Disk space", False, f"{free} (need {cfg.health.disk_warn_gb:g} GB)", "free disk space")
    return Item("Disk space", True, r.message)


def check_emergency_stop(cfg: Config, conn) -> Item:
    stop = Path(cfg.emergency_stop_file)
    if stop.exists():
        return Item(
            "Emergency stop absent",
            False,
            f"{stop.name} exists",
            f"find out why it was created, then rm {stop.name}",
        )
    if bot_status(cfg, conn).halted:
        return Item(
            "Emergency stop absent",
            False,
            "the bot is halted (a circuit breaker latched)",
            "read the halt reason (RUNBOOK.md), then python trading_bot.py --restart",
        )
    return Item("Emergency stop absent", True, f"no {stop.name} file, not halted")


def check_monitoring(cfg: Config, conn, now: float) -> Item:
    name = "Health checks running"
    last = None
    if conn is not None:
        last = conn.execute("SELECT MAX(started_at) FROM job_runs WHERE job = 'health'").fetchone()[0]
    hl = Path(cfg.log_dir) / "health.log"
    if hl.exists():
        last = max(last or 0, hl.stat().st_mtime)
    if last is None or now - last > 15 * 60:
        return Item(
            name,
            False,
            "no health check in the last 15 minutes",
            "schedule python health_check.py every 5 minutes (python run_scheduler.py --print-crontab)",
        )
    return Item(name, True, f"last health check {fmt_ago(now - last)}")


LIVE_CHECK_MAX_AGE_H = 24
LIVE_CHECK_NAME = "Live order check passed (last 24 h)"
LIVE_CHECK_FIX = (
    "run python test_api_connectivity.py --live-order-check (it places and cancels a "
    "post-only order that cannot fill) with the live config and credentials"
)


def check_live_order(cfg: Config, conn, now: float) -> Item:
    """GO needs the newest ``--live-order-check`` run for THIS exchange, key, signature type and
    funder (rows: polybot/exchange/live_order_check.py) to have passed within 24 h."""
    from ..exchange.live_order_check import JOB, identity

    if conn is None:
        return Item(LIVE_CHECK_NAME, False, "no database", LIVE_CHECK_FIX)
    want = identity(cfg)
    newest = None
    for started, code, detail in conn.execute(
        "SELECT started_at, exit_code, detail FROM job_runs WHERE job = ? ORDER BY started_at DESC, "
        "id DESC LIMIT 200",
        (JOB,),
    ):
        try:
            d = json.loads(detail or "{}")
        except ValueError:
            continue
        same = all(
            str(d.get(k, "")).lower() == str(want[k]).lower()
            for k in ("clob_url", "signature_type", "funder")
            if want[k] != ""
        )
        if same and (not want["address"] or str(d.get("address", "")).lower() == want["address"]):
            newest = (started, code, d)
            break
    if newest is None:
        return Item(
            LIVE_CHECK_NAME,
            False,
            f"no live order check recorded for {want['clob_url']} with "
            f"signature type {want['signature_type']}",
            LIVE_CHECK_FIX,
        )
    started, code, d = newest
    if code != 0:
        return Item(
            LIVE_CHECK_NAME,
            False,
            f"the last run ({fmt_ago(now - started)}) failed: {str(d.get('message', ''))[:160]}",
            "fix what it says, then " + LIVE_CHECK_FIX,
        )
    age_h = (now - started) / 3600
    if age_h > LIVE_CHECK_MAX_AGE_H:
        return Item(
            LIVE_CHECK_NAME,
            False,
            f"the last passing run is {age_h:.0f} h old (max {LIVE_CHECK_MAX_AGE_H} h)",
            LIVE_CHECK_FIX,
        )
    return Item(
        LIVE_CHECK_NAME,
        True,
        f"passed {fmt_ago(now - started)}, order {d.get('order_id')} placed "
        f"and cancelled on {want['clob_url']}",
    )


def run_prelaunch(cfg: Config, *, now: float | None = None, send_test: bool = False) -> list[Item]:
    now = time.time() if now is None else now
    conn = _conn(cfg)
    try:
        checks: list[tuple[str, Callable[[], Item]]] = [
            ("Config valid for live trading", lambda: check_config(cfg)),
            ("No hardcoded secrets", lambda: check_secrets(cfg)),
            ("File permissions", lambda: check_permissions(cfg)),
            ("Database integrity", lambda: check_integrity(cfg, conn)),
            ("Recent verified backup", lambda: check_backup(cfg, conn, now)),
            ("Data collection running", lambda: check_collection(cfg, conn, now)),
            ("7-day correlation report", lambda: check_correlation(cfg)),
            (BACKTEST_ITEM, lambda: check_backtest(cfg, now)),
            ("Paper trading PASSED", lambda: check_paper(cfg, conn, now)),
            (PAPER_VS_BACKTEST_ITEM, lambda: check_paper_vs_backtest(cfg, conn, now)),
            ("Risk limits", lambda: check_risk(cfg)),
            *[(lab, (lambda lab=lab, s=s: _scenario(cfg, lab, s))) for lab, s in SCENARIO_SCRIPTS],
            ("Alert channels configured", lambda: check_alert_channels(cfg, send_test)),
            ("Health checks running", lambda: check_monitoring(cfg, conn, now)),
            ("Disk space", lambda: check_disk(cfg)),
            ("Emergency stop absent", lambda: check_emergency_stop(cfg, conn)),
            (LIVE_CHECK_NAME, lambda: check_live_order(cfg, conn, now)),
        ]
        items = []
        for name, check in checks:
            try:
                items.append(check())
            except (sqlite3.Error, OSError) as exc:
                items.append(
                    Item(name, False, f"could not be checked ({exc})", "fix that error and run again")
                )
        return items
    finally:
        if conn is not None:
            conn.close()


def main(args) -> int:
    from ..config import load_config
    from .common import configure_quiet

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)
    now = time.time()
    items = run_prelaunch(cfg, now=now, send_test=args.send_test)
    lines = [i.line() for i in items]
    failed = [i for i in items if not i.ok]
    if failed:
        lines.append(f"{FAIL} NO-GO: {len(failed)} item(s) to fix before live trading:")
        lines += [f"  {n}. {i.name}: {i.fix}" for n, i in enumerate(failed, 1)]
    else:
        lines += [f"{OK} All systems operational", f"{OK} Ready for live trading"]
    print("\n".join(lines))
    path = Path(cfg.report_dir) / f"pre_launch_check_{file_stamp(now)}.txt"
    try:
        db.ensure_private_dir(path.parent)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"Decision recorded: {path}")
    except (OSError, PolybotError):
        pass
    return 1 if failed else 0
