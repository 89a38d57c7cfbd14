"""The one-command demo: the operator's whole journey on the bundled simulator.

``python demo.py`` (or ``make demo``) works in ``demo_workspace/`` — never the
operator's real ``data/`` — and walks the deployment checklist: it starts the
simulator with an accelerated clock, validates the config, initializes the
database, backfills 30 days, runs collection cycles and the data quality check,
the 7-day correlation analysis and heatmap, the 30-day backtest, paper-trades for
a while, drills the emergency stop, and runs the health check, reports, backup and
audit. Each step prints the command an operator would type, so the demo teaches
the checklist. Every process it starts is stopped on success, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polybot.commands import child_argv, child_env, for_script
from polybot.config import example_config_text
from polybot.timefmt import iso_seconds, utc_day

BOLD = "\033[1m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""


@dataclass
class StepResult:
    title: str
    command: str
    code: int
    seconds: float
    expected_codes: tuple[int, ...] = (0,)
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.code in self.expected_codes


@dataclass
class Demo:
    workspace: Path
    speed: float = 600.0
    markets: int = 60
    paper_seconds: float = 60.0
    results: list[StepResult] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    sim_url: str | None = None

    # ------------------------------------------------------------------ plumbing
    def env(self) -> dict[str, Any]:
        env = child_env(
            {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("POLY", "TELEGRAM", "SMTP", "DASHBOARD"))
            }
        )
        env["PYTHONIOENCODING"] = "utf-8"
        env.pop("POLYBOT_CONFIG", None)
        return env

    def say(self, text: str) -> None:
        print(text, flush=True)

    def run(
        self, title: str, *args: str, expect: tuple[int, ...] = (0,), timeout: float = 300, show: int = 40
    ) -> StepResult:
        command = "python " + " ".join(args)
        self.say(f"\n{BOLD}== {title}{RESET}\n$ {command}")
        start = time.monotonic()
        proc = subprocess.run(
            child_argv(for_script(args[0]).name, *args[1:]),  # = python SCRIPT ARGS
            cwd=self.workspace,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = (proc.stdout + proc.stderr).rstrip()
        lines = out.splitlines()
        for line in lines[-show:] if len(lines) > show else lines:
            self.say("  " + line)
        res = StepResult(title, command, proc.returncode, time.monotonic() - start, expect, out)
        mark = "✓" if res.ok else "✗"
        self.say(f"  {mark} exit {proc.returncode} in {res.seconds:.1f} s")
        self.results.append(res)
        if not res.ok:
            raise DemoFailed(f"step '{title}' exited {proc.returncode}")
        return res

    def start_background(self, *args: str, log_name: str) -> subprocess.Popen:
        # not a with-block: the background process writes to it after this call returns
        log = open(self.workspace / "logs" / log_name, "w", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=self.workspace,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=(os.name == "posix"),
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.terminate()
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
                except OSError:
                    pass

    # ------------------------------------------------------------------ steps
    def prepare_workspace(self) -> None:
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        for sub in ("logs",):
            (self.workspace / sub).mkdir(parents=True, exist_ok=True)

    def start_simulator(self) -> None:
        port_file = self.workspace / "simulator.port"
        now = time.time()
        self.say(f"{BOLD}== Start the local Polymarket simulator (accelerated clock ×{self.speed:g}){RESET}")
        self.say(f"$ python -m polybot.sim --port 0 --speed {self.speed:g} --markets {self.markets}")
        self.start_background(
            "-m",
            "polybot.sim",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--speed",
            str(self.speed),
            "--markets",
            str(self.markets),
            "--start-time",
            iso_seconds(now),
            log_name="simulator.log",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                self.sim_url = f"http://127.0.0.1:{int(port_file.read_text().strip())}"
                break
            if self.procs[-1].poll() is not None:
                raise DemoFailed("the simulator exited at start; see demo_workspace/logs/simulator.log")
            time.sleep(0.1)
        else:
            raise DemoFailed("the simulator did not start within 30 s")
        self.say(f"  ✓ simulator at {self.sim_url}")

    def write_config(self) -> None:
        data = yaml.safe_load(example_config_text())  # = the project's config.yaml.example
        data["polymarket"] = {
            "signature_type": 2,
            "chain_id": 137,
            "base_url": f"{self.sim_url}/clob",
            "gamma_url": f"{self.sim_url}/gamma",
            "data_url": f"{self.sim_url}/data",
            "timeout_seconds": 5,
            "max_retries": 3,
        }
        data["collection"].update(min_volume_24h=0, min_liquidity=0, max_markets=40)
        data["trading"]["loop_interval_seconds"] = 2
        data["telegram"] = {"enabled": False}
        data["email"] = {"enabled": False}
        data["alerts"].update(critical=["log"], warning=["log"], info=["log"])
        data["dashboard"] = {"host": "127.0.0.1", "port": 5000}
        path = self.workspace / "config.yaml"
        path.write_text(
            "# Demo configuration: every base URL points at the local simulator.\n"
            + yaml.safe_dump(data, sort_keys=False),
            encoding="utf-8",
        )
        os.chmod(path, 0o600)
        self.say(
            f"\n{BOLD}== Configuration{RESET}\n$ cp config.yaml.example config.yaml   "
            f"(demo: base URLs → simulator, no credentials)"
        )

    def key_figures(self) -> list[str]:
        """The numbers an operator looks at first, read from the demo's database and reports."""
        import sqlite3

        out = []
        dbfile = self.workspace / "data" / "polymarket.db"
        if dbfile.exists():
            conn = sqlite3.connect(f"file:{dbfile}?mode=ro", uri=True)
            try:
                q = lambda sql: conn.execute(sql).fetchone()  # noqa: E731
                markets = q("SELECT COUNT(*), SUM(tracked) FROM markets")
                snaps = q("SELECT SUM(source='collected'), SUM(source='backfill') FROM snapshot_values")
                out.append(
                    f"Markets: {markets[0]} known, {markets[1] or 0} tracked; snapshots: "
                    f"{snaps[0] or 0:,} collected + {snaps[1] or 0:,} backfilled"
                )
                trades = q("SELECT COUNT(*), COALESCE(SUM(fee_micro),0) FROM trades WHERE mode='paper'")
                perf = q(
                    "SELECT equity_micro, cash_micro, open_positions FROM performance WHERE mode='paper' "
                    "ORDER BY id DESC LIMIT 1"
                )
                line = f"Paper trading: {trades[0]} fills, fees ${trades[1] / 1e6:,.2f}"
                if perf:
                    line += (
                        f"; equity ${perf[0] / 1e6:,.2f} (P&L {perf[0] / 1e6 - 500:+,.2f}), "
                        f"{perf[2]} open position(s) after the emergency stop"
                    )
                out.append(line)
                alerts = conn.execute("SELECT level, COUNT(*) FROM alerts GROUP BY level").fetchall()
                out.append("Alerts recorded: " + (", ".join(f"{n} {lvl}" for lvl, n in alerts) or "none"))
            except sqlite3.Error as exc:
                out.append(f"(could not read the database: {exc})")
            finally:
                conn.close()
        report = self.workspace / "reports" / "backtest_30day.json"
        if report.exists():
            try:
                m = json.loads(report.read_text(encoding="utf-8")).get("metrics", {})
                sharpe = m.get("sharpe_ratio")
                out.append(
                    f"Backtest (30 days): {m.get('total_trades')} trades, win rate "
                    f"{100 * (m.get('win_rate') or 0):.1f}%, Sharpe "
                    f"{'n/a' if sharpe is None else format(sharpe, '.2f')}, max drawdown "
                    f"{100 * (m.get('max_drawdown') or 0):.1f}%, final capital "
                    f"${m.get('final_capital') or 0:,.2f} → {m.get('verdict')}"
                )
            except (ValueError, TypeError, AttributeError) as exc:
                out.append(f"(backtest report unreadable: {exc})")
        return out

    def summary(self, started: float) -> None:
        self.say(f"\n{BOLD}== Summary{RESET}")
        for line in self.key_figures():
            self.say(f"  {line}")
        for r in self.results:
            self.say(f"  {'✓' if r.ok else '✗'} {r.title:<45} {r.seconds:6.1f} s   {r.command}")
        reports = (
            sorted(p for p in (self.workspace / "reports").glob("*") if p.is_file())
            if (self.workspace / "reports").exists()
            else []
        )
        if reports:
            self.say("  Reports and plots:")
            for p in reports:
                self.say(
                    f"    {p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p}  ({p.stat().st_size:,} bytes)"
                )
        self.say(f"  Total time: {time.monotonic() - started:.0f} s; workspace: {self.workspace}")


class DemoFailed(Exception):
    pass


def main(args: argparse.Namespace) -> int:
    demo = Demo(
        Path(args.workspace).resolve(),
        speed=args.speed,
        markets=args.markets,
        paper_seconds=args.paper_seconds,
    )
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        demo.prepare_workspace()
        demo.start_simulator()
        demo.write_config()
        for step in STEPS:
            step(demo)
        demo.summary(started)
        print("\nDemo complete: every step passed.")
        return 0
    except DemoFailed as exc:
        demo.summary(started)
        print(f"\nDemo FAILED: {exc}. Logs are in {demo.workspace / 'logs'}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nDemo interrupted; stopping the processes it started.", file=sys.stderr)
        return 130
    finally:
        demo.stop_all()
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------- the journey
def _sim_time(d: Demo) -> int:
    import requests

    return int(requests.get(f"{d.sim_url}/clob/time", timeout=5).json())


def _advance_to_next_cycle(d: Demo, interval: int = 300) -> None:
    """Move the simulator clock just past the next 5-minute boundary, so consecutive
    collection cycles land on consecutive grid points (what cron does in real time)."""
    import requests

    now = _sim_time(d)
    target = (now // interval + 1) * interval + 5
    requests.post(f"{d.sim_url}/_sim/advance", json={"seconds": target - now}, timeout=5).raise_for_status()


def step_setup(d: Demo) -> None:
    d.run("Validate the configuration", "validate_config.py")
    d.run("Initialize the database", "initialize_db.py")
    d.run("Test API connectivity", "test_api_connectivity.py")


def _set_speed(d: Demo, speed: float) -> None:
    import requests

    requests.post(f"{d.sim_url}/_sim/speed", json={"speed": speed}, timeout=5).raise_for_status()


def step_collect(d: Demo) -> None:
    # While collecting, the demo drives the simulator clock itself (cron's job in real life):
    # one cycle per 5-minute grid point, so the verification sees no gaps.
    _set_speed(d, 0)
    d.run("Initial data collection", "collect_market_data.py", "--initial", show=25)
    d.run("Backfill 30 days of price history", "collect_market_data.py", "--backfill", "--days", "30")
    for i in range(3):
        _advance_to_next_cycle(d)
        d.run(f"Collection cycle {i + 1} (cron runs this every 5 minutes)", "collect_market_data.py")
    d.run("Verify data collection", "verify_data_collection.py", "--hours", "1")
    d.run("Data quality check", "data_quality_check.py")
    d.run("Estimate storage growth", "collect_market_data.py", "--estimate-storage")


def step_validate(d: Demo) -> None:
    d.run("7-day correlation analysis", "correlation_analysis.py", "--days", "7", show=30)
    d.run(
        "Correlation heatmap",
        "plot_correlations.py",
        "--days",
        "7",
        "--output",
        "reports/correlation_heatmap_7day.png",
    )
    end_ts = _sim_time(d)
    end = utc_day(end_ts)
    start = utc_day(end_ts - 29 * 86_400)  # 30 days inclusive → reports/backtest_30day.json
    # The verdict is what it is: FAIL (exit 1) or INSUFFICIENT_DATA (exit 6: too few trades or too
    # little data to judge) are valid, honest outcomes for a demo strategy.
    d.run(
        "30-day backtest",
        "backtest.py",
        "--start-date",
        start,
        "--end-date",
        end,
        "--capital",
        "500",
        "--no-progress",
        expect=(0, 1, 6),
        show=40,
    )


def step_paper(d: Demo) -> None:
    _set_speed(d, d.speed)
    d.say(
        f"\n{BOLD}== Paper trading for {d.paper_seconds:.0f} s (simulator clock ×{d.speed:g}){RESET}\n"
        f"$ python trading_bot.py --paper-trading"
    )
    bot = d.start_background(
        *child_argv("trade")[1:],  # = python trading_bot.py
        "--paper-trading",
        "--max-runtime",
        str(int(d.paper_seconds * 3)),
        log_name="trading_bot.out",
    )
    time.sleep(min(15.0, d.paper_seconds / 3))
    if bot.poll() is not None:
        raise DemoFailed(f"the paper bot exited early with {bot.returncode}; see demo_workspace/logs")
    d.run("Health check while the bot runs", "health_check.py", "--no-alert", expect=(0, 1))
    time.sleep(max(0.0, d.paper_seconds - 15.0))
    d.say(f"\n{BOLD}== Emergency stop drill{RESET}\n$ touch EMERGENCY_STOP")
    (d.workspace / "EMERGENCY_STOP").touch()
    t0 = time.monotonic()
    try:
        code = bot.wait(timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise DemoFailed("the bot did not stop within 60 s of EMERGENCY_STOP") from exc
    d.say(f"  ✓ bot stopped {time.monotonic() - t0:.1f} s after EMERGENCY_STOP (exit {code})")
    out = (
        (d.workspace / "logs" / "trading_bot.out").read_text(encoding="utf-8", errors="replace").splitlines()
    )
    d.say("  The bot's console (logs/trading_system_YYYYMMDD.log has the same lines):")
    for line in out[:6] + (["  …"] if len(out) > 14 else []) + out[-8:] if len(out) > 14 else out:
        d.say("    " + line)
    d.results.append(StepResult("Emergency stop drill", "touch EMERGENCY_STOP", 0, time.monotonic() - t0))
    d.run("Health check after the stop", "health_check.py", "--no-alert", expect=(2,))
    d.say("\n$ rm EMERGENCY_STOP")
    (d.workspace / "EMERGENCY_STOP").unlink()
    d.run(
        "Restart after the emergency stop",
        "trading_bot.py",
        "--paper-trading",
        "--restart",
        "--max-runtime",
        "10",
        show=15,
    )


def step_reports(d: Demo) -> None:
    d.run("Daily report", "daily_report.py", show=30)
    d.run("Paper trading report", "paper_trading_report.py", "--days", "1", show=30)
    d.run("Backup", "backup_database.py")
    d.run("Backup audit", "audit_backups.py", show=20)
    d.run("Database maintenance", "maintain_database.py", show=20)


STEPS = [step_setup, step_collect, step_validate, step_paper, step_reports]
