"""One installable package: the `polybot` command has a subcommand for every top-level script
(and the scripts are thin shims over it), the pins of pyproject.toml are those of the
requirements files, `import polybot` has no side effects, the files read at run time are
declared as package data, and no code finds its way around by path arithmetic."""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from polybot import commands
from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
ROOT_MODULES = sorted(p.name for p in ROOT.glob("*.py"))


def _runs_as_script(path: Path) -> bool:
    """Whether the file has an ``if __name__ == "__main__":`` block."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return True
    return False


def _pins(path: Path) -> set[str]:
    """The ``name==version`` lines of a requirements file (comments and ``-r`` lines dropped)."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            assert "==" in line, f"{path.name}: {line!r} is not pinned with =="
            out.add(line)
    return out


@contextlib.contextmanager
def _umask_kept():
    """polybot.cli.run sets umask 077 for the process; keep the test process's own."""
    old = os.umask(0o022)
    os.umask(old)
    try:
        yield
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- scripts <-> commands
def test_every_script_has_a_command_and_every_command_a_script():
    scripts = [name for name in ROOT_MODULES if _runs_as_script(ROOT / name)]
    with_command = {c.script for c in commands.COMMANDS if c.script}
    assert sorted(with_command) == scripts, "a top-level script without a command, or the reverse"
    for name in commands.LIBRARY_SHIMS:  # imported by the checklist, never run
        assert name in ROOT_MODULES and not _runs_as_script(ROOT / name)
    assert set(ROOT_MODULES) == with_command | set(commands.LIBRARY_SHIMS), "an unclassified top-level module"
    names = [c.name for c in commands.COMMANDS]
    assert len(names) == len(set(names)) and all(re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in names)


@pytest.mark.parametrize("script", [c.script for c in commands.COMMANDS if c.script])
def test_each_shim_runs_its_own_command_and_nothing_else(script):
    tree = ast.parse((ROOT / script).read_text(encoding="utf-8"))
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "run_script"
    ]
    assert len(calls) == 1, f"{script} must call polybot.commands.run_script once"
    assert ast.literal_eval(calls[0].args[0]) == script, f"{script} runs another script's command"
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert not defs, f"{script} defines code; it belongs in the package"


@pytest.mark.parametrize("cmd", commands.COMMANDS, ids=lambda c: c.name)
def test_polybot_command_help_in_process(cmd, capsys):
    with _umask_kept(), pytest.raises(SystemExit) as exc:
        commands.main([cmd.name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: polybot {cmd.name}"), out[:200]
    assert "-h, --help" in out


def test_polybot_help_lists_every_command(capsys):
    assert commands.main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in commands.COMMANDS:
        assert re.search(rf"^  {re.escape(cmd.name)} +{re.escape(cmd.summary)}", out, re.M), cmd.name
        if cmd.script:
            assert f"[{cmd.script}]" in out


def test_bad_command_lines_are_one_sentence_and_exit_2(capsys):
    assert commands.main([]) == 2
    assert "usage: polybot" in capsys.readouterr().err
    assert commands.main(["bactest"]) == 2
    assert capsys.readouterr().err == (
        "polybot: unknown command 'bactest' (did you mean 'backtest'?); run 'polybot --help' for the list.\n"
    )
    assert commands.main(["trading_bot.py"]) == 2
    assert "the command for trading_bot.py is 'trade'" in capsys.readouterr().err
    with _umask_kept(), pytest.raises(SystemExit) as exc:
        commands.main(["backtest", "--start-date", "2026-13-01"])
    assert exc.value.code == 2


def test_the_shim_and_the_command_share_one_parser(tmp_path):
    """`python trading_bot.py --help` and `python -m polybot trade --help` print the same options
    (a subprocess each: the shims run exactly as the checklist types them)."""
    env = commands.child_env()
    shim = subprocess.run(
        [sys.executable, str(ROOT / "trading_bot.py"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    module = subprocess.run(
        commands.child_argv("trade", "--help"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shim.returncode == module.returncode == 0, shim.stderr + module.stderr
    assert shim.stdout.startswith("usage: trading_bot.py") and module.stdout.startswith(
        "usage: polybot trade"
    )
    body = lambda text: text[text.index("\n\n") :]  # noqa: E731 - everything after the usage lines
    assert body(shim.stdout) == body(module.stdout)


def test_an_uninstalled_checkout_runs_commands_from_any_directory(tmp_path):
    """child_argv/child_env (the scheduler, the scenarios, the demo) work from a plain checkout:
    `python -m polybot init-db` in an empty project directory creates data/ THERE."""
    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml.example").read_text(encoding="utf-8"))
    env = {k: v for k, v in commands.child_env().items() if not k.startswith(("POLY", "TELEGRAM", "SMTP"))}
    res = subprocess.run(
        commands.child_argv("init-db"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "data" / "polymarket.db").is_file()
    assert f"Database created: {tmp_path / 'data' / 'polymarket.db'}" in res.stdout


def test_a_scheduled_job_runs_the_workspace_script_or_the_installed_command(tmp_path):
    """A clone's workspace holds the scripts: the job runs `python health_check.py` there (the
    checklist's crontab). A workspace without them runs `python -m polybot health` instead."""
    from polybot.config import load_config
    from polybot.ops.scheduler import JobSpec, run_job

    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml.example").read_text(encoding="utf-8"))
    cfg = load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    job = JobSpec("health", "health_check.py", args=("--no-alert",), log="health.log")
    assert job.command_args(tmp_path) == ["-m", "polybot", "health", "--no-alert"]
    assert job.command_args(ROOT) == [str(ROOT.resolve() / "health_check.py"), "--no-alert"]
    assert JobSpec("x", "no_such_script.py").command_args(tmp_path) is None
    res = run_job(cfg, job)
    log = (tmp_path / "logs" / "health.log").read_text(encoding="utf-8")
    assert "run_scheduler: health: -m polybot health --no-alert" in log
    # it really ran the health check (FAIL: no bot, no database here)
    assert res.exit_code == 2 and re.search(r"^\[FAIL\] ", log, re.M), log


# --------------------------------------------------------------------------- pins
def test_pyproject_pins_are_the_requirements_pins():
    project = PYPROJECT["project"]
    assert set(project["dependencies"]) == _pins(ROOT / "requirements.txt")
    extras = project["optional-dependencies"]
    dev_pins = {p for p in extras["test"] + extras["dev"] if not p.startswith("polybot")}
    assert dev_pins == _pins(ROOT / "requirements-dev.txt")
    assert "polybot[test]" in extras["dev"]
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"]["polybot"] == "polybot.commands:main"
    assert callable(commands.main)


def test_pytest_is_only_a_transitive_runtime_pin():
    """pytest is pinned in requirements.txt only because the exchange client's dependencies
    require it at run time; it is not one of polybot's own dependencies."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    direct, transitive = text.split("# Transitive", 1)
    assert "pytest" not in direct and "\npytest==" in transitive


# --------------------------------------------------------------------------- import side effects
def test_importing_polybot_changes_nothing_and_never_exits():
    """Every module of the package is imported in a fresh interpreter: os.environ stays as it
    was and nothing exits (the command entry points do the process set-up)."""
    code = (
        "import os, pkgutil, importlib, sys\n"
        "before = dict(os.environ)\n"
        "import polybot\n"
        "names = [m.name for m in pkgutil.walk_packages(polybot.__path__, 'polybot.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
        "print(len(names), changed)\n"
    )
    env = {k: v for k, v in commands.child_env().items() if k != "OPENBLAS_NUM_THREADS"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    count, changed = res.stdout.split(" ", 1)
    assert int(count) > 100 and changed.strip() == "[]", res.stdout


def test_prepare_process_sets_one_blas_thread(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    commands.prepare_process()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    commands.prepare_process()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"  # the operator's choice wins


# --------------------------------------------------------------------------- package data
def test_every_file_read_at_run_time_is_declared_package_data():
    declared = PYPROJECT["tool"]["setuptools"]["package-data"]
    undeclared = []
    for path in sorted((ROOT / "polybot").rglob("*")):
        if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        package_dir = path.parent
        while package_dir != ROOT / "polybot" and not (package_dir / "__init__.py").exists():
            package_dir = package_dir.parent
        package = ".".join(package_dir.relative_to(ROOT).parts)
        rel = path.relative_to(package_dir).as_posix()
        if not any(fnmatch.fnmatch(rel, pat) for pat in declared.get(package, [])):
            undeclared.append(f"{package}: {rel}")
    assert not undeclared, f"not in [tool.setuptools.package-data]: {undeclared}"


def test_the_dashboard_assets_are_found_through_the_package():
    from polybot.dashboard import app

    base = resources.files("polybot.dashboard")
    for name in ("templates/index.html", "templates/login.html", "assets/app.css", "assets/dashboard.js"):
        assert (base / name).is_file(), name
    assert Path(str(base / "assets")) == app.ASSETS


# --------------------------------------------------------------------------- no path arithmetic
def test_no_path_arithmetic_out_of_the_package():
    """The code never climbs out of its package to find the checkout (ROOT = parents[2]) or edits
    sys.path: the operator's files are in the working directory, the code's files in the package."""
    bad = re.compile(r"parents\[\d\]|\.parent\.parent|sys\.path\.(insert|append)|^ROOT\s*=", re.M)
    offenders = [
        str(p.relative_to(ROOT))
        for p in [*(ROOT / "polybot").rglob("*.py"), *(ROOT / name for name in ROOT_MODULES)]
        if bad.search(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


# --------------------------------------------------------------------------- docs
def test_the_command_table_in_the_docs_is_the_code_table():
    text = (ROOT / "docs" / "dev" / "commands.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `polybot ([a-z0-9-]+)` \| (`python ([\w.]+)`|—) \|", text, re.M)
    documented = [(name, script or None) for name, _, script in rows]
    assert documented == [(c.name, c.script) for c in commands.COMMANDS]
