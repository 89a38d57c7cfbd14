"""The top-level scripts as real processes: the few things an in-process run cannot show.

Every other test runs a command in process (``run_cli`` in tests/conftest.py: the same shim,
parser, ``run_script`` and exit code, without the interpreter start-up). Here, one real
``python <script>.py`` per script proves the shim itself starts from a plain checkout (its
imports, ``PYTHONPATH`` = the checkout, ``--help`` exits 0); and two real runs show that the
process's exit status is the one ``run_script`` chose, with one sentence and no traceback, for
bad arguments (argparse, exit 2) and for a bad workspace (exit 1).

Signals, locks held by another process and kill -9 are tested where they matter, with real
processes: tests/engine/ (the bot), tests/ops/ (scheduler, backup, maintenance), tests/collect/.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, run_cli_process

SCRIPTS = sorted(p.name for p in ROOT.glob("*.py") if 'if __name__ == "__main__":' in p.read_text("utf-8"))


def test_every_operator_script_is_here():
    assert len(SCRIPTS) >= 25, SCRIPTS
    assert {"trading_bot.py", "backup_database.py", "collect_market_data.py", "backtest.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_starts_and_prints_its_help(tmp_path, script):
    res = run_cli_process(script, "--help", cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("usage: " + script), res.stdout[:300]
    assert res.stderr == "", res.stderr
    assert list(tmp_path.iterdir()) == [], "--help must not create files"


def test_bad_argument_exit_status_2_and_one_usage_error(tmp_path):
    res = run_cli_process("backup_database.py", "--no-such-option", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.splitlines()[-1].startswith("backup_database.py: error: unrecognized arguments")


def test_bad_workspace_exit_status_1_and_one_sentence(tmp_path):
    res = run_cli_process("initialize_db.py", cwd=tmp_path)  # no config.yaml here
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "config" in lines[0].lower(), lines
