"""Security checks the checklist's emergency-patch procedure runs
(`python -m pytest tests/test_security.py`): no secrets in the tree, secrets masked
in logs and error sentences, owner-only files, literal secrets refused for live."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from polybot.config import load_config
from polybot.errors import ConfigError
from polybot.logs import redact
from polybot.ops.secrets_scan import scan_for_secrets
from tests.conftest import ROOT, run_cli, write_config

TOKEN = "987654321:AAF-real-looking-telegram-token-abcdefgh"


def test_repository_has_no_hardcoded_secrets():
    assert scan_for_secrets(ROOT) == []


def test_secret_scanner_finds_a_planted_secret(tmp_path):
    (tmp_path / "config.yaml").write_text("polymarket:\n  api_key: 4f3c2b1a9e8d7c6b5a\n")
    (tmp_path / "bot.py").write_text('bot_token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"\n')
    found = scan_for_secrets(tmp_path)
    assert any(f.startswith("config.yaml:2") for f in found)
    assert any(f.startswith("bot.py:1") for f in found)


def test_tracked_files_never_include_runtime_data_or_config():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout: cannot list tracked files")
    bad = [
        f
        for f in files
        if f == "config.yaml"
        or f == ".env"
        or f.endswith((".db", ".log"))
        or f.startswith((".venv/", "data/p", "backups/p"))
    ]
    assert bad == []


def test_redaction_of_patterns_and_values():
    assert TOKEN not in redact(f"https://api.telegram.org/bot{TOKEN}/getMe")
    assert redact("api_key=abcd1234efgh") == "api_key=****"
    assert redact('{"passphrase": "hunter2hunter2"}') == '{"passphrase": "****"}'
    assert "sk-****" in redact("key sk-abcdefghijklmnop1234")


def test_error_sentences_are_masked(workspace):
    """An expected error that quotes a secret prints it masked (run_script redacts)."""
    write_config(
        workspace, {"telegram": {"enabled": True, "bot_token": "${TELEGRAM_BOT_TOKEN}", "chat_id": ""}}
    )
    res = run_cli("initialize_db.py", cwd=workspace, env={"TELEGRAM_BOT_TOKEN": TOKEN})
    assert TOKEN not in res.stdout + res.stderr


def test_literal_secret_refused_in_live_mode(tmp_path):
    env = {"S": "c2VjcmV0", "P": "phrase-1", "PK": "0x" + "cd" * 32}
    path = write_config(
        tmp_path,
        {
            "paper_trading": False,
            "polymarket": {
                "api_key": "literal-api-key-1",
                "api_secret": "${S}",
                "api_passphrase": "${P}",
                "private_key": "${PK}",
            },
        },
    )
    with pytest.raises(ConfigError, match="holds a secret written literally"):
        load_config(path, env=env)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_created_owner_only(workspace):
    res = run_cli("initialize_db.py", cwd=workspace)
    assert res.returncode == 0, res.stderr
    db = workspace / "data" / "polymarket.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for log in (workspace / "logs").glob("*.log"):
        assert stat.S_IMODE(log.stat().st_mode) & 0o037 == 0  # 640 at most
