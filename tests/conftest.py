"""Shared fixtures: an isolated environment, temporary workspaces with a real
config.yaml and SQLite file, the local Polymarket simulator on a free port, and a
helper to run the operator's top-level scripts as real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from polybot.commands import prepare_process

prepare_process()  # what every command does first (one BLAS thread) — the in-process tests too
ROOT = Path(__file__).resolve().parent.parent
# Real Polymarket payloads (copied from shared/polymarket/samples so any clone can run the tests).
SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "polymarket_samples"
SHARED_SAMPLES_DIR = ROOT.parent / "shared" / "polymarket" / "samples"
SECRET_ENV_PREFIXES = ("POLY", "TELEGRAM", "SMTP", "DASHBOARD")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    """No developer credential or config path may leak into a test."""
    for name in list(os.environ):
        if name.startswith(SECRET_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    yield


def write_config(root: Path, overrides: dict | None = None, *, base: dict | None = None) -> Path:
    """Write ``root/config.yaml``: defaults suitable for tests, deep-merged with ``overrides``."""
    data = (
        base
        if base is not None
        else {
            "paper_trading": True,
            "capital": 500,
            "log_level": "INFO",
            "database_path": "data/polymarket.db",
        }
    )

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    data = merge(data, overrides or {})
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def workspace(tmp_path):
    """A temporary operator workspace with a config.yaml (paper mode)."""
    write_config(tmp_path)
    return tmp_path


def run_cli(
    script: str,
    *args: str,
    cwd: Path,
    env: dict | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a top-level script (``python <script> args``) in ``cwd`` like an operator would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIXES)}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env["PYTHONIOENCODING"] = "utf-8"
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture
def sim():
    """The local Polymarket-compatible simulator on a free port (manual clock)."""
    from polybot.sim.server import start_simulator

    handle = start_simulator(port=0, seed=42, n_markets=60, speed=0.0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def reader(sim):
    """The read client (Gamma, CLOB, Data API) pointed at the ``sim`` fixture."""
    from polybot.exchange.client import PolymarketClient

    c = PolymarketClient(sim.gamma_url, sim.clob_url, sim.data_url, max_retries=2)
    yield c
    c.close()


def sim_urls(handle) -> dict:
    """Config overrides pointing every base URL at a running simulator."""
    return {
        "polymarket": {
            "base_url": handle.clob_url,
            "gamma_url": handle.gamma_url,
            "data_url": handle.data_url,
            "timeout_seconds": 5,
            "max_retries": 3,
        }
    }
