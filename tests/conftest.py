"""Shared fixtures: an isolated environment, temporary workspaces with a real
config.yaml and SQLite file, the local Polymarket simulator on a free port, and the
operator's top-level scripts run in process (``run_cli``, the ``cli`` fixture) or, where a
real process matters, as subprocesses (``run_cli_process``).

Layout: ``tests/<package>/test_*.py`` tests ``polybot/<package>/``; tests of the top-level
modules (config, db, logs, money, risk, …), the shims, the docs and the end-to-end journey sit
in ``tests/``. Fixtures used in one directory live in its ``conftest.py``; fixtures used in
several live here. Plain helper functions live in ``<package>/helpers.py`` (and
``tests/resources.py``, ``tests/journey.py``, ``tests/fake_telegram.py``) and are imported
normally — never a fixture imported from a helper module.

The suite runs in parallel (pytest-xdist, see pytest.ini): every test owns its tmp dir, free
ports and processes; a command run in process gets its own cwd, environment, umask, signal
handlers and logging, restored afterwards. ``pytest -n0 FILE`` runs one file serially."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import runpy
import signal
import subprocess
import sys
import traceback
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


# Modules whose tests must all run on ONE xdist worker, in order (everything else is spread
# test by test): the end-to-end journey is one workspace walked phase after phase; the browser
# tests share one paper run and one Chromium (module-scoped fixtures).
ONE_WORKER_MODULES = ("tests/test_end_to_end.py", "tests/dashboard/test_dashboard_browser.py")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_xdist_make_scheduler(config, log):
    """Load scheduling, except that each of ONE_WORKER_MODULES is one unit of work. (xdist's own
    ``--dist loadgroup`` does not group with pytest 9: it renames ``item._nodeid``, which pytest 9
    no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return module if module in ONE_WORKER_MODULES else nodeid

    return OneWorkerModules(config, log)


def pytest_collection_modifyitems(config, items):
    """Longest first: the one-worker modules (a whole journey each) and the tests marked slow
    start at once, so a parallel run does not end waiting on one of them. A stable sort: the
    order inside a module and among the others stays the collection order."""
    items.sort(
        key=lambda item: (
            0 if _module(item.nodeid) in ONE_WORKER_MODULES else 1 if item.get_closest_marker("slow") else 2
        )
    )


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


class CliResult(subprocess.CompletedProcess):
    """What a command run in process left: ``args``, ``returncode``, ``stdout``, ``stderr`` (the
    fields of :class:`subprocess.CompletedProcess`, so a test reads both kinds alike)."""


class _Captured(io.StringIO):
    """A text stream like a pipe: utf-8, not a terminal (``_ensure_utf8_stdout`` leaves it alone)."""

    encoding = "utf-8"
    errors = "strict"

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _process_state(cwd: Path, env: dict | None, argv: list[str], stdin: str | None):
    """Give one command what its own process would have (cwd, argv, environment, stdio, no
    polybot logging yet) and put everything back afterwards: umask (``polybot.cli.run`` sets
    077), cwd, os.environ, signal handlers (the bot and the scheduler install SIGTERM/SIGINT
    ones), the root logger's polybot handlers and level, the redactor's secret list, the strategy
    registry, and the alerters the command left open (closed as the interpreter's exit would close
    them)."""
    from polybot import logs
    from polybot.alerts import core as alerts_core
    from polybot.strategy import registry

    saved_umask = os.umask(0o022)
    os.umask(saved_umask)
    saved_cwd = os.getcwd()
    saved_env = dict(os.environ)
    saved_argv = sys.argv
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    root = logging.getLogger()
    saved_level = root.level
    saved_handlers = [h for h in root.handlers if getattr(h, "_polybot", False)]
    for h in saved_handlers:
        root.removeHandler(h)
    saved_configured = dict(logs._CONFIGURED)
    logs._CONFIGURED.clear()
    saved_listeners = list(logs._LOG_FAILURE_LISTENERS)
    saved_secrets = set(logs.REDACTOR.values)
    alerters_before = set(alerts_core._LIVE)
    saved_strategies = dict(registry.STRATEGIES)  # the bot adds 'drill' when its config names it
    out, err = _Captured(), _Captured()
    try:
        os.chdir(cwd)
        os.environ.update(env or {})
        sys.argv = argv
        sys.stdin = _Captured(stdin or "")
        sys.stdout, sys.stderr = out, err
        yield out, err
    finally:
        try:
            for alerter in set(alerts_core._LIVE) - alerters_before:  # what atexit does at exit
                alerter.close(5.0)
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            for h in [h for h in root.handlers if getattr(h, "_polybot", False)]:
                root.removeHandler(h)
                h.close()
            for h in saved_handlers:
                root.addHandler(h)
            root.setLevel(saved_level)
            logs._CONFIGURED.clear()
            logs._CONFIGURED.update(saved_configured)
            logs._LOG_FAILURE_LISTENERS[:] = saved_listeners
            logs.REDACTOR.values = saved_secrets
            registry.STRATEGIES.clear()
            registry.STRATEGIES.update(saved_strategies)
            for sig, handler in saved_signals.items():
                signal.signal(sig, handler)
            sys.argv = saved_argv
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)
            os.umask(saved_umask)


def run_cli(
    script: str,
    *args: str,
    cwd: Path,
    env: dict | None = None,
    timeout: float | None = None,  # noqa: ARG001 - kept for run_cli_process's signature; pytest-timeout guards
    input: str | None = None,
) -> CliResult:
    """Run a top-level script (``python <script> args`` in ``cwd``) IN THIS PROCESS.

    The script file itself is executed as ``__main__`` (the shim, its parser, ``run_script``
    and its exit code), with its own cwd, environment, argv and captured stdout/stderr; only
    the interpreter start-up (~0.5 s of imports) is saved. Use :func:`run_cli_process` where a
    real process matters (signals, locks held by another process, kill -9, the interpreter's
    own exit code on a traceback)."""
    argv = [script, *args]
    code: int | str | None = 0
    with _process_state(Path(cwd), env, argv, input) as (out, err):
        try:
            runpy.run_path(str(ROOT / script), run_name="__main__")
        except SystemExit as exc:
            code = exc.code
        except BaseException:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
    return CliResult(["python", *argv], _exit_status(code, err), out.getvalue(), err.getvalue())


def run_python(code: str, *, cwd: Path, env: dict | None = None) -> CliResult:
    """``python -c "<code>"`` in ``cwd`` (the checklist's one-liners), IN THIS PROCESS with the
    same isolation as :func:`run_cli`."""
    code_result: int | str | None = 0
    with _process_state(Path(cwd), env, ["-c"], None) as (out, err):
        try:
            exec(compile(code, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        except SystemExit as exc:
            code_result = exc.code
        except BaseException:
            traceback.print_exc()
            code_result = 1
    returncode = _exit_status(code_result, err)
    return CliResult(["python", "-c", code], returncode, out.getvalue(), err.getvalue())


def _exit_status(code: int | str | None, err: io.StringIO) -> int:
    """The exit status the interpreter gives ``sys.exit(code)`` (a message is printed, status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err.write(f"{code}\n")
    return 1


def run_cli_process(
    script: str,
    *args: str,
    cwd: Path,
    env: dict | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a top-level script as a real subprocess (``python <script> args`` in ``cwd``)."""
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
def cli(tmp_path):
    """``cli("backup_database.py", "--list")``: a top-level script run in process (see
    :func:`run_cli`), in ``tmp_path`` unless ``cwd=`` says otherwise."""

    def run(script: str, *args: str, cwd: Path | None = None, **kwargs) -> CliResult:
        return run_cli(script, *args, cwd=tmp_path if cwd is None else cwd, **kwargs)

    return run


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


@pytest.fixture
def fake_tg():
    """The fake Telegram Bot API (tests/fake_telegram.py) on a free port."""
    from tests.alerts.helpers import TOKEN
    from tests.fake_telegram import FakeTelegram

    with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
def smtp():
    """A local SMTP server (aiosmtpd) on a free port that keeps what it receives."""
    from tests.alerts.helpers import SmtpServer

    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs at tmp_path/'fs' (root only; skipped with the reason otherwise)."""
    from tests.resources import tmpfs

    with tmpfs(tmp_path / "fs", "2m") as mnt:
        yield mnt
