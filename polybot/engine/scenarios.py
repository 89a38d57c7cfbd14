"""Plumbing for the operator's scenario scripts (test_risk_limits.py, test_circuit_breakers.py).

Every scenario runs in its own temporary workspace (config.yaml, database, logs) against
the bundled simulator started in this process on a free 127.0.0.1 port — never the
operator's database, never Polymarket, never a real alert channel (alerts go to the
workspace's log only). The risk limits, capital and breaker settings are copied from the
operator's config.yaml when there is one, so the scenarios check the limits that will
really be used.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from polybot import db
from polybot.commands import child_argv, child_env
from polybot.config import Config, default_config, find_config_path, load_config

SCRUB_PREFIXES = ("POLY", "TELEGRAM", "SMTP", "DASHBOARD")


class ScenarioFailed(Exception):
    pass


def operator_config(path: str | None) -> tuple[Config, str]:
    """The operator's config (for its limits), or the defaults when there is none."""
    cfg_path = find_config_path(path)
    if not path and not Path(cfg_path).exists():
        return default_config(Path.cwd()), "the defaults (no config.yaml here)"
    return load_config(cfg_path, require_mode_secrets=False), str(cfg_path)


def limits_dict(cfg: Config) -> dict[str, Any]:
    r = dataclasses.asdict(cfg.risk_limits)
    r["ramp_up"] = [dict(s) for s in r["ramp_up"]]
    return r


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Scenarios:
    """One simulator, one temporary directory; a fresh workspace per scenario."""

    def __init__(
        self, base: Config, *, speed: float, n_markets: int = 24, seed: int = 42, keep: bool = False
    ):
        from polybot.sim.server import start_simulator

        self.base = base
        self.keep = keep
        self.dir = Path(tempfile.mkdtemp(prefix="polybot_scenarios_"))
        self.sim = start_simulator(port=0, seed=seed, n_markets=n_markets, speed=speed)
        self.failed = False

    def close(self) -> None:
        self.sim.stop()
        if not (self.keep or self.failed):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Scenarios:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ workspaces
    def workspace(self, name: str, overrides: dict[str, Any] | None = None) -> tuple[Path, Config]:
        root = self.dir / name
        root.mkdir(parents=True)
        h = self.sim
        data = {
            "paper_trading": True,
            "capital": self.base.capital,
            "log_level": "INFO",
            "database_path": "data/polymarket.db",
            "risk_limits": limits_dict(self.base),
            "trading": {
                "loop_interval_seconds": 0.2,
                "quick_check_interval_minutes": 0.02,
                "max_consecutive_api_errors": self.base.trading.max_consecutive_api_errors,
                "order_type": "FAK",
                "use_exchange_heartbeat": False,
            },
            "polymarket": {
                "base_url": h.clob_url,
                "gamma_url": h.gamma_url,
                "data_url": h.data_url,
                "timeout_seconds": 2,
                "max_retries": 1,
            },
            # max_entry_cost: pick books the risk manager's entry_cost rule accepts (the breaker
            # scenarios test breakers, not that rule), as the risk scenarios do.
            "strategy": {
                "name": "drill",
                "params": {
                    "size_usd": 20,
                    "max_holdings": 2,
                    "hold_seconds": 3000,
                    "max_entry_cost": 0.9
                    * self.base.risk_limits.stop_loss_percent
                    * self.base.risk_limits.max_entry_cost_share_of_stop,
                },
            },
            "collection": {"min_volume_24h": 0, "min_liquidity": 0, "max_markets": 16},
            "telegram": {"enabled": False},
            "email": {"enabled": False},
            "alerts": {"critical": ["log"], "warning": ["log"], "info": ["log"]},
        }
        data = merge(data, overrides or {})
        (root / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        cfg = load_config(root / "config.yaml", require_mode_secrets=False)
        from polybot.collect.cycle import seed_universe

        res = seed_universe(cfg)
        if not res.markets:
            raise ScenarioFailed(f"the simulator listed no markets ({res.failure})")
        return root, cfg

    # ------------------------------------------------------------------ the bot as a process
    @staticmethod
    def env() -> dict[str, Any]:
        env = child_env({k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES)})
        env["PYTHONIOENCODING"] = "utf-8"
        return env

    def start_bot(self, root: Path, *args: str) -> subprocess.Popen:
        # not a with-block: the bot process writes to it after this call returns
        out = open(root / "bot.out", "a", encoding="utf-8")  # noqa: SIM115
        return subprocess.Popen(
            child_argv("trade", *args),  # = python trading_bot.py ARGS
            cwd=root,
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def run_bot(self, root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            child_argv("trade", *args),  # = python trading_bot.py ARGS
            cwd=root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def query(cfg: Config, sql: str, *args) -> list:
    conn = db.connect(cfg.database_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    raise ScenarioFailed(f"timed out after {timeout:g} s waiting for {what}")


def report(ok: bool, line: str, detail: str = "") -> None:
    print(f"{'✓' if ok else '✗'} {line}", flush=True)
    if detail:
        print(f"    {detail}", flush=True)
