"""Issue 15: absurd input and damaged files get one sentence and lose nothing.

Each test fails on 15cb2c7's behaviour: duplicate YAML keys were accepted (the last
won), an empty config.yaml passed validation, non-finite and absurd numbers passed,
a 0-byte database was silently migrated as a new one, and a read-only directory was
diagnosed as corruption with advice to restore over a healthy database.
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from polybot import db
from polybot.config import load_config
from polybot.errors import ConfigError, DatabaseError
from tests.conftest import ROOT, run_cli, write_config
from tests.ops.helpers import init_workspace

CREDS = {
    "POLYMARKET_API_KEY": "k-1234567890",
    "POLYMARKET_API_SECRET": "c2VjcmV0c2VjcmV0",
    "POLYMARKET_API_PASSPHRASE": "pass-phrase-1",
    "POLYMARKET_PRIVATE_KEY": "0x" + "ab" * 32,
}


def _one_sentence(res) -> str:
    assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
    return res.stdout + res.stderr


# ----------------------------------------------------------------------------- config
def test_duplicate_key_is_refused_with_both_line_numbers(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "paper_trading: true\ncapital: 500\nrisk_limits:\n  max_position_size: 100\n"
        "  max_positions: 4\n  max_position_size: 1900\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, require_mode_secrets=False)
    msg = str(err.value)
    assert "max_position_size" in msg and "lines 4 and 6" in msg
    res = run_cli("validate_config.py", cwd=tmp_path)
    assert res.returncode != 0
    assert "lines 4 and 6" in _one_sentence(res)


def test_duplicate_top_level_key_in_live_mode(tmp_path):
    shutil.copy(ROOT / "config.yaml.example", tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text(encoding="utf-8")
    (tmp_path / "config.yaml").write_text(text + "\ncapital: 5000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sets 'capital' twice"):
        load_config(tmp_path / "config.yaml", env=CREDS, require_mode_secrets=False)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n   \n"])
def test_empty_config_is_refused(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    res = run_cli("validate_config.py", cwd=tmp_path)
    assert res.returncode != 0 and "is empty" in _one_sentence(res)
    assert "Required keys present" not in res.stdout


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"capital": float("inf")}, "capital"),
        ({"capital": float("nan")}, "capital"),
        ({"capital": 1e15}, "capital"),
        ({"risk_limits": {"max_position_size": 1e30}}, "risk_limits.max_position_size"),
        ({"risk_limits": {"daily_loss_limit": 1e300}}, "risk_limits.daily_loss_limit"),
        ({"trading": {"loop_interval_seconds": float("-inf")}}, "trading.loop_interval_seconds"),
        ({"collection": {"max_markets": 10**15}}, "collection.max_markets"),
    ],
)
def test_absurd_numbers_are_refused(tmp_path, overrides, key):
    write_config(tmp_path, overrides)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    assert f"'{key}'" in str(err.value)
    res = run_cli("validate_config.py", cwd=tmp_path)
    assert res.returncode != 0 and key in _one_sentence(res)


def test_absurd_capital_refused_in_live_mode_too(tmp_path):
    shutil.copy(ROOT / "config.yaml.example", tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text(encoding="utf-8")
    import re

    text = re.sub(r"(?m)^capital:.*$", "capital: .inf", text)
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="not a finite number"):
        load_config(tmp_path / "config.yaml", env=CREDS)


def test_ordinary_numbers_still_load(tmp_path):
    write_config(tmp_path, {"capital": 1_000_000, "risk_limits": {"max_position_size": 150.5}})
    cfg = load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    assert cfg.capital == 1_000_000 and cfg.risk_limits.max_position_size == 150.5


# ----------------------------------------------------------------------------- database
def test_zero_byte_database_is_not_a_new_database(tmp_path):
    cfg = init_workspace(tmp_path)
    cfg.database_path.write_bytes(b"")  # a crash or a bad copy emptied it
    for suffix in ("-wal", "-shm"):
        (cfg.database_path.parent / (cfg.database_path.name + suffix)).unlink(missing_ok=True)
    with pytest.raises(DatabaseError, match="exists but is empty"):
        db.open_database(cfg)
    assert cfg.database_path.stat().st_size == 0  # nothing migrated into it
    with pytest.raises(DatabaseError, match="0 bytes"):
        db.initialize(cfg.database_path)
    assert cfg.database_path.stat().st_size == 0
    res = run_cli("initialize_db.py", cwd=tmp_path)
    out = _one_sentence(res)
    assert res.returncode != 0 and "0 bytes" in out and "--restore" in out
    assert cfg.database_path.stat().st_size == 0


def test_new_install_still_initializes(tmp_path):
    write_config(tmp_path)
    res = run_cli("initialize_db.py", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    conn = db.open_database(cfg)
    assert "trades" in db.tables(conn)
    conn.close()


@pytest.mark.parametrize("text", ["attempt to write a readonly database", "unable to open database file"])
def test_read_only_is_not_called_corruption(tmp_path, text):
    path = tmp_path / "data" / "polymarket.db"
    path.parent.mkdir()
    path.parent.chmod(0o500)
    try:
        err = db.explain_sqlite_error(path, sqlite3.OperationalError(text), "Cannot open database")
    finally:
        path.parent.chmod(0o700)
    msg = str(err)
    assert "--restore" not in msg and "corrupt" not in msg and "damaged" not in msg.replace("not damaged", "")


def test_damaged_and_full_get_their_own_sentence(tmp_path):
    path = tmp_path / "polymarket.db"
    damaged = str(db.explain_sqlite_error(path, sqlite3.DatabaseError("database disk image is malformed")))
    assert "damaged" in damaged and "--restore" in damaged
    full = str(db.explain_sqlite_error(path, sqlite3.OperationalError("database or disk is full")))
    assert "is full" in full and "--restore" not in full


def test_table_less_sqlite_file_is_not_migrated(tmp_path):
    cfg = init_workspace(tmp_path)
    for suffix in ("", "-wal", "-shm"):
        (cfg.database_path.parent / (cfg.database_path.name + suffix)).unlink(missing_ok=True)
    raw = sqlite3.connect(cfg.database_path)
    raw.executescript("CREATE TABLE x(a); DROP TABLE x;")  # a valid SQLite file with no tables
    raw.close()
    size = cfg.database_path.stat().st_size
    assert size > 0
    with pytest.raises(DatabaseError, match="exists but is empty"):
        db.open_database(cfg)
    conn = sqlite3.connect(cfg.database_path)
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()


def test_validate_config_and_the_bot_accept_the_same_strategies(tmp_path):
    local = {
        "polymarket": {
            "base_url": "http://127.0.0.1:9",
            "gamma_url": "http://127.0.0.1:9",
            "data_url": "http://127.0.0.1:9",
        }
    }
    write_config(tmp_path, {"strategy": {"name": "drill"}, **local})
    res = run_cli("validate_config.py", cwd=tmp_path)
    assert "Strategy drill: parameters valid" in res.stdout, res.stdout + res.stderr
    write_config(tmp_path, {"strategy": {"name": "drill"}})  # real Polymarket hosts
    res = run_cli("validate_config.py", cwd=tmp_path)
    assert res.returncode != 0 and "only runs against the local simulator" in _one_sentence(res)


@pytest.mark.parametrize(
    "var, value, phrase",
    [
        ("POLYMARKET_API_SECRET", "not*base64!", "api_secret' is not the URL-safe base64 secret"),
        (
            "POLYMARKET_API_SECRET",
            "c2VjcmV0c2VjcmV0c",
            "api_secret' is not the URL-safe base64 secret",
        ),  # bad padding
        ("POLYMARKET_PRIVATE_KEY", "0x1234", "private_key' is not a private key"),
        ("POLYMARKET_PRIVATE_KEY", "0x" + "zz" * 32, "private_key' is not a private key"),
        ("POLYMARKET_API_PASSPHRASE", "pass phrase\n", "api_passphrase' contains spaces"),
    ],
)
def test_malformed_credentials_fail_at_validation(tmp_path, var, value, phrase):
    """Issue 15 #9: checked only at live start before ('Unexpected error: Incorrect padding' + a traceback)."""
    shutil.copy(ROOT / "config.yaml.example", tmp_path / "config.yaml")
    env = {**CREDS, var: value}
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config.yaml", env=env, require_mode_secrets=False)
    assert phrase in str(err.value) and value.strip() not in str(err.value)  # never echoed
    res = run_cli("validate_config.py", cwd=tmp_path, env=env)
    out = _one_sentence(res)
    assert res.returncode != 0 and phrase in out and value.strip() not in out


def test_well_formed_credentials_pass(tmp_path):
    shutil.copy(ROOT / "config.yaml.example", tmp_path / "config.yaml")
    cfg = load_config(tmp_path / "config.yaml", env=CREDS, require_mode_secrets=False)
    assert cfg.polymarket.api_secret == CREDS["POLYMARKET_API_SECRET"]
