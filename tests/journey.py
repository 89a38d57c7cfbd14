"""Helpers for tests/test_end_to_end.py: one operator workspace shared by the phases of the
end-to-end walk through docs/DEPLOYMENT_CHECKLIST.md.

The :class:`Journey` holds the workspace, the in-process simulator, the fake Telegram Bot
API and the background trading bot; it runs the checklist's commands as real subprocesses
(cwd = the workspace, like an operator) and builds assertion messages that show the
command, its exit code and its output. :func:`phase` chains the phases: once one fails,
every later phase is skipped with the name of the failed one instead of cascading.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, SECRET_ENV_PREFIXES, run_cli_process

TOKEN = "7000000001:E2E-fake-token-for-the-local-bot-api"
CHAT_ID = 424200117
PRIVATE_KEY = "0x" + "5e" * 32  # a valid secp256k1 key, used only against the simulator


def operator_env_for(sim_handle) -> dict:
    """What the operator exports (checklist: "Set Environment Variables"): the wallet key and the
    L2 API credentials Polymarket issues for it — here issued by the simulator, so that
    test_api_connectivity.py can authenticate — and the Telegram bot token."""
    from eth_account import Account

    address = Account.from_key(PRIVATE_KEY).address
    with sim_handle.sim.lock:
        creds = sim_handle.sim.exchange.creds(address, 0)
    return {
        "POLYMARKET_API_KEY": creds["apiKey"],
        "POLYMARKET_API_SECRET": creds["secret"],
        "POLYMARKET_API_PASSPHRASE": creds["passphrase"],
        "POLYMARKET_PRIVATE_KEY": PRIVATE_KEY,
        "TELEGRAM_BOT_TOKEN": TOKEN,
    }


GRID = 300  # the 5-minute collection grid, seconds


# ---------------------------------------------------------------------------- phase chaining
class _Chain:
    failed: str | None = None
    passed: int = 0  # number of the last phase that passed


CHAIN = _Chain()


def phase(title: str):
    """Decorate one phase (a test function) titled "<n>. <name>". Skips when an earlier phase
    failed or did not run (e.g. one phase selected with -k); marks the chain broken when this
    one fails (assertion, error or timeout), then re-raises."""
    number = int(title.split(".")[0])

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if CHAIN.failed:
                pytest.skip(
                    f"skipped because an earlier phase failed: {CHAIN.failed} "
                    f"(the workspace is not in the state this phase needs)"
                )
            if CHAIN.passed != number - 1:
                pytest.skip(
                    f"phase {number} needs phases 1-{number - 1} to have run in this session "
                    f"(last passed: {CHAIN.passed}); run the whole module"
                )
            try:
                result = fn(*args, **kwargs)
            except pytest.skip.Exception:
                raise
            except BaseException:
                CHAIN.failed = title
                raise
            CHAIN.passed = number
            return result

        return wrapper

    return deco


# ---------------------------------------------------------------------------- output helpers
def show(res: subprocess.CompletedProcess, limit: int = 8000) -> str:
    """The command, its exit code and its output, for an assertion message."""
    cmd = (
        res.args
        if isinstance(res.args, str)
        else " ".join(
            "python" if a == sys.executable else (Path(a).name if str(a).startswith(str(ROOT)) else str(a))
            for a in res.args
        )
    )
    out, err = (res.stdout or ""), (res.stderr or "")
    if len(out) > limit:
        out = "…" + out[-limit:]
    if len(err) > limit // 2:
        err = "…" + err[-limit // 2 :]
    return f"\n$ {cmd}\nexit code {res.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"


def lines_of(res: subprocess.CompletedProcess) -> list[str]:
    return [ln.rstrip() for ln in (res.stdout or "").splitlines()]


def assert_lines(res: subprocess.CompletedProcess, expected: list[str]) -> None:
    """Every expected line appears as a whole line of stdout."""
    lines = lines_of(res)
    missing = [e for e in expected if e not in lines]
    assert not missing, f"expected line(s) missing: {missing}" + show(res)


def assert_prefixes(res: subprocess.CompletedProcess, prefixes: list[str]) -> None:
    """For every prefix, some stdout line (left-stripped) starts with it."""
    lines = [ln.strip() for ln in lines_of(res)]
    missing = [p for p in prefixes if not any(ln.startswith(p) for ln in lines)]
    assert not missing, f"no line starting with: {missing}" + show(res)


def line_starting(res: subprocess.CompletedProcess, prefix: str) -> str:
    for ln in lines_of(res):
        if ln.strip().startswith(prefix):
            return ln.strip()
    raise AssertionError(f"no line starting with {prefix!r}" + show(res))


def utc_day(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y%m%d")


# ---------------------------------------------------------------------------- config editing
def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def set_in_section(text: str, section: str, key: str, value) -> str:
    """Change ``section.key`` in YAML text the way an operator edits config.yaml: one line,
    its trailing comment kept. Fails if the key is not exactly once in the section."""
    lines = text.splitlines(keepends=True)
    head = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    start = next((i for i, ln in enumerate(lines) if head.match(ln.rstrip("\n"))), None)
    assert start is not None, f"section {section}: not found in config.yaml"
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith((" ", "#"))),
        len(lines),
    )
    pat = re.compile(rf"^(\s+{re.escape(key)}:)[ \t]*([^#\n]*?)([ \t]*#[^\n]*)?(\n?)$")
    hits = [i for i in range(start + 1, end) if pat.match(lines[i])]
    assert len(hits) == 1, f"{section}.{key} found {len(hits)} times in config.yaml"
    m = pat.match(lines[hits[0]])
    lines[hits[0]] = f"{m.group(1)} {_yaml_value(value)}{m.group(3) or ''}{m.group(4)}"
    return "".join(lines)


def replace_section(text: str, section: str, body: str) -> str:
    """Replace the whole top-level ``section:`` of YAML text (its indented lines) by ``body``
    (the indented lines that follow ``section:``)."""
    lines = text.splitlines(keepends=True)
    head = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    start = next((i for i, ln in enumerate(lines) if head.match(ln.rstrip("\n"))), None)
    assert start is not None, f"section {section}: not found in config.yaml"
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith((" ", "#"))),
        len(lines),
    )
    return "".join(lines[: start + 1]) + body + "".join(lines[end:])


# ---------------------------------------------------------------------------- the journey
def operator_env(extra: dict | None = None) -> dict:
    """The environment run_cli_process gives a script (conftest.run_cli_process), for Popen and
    python -c."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIXES)}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


@dataclass
class Journey:
    ws: Path
    sim: object  # polybot.sim.server.SimulatorHandle
    tg: object  # tests.fake_telegram.FakeTelegram
    console_dir: Path
    env: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)
    bots: list = field(default_factory=list)
    timings: list = field(default_factory=list)
    transcript: list = field(default_factory=list)  # show() of every command, in order

    # ---- commands
    def run(self, script: str, *args: str, expect=(0,), timeout: float = 180) -> subprocess.CompletedProcess:
        """``python <script> args`` in the workspace; asserts the exit code is in ``expect``."""
        t0 = time.monotonic()
        res = run_cli_process(script, *args, cwd=self.ws, env=self.env, timeout=timeout)
        self.timings.append((f"python {script} {' '.join(args)}".strip(), time.monotonic() - t0))
        self.transcript.append(show(res, limit=100_000))
        if expect is not None:
            assert res.returncode in expect, f"exit code {res.returncode}, expected {expect}" + show(res)
        assert "Traceback (most recent call last)" not in res.stderr, "a traceback was printed" + show(res)
        return res

    def py(self, code: str, *, expect=(0,), timeout: float = 120) -> subprocess.CompletedProcess:
        """``python -c "<code>"`` in the workspace (the checklist's one-liners)."""
        t0 = time.monotonic()
        res = subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.ws,
            env=operator_env(self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        res.args = f'python -c "{code}"'
        self.timings.append((f"python -c {code[:50]}…", time.monotonic() - t0))
        self.transcript.append(show(res, limit=100_000))
        if expect is not None:
            assert res.returncode in expect, f"exit code {res.returncode}, expected {expect}" + show(res)
        return res

    def start_bot(self, *args: str) -> subprocess.Popen:
        """``python trading_bot.py args`` in the background (console → a file outside the workspace)."""
        console = self.console_dir / f"trading_bot_{len(self.bots) + 1}.console.txt"
        fh = open(console, "w", encoding="utf-8")  # noqa: SIM115 — the bot process writes to it after we return
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "trading_bot.py"), *args],
            cwd=self.ws,
            env=operator_env(self.env),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        fh.close()
        proc.console = console  # type: ignore[attr-defined]
        self.bots.append(proc)
        return proc

    def console(self, proc) -> str:
        try:
            return Path(proc.console).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop_bots(self) -> None:
        for proc in self.bots:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    # ---- the simulator's clock (what cron and real time do for a real operator)
    def sim_time(self) -> int:
        return int(requests.get(f"{self.sim.clob_url}/time", timeout=5).json())

    def set_speed(self, speed: float) -> None:
        requests.post(f"{self.sim.url}/_sim/speed", json={"speed": speed}, timeout=5).raise_for_status()

    def advance_to_next_cycle(self) -> int:
        """Move the simulator clock just past the next 5-minute boundary (one cron tick)."""
        now = self.sim_time()
        target = (now // GRID + 1) * GRID + 5
        requests.post(
            f"{self.sim.url}/_sim/advance", json={"seconds": target - now}, timeout=5
        ).raise_for_status()
        return target

    def plant_dip(self, *, window: int = 12 * 3600, dip: float = 0.15) -> dict:
        """Give one liquid market a YES book ``dip`` below its mean mid of the last ``window``
        seconds (through the simulator's ``POST /_sim/book``): what mean_reversion buys.

        The market is one the collector tracks, with a full recorded window, a mid well inside
        (0.1, 0.9) after the dip and an end date days away (no entry 48 h before the end)."""
        now = self.sim_time()
        rows = self.query(
            "SELECT s.token_id, AVG(s.mid), COUNT(*), MAX(s.mid) - MIN(s.mid) FROM snapshot_values s "
            "JOIN market_tokens t ON t.token_id = s.token_id AND t.outcome_index = 0 "
            "JOIN markets m ON m.id = t.market_id "
            "WHERE m.tracked = 1 AND m.active = 1 AND m.closed = 0 AND m.accepting_orders = 1 "
            "AND m.tick_size = 0.01 AND m.end_date > ? AND s.timestamp > ? AND s.mid IS NOT NULL "
            "GROUP BY s.token_id HAVING COUNT(*) >= ? AND AVG(s.mid) BETWEEN 0.3 AND 0.8 "
            "ORDER BY MAX(s.mid) - MIN(s.mid), s.token_id",
            (now + 4 * 86400, now - window, int(0.9 * window / GRID)),
        )
        assert rows, "no tracked market with a full recorded window to plant a dip in"
        token, mean = rows[0][0], rows[0][1]
        ask = round(mean - dip, 2)
        book = {"token_id": token, "bids": [[f"{ask - 0.01:.2f}", "2000"]], "asks": [[f"{ask:.2f}", "2000"]]}
        requests.post(f"{self.sim.url}/_sim/book", json=book, timeout=5).raise_for_status()
        return {"token_id": token, "mean": mean, "ask": ask}

    def clear_book(self, token_id: str) -> None:
        requests.post(
            f"{self.sim.url}/_sim/book", json={"token_id": token_id, "clear": True}, timeout=5
        ).raise_for_status()

    # ---- files
    @property
    def config_path(self) -> Path:
        return self.ws / "config.yaml"

    def edit_config(self, section: str, **changes) -> None:
        text = self.config_path.read_text(encoding="utf-8")
        for key, value in changes.items():
            text = set_in_section(text, section, key, value)
        self.config_path.write_text(text, encoding="utf-8")  # an existing file keeps its mode

    def query(self, sql: str, params=()) -> list:
        conn = sqlite3.connect(self.ws / "data" / "polymarket.db", timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def log_files(self) -> list[Path]:
        return sorted((self.ws / "logs").glob("trading_system_*.log"))

    def log_marks(self) -> dict:
        return {p: p.stat().st_size for p in self.log_files()}

    def log_since(self, marks: dict) -> str:
        """Text appended to logs/trading_system_*.log since ``marks`` (handles a new UTC day)."""
        out = []
        for p in self.log_files():
            with open(p, "rb") as fh:
                fh.seek(marks.get(p, 0))
                out.append(fh.read().decode("utf-8", errors="replace"))
        return "".join(out)

    def wait_for_log(self, marks: dict, needles: list[str], *, timeout: float, proc=None) -> str:
        """Wait until every needle appears in the log since ``marks``; fail early if ``proc`` exits."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(marks)
            missing = [n for n in needles if n not in text]
            if not missing:
                return text
            if proc is not None and proc.poll() is not None:
                raise AssertionError(
                    f"the bot exited with {proc.returncode} before logging {missing}\n"
                    f"--- log ---\n{text[-6000:]}\n--- console ---\n{self.console(proc)[-4000:]}"
                )
            if time.monotonic() > deadline:
                extra = f"\n--- console ---\n{self.console(proc)[-4000:]}" if proc is not None else ""
                raise AssertionError(
                    f"not in the log after {timeout:.0f} s: {missing}\n--- log ---\n{text[-6000:]}{extra}"
                )
            time.sleep(0.25)
