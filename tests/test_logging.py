"""The checklist's logging one-liner and secret masking through the real logging stack."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import UTC, datetime

from tests.conftest import ROOT, run_python, write_config

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
API_KEY = "0f9c2a4b-secret-api-key-value"


def run_py(code: str, cwd, env=None):
    """A real ``python -c`` (the checklist's one-liner starts a fresh interpreter)."""
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith(("POLY", "TELEGRAM"))}
    e.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=e, capture_output=True, text=True)


def test_checklist_one_liner_writes_dated_log(workspace):
    res = run_py(
        "from logger import setup_logger; logger = setup_logger(); "
        "logger.info('Production deployment test'); logger.error('Test error message')",
        workspace,
    )
    assert res.returncode == 0, res.stderr
    day = datetime.now(UTC).strftime("%Y%m%d")
    log = workspace / "logs" / f"trading_system_{day}.log"
    text = log.read_text()
    assert "[INFO] polybot: Production deployment test" in text
    assert "[ERROR] polybot: Test error message" in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    assert stat.S_IMODE((workspace / "logs").stat().st_mode) == 0o700


def test_secrets_are_masked_everywhere(workspace):
    write_config(
        workspace,
        {
            "telegram": {"bot_token": "${TELEGRAM_BOT_TOKEN}"},
            "polymarket": {"api_key": "${POLYMARKET_API_KEY}"},
        },
    )
    code = f"""
import logging
from logger import setup_logger
log = setup_logger()
logging.getLogger('httpx').warning('HTTP Request: POST https://api.telegram.org/bot{TOKEN}/sendMessage "HTTP/1.1 200 OK"')
logging.getLogger('some.child').error('key is %s', '{API_KEY}')
log.info('headers POLY_API_KEY: {API_KEY}')
try:
    raise ValueError('The token `{TOKEN}` was rejected by the server.')
except ValueError:
    log.exception('telegram failed')
"""
    res = run_python(code, cwd=workspace, env={"TELEGRAM_BOT_TOKEN": TOKEN, "POLYMARKET_API_KEY": API_KEY})
    assert res.returncode == 0, res.stderr
    day = datetime.now(UTC).strftime("%Y%m%d")
    text = (workspace / "logs" / f"trading_system_{day}.log").read_text()
    combined = text + res.stderr
    assert TOKEN not in combined and TOKEN.split(":")[1] not in combined
    assert API_KEY not in combined
    assert "bot****/sendMessage" in text
    assert "Traceback" in text  # the traceback is kept, just masked
    assert text.count("****") >= 4


def test_old_logs_pruned(tmp_path):
    from polybot.logs import prune_logs

    (tmp_path / "trading_system_20200101.log").write_text("old")
    keep = tmp_path / f"trading_system_{datetime.now(UTC):%Y%m%d}.log"
    keep.write_text("new")
    removed = prune_logs(tmp_path, 90)
    assert [p.name for p in removed] == ["trading_system_20200101.log"]
    assert keep.exists()
