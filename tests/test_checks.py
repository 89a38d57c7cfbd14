"""polybot.checks: one implementation per operational fact, and its callers agreeing on it.

Pure comparisons are tested directly; disk and database on real temporary files and real
SQLite; the exchange API against the local simulator (with its fault injection)."""

from __future__ import annotations

import sqlite3

import pytest

from polybot import checks
from polybot.alerts import check_daily_loss as alert_daily_loss
from polybot.alerts import check_disk as alert_disk
from polybot.config import HealthConfig, RiskLimits, load_config
from polybot.engine import breakers
from polybot.exchange.client import PolymarketClient
from polybot.money import to_micro
from polybot.ops import health, prelaunch
from polybot.risk import RULE_DAILY_LOSS, AccountState, RiskManager
from tests.conftest import sim_urls, write_config

GB = checks.GB


# --------------------------------------------------------------------------- result type
def test_result_status_helpers_and_worst():
    ok = checks.CheckResult("a", checks.OK, "fine")
    warn = checks.CheckResult("b", checks.WARN, "hm")
    fail = checks.CheckResult("c", checks.FAIL, "bad")
    assert ok.ok and not ok.failed
    assert not warn.ok and not warn.failed
    assert fail.failed and not fail.ok
    assert checks.worst([]) == checks.OK
    assert checks.worst([ok, warn]) == checks.WARN
    assert checks.worst([warn, fail, ok]) == checks.FAIL


# --------------------------------------------------------------------------- disk
def test_disk_space_thresholds_and_boundaries():
    def at(free):
        return checks.disk_space("/x", warn_gb=5, fail_gb=2, free=free)

    r = at(10 * GB)
    assert (r.status, r.message, r.value, r.threshold) == (checks.OK, "10.0 GB free", 10 * GB, 5)
    assert at(5 * GB).status == checks.OK  # exactly at the warn level: not below it
    r = at(5 * GB - 1)
    assert (r.status, r.threshold) == (checks.WARN, 5)
    assert r.message == "5.0 GB free (below 5 GB)"
    assert at(2 * GB).status == checks.WARN  # exactly at the fail level: not below it
    r = at(2 * GB - 1)
    assert (r.status, r.threshold, r.message) == (checks.FAIL, 2, "2.0 GB free (below 2 GB)")
    assert at(0).failed


def test_disk_space_reads_the_real_disk_of_a_path_not_created_yet(tmp_path):
    missing = tmp_path / "not" / "created" / "yet.db"
    assert checks.free_bytes(missing) > 0
    r = checks.disk_space(missing, warn_gb=0, fail_gb=0)
    assert r.ok and r.value > 0
    huge = 999_999  # GB: no test machine has a petabyte free
    assert checks.disk_space(missing, warn_gb=huge, fail_gb=huge).failed
    assert checks.disk_space(missing, warn_gb=huge, fail_gb=0).status == checks.WARN


def _cfg(root, **health_keys):
    return load_config(write_config(root, {"health": health_keys} if health_keys else None), env={})


def test_health_prelaunch_and_alerts_decide_disk_with_one_set_of_thresholds(tmp_path):
    huge = 999_999  # GB: no test machine has a petabyte free
    # below warn, above fail: health WARNs, pre-launch says NO-GO, no disk alert
    cfg = _cfg(tmp_path, disk_warn_gb=huge, disk_fail_gb=0)
    line = health.check_disk(cfg)
    assert line.status == "WARN" and line.text.endswith(f"GB free (below {huge} GB)")
    item = prelaunch.check_disk(cfg)
    assert not item.ok and item.detail.endswith(f"GB free (need {huge} GB)") and item.fix == "free disk space"
    assert alert_disk(cfg.database_path.parent, cfg) is None
    # below fail: health FAILs with the fix, pre-launch NO-GO, the disk_space_low alert fires
    cfg = _cfg(tmp_path, disk_warn_gb=huge, disk_fail_gb=huge)
    line = health.check_disk(cfg)
    assert line.status == "FAIL" and line.text.endswith(
        f"GB free (below {huge} GB); free space now — see RUNBOOK.md"
    )
    assert not prelaunch.check_disk(cfg).ok
    finding = alert_disk(cfg.database_path.parent, cfg)
    assert (
        finding is not None
        and finding.key == "disk_space_low"
        and f"(threshold {huge} GB)" in finding.message
    )
    # above both: all three agree it is fine
    cfg = _cfg(tmp_path, disk_warn_gb=0, disk_fail_gb=0)
    assert health.check_disk(cfg).status == "OK"
    assert prelaunch.check_disk(cfg).ok
    assert alert_disk(cfg.database_path.parent, cfg.health) is None


def test_alert_disk_defaults_are_the_health_defaults():
    d = HealthConfig()
    assert alert_disk("/data", None, free_bytes=int(d.disk_fail_gb * GB)) is None
    assert alert_disk("/data", None, free_bytes=int(d.disk_fail_gb * GB) - 1) is not None


# --------------------------------------------------------------------------- database
def _db(path, rows: int = 0):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX idx_t_v ON t (v)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", ((f"value {i:06d}",) for i in range(rows)))
    conn.commit()
    return conn


def _corrupt_index(path, index: str = "idx_t_v") -> None:
    """Overwrite the root page of an index: the table stays readable, quick_check fails."""
    c = sqlite3.connect(path)
    page_size = c.execute("PRAGMA page_size").fetchone()[0]
    root_page = c.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (index,)).fetchone()[0]
    c.close()
    with open(path, "r+b") as f:
        f.seek((root_page - 1) * page_size)
        f.write(b"\xde\xad\xbe\xef" * (page_size // 4))


def test_database_ok_quick_and_full(tmp_path):
    conn = _db(tmp_path / "a.db", rows=10)
    try:
        r = checks.database(conn)
        assert (r.status, r.message, r.value, r.code) == (checks.OK, "quick_check ok", "ok", "")
        assert checks.database(conn, full=True).message == "integrity_check ok"
    finally:
        conn.close()


def test_database_missing_names_the_reason():
    r = checks.database(None, error="Cannot open database /x/y.db: no such file")
    assert r.failed and r.code == "missing"
    assert r.message == "not accessible: Cannot open database /x/y.db: no such file"


def test_database_damaged_index_fails_both_checks(tmp_path):
    path = tmp_path / "bad.db"
    _db(path, rows=500).close()
    _corrupt_index(path)
    conn = sqlite3.connect(path)
    try:
        for full, pragma in ((False, "quick_check"), (True, "integrity_check")):
            r = checks.database(conn, full=full)
            assert r.failed and r.code == "damaged", r
            assert r.value != "ok"
            # the pragma lists the problems, or SQLite refuses to walk the damaged page at all
            assert r.message in (f"damaged ({pragma}: {r.value})", f"damaged: {r.value}")
            assert r.value.count(";") < checks.MAX_PROBLEMS  # at most MAX_PROBLEMS problems kept
    finally:
        conn.close()


def test_database_not_a_sqlite_file_is_damaged(tmp_path):
    path = tmp_path / "text.db"
    path.write_bytes(b"this is not a database, just some text " * 200)
    conn = sqlite3.connect(path)
    try:
        r = checks.database(conn)
    finally:
        conn.close()
    assert r.failed and r.code == "damaged" and "not a database" in r.message


def test_database_locked_is_unreachable_not_damaged(tmp_path):
    path = tmp_path / "locked.db"
    _db(path, rows=10).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: readers are locked out
    reader = sqlite3.connect(path, timeout=0)
    try:
        r = checks.database(reader)
    finally:
        reader.close()
        holder.execute("ROLLBACK")
        holder.close()
    assert r.failed and r.code == "unreachable" and "locked" in r.message


def test_database_over_budget_is_skipped_not_failed(tmp_path):
    conn = _db(tmp_path / "big.db", rows=20_000)  # quick_check runs well past 10,000 VM steps
    try:
        r = checks.database(conn, budget_seconds=-1)  # the deadline has passed before it starts
        assert r.ok and r.code == "skipped" and r.message.startswith("quick_check skipped: over")
        # the progress handler is removed afterwards: the next check runs to the end
        assert checks.database(conn).value == "ok"
    finally:
        conn.close()


def test_health_prelaunch_alerts_and_breaker_agree_on_a_damaged_database(tmp_path):
    path = tmp_path / "bad.db"
    _db(path, rows=500).close()
    _corrupt_index(path)
    conn = sqlite3.connect(path)
    try:
        line = health.check_database(conn, None)
        assert line.status == "FAIL" and line.text.startswith("Database damaged (quick_check: ")
        assert line.text.endswith("; restore it with python backup_database.py --restore FILE")
        cfg = _cfg(tmp_path)
        item = prelaunch.check_integrity(cfg, conn)
        assert (
            not item.ok
            and item.detail.startswith("integrity_check: ")
            and item.detail != "integrity_check: ok"
        )
        with pytest.raises(breakers.BreakerTripped, match="database integrity check failed: ") as trip:
            breakers.check_database(conn)
        assert trip.value.breaker == breakers.DATABASE
        finding = alert_check_database(checks.database(conn), path)
        assert finding is not None and finding.key == "database_corruption"
    finally:
        conn.close()
    healthy = _db(tmp_path / "good.db", rows=5)
    try:
        assert health.check_database(healthy, None).text == "Database accessible"
        assert prelaunch.check_integrity(cfg, healthy).ok
        breakers.check_database(healthy)  # does not trip
        assert alert_check_database(checks.database(healthy)) is None
    finally:
        healthy.close()
    assert prelaunch.check_integrity(cfg, None).detail == f"no database at {cfg.database_path}"
    assert health.check_database(None, "gone").text == "Database not accessible: gone"


def alert_check_database(result, path="the database"):
    from polybot.alerts import check_database

    return check_database(result, path)


# --------------------------------------------------------------------------- exchange API
@pytest.fixture
def client(sim):
    c = PolymarketClient(sim.gamma_url, sim.clob_url, sim.data_url, max_retries=0, timeout=(10.0, 10.0))
    yield c
    c.close()


def test_exchange_api_answers(sim, client):
    r = checks.exchange_api(client.health, url=sim.clob_url, slow_seconds=30)
    assert r.ok and r.code == "" and 0 < r.value < 30 and r.threshold == 30
    assert r.message.startswith("response time: ") and r.message.endswith("ms")


def test_exchange_api_slow_is_a_warning(sim, client):
    sim.sim.set_faults(latency_ms=150)
    r = checks.exchange_api(client.health, url=sim.clob_url, slow_seconds=0.1)
    assert r.status == checks.WARN and r.code == "slow" and r.value >= 0.15
    assert r.message.endswith(", over 100ms")


def test_exchange_api_outage_fails_with_the_url(sim, client):
    sim.sim.set_faults(outage=True)
    r = checks.exchange_api(client.health, url=sim.clob_url, slow_seconds=30)
    assert r.failed and r.code == "unreachable"
    assert r.message.startswith(f"cannot reach {sim.clob_url} (") and r.value in r.message


def test_exchange_api_refused_credentials_is_auth(sim, client):
    sim.sim.set_faults(burst="401:5:0")
    r = checks.exchange_api(client.health, url=sim.clob_url, slow_seconds=30)
    assert r.failed and r.code == "auth", r


def test_health_api_line_renders_the_check(sim, tmp_path):
    cfg = load_config(write_config(tmp_path, sim_urls(sim)), env={})
    line = health.check_api(cfg)
    assert line.status == "OK" and line.text.startswith("API connectivity (response time: ")
    sim.sim.set_faults(outage=True)
    line = health.check_api(cfg)
    assert line.status == "FAIL" and line.text.startswith(f"API connectivity: cannot reach {sim.clob_url} (")


def test_api_latency_boundary():
    assert checks.api_latency(3.0, 3.0).ok  # at the threshold: not slow
    r = checks.api_latency(3.2, 3.0)
    assert r.status == checks.WARN and r.message == "response time: 3200ms, over 3000ms"


# --------------------------------------------------------------------------- freshness
def test_freshness():
    r = checks.freshness("data", 1000, 1600, 600)
    assert r.ok and (r.value, r.threshold) == (600, 600)  # exactly at the limit: fresh
    r = checks.freshness("data", 1000, 1601, 600)
    assert (r.status, r.code, r.value) == (checks.FAIL, "stale", 601)
    r = checks.freshness("trade", 1000, 1601, 600, stale=checks.WARN)
    assert r.status == checks.WARN
    r = checks.freshness("trade", None, 1601, 600, missing=checks.WARN)
    assert (r.status, r.code, r.value) == (checks.WARN, "missing", None)
    assert checks.freshness("data", None, 1601, 600).failed


# --------------------------------------------------------------------------- daily loss
def test_daily_loss_boundary_and_message():
    limit = to_micro(100)
    r = checks.daily_loss(-limit, limit)
    assert r.failed and (r.value, r.threshold) == (-limit, limit)
    assert r.message == "today's P&L -$100.00 is at or below -$100.00"
    assert checks.daily_loss(-limit + 1, limit).ok
    assert checks.daily_loss(to_micro(50), limit).ok


@pytest.mark.parametrize("pnl_usd", ["-250", "-100.000001", "-100", "-99.999999", "-40", "0", "75"])
def test_risk_manager_breaker_and_alert_decide_daily_loss_alike(pnl_usd):
    limit_usd = 100.0
    pnl = to_micro(pnl_usd)
    expected = checks.daily_loss(pnl, to_micro(limit_usd)).failed
    # the risk manager: equity now vs equity at 00:00 UTC
    rm = RiskManager(RiskLimits(daily_loss_limit=limit_usd), to_micro(500))
    start = to_micro(500)
    decision = rm.daily_loss_breached(AccountState(cash_micro=start + pnl, day_start_equity_micro=start))
    assert (decision is not None) == expected
    if decision is not None:
        assert decision.rule == RULE_DAILY_LOSS and not decision.approved
        assert decision.detail.endswith("; no new entries until 00:00 UTC")
    # circuit breaker #2
    if expected:
        with pytest.raises(breakers.BreakerTripped, match="reached the daily loss limit \\$100.00") as t:
            breakers.check_daily_loss(pnl, limit_usd)
        assert t.value.breaker == breakers.DAILY_LOSS
    else:
        breakers.check_daily_loss(pnl, limit_usd)
    # the critical alert
    finding = alert_daily_loss(pnl, limit_usd)
    assert (finding is not None) == expected
    if finding is not None:
        assert finding.key == "daily_loss_limit" and finding.level == "critical"


def test_risk_manager_latches_the_days_low():
    rm = RiskManager(RiskLimits(daily_loss_limit=100.0), to_micro(500))
    start = to_micro(500)
    rebounded = AccountState(
        cash_micro=start - to_micro(20),
        day_start_equity_micro=start,
        day_low_equity_micro=start - to_micro(100),
    )
    d = rm.daily_loss_breached(rebounded)
    assert d is not None and "fell to -$100.00 (now -$20.00)" in d.detail


def test_no_check_touches_the_disk_it_reports_on(tmp_path):
    """The checks only read: a database checked read-only is byte-identical afterwards."""
    path = tmp_path / "ro.db"
    _db(path, rows=50).close()
    before = path.read_bytes()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert checks.database(conn, full=True).ok
    finally:
        conn.close()
    assert path.read_bytes() == before
