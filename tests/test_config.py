"""Config loading and validate_config.py, on the real config.yaml.example."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import yaml

from polybot.config import load_config, risk_bound_problems
from polybot.errors import ConfigError
from tests.conftest import ROOT, run_cli, write_config

CREDS = {
    "POLYMARKET_API_KEY": "k-1234567890",
    "POLYMARKET_API_SECRET": "c2VjcmV0c2VjcmV0",
    "POLYMARKET_API_PASSPHRASE": "pass-phrase-1",
    "POLYMARKET_PRIVATE_KEY": "0x" + "ab" * 32,
}


@pytest.fixture
def example(tmp_path):
    shutil.copy(ROOT / "config.yaml.example", tmp_path / "config.yaml")
    (tmp_path / "config.yaml").chmod(0o600)
    return tmp_path


def edit(path, fn):
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))


def test_example_passes_with_env_vars_set(example):
    res = run_cli("validate_config.py", cwd=example, env=CREDS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "✓ Valid YAML" in res.stdout
    assert "✓ All referenced environment variables are set" in res.stdout
    assert "PASS: configuration valid" in res.stdout
    # no secret value is ever printed
    for v in CREDS.values():
        assert v not in res.stdout + res.stderr


def test_unset_env_var_fails_with_sentence(example):
    env = dict(CREDS)
    del env["POLYMARKET_API_SECRET"]
    res = run_cli("validate_config.py", cwd=example, env=env)
    assert res.returncode == 1
    assert (
        "✗ Environment variable POLYMARKET_API_SECRET is not set (used by polymarket.api_secret)"
        in res.stdout
    )
    assert "Traceback" not in res.stderr


def test_typo_key_fails_with_suggestion(example):
    cfg = example / "config.yaml"
    cfg.write_text(cfg.read_text().replace("max_position_size:", "max_postion_size:"))
    res = run_cli("validate_config.py", cwd=example, env=CREDS)
    assert res.returncode == 1
    assert (
        "✗ Unknown config key 'risk_limits.max_postion_size': did you mean 'max_position_size'?" in res.stdout
    )


def test_hardcoded_key_fails(example):
    cfg = example / "config.yaml"
    cfg.write_text(cfg.read_text().replace("api_key: ${POLYMARKET_API_KEY}", "api_key: abcd1234efgh5678"))
    res = run_cli("validate_config.py", cwd=example, env=CREDS)
    assert res.returncode == 1
    assert "✗ Config key 'polymarket.api_key' holds a secret written literally" in res.stdout
    assert "abcd1234efgh5678" not in res.stdout


def test_exposure_out_of_range_fails(example):
    edit(example / "config.yaml", lambda d: d["risk_limits"].update(max_portfolio_exposure=1.5))
    res = run_cli("validate_config.py", cwd=example, env=CREDS)
    assert res.returncode == 1
    assert "✗ Config key 'risk_limits.max_portfolio_exposure' must be between 0 and 1 (got 1.5)" in res.stdout


def test_bad_yaml_and_missing_file(tmp_path):
    (tmp_path / "config.yaml").write_text("risk_limits:\n  max_positions: [1,\n")
    res = run_cli("validate_config.py", cwd=tmp_path)
    assert res.returncode == 1
    assert "is not valid YAML at line" in res.stdout
    res = run_cli("validate_config.py", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert res.returncode == 1
    assert "not found; copy config.yaml.example" in res.stdout


def test_env_expansion_defaults_and_types(tmp_path):
    path = write_config(
        tmp_path,
        {"capital": "${CAP:-750}", "telegram": {"chat_id": "${CHAT}"}, "risk_limits": {"max_positions": "3"}},
    )
    cfg = load_config(path, env={"CHAT": "12345"})
    assert cfg.capital == 750.0
    assert cfg.telegram.chat_id == "12345"
    assert cfg.risk_limits.max_positions == 3
    assert cfg.database_path == tmp_path / "data" / "polymarket.db"
    with pytest.raises(ConfigError, match=r"Config key 'risk_limits.max_positions' must be a whole number"):
        load_config(write_config(tmp_path, {"risk_limits": {"max_positions": "four"}}), env={})


def test_frozen(tmp_path):
    cfg = load_config(write_config(tmp_path), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.capital = 1


def test_live_mode_requires_credentials_and_bounds(tmp_path):
    path = write_config(
        tmp_path, {"paper_trading": False, "polymarket": {"api_key": "${POLYMARKET_API_KEY}"}}
    )
    with pytest.raises(ConfigError, match="Live trading needs polymarket.private_key"):
        load_config(path, env={})
    env = {"K": "key-12345", "S": "c2VjcmV0", "P": "phrase-1", "PK": "0x" + "cd" * 32}
    creds = {"api_key": "${K}", "api_secret": "${S}", "api_passphrase": "${P}", "private_key": "${PK}"}
    path = write_config(
        tmp_path, {"paper_trading": False, "polymarket": creds, "risk_limits": {"max_position_size": 200}}
    )
    with pytest.raises(ConfigError, match="outside the checklist's bounds: risk_limits.max_position_size"):
        load_config(path, env=env)
    # the same limits are only a warning in paper mode
    cfg = load_config(write_config(tmp_path, {"risk_limits": {"max_position_size": 200}}), env={})
    assert risk_bound_problems(cfg)
    # a literal secret is refused in live mode
    bad = dict(creds, api_key="literal-key-123")
    with pytest.raises(ConfigError, match="holds a secret written literally"):
        load_config(write_config(tmp_path, {"paper_trading": False, "polymarket": bad}), env=env)


def test_old_disk_threshold_key_names_its_replacement(example, tmp_path):
    """One set of disk thresholds (health:): the old alerts.thresholds.disk_free_gb is refused
    with one sentence naming the new key, not silently ignored."""
    cfg = example / "config.yaml"
    cfg.write_text(
        cfg.read_text().replace("    no_trades_hours: 4\n", "    no_trades_hours: 4\n    disk_free_gb: 2\n")
    )
    res = run_cli("validate_config.py", cwd=example, env=CREDS)
    assert res.returncode == 1
    assert (
        "✗ Config key 'alerts.thresholds.disk_free_gb' was replaced by 'health.disk_fail_gb' (one set of "
        "disk thresholds, under health:); move its value there and delete 'disk_free_gb' from config.yaml."
        in res.stdout
    )
    assert "Traceback" not in res.stderr
    with pytest.raises(ConfigError, match=r"replaced by 'health\.disk_fail_gb'"):
        load_config(write_config(tmp_path, {"alerts": {"thresholds": {"disk_free_gb": 2}}}), env={})


def test_disk_thresholds_in_order(tmp_path):
    cfg = load_config(write_config(tmp_path, {"health": {"disk_warn_gb": 8, "disk_fail_gb": 3}}), env={})
    assert (cfg.health.disk_warn_gb, cfg.health.disk_fail_gb) == (8, 3)
    with pytest.raises(
        ConfigError, match=r"'health\.disk_fail_gb' \(6\) must not be above health\.disk_warn_gb \(5\)"
    ):
        load_config(write_config(tmp_path, {"health": {"disk_fail_gb": 6}}), env={})
    with pytest.raises(ConfigError, match=r"'health\.disk_fail_gb' must be ≥ 0"):
        load_config(write_config(tmp_path, {"health": {"disk_fail_gb": -1}}), env={})
