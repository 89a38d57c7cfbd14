"""Alert routing, throttling, failure isolation, retries and non-blocking delivery —
real HTTP to the fake Bot API and real SMTP to aiosmtpd, both on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from polybot.alerts import Alerter
from tests.alerts.helpers import (
    CHAT_ID,
    SmtpServer,
    alert_rows,
    email_section,
    free_port,  # noqa: F401
    make_workspace,
    telegram_section,
    wait_until,
)
from tests.conftest import run_python

ROUTES = {
    "critical": ["telegram", "email"],
    "warning": ["telegram"],
    "info": ["email"],
    "throttle_minutes": 15,
}


@pytest.fixture
def alerters():
    made = []

    def make(cfg, **kw):
        a = Alerter(cfg, **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close(timeout=2)


def test_each_level_reaches_exactly_its_channels(tmp_path, fake_tg, smtp, alerters):
    cfg = make_workspace(
        tmp_path, {"telegram": telegram_section(fake_tg), "email": email_section(smtp.port), "alerts": ROUTES}
    )
    a = alerters(cfg)
    a.critical("daily_loss_limit", "Daily loss -$104.20 reached the limit of $100.00.")
    a.warning("drawdown", "Drawdown 16.0% from the equity peak.")
    a.info("daily_summary", "Daily summary 2026-11-24: P&L +$3.20.")
    assert a.flush(30)

    tg = fake_tg.messages(CHAT_ID)
    assert len(tg) == 2
    crit = next(m for m in tg if "daily_loss_limit" in m)
    assert crit.startswith(
        "🚨 CRITICAL · daily_loss_limit\nDaily loss -$104.20 reached the limit of $100.00."
    )
    assert " UTC · polybot paper" in crit
    warn = next(m for m in tg if "drawdown" in m)
    assert warn.startswith("⚠️ WARNING · drawdown\nDrawdown 16.0%")
    assert not any("daily_summary" in m for m in tg)

    assert len(smtp.messages) == 2
    subjects = smtp.subjects()
    assert any("CRITICAL daily_loss_limit" in s for s in subjects)
    assert any("INFO daily_summary" in s for s in subjects)
    assert not any("drawdown" in s for s in subjects)
    body = next(t for t in smtp.texts() if "daily_summary" in t)
    assert "ℹ️ INFO · daily_summary\nDaily summary 2026-11-24: P&L +$3.20." in body
    assert smtp.envelopes[0].rcpt_tos == ["operator@example.com"]

    rows = {r["key"]: r for r in alert_rows(cfg)}
    assert rows["daily_loss_limit"]["channels_json"] == ["log", "telegram", "email"]
    assert rows["daily_loss_limit"]["delivery_json"] == {"log": "sent", "telegram": "sent", "email": "sent"}
    assert rows["drawdown"]["delivery_json"] == {"log": "sent", "telegram": "sent"}
    assert rows["daily_summary"]["delivery_json"] == {"log": "sent", "email": "sent"}
    assert {r["status"] for r in rows.values()} == {"sent"}
    assert rows["drawdown"]["level"] == "warning"


def test_100_identical_alerts_in_a_minute_give_one_message_and_a_summary(tmp_path, fake_tg, alerters):
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "alerts": ROUTES})
    a = alerters(cfg)
    t0 = int(time.time())
    for i in range(100):
        a.warning("api_slow", f"Polymarket API answered in {3.5 + i / 100:.2f} s.", now=t0 + i * 0.59)
    assert a.flush(30)
    assert len(fake_tg.messages()) == 1
    rows = alert_rows(cfg)
    assert [(r["status"], r["repeat_count"]) for r in rows] == [("sent", 1), ("throttled", 99)]
    assert "4.49 s" in rows[1]["message"]  # the latest repeat's numbers are kept

    a.warning("api_slow", "Polymarket API answered in 4.10 s.", now=t0 + 16 * 60)
    assert a.flush(30)
    msgs = fake_tg.messages()
    assert len(msgs) == 2
    assert "Polymarket API answered in 4.10 s." in msgs[1]
    assert "repeated 99 times" in msgs[1]
    rows = alert_rows(cfg)
    assert sum(r["repeat_count"] for r in rows) == 101
    assert rows[-1]["status"] == "sent" and "repeated 99 times" in rows[-1]["message"]


def test_throttling_is_per_key_and_shared_between_alerters(tmp_path, fake_tg, alerters):
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "alerts": ROUTES})
    t0 = int(time.time())
    first, second = alerters(cfg), alerters(cfg)  # e.g. the bot and a cron job
    first.warning("drawdown", "Drawdown 16%", now=t0)
    assert first.flush(30)
    second.warning("drawdown", "Drawdown 17%", now=t0 + 60)
    second.warning("disk_space_low", "1.2 GB free", now=t0 + 60)
    assert second.flush(30)
    msgs = fake_tg.messages()
    assert len(msgs) == 2 and "Drawdown 16%" in msgs[0] and "1.2 GB free" in msgs[1]


def test_a_dead_channel_is_recorded_and_the_other_still_delivers(tmp_path, fake_tg, alerters):
    dead_port = free_port()  # nothing listens there
    cfg = make_workspace(
        tmp_path, {"telegram": telegram_section(fake_tg), "email": email_section(dead_port), "alerts": ROUTES}
    )
    a = alerters(cfg)
    a.critical("emergency_stop", "Emergency stop: EMERGENCY_STOP file found.")
    assert a.flush(30)
    assert len(fake_tg.messages()) == 1
    (row,) = alert_rows(cfg)
    d = row["delivery_json"]
    assert d["telegram"] == "sent"
    assert d["email"].startswith("failed: cannot reach the SMTP server 127.0.0.1:")
    assert row["status"] == "partial"
    assert d["_retry"] == ["email"] and d["_next"] > time.time()


def test_telegram_down_does_not_stop_email(tmp_path, fake_tg, smtp, alerters):
    fake_tg.mode = "down"
    cfg = make_workspace(
        tmp_path, {"telegram": telegram_section(fake_tg), "email": email_section(smtp.port), "alerts": ROUTES}
    )
    a = alerters(cfg)
    a.critical("api_auth_failure", "Polymarket refused the API credentials.")
    assert a.flush(60)
    assert len(smtp.messages) == 1
    (row,) = alert_rows(cfg)
    assert row["delivery_json"]["email"] == "sent"
    assert row["delivery_json"]["telegram"].startswith("failed: network error talking to Telegram")
    assert row["status"] == "partial" and row["delivery_json"]["_retry"] == ["telegram"]


def test_pending_delivery_is_retried_by_a_later_process(tmp_path, fake_tg, alerters):
    port = free_port()
    cfg = make_workspace(
        tmp_path, {"telegram": telegram_section(fake_tg), "email": email_section(port), "alerts": ROUTES}
    )
    a = alerters(cfg)
    a.critical("database_corruption", "Database integrity check failed.")
    assert a.flush(30)
    a.close()
    assert alert_rows(cfg)[0]["status"] == "partial"

    server = SmtpServer(port).start()  # the mail server is back
    try:
        code = (
            "import time; from polybot.config import load_config; from polybot.alerts import Alerter; "
            "a = Alerter(load_config('config.yaml', require_mode_secrets=False)); "
            "print(a.retry_pending(now=time.time() + 3600)); a.close()"
        )
        res = run_python(code, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip().splitlines()[-1] == "1"
        assert len(server.messages) == 1
        assert "Database integrity check failed." in server.texts()[0]
    finally:
        server.stop()
    (row,) = alert_rows(cfg)
    assert row["status"] == "sent"
    assert row["delivery_json"] == {"log": "sent", "telegram": "sent", "email": "sent"}
    assert len(fake_tg.messages()) == 1  # Telegram was not sent twice


def test_send_returns_at_once_while_telegram_hangs(tmp_path, fake_tg, smtp, alerters):
    """Behavioural check of non-blocking: the fake never answers, send() still returns."""
    fake_tg.mode = "hang"
    timeout = 10.0
    cfg = make_workspace(
        tmp_path,
        {
            "telegram": telegram_section(fake_tg, timeout=timeout),
            "email": email_section(smtp.port),
            "alerts": ROUTES,
        },
    )
    a = alerters(cfg)
    slowest = 0.0
    for i in range(20):  # a trade loop alerting every iteration
        start = time.monotonic()
        a.critical(f"position_over_limit_{i}", f"Position {i} above max_position_size.")
        slowest = max(slowest, time.monotonic() - start)
    # a send() that waited on Telegram would return only when the 10 s request timeout expired;
    # any shorter time proves it did not wait (no margin on this machine's speed is assumed)
    assert slowest < timeout, f"send() blocked for {slowest:.2f} s"
    assert fake_tg.wait_for("getMe", 1)  # the worker is stuck on Telegram …
    assert wait_until(lambda: len(smtp.messages) >= 1, 20)  # … and email still went out
    assert not a.flush(0.2)


def test_flood_control_is_honoured(tmp_path, fake_tg, alerters):
    fake_tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", {"retry_after": 7})
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "alerts": ROUTES})
    a = alerters(cfg)
    before = time.time()
    a.warning("drawdown", "Drawdown 16%")
    a.warning("disk_space_low", "1.5 GB free")  # inside the flood-control wait
    assert a.flush(30)
    rows = alert_rows(cfg)
    assert rows[0]["delivery_json"]["telegram"] == "failed: Telegram flood control: retry in 7 s"
    assert rows[0]["delivery_json"]["_next"] >= before + 7
    assert rows[1]["delivery_json"]["telegram"].startswith("failed: deferred by flood control")
    assert len(fake_tg.calls("sendMessage")) == 1  # the second was not attempted
    assert a.retry_pending(now=time.time() + 60) == 2
    assert len(fake_tg.messages()) == 2
    assert [r["status"] for r in alert_rows(cfg)] == ["sent", "sent"]


def test_bad_request_is_permanent(tmp_path, fake_tg, alerters):
    fake_tg.fail_next("sendMessage", 400, "Bad Request: chat not found")
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "alerts": ROUTES})
    a = alerters(cfg)
    a.warning("drawdown", "Drawdown 16%")
    assert a.flush(30)
    (row,) = alert_rows(cfg)
    assert row["status"] == "failed"
    assert "chat not found" in row["delivery_json"]["telegram"].lower()
    assert "_retry" not in row["delivery_json"]
    assert a.retry_pending(now=time.time() + 7200) == 0


def test_long_messages_are_truncated_for_telegram(tmp_path, fake_tg, alerters):
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "alerts": ROUTES})
    a = alerters(cfg)
    a.warning("new_market", "🚀" + "x" * 9000)
    assert a.flush(30)
    (text,) = fake_tg.messages()
    assert len(text.encode("utf-16-le")) // 2 <= 4096
    assert text.endswith("… (truncated)")
    assert alert_rows(cfg)[0]["status"] == "sent"


def test_disabled_channel_is_skipped_not_failed(tmp_path, fake_tg, alerters):
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "alerts": ROUTES})  # email off
    a = alerters(cfg)
    a.critical("emergency_stop", "Emergency stop.")
    assert a.flush(30)
    (row,) = alert_rows(cfg)
    assert row["delivery_json"]["email"] == "skipped: disabled in config.yaml (email.enabled: false)"
    assert row["status"] == "sent"


def test_log_only_routing_and_no_database(tmp_path, fake_tg, alerters, caplog):
    cfg = make_workspace(
        tmp_path,
        {
            "telegram": telegram_section(fake_tg),
            "alerts": {"critical": ["telegram"], "warning": ["log"], "info": []},
        },
        init_db=False,
    )
    a = alerters(cfg)
    with caplog.at_level("INFO", logger="polybot.alerts"):
        a.info("new_market", "2 new markets")
        a.critical("emergency_stop", "Emergency stop.")
        assert a.flush(30)
    assert "ALERT INFO [new_market] 2 new markets" in caplog.text
    assert len(fake_tg.messages()) == 1  # no database, still delivered
    assert not cfg.database_path.exists()


def test_send_never_raises(tmp_path, alerters):
    cfg = make_workspace(tmp_path, {"alerts": ROUTES})
    a = alerters(cfg)
    a.send("bogus-level", "k", "message")  # treated as a warning
    a.send("critical", None, object())  # odd arguments
    conn = sqlite3.connect(str(cfg.database_path))
    conn.execute("DROP TABLE alerts")  # storage broken underneath
    conn.commit()
    conn.close()
    a.critical("database_corruption", "table gone")
    assert a.flush(30)


def test_caller_connection_names_the_database(tmp_path, alerters):
    from polybot.db import connect, initialize

    cfg = make_workspace(tmp_path, {"alerts": {"critical": ["log"]}}, init_db=False)
    other = tmp_path / "elsewhere.db"
    initialize(other)
    conn = connect(other)
    a = alerters(cfg, conn=conn)
    a.critical("emergency_stop", "Emergency stop.")
    assert a.flush(30)
    rows = conn.execute("SELECT key, status, delivery FROM alerts").fetchall()
    assert [(r[0], r[1], json.loads(r[2])) for r in rows] == [("emergency_stop", "logged", {"log": "sent"})]
    conn.close()


def test_a_temporary_alerter_still_delivers_and_its_worker_ends(tmp_path, fake_tg):
    import gc
    import threading

    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "alerts": ROUTES})
    before = {t for t in threading.enumerate() if t.name == "polybot-alerts"}
    Alerter(cfg).critical("database_corruption", "quick_check failed")  # no reference kept
    gc.collect()
    assert wait_until(lambda: len(fake_tg.messages()) == 1, 30)
    assert wait_until(lambda: alert_rows(cfg) and alert_rows(cfg)[0]["status"] == "sent", 30)
    gc.collect()
    assert wait_until(
        lambda: not {t for t in threading.enumerate() if t.name == "polybot-alerts"} - before, 15
    )


def test_close_stores_what_a_hanging_channel_holds_back(tmp_path, fake_tg):
    fake_tg.mode = "hang"
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg, timeout=30), "alerts": ROUTES})
    a = Alerter(cfg)
    for key in ("drawdown", "api_slow", "no_trades"):
        a.warning(key, f"{key} happened")
    assert fake_tg.wait_for("getMe", 1)
    assert a.close(timeout=0.5) is False  # the first one is stuck on Telegram
    rows = {r["key"]: r for r in alert_rows(cfg)}
    assert set(rows) == {"drawdown", "api_slow", "no_trades"}
    assert rows["api_slow"]["status"] == "pending" and rows["api_slow"]["delivery_json"]["_retry"] == [
        "telegram"
    ]
    assert rows["api_slow"]["delivery_json"]["_lease"] == 0  # any process may deliver it now
