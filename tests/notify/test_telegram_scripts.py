"""The checklist's Telegram commands, run as an operator would (subprocesses in a workspace
whose config.yaml points telegram.base_url at the fake Bot API)."""

from __future__ import annotations

import httpx

from tests.alerts.helpers import (
    CHAT_ID,
    TOKEN,
    alert_rows,
    email_section,
    free_port,  # noqa: F401
    make_workspace,
    telegram_section,
)
from tests.conftest import run_cli, run_python, write_config

ONE_LINER = (
    "from telegram_notifier import send_notification; "
    "send_notification('🚀 Production deployment test - ignore')"
)


def run_py(code: str, cwd, env=None):
    """``python -c "<code>"`` in ``cwd``, in process (see conftest.run_python)."""
    return run_python(code, cwd=cwd, env=env)


def test_checklist_one_liner_delivers(tmp_path, fake_tg):
    write_config(tmp_path, {"telegram": telegram_section(fake_tg, token_var=True)})
    res = run_py(ONE_LINER, tmp_path, env={"TELEGRAM_BOT_TOKEN": TOKEN})
    assert res.returncode == 0, res.stderr
    (text,) = fake_tg.messages(CHAT_ID)
    assert text.startswith("ℹ️ INFO\n🚀 Production deployment test - ignore\n🕒 ")
    assert text.rstrip().endswith("UTC · polybot paper")
    assert f"✓ Sent to Telegram chat {CHAT_ID}." in res.stdout
    assert all(r.token == TOKEN for r in fake_tg.requests)
    assert [r.method for r in fake_tg.requests] == ["getMe", "sendMessage"]


def test_one_liner_returns_true_and_honours_polybot_config(tmp_path, fake_tg):
    cfg_dir = tmp_path / "conf"
    cfg_dir.mkdir()
    write_config(cfg_dir, {"telegram": telegram_section(fake_tg)})
    code = "from telegram_notifier import send_notification; print(send_notification('hi', level='warning'))"
    res = run_py(code, tmp_path, env={"POLYBOT_CONFIG": str(cfg_dir / "config.yaml")})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "True"
    assert fake_tg.messages()[0].startswith("⚠️ WARNING\nhi\n")


def test_one_liner_when_telegram_is_disabled(tmp_path, fake_tg):
    write_config(tmp_path, {"telegram": {"enabled": False, "base_url": fake_tg.base_url}})
    code = ONE_LINER.replace("send_notification(", "print(send_notification(") + ")"
    res = run_py(code, tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "Telegram is disabled in config.yaml (telegram.enabled: false); nothing was sent.",
        "False",
    ]
    assert fake_tg.requests == []


def test_one_liner_explains_a_missing_token_and_a_down_server(tmp_path, fake_tg):
    write_config(tmp_path, {"telegram": telegram_section(fake_tg, token_var=True)})
    res = run_py(ONE_LINER, tmp_path)
    assert "telegram.bot_token is not set; export TELEGRAM_BOT_TOKEN" in res.stdout
    fake_tg.mode = "down"
    res = run_py(ONE_LINER, tmp_path, env={"TELEGRAM_BOT_TOKEN": TOKEN})
    assert res.returncode == 0
    assert "✗ Not sent: network error talking to Telegram" in res.stdout
    assert "Traceback" not in res.stderr


def test_telegram_notifier_as_a_script(tmp_path, fake_tg):
    write_config(tmp_path, {"telegram": telegram_section(fake_tg)})
    res = run_cli("telegram_notifier.py", "Backup finished", "--level", "info", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Backup finished" in fake_tg.messages()[0]


def test_checklist_curl_getme_works_on_the_fake(fake_tg):
    """The checklist's `curl …/bot$TOKEN/getMe` (GET) answers JSON with the bot's username and id."""
    body = httpx.get(f"{fake_tg.base_url}{TOKEN}/getMe").json()
    assert body["ok"] and body["result"]["username"] and body["result"]["id"]


def test_get_chat_id_without_messages(tmp_path, fake_tg):
    write_config(tmp_path, {"telegram": {"enabled": False, "bot_token": TOKEN, "base_url": fake_tg.base_url}})
    res = run_cli("get_telegram_chat_id.py", cwd=tmp_path)
    assert res.returncode == 1
    assert "Send any message to your bot in Telegram, then run this again." in res.stdout
    assert "@polybot_test_bot" in res.stdout


def test_get_chat_id_prints_the_chats(tmp_path, fake_tg):
    write_config(
        tmp_path,
        {"telegram": {"enabled": False, "bot_token": "${TELEGRAM_BOT_TOKEN}", "base_url": fake_tg.base_url}},
    )
    fake_tg.add_message(5550001, "hello", first_name="Alice", username="alice")
    fake_tg.add_message(-100200300, "/start", chat_type="supergroup", title="Trading desk")
    res = run_cli("get_telegram_chat_id.py", cwd=tmp_path, env={"TELEGRAM_BOT_TOKEN": TOKEN})
    assert res.returncode == 0, res.stderr
    assert "chat_id 5550001  (private chat with Alice (@alice))" in res.stdout
    assert "chat_id -100200300  (supergroup Trading desk)" in res.stdout
    assert 'chat_id: "5550001"' in res.stdout
    assert "offset" not in fake_tg.calls("getUpdates")[0].params  # updates are not consumed


def test_get_chat_id_without_token(tmp_path):
    write_config(tmp_path, {"telegram": {"bot_token": "${TELEGRAM_BOT_TOKEN}"}})
    res = run_cli("get_telegram_chat_id.py", cwd=tmp_path)
    assert res.returncode == 1
    assert "telegram.bot_token is not set; export TELEGRAM_BOT_TOKEN" in res.stdout


def test_test_alerts_reaches_every_channel(tmp_path, fake_tg, smtp):
    cfg = make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "email": email_section(smtp.port)})
    res = run_cli("test_alerts.py", "--level", "critical", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert any(ln.startswith("✓ log") for ln in lines)
    assert any(ln.startswith("✓ telegram") for ln in lines)
    assert any(ln.startswith("✓ email") for ln in lines)
    (text,) = fake_tg.messages(CHAT_ID)
    assert text.startswith("🚨 CRITICAL · test_alert\n[TEST] This is a test critical alert")
    assert smtp.subjects()[0].startswith("[polybot] 🚨 CRITICAL test_alert: [TEST]")
    (row,) = alert_rows(cfg)
    assert (row["key"], row["level"], row["status"]) == ("test_alert", "critical", "sent")

    res = run_cli("test_alerts.py", "--level", "warning", cwd=tmp_path)  # warning → telegram only
    assert res.returncode == 0
    assert "email" not in res.stdout.split("\n", 1)[1]
    assert len(fake_tg.messages()) == 2 and len(smtp.messages) == 1


def test_test_alerts_reports_a_failing_channel(tmp_path, fake_tg):
    make_workspace(tmp_path, {"telegram": telegram_section(fake_tg), "email": email_section(free_port())})
    res = run_cli("test_alerts.py", "--level", "critical", cwd=tmp_path)
    assert res.returncode == 1
    assert any(ln.startswith("✓ telegram") for ln in res.stdout.splitlines())
    assert any(ln.startswith("✗ email: cannot reach the SMTP server") for ln in res.stdout.splitlines())


def test_test_alerts_flags_a_routed_but_disabled_channel(tmp_path):
    make_workspace(tmp_path, {})
    res = run_cli("test_alerts.py", "--level", "critical", cwd=tmp_path)
    assert res.returncode == 1
    assert (
        "✗ telegram: disabled in config.yaml (telegram.enabled: false), yet alerts.critical routes to it; "
        "enable it or remove telegram from alerts.critical"
    ) in res.stdout
