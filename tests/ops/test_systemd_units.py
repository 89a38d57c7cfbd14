"""run_scheduler.py --print-systemd: the bot's unit never restarts after a halt (the bot's real halt
exit code is in RestartPreventExitStatus) but does after a crash; ExecStart runs the real scripts
with the virtualenv's python; systemd-analyze verify accepts the units, also for a project path
with spaces; --output-dir writes 644 files; bad input is one sentence."""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from polybot.cli import EXIT_FAILURE
from polybot.commands import get
from polybot.errors import ConfigError, DatabaseError, ExchangeError, HaltedError
from polybot.ops import systemd_units
from polybot.ops.systemd_units import SERVICES, exec_word
from tests.conftest import ROOT, run_cli, write_config
from tests.ops.helpers import init_workspace

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
UNITS = ("polybot-bot.service", "polybot-scheduler.service", "polybot-dashboard.service")


def split_printed(stdout: str) -> dict[str, str]:
    """The printed output cut at its ``# ---- file: NAME ----`` separators."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        if line.startswith("# ---- file: "):
            current = files.setdefault(line.removeprefix("# ---- file: ").removesuffix(" ----"), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") + "\n" for name, lines in files.items()}


def settings(text: str) -> dict[str, list[str]]:
    """``Section.Key`` → values, as systemd reads the file (comments skipped)."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def one(s: dict[str, list[str]], key: str) -> str:
    assert len(s.get(key, [])) == 1, f"{key} should be set exactly once: {s.get(key)}"
    return s[key][0]


def exec_argv(value: str) -> list[str]:
    """ExecStart= back to argv (our writer only uses double quotes, \\\" , $$ and %%)."""
    return [w.replace("$$", "$").replace("%%", "%") for w in shlex.split(value)]


def print_units(cwd: Path, *args: str) -> tuple[dict[str, str], str]:
    res = run_cli("run_scheduler.py", "--print-systemd", *args, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return split_printed(res.stdout), res.stderr


def test_the_bot_is_never_restarted_after_a_halt_but_is_after_a_crash(tmp_path):
    init_workspace(tmp_path)
    units, _ = print_units(tmp_path)
    assert sorted(units) == sorted(UNITS)
    bot = settings(units["polybot-bot.service"])
    assert one(bot, "Service.Restart") == "on-failure"
    no_restart = {int(c) for c in one(bot, "Service.RestartPreventExitStatus").split()}
    assert HaltedError.exit_code in no_restart
    assert 5 in no_restart  # the documented halt code (RUNBOOK), so a changed constant is noticed
    assert ConfigError.exit_code in no_restart
    for crash in (EXIT_FAILURE, DatabaseError.exit_code, ExchangeError.exit_code):
        assert crash not in no_restart, f"exit {crash} is a crash: the bot must be restarted after it"
    assert int(one(bot, "Service.RestartSec")) > 0
    assert int(one(bot, "Unit.StartLimitBurst")) > 1
    assert int(one(bot, "Unit.StartLimitIntervalSec")) > int(one(bot, "Service.RestartSec")) * int(
        one(bot, "Unit.StartLimitBurst")
    ), "the start limit window must be long enough to ever stop a crash loop"
    for name in UNITS:
        s = settings(units[name])
        assert one(s, "Service.Restart") == "on-failure"
        assert one(s, "Service.UMask") == "0077"
        assert one(s, "Service.StandardOutput") == "journal"
        assert one(s, "Service.StandardError") == "journal"
        assert one(s, "Service.SyslogIdentifier") == name.removesuffix(".service")
        assert ConfigError.exit_code in {int(c) for c in one(s, "Service.RestartPreventExitStatus").split()}


def test_the_bots_real_halt_and_crash_exit_codes_against_the_unit(tmp_path):
    """Not a copy of the constant: the bot's actual exit on an emergency stop is in
    RestartPreventExitStatus, its exit on a database it cannot open is not."""
    cfg = init_workspace(tmp_path)
    units, _ = print_units(tmp_path)
    no_restart = {
        int(c)
        for c in one(settings(units["polybot-bot.service"]), "Service.RestartPreventExitStatus").split()
    }

    Path(cfg.emergency_stop_file).touch()
    halted = run_cli("trading_bot.py", cwd=tmp_path)
    assert "emergency stop" in halted.stderr
    assert halted.returncode in no_restart

    Path(cfg.emergency_stop_file).unlink()
    Path(cfg.database_path).write_bytes(b"this is not an SQLite database" * 100)
    broken = run_cli("trading_bot.py", cwd=tmp_path)
    assert broken.returncode not in (0, halted.returncode), broken.stderr
    assert broken.returncode not in no_restart


def test_exec_start_runs_the_real_scripts_with_the_virtualenv_python(tmp_path):
    init_workspace(tmp_path)
    units, _ = print_units(tmp_path)
    for spec in SERVICES:
        s = settings(units[spec.unit])
        assert Path(one(s, "Service.WorkingDirectory")) == tmp_path.resolve()
        assert one(s, "Service.User") == getpass.getuser()
        assert one(s, "Service.EnvironmentFile") == f"-{tmp_path.resolve() / '.env'}"
        argv = exec_argv(one(s, "Service.ExecStart"))
        assert argv[0] == sys.executable  # the test runs in the project's virtualenv
        script = Path(argv[1])
        assert script.is_file() and script.name == get(spec.command).script
        assert script == ROOT / script.name  # the workspace has no scripts: the clone's
        # The command line really starts the command (its --help, in the unit's directory).
        res = subprocess.run(
            [*argv, "--help"],
            cwd=one(s, "Service.WorkingDirectory"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        assert "usage:" in res.stdout


def test_a_workspace_script_and_a_non_default_config_are_used(tmp_path):
    init_workspace(tmp_path)
    shutil.copy(ROOT / "trading_bot.py", tmp_path / "trading_bot.py")
    units, _ = print_units(tmp_path)
    argv = exec_argv(one(settings(units["polybot-bot.service"]), "Service.ExecStart"))
    assert argv[1:] == [str(tmp_path.resolve() / "trading_bot.py")]  # the workspace's own script
    # A config not named config.yaml: the workspace is its directory, and it is passed on.
    other = tmp_path / "live"
    other.mkdir()
    live = write_config(other).rename(other / "live.yaml")
    units, _ = print_units(tmp_path, "--config", str(live))
    bot = settings(units["polybot-bot.service"])
    assert Path(one(bot, "Service.WorkingDirectory")) == other.resolve()
    argv = exec_argv(one(bot, "Service.ExecStart"))
    assert argv[1:] == [str(ROOT / "trading_bot.py"), "--config", str(live.resolve())]


def test_escaping_follows_systemd_syntax():
    assert exec_word("/srv/polybot/trading_bot.py") == "/srv/polybot/trading_bot.py"
    assert exec_word("/srv/my bot/100%/$HOME") == '"/srv/my bot/100%%/$$HOME"'
    assert exec_word('/srv/a "b"') == '"/srv/a \\"b\\""'
    with pytest.raises(ConfigError, match="backslash"):
        exec_word("/srv/a\\b")
    with pytest.raises(ConfigError, match="control character"):
        exec_word("/srv/a\nb")


def _verify(paths: list[Path], *, user_mode: bool, runtime_dir: Path) -> subprocess.CompletedProcess:
    assert SYSTEMD_ANALYZE
    cmd = [SYSTEMD_ANALYZE, *(["--user"] if user_mode else []), "verify", "--man=no", *map(str, paths)]
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), SYSTEMD_LOG_LEVEL="notice")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (not a systemd Linux)")
@pytest.mark.parametrize("user_units", [False, True], ids=["system", "user"])
def test_systemd_analyze_verify_accepts_the_units_in_a_path_with_spaces(tmp_path, monkeypatch, user_units):
    project = tmp_path / "my trading bot 100%"
    project.mkdir()
    init_workspace(project)
    for script in ("trading_bot.py", "run_scheduler.py", "dashboard.py"):  # ExecStart in the workspace
        shutil.copy(ROOT / script, project / script)
    # The python in the workspace's .venv too, so the executable's path has spaces as well.
    venv_py = project / ".venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.symlink_to(sys.executable)
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)  # as if not run from a virtualenv
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    out_dir = tmp_path / "units"
    res = run_cli(
        "run_scheduler.py", "--print-systemd", "--output-dir", str(out_dir),
        *(["--user-units"] if user_units else []), cwd=project,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    files = sorted(out_dir.glob("*.service"))
    assert [f.name for f in files] == sorted(UNITS)
    for f in files:
        assert (
            f'ExecStart="{project.resolve()}/.venv/bin/python" "{project.resolve()}/'.replace("%", "%%")
            in f.read_text()
        )
    checked = _verify(files, user_mode=user_units, runtime_dir=runtime)
    if checked.returncode != 0 and "Failed to initialize manager" in checked.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {checked.stderr.strip()[:200]}")
    # verify exits 0 on unknown keys and unparsable values (it only warns): any output fails.
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stdout + checked.stderr
    )
    # The check has teeth: the same unit with the paths left unquoted is refused.
    bad = tmp_path / "bad" / "polybot-bot.service"
    bad.parent.mkdir()
    text = (out_dir / "polybot-bot.service").read_text()
    bad.write_text(text.replace('"', ""))
    refused = _verify([bad], user_mode=user_units, runtime_dir=runtime)
    assert refused.returncode != 0 or refused.stderr.strip(), refused


def test_output_dir_writes_the_printed_units_mode_644(tmp_path):
    init_workspace(tmp_path)
    printed, _ = print_units(tmp_path)
    out_dir = tmp_path / "out"
    res = run_cli("run_scheduler.py", "--print-systemd", "--output-dir", str(out_dir), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for name in UNITS:
        path = out_dir / name
        assert path.read_text(encoding="utf-8") == printed[name]
        if os.name == "posix":
            assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert f"Wrote {path}" in res.stdout
    assert "daemon-reload" in res.stdout and "enable --now" in res.stdout


def test_user_units_have_no_user_and_start_with_the_session(tmp_path):
    init_workspace(tmp_path)
    units, _ = print_units(tmp_path, "--user-units")
    for name in UNITS:
        s = settings(units[name])
        assert "Service.User" not in s
        assert "Unit.Wants" not in s  # network-online.target is a system unit
        assert one(s, "Install.WantedBy") == "default.target"
    system, _ = print_units(tmp_path, "--user", getpass.getuser())
    assert one(settings(system["polybot-bot.service"]), "Install.WantedBy") == "multi-user.target"
    assert one(settings(system["polybot-bot.service"]), "Unit.Wants") == "network-online.target"


def test_secrets_stay_out_of_the_units(tmp_path, monkeypatch):
    init_workspace(tmp_path)
    secret = "0xdeadbeefcafe0123456789secret"
    monkeypatch.setenv("POLYMARKET_PRIVATE_KEY", secret)
    env_file = tmp_path / ".env"
    env_file.write_text(f"POLYMARKET_PRIVATE_KEY={secret}\n")
    env_file.chmod(0o644)
    res = run_cli("run_scheduler.py", "--print-systemd", cwd=tmp_path)
    assert res.returncode == 0
    assert secret not in res.stdout + res.stderr
    assert f"chmod 600 {env_file.resolve()}" in res.stderr
    env_file.chmod(0o600)
    res = run_cli("run_scheduler.py", "--print-systemd", cwd=tmp_path)
    assert "chmod 600" not in res.stderr


def test_without_a_virtualenv_the_workspace_venv_is_used_or_a_warning_given(tmp_path, monkeypatch):
    cfg = init_workspace(tmp_path)
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)  # as if run by the system python
    units, warnings = systemd_units.build_units(cfg)
    assert "no virtualenv" in " ".join(warnings)
    assert exec_argv(one(settings(units[0].text), "Service.ExecStart"))[0] == sys.executable
    venv_py = tmp_path / ".venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    venv_py.symlink_to(sys.executable)
    units, warnings = systemd_units.build_units(cfg)
    assert "no virtualenv" not in " ".join(warnings)
    assert exec_argv(one(settings(units[0].text), "Service.ExecStart"))[0] == str(venv_py)


@pytest.mark.parametrize(
    "args,says",
    [
        (["--output-dir", "x"], "--output-dir goes with --print-systemd"),
        (["--user-units"], "--user-units goes with --print-systemd"),
        (["--print-systemd", "--user", "no-such-user-polybot"], "no user 'no-such-user-polybot'"),
        (["--print-systemd", "--user-units", "--user", "root"], "user units"),
        (["--print-systemd", "--print-crontab"], "not allowed with"),
    ],
)
def test_bad_usage_is_one_sentence(tmp_path, args, says):
    init_workspace(tmp_path)
    res = run_cli("run_scheduler.py", *args, cwd=tmp_path)
    assert res.returncode == 2
    assert says in res.stderr
    assert "Traceback" not in res.stderr
    assert not res.stdout


def test_an_installed_polybot_without_scripts_runs_as_a_module(tmp_path, monkeypatch):
    """No script in the workspace nor next to the package (pip install .): ``python -m polybot CMD``."""
    cfg = init_workspace(tmp_path)
    monkeypatch.setattr(systemd_units, "import_root", lambda: str(tmp_path / "site-packages"))
    units, _ = systemd_units.build_units(cfg)
    argv = {u.name: exec_argv(one(settings(u.text), "Service.ExecStart"))[1:] for u in units}
    assert argv == {spec.unit: ["-m", "polybot", spec.command] for spec in SERVICES}


@pytest.mark.skipif(os.name != "posix", reason="users and owners are POSIX here")
def test_a_service_user_who_does_not_own_the_workspace_is_warned_about(tmp_path):
    import pwd

    init_workspace(tmp_path)
    owner = pwd.getpwuid(tmp_path.stat().st_uid).pw_name
    _, warnings = print_units(tmp_path, "--user", owner)
    assert "belongs to" not in warnings
    others = [u.pw_name for u in pwd.getpwall() if u.pw_uid != tmp_path.stat().st_uid]
    if not others:
        pytest.skip("no second user on this machine")
    units, warnings = print_units(tmp_path, "--user", others[0])
    assert one(settings(units["polybot-bot.service"]), "Service.User") == others[0]
    assert f"belongs to {owner}, but the units run as {others[0]}" in warnings
    assert f"--user {owner}" in warnings
