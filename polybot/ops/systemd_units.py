"""systemd units for the trading bot, the scheduler and the dashboard (``python run_scheduler.py
--print-systemd``), with this workspace's absolute paths, its virtualenv's python and the
operator's user filled in.

The bot is restarted after a crash, never after a halt: ``RestartPreventExitStatus`` holds the
halt exit code (:attr:`polybot.errors.HaltedError.exit_code`: a circuit breaker tripped, the
emergency stop, or a start refused because of a latched halt or ``EMERGENCY_STOP``) and the
configuration exit code (a bad config.yaml does not mend itself by restarting). systemd honours
it whatever ``Restart=`` says (systemd.service(5)), so a halted bot stays stopped until the
operator clears the halt and runs ``systemctl start``. ``StartLimitIntervalSec`` /
``StartLimitBurst`` end a crash loop. Output goes to the journal (``journalctl -u UNIT``) as well
as the log files the app writes in ``logs/``. Secrets are never written into a unit: systemd
reads them from the workspace's ``.env`` (``EnvironmentFile=``, mode 600, the file
pre_launch_check.py already checks); nothing here reads or prints its values.

Values are escaped per systemd.syntax(7): ``%`` (specifiers) doubled everywhere, ``$``
(variable expansion) doubled in ``ExecStart=``, words with spaces or quotes double-quoted.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..cli import EXIT_INTERRUPTED
from ..commands import get, import_root
from ..config import Config
from ..errors import ConfigError, HaltedError
from .crontab import venv_python

# Exit codes after which systemd must not restart the service (Restart=on-failure otherwise
# restarts on any non-zero exit, a signal, or a timeout).
HALT_EXIT_CODES: tuple[int, ...] = (HaltedError.exit_code,)
CONFIG_EXIT_CODES: tuple[int, ...] = (ConfigError.exit_code,)
# Exit codes that are a requested stop, not a failure (an interrupt: Ctrl-C / SIGINT).
CLEAN_EXIT_CODES: tuple[int, ...] = (EXIT_INTERRUPTED,)

RESTART_SEC = 30  # wait this long before restarting after a crash
START_LIMIT_INTERVAL_SEC = 900  # at most START_LIMIT_BURST starts in this window, then give up
START_LIMIT_BURST = 5
ENV_FILE = ".env"  # in the workspace: KEY=value lines, mode 600


@dataclass(frozen=True)
class ServiceSpec:
    unit: str  # file name: polybot-bot.service
    command: str  # the polybot command (polybot/commands COMMANDS) it runs
    description: str
    no_restart: tuple[int, ...]  # RestartPreventExitStatus=
    stop_timeout: int  # TimeoutStopSec=: how long a stop may take before SIGKILL
    kill_mode: str  # KillMode=
    why_stop: str  # what happens on systemctl stop (a comment in the unit)
    notes: tuple[str, ...] = ()  # more comment lines for the operator

    @property
    def identifier(self) -> str:
        return self.unit.removesuffix(".service")


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "polybot-bot.service",
        "trade",
        "polybot trading bot",
        HALT_EXIT_CODES + CONFIG_EXIT_CODES,
        120,
        "mixed",
        "SIGTERM ends the bot after the current loop iteration (exit 0, no halt, positions kept)",
    ),
    ServiceSpec(
        "polybot-scheduler.service",
        "scheduler",
        "polybot scheduled jobs (collection, health, backup, maintenance, reports, audit)",
        CONFIG_EXIT_CODES,
        300,
        "mixed",
        "SIGTERM stops scheduling; a running job gets TimeoutStopSec to finish, then is killed",
    ),
    ServiceSpec(
        "polybot-dashboard.service",
        "dashboard",
        "polybot web dashboard",
        CONFIG_EXIT_CODES,
        30,
        "control-group",
        "SIGTERM stops the web server",
        (
            "Set DASHBOARD_PASSWORD in the EnvironmentFile: without a password the dashboard prints a "
            "one-time login token, which then lands in the journal.",
        ),
    ),
)


@dataclass(frozen=True)
class UnitFile:
    name: str
    text: str


# --------------------------------------------------------------------------- escaping
def _check_value(value: str, what: str) -> None:
    bad = [c for c in value if ord(c) < 32 or ord(c) == 127 or c == "\\"]
    if bad:
        raise ConfigError(
            f"The {what} {value!r} contains a control character or a backslash, which a systemd "
            f"unit cannot hold reliably; move the project to a plain directory path."
        )
    if value != value.strip():
        raise ConfigError(
            f"The {what} {value!r} starts or ends with a space, which systemd strips; rename the directory."
        )


def path_value(path: Path | str, what: str = "path") -> str:
    """A path as the value of WorkingDirectory= / EnvironmentFile= (taken literally, specifiers on)."""
    s = str(path)
    _check_value(s, what)
    return s.replace("%", "%%")


def exec_word(word: str, what: str = "argument") -> str:
    """One word of ExecStart=: specifiers and $ expansion escaped, quoted when it needs to be."""
    _check_value(word, what)
    s = word.replace("%", "%%").replace("$", "$$")
    if s and not any(c.isspace() or c in "\"';" for c in s):
        return s
    return '"' + s.replace('"', '\\"') + '"'


def text_value(text: str) -> str:
    """Free text (Description=): specifiers escaped, one line."""
    return " ".join(text.split()).replace("%", "%%")


# --------------------------------------------------------------------------- what to run
def command_argv(cfg: Config, command: str) -> list[str]:
    """What follows the interpreter: the command's script in the workspace, else the one next to
    the running polybot (a clone used with a separate workspace), else ``-m polybot COMMAND``
    (an installed polybot); plus ``--config`` when the config is not the workspace's config.yaml."""
    cmd = get(command)
    ws = Path(cfg.root).resolve()
    argv: list[str] = ["-m", "polybot", cmd.name]
    if cmd.script:
        code_root = import_root()
        for base in [ws, *([Path(code_root)] if code_root else [])]:
            script = base / cmd.script
            if script.is_file():
                argv = [str(script)]
                break
    if cfg.source and Path(cfg.source).resolve() != ws / "config.yaml":
        argv += ["--config", str(Path(cfg.source).resolve())]
    return argv


def service_python(cfg: Config, warnings: list[str]) -> Path:
    """The interpreter for ExecStart: the running virtualenv's python, else the workspace's .venv."""
    py = venv_python(cfg.root)
    if not str(py) or not py.is_absolute():
        raise ConfigError(
            f"Cannot tell which python runs polybot (got {str(py)!r}); run this command with the "
            f"virtualenv's python, e.g. .venv/bin/python run_scheduler.py --print-systemd."
        )
    if not (py.exists() and os.access(py, os.X_OK)):
        raise ConfigError(
            f"The python {py} does not exist or is not executable; recreate the virtualenv "
            f"(python3 -m venv .venv && .venv/bin/pip install -r requirements.txt) and run again."
        )
    if sys.prefix == sys.base_prefix and py == Path(sys.executable):
        warnings.append(
            f"Warning: no virtualenv (not running in one, no .venv/ or venv/ in {cfg.root}): the units "
            f"use {py}, the system python; create .venv and print the units again with .venv/bin/python."
        )
    return py


def service_user(name: str | None, warnings: list[str]) -> str:
    """User= : ``name`` (checked to exist) or the user running this command."""
    try:
        user = name or getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        raise ConfigError("Cannot tell which user runs this command; pass --user NAME.") from None
    if os.name == "posix":
        import pwd

        try:
            pwd.getpwnam(user)
        except KeyError:
            raise ConfigError(
                f"There is no user {user!r} on this machine; create it or pass an existing one with --user NAME."
            ) from None
    if user == "root":
        warnings.append(
            "Warning: the units run polybot as root; pass --user NAME to run them as the user who owns "
            "the workspace (the data, logs and backups are created owner-only)."
        )
    return user


def owner_warnings(cfg: Config, user: str) -> list[str]:
    """The service's user must own the workspace: the data, logs and backups are owner-only."""
    if os.name != "posix":
        return []
    import pwd

    ws = Path(cfg.root).resolve()
    uid = ws.stat().st_uid
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    if owner == user:
        return []
    return [
        f"Warning: {ws} belongs to {owner}, but the units run as {user}, who cannot write its owner-only "
        f"data/ and logs/; pass --user {owner}, or run: sudo chown -R {user} {ws}"
    ]


def env_file_warnings(cfg: Config) -> list[str]:
    """Advice about the workspace's .env (existence and mode only: its contents are never read)."""
    path = Path(cfg.root).resolve() / ENV_FILE
    if not path.exists():
        return [
            f"Note: {path} does not exist; the units read secrets from it (KEY=value lines, no 'export', "
            f"chmod 600). Paper mode needs none; live mode needs the POLYMARKET_* variables there."
        ]
    if os.name == "posix" and path.stat().st_mode & 0o077:
        return [f"Warning: {path} is readable by others; run: chmod 600 {path}"]
    return []


# --------------------------------------------------------------------------- the units
def unit_text(cfg: Config, spec: ServiceSpec, *, python: Path, user: str | None, user_units: bool) -> str:
    ws = Path(cfg.root).resolve()
    argv = command_argv(cfg, spec.command)
    exec_start = " ".join(
        [exec_word(str(python), "python path"), *(exec_word(a, "command-line argument") for a in argv)]
    )
    codes = " ".join(str(c) for c in spec.no_restart)
    lines = [
        f"# {spec.unit}: generated by python run_scheduler.py --print-systemd for {ws}",
        "# Secrets come from the EnvironmentFile (KEY=value lines, chmod 600); never write them here.",
        f"# Exit codes: {RESTART_EXPLAINED[spec.command]}",
        f"# Stop: {spec.why_stop}.",
        *(f"# {n}" for n in spec.notes),
        "[Unit]",
        f"Description={text_value(f'{spec.description} ({ws})')}",
        # a user manager has no network-online.target
        *([] if user_units else ["After=network-online.target", "Wants=network-online.target"]),
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL_SEC}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=simple",
    ]
    if user is not None:
        lines.append(f"User={user}")
    lines += [
        f"WorkingDirectory={path_value(ws, 'project directory')}",
        f"EnvironmentFile=-{path_value(ws / ENV_FILE, 'environment file path')}",
        'Environment="PYTHONUNBUFFERED=1" "PYTHONIOENCODING=utf-8"',
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        f"RestartPreventExitStatus={codes}",
        f"SuccessExitStatus={' '.join(str(c) for c in CLEAN_EXIT_CODES)}",
        "UMask=0077",
        f"KillMode={spec.kill_mode}",
        f"TimeoutStopSec={spec.stop_timeout}",
        "StandardOutput=journal",
        "StandardError=journal",
        f"SyslogIdentifier={spec.identifier}",
        "NoNewPrivileges=yes",
    ]
    if not user_units:  # sandboxing a user manager cannot always set up
        lines += ["PrivateTmp=yes", "ProtectSystem=full"]
    lines += ["", "[Install]", f"WantedBy={'default.target' if user_units else 'multi-user.target'}"]
    return "\n".join(lines) + "\n"


RESTART_EXPLAINED = {
    "trade": (
        f"{' '.join(map(str, HALT_EXIT_CODES))} = halted (circuit breaker, emergency stop, start refused "
        f"because of a halt) and {' '.join(map(str, CONFIG_EXIT_CODES))} = configuration error: never "
        f"restarted; 0 = stopped cleanly; anything else (a crash, a kill) is restarted after "
        f"{RESTART_SEC} s, at most {START_LIMIT_BURST} starts in {START_LIMIT_INTERVAL_SEC // 60} minutes."
    ),
    "scheduler": (
        f"{' '.join(map(str, CONFIG_EXIT_CODES))} = configuration error: not restarted; a crash is "
        f"restarted after {RESTART_SEC} s, at most {START_LIMIT_BURST} starts in "
        f"{START_LIMIT_INTERVAL_SEC // 60} minutes. Use this OR cron / Task Scheduler, not both."
    ),
    "dashboard": (
        f"{' '.join(map(str, CONFIG_EXIT_CODES))} = configuration error (e.g. no password for a public "
        f"host): not restarted; a crash is restarted after {RESTART_SEC} s."
    ),
}


def build_units(
    cfg: Config, *, user: str | None = None, user_units: bool = False
) -> tuple[list[UnitFile], list[str]]:
    """The three unit files and the warnings for the operator (printed on stderr)."""
    if os.name == "nt":
        raise ConfigError(
            "systemd units are for Linux; on Windows use python run_scheduler.py --print-windows-tasks "
            "(Task Scheduler)."
        )
    if user_units and user:
        raise ConfigError(
            "--user NAME is for system units; user units (--user-units) run as the user who installs them."
        )
    warnings: list[str] = []
    python = service_python(cfg, warnings)
    unit_user = None if user_units else service_user(user, warnings)
    if unit_user is not None:
        warnings += owner_warnings(cfg, unit_user)
    warnings += env_file_warnings(cfg)
    if not cfg.dashboard.password:
        warnings.append(
            "Note: no dashboard password in this environment: unless DASHBOARD_PASSWORD is set in .env, "
            "the dashboard service prints its one-time login token into the journal; set it there."
        )
    units = [
        UnitFile(s.unit, unit_text(cfg, s, python=python, user=unit_user, user_units=user_units))
        for s in SERVICES
    ]
    return units, warnings


def write_units(units: list[UnitFile], out_dir: Path) -> list[Path]:
    """Write each unit as ``out_dir/NAME`` with mode 644 (whole file or nothing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for u in units:
        path = out_dir / u.name
        tmp = path.with_name(f".{u.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(u.text, encoding="utf-8")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    return written


def install_hint(user_units: bool, written_to: str | None = None) -> list[str]:
    names = " ".join(s.unit for s in SERVICES)
    ctl = "systemctl --user" if user_units else "sudo systemctl"
    where = "~/.config/systemd/user/" if user_units else "/etc/systemd/system/"
    first = (
        f"# Install: copy the files to {where}, then:"
        if written_to is None
        else f"# Install (copy them to {where} first unless {written_to} is that directory):"
    )
    return [
        first,
        f"#   {ctl} daemon-reload && {ctl} enable --now {names}",
        f"#   journalctl {'--user ' if user_units else ''}-u polybot-bot -f     # the bot's output",
        "# After a halt the bot stays stopped: clear the halt (RUNBOOK.md, Running as systemd services), "
        f"then {ctl} start polybot-bot",
    ]


def main(cfg: Config, args) -> int:
    """``run_scheduler.py --print-systemd [--output-dir DIR] [--user NAME | --user-units]``."""
    user_units = bool(getattr(args, "user_units", False))
    out_dir = Path(args.output_dir).expanduser() if getattr(args, "output_dir", None) else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--output-dir {out_dir} is a file, not a directory; pass a directory.")
    units, warnings = build_units(cfg, user=getattr(args, "user", None), user_units=user_units)
    for w in warnings:
        sys.stderr.write(w + "\n")
    if out_dir is not None:
        for path in write_units(units, out_dir):
            print(f"Wrote {path} (mode 644)")
        print("\n".join(line.removeprefix("# ") for line in install_hint(user_units, str(out_dir))))
        return 0
    out = install_hint(user_units)
    for u in units:
        out += ["", f"# ---- file: {u.name} ----", u.text.rstrip("\n")]
    print("\n".join(out))
    return 0


def check_usage(args) -> None:
    """--output-dir / --user / --user-units only make sense with --print-systemd."""
    if getattr(args, "print_systemd", False):
        return
    for flag, value in (
        ("--output-dir", getattr(args, "output_dir", None)),
        ("--user", getattr(args, "user", None)),
        ("--user-units", getattr(args, "user_units", False)),
    ):
        if value:
            raise ConfigError(f"{flag} goes with --print-systemd; add --print-systemd or drop {flag}.")
