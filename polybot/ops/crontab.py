"""The crontab lines and ``schtasks`` commands for this workspace (``run_scheduler.py
--print-crontab`` / ``--print-windows-tasks``), with the absolute paths of this checkout, its
virtualenv and the workspace filled in, and each job's output appended to its log file as in
the checklist (``>> logs/backup.log 2>&1``).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path, PureWindowsPath

from ..config import Config
from ..errors import ConfigError
from .jobs import WEEKDAYS, JobSpec

CRON_DOW = {d: (i + 1) % 7 for i, d in enumerate(WEEKDAYS)}  # sunday = 0
SCHTASKS_DOW = {d: d[:3].upper() for d in WEEKDAYS}
SCHTASKS_TR_MAX = 261


def venv_python(root: str | Path | None = None) -> Path:
    """The virtualenv's python: the running one if it is a venv, else the project's .venv/venv
    (``root``, default the working directory)."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.executable)
    base = Path.cwd() if root is None else Path(root)
    for name in (".venv", "venv"):
        for rel in (("bin", "python"), ("Scripts", "python.exe")):
            p = base / name / Path(*rel)
            if p.exists():
                return p
    return Path(sys.executable)


def _windows_python(root: str | Path) -> PureWindowsPath:
    if os.name == "nt":
        return PureWindowsPath(venv_python(root))
    prefix = sys.prefix if sys.prefix != sys.base_prefix else str(Path(root).resolve() / ".venv")
    return PureWindowsPath(prefix.replace("/", "\\")) / "Scripts" / "python.exe"


def _rel(path: Path, base: Path) -> str | None:
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return None


def _command_parts(cfg: Config, job: JobSpec) -> tuple[str, list[str], str]:
    """(workspace, [script, args...], log path) with paths relative to the workspace when inside it."""
    ws = Path(cfg.root).resolve()
    argv = job.command_args(ws)
    if argv is None:
        raise ConfigError(
            f"Job {job.name}: {job.script} is not a polybot script and not in {ws}; fix the job list."
        )
    if argv[0] != "-m":
        argv[0] = _rel(Path(argv[0]), ws) or argv[0]
    if cfg.source and Path(cfg.source).resolve() != ws / "config.yaml":
        argv += ["--config", str(Path(cfg.source).resolve())]
    log_file = Path(cfg.log_dir) / job.log
    return str(ws), argv, _rel(log_file, ws) or str(log_file)


def cron_schedule(job: JobSpec) -> str:
    if job.kind == "interval":
        minutes = max(1, int(round(job.every_seconds / 60)))
        if minutes < 60:
            return f"*/{minutes} * * * *"
        return f"0 */{max(1, minutes // 60)} * * *"
    h, m = (int(x) for x in job.at.split(":"))
    if job.kind == "daily":
        return f"{m} {h} * * *"
    if job.kind == "weekly":
        return f"{m} {h} * * {CRON_DOW[job.day]}"
    return f"{m} {h} {int(job.day)} * *"


def _cron_quote(s: str) -> str:
    return shlex.quote(s).replace("%", "\\%")  # % is a newline in crontab


def crontab_lines(cfg: Config, jobs: list[JobSpec]) -> list[str]:
    py = venv_python(cfg.root)
    out = [
        f"# polybot jobs for {Path(cfg.root).resolve()} (python run_scheduler.py --print-crontab)",
        "# Install: crontab -e, paste these lines, save; check with: crontab -l",
        "# Times are this machine's local time (cron's). Use cron OR run_scheduler.py, not both.",
        "# Backup retention is applied by backup_database.py itself (backup.retention_days).",
    ]
    for job in jobs:
        ws, argv, logf = _command_parts(cfg, job)
        cmd = " ".join(_cron_quote(a) for a in argv)
        out.append(f"# {job.name}: {job.describe()}")
        out.append(
            f"{cron_schedule(job)} cd {_cron_quote(ws)} && {_cron_quote(str(py))} {cmd} "
            f">> {_cron_quote(logf)} 2>&1"
        )
    return out


def _win_quote(s: str) -> str:
    return f'\\"{s}\\"' if " " in s else s


def schtasks_schedule(job: JobSpec) -> str:
    if job.kind == "interval":
        minutes = max(1, int(round(job.every_seconds / 60)))
        return f"/sc minute /mo {minutes}"
    if job.kind == "daily":
        return f"/sc daily /st {job.at}"
    if job.kind == "weekly":
        return f"/sc weekly /d {SCHTASKS_DOW[job.day]} /st {job.at}"
    return f"/sc monthly /d {int(job.day)} /st {job.at}"


def windows_task_lines(cfg: Config, jobs: list[JobSpec]) -> list[str]:
    py = str(_windows_python(cfg.root))
    out = [
        "REM polybot scheduled tasks (python run_scheduler.py --print-windows-tasks); run in an administrator",
        "REM prompt. They run as SYSTEM as in the checklist: SYSTEM does not see variables set with",
        "REM 'setx VAR value' for your user; set them machine-wide (setx /M VAR value) or replace",
        'REM /ru "SYSTEM" with /ru "%USERDOMAIN%\\%USERNAME%" /rp. Times are local time.',
    ]
    if os.name != "nt":
        out.append(
            "REM Generated on a non-Windows machine: run this command on the Windows machine for its paths."
        )
    names = []
    for job in jobs:
        ws, argv, logf = _command_parts(cfg, job)
        ws_w = str(PureWindowsPath(ws.replace("/", "\\"))) if os.name != "nt" else ws
        args = " ".join(
            _win_quote(a.replace("/", "\\") if os.name != "nt" and not a.startswith("-") else a) for a in argv
        )
        log_w = logf.replace("/", "\\") if os.name != "nt" else logf
        tr = f"cmd /c cd /d {_win_quote(ws_w)} && {_win_quote(py)} {args} >> {_win_quote(log_w)} 2>&1"
        name = job.task or f"Polymarket_{job.name}"
        names.append(name)
        if len(tr) > SCHTASKS_TR_MAX:
            out.append(
                f"REM WARNING: the /tr text below is {len(tr)} characters (schtasks allows "
                f"{SCHTASKS_TR_MAX}); move the workspace to a shorter path."
            )
        out.append(f'schtasks /create /tn "{name}" /tr "{tr}" {schtasks_schedule(job)} /ru "SYSTEM" /f')
    out.append("REM Verify:")
    out += [f'schtasks /query /tn "{n}"' for n in names]
    return out
