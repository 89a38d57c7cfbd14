"""The checklist's operator scripts, run exactly as written (python test_risk_limits.py,
python test_circuit_breakers.py) in an operator workspace: every ✓ line, exit 0, and the
operator's files untouched."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, write_config

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


def _snapshot(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_test_risk_limits_prints_every_check(workspace):
    before = _snapshot(workspace)
    res = run_cli("test_risk_limits.py", cwd=workspace, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    for line in RISK_LINES:
        assert line in lines, res.stdout
    assert "✗" not in res.stdout
    assert _snapshot(workspace) == before  # no database, log or stop file created here


def test_test_risk_limits_uses_the_operators_limits(tmp_path):
    write_config(tmp_path, {"risk_limits": {"max_position_size": 50, "daily_loss_limit": 40}})
    res = run_cli("test_risk_limits.py", cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "max_position=$50" in res.stdout and "≤ max_position_size $50.00" in res.stdout
    assert "daily_loss_limit $40.00" in res.stdout


@pytest.mark.slow  # one of the longest: scheduled first in a parallel run
def test_test_circuit_breakers_prints_all_five(workspace):
    before = _snapshot(workspace)
    res = run_cli("test_circuit_breakers.py", cwd=workspace, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    for line in BREAKER_LINES:
        assert line in lines, res.stdout
    assert "✗" not in res.stdout
    assert not (workspace / "EMERGENCY_STOP").exists()
    assert _snapshot(workspace) == before


def test_scripts_refuse_a_broken_config(tmp_path):
    (tmp_path / "config.yaml").write_text("risk_limits: {max_postion_size: 100}\n", encoding="utf-8")
    for script in ("test_risk_limits.py", "test_circuit_breakers.py"):
        res = run_cli(script, cwd=tmp_path, timeout=120)
        assert res.returncode == 2 and "max_position_size" in res.stderr, res.stderr
