"""``run_scheduler.py``: every periodic job in one process (the ``schedule`` package), as an
alternative to cron / Task Scheduler — use one or the other, not both.

Default jobs (times from ``schedule:`` in config.yaml, in this machine's LOCAL time, exactly
like cron and Task Scheduler interpret them; the database and logs stay in UTC):

=============  ==============================  ==========================  ===================
job            command                         when                        output
=============  ==============================  ==========================  ===================
collect        collect_market_data.py          every 5 minutes             logs/cron.log
health         health_check.py                 every 5 minutes             logs/health.log
backup         backup_database.py              daily 02:00                 logs/backup.log
maintenance    maintain_database.py            Sunday 03:00                logs/maintenance.log
report         daily_report.py                 daily 18:00                 logs/reports.log
weekly_report  daily_report.py --weekly        Sunday 18:00                logs/reports.log
audit          audit_backups.py                monthly, 1st, 04:00         logs/audit.log
=============  ==============================  ==========================  ===================

Each run is a subprocess (``[sys.executable, script]`` when the workspace holds the script, as in
a clone of the repository, else ``[sys.executable, -m, polybot, command]``; working directory =
the config's directory, ``POLYBOT_CONFIG`` set) started from its own thread with a timeout
(``schedule.job_timeout_minutes``): a crash or a hang of one job never delays the others; a hung
job's whole process group is killed. A job still running when it is due again is skipped (and
logged). Every run is logged (log line + a ``job_runs`` row: start, end, exit code, duration,
last output line).

Test hooks: ``--jobs-file FILE`` replaces the job list (YAML, see ops/jobs.py :func:`load_jobs_file`),
``--interval-scale X`` (or ``POLYBOT_SCHEDULE_SCALE``) turns every job into "every period × X
seconds" (daily = 86400 s × X), ``--run-for SECONDS`` stops after that long.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .. import db
from ..commands import child_env
from ..config import Config
from ..errors import AlreadyRunning, ConfigError
from ..logs import redact
from ..timefmt import iso_seconds
from . import systemd_units
from .crontab import crontab_lines, windows_task_lines
from .jobs import JobSpec, default_jobs, load_jobs_file

log = logging.getLogger("polybot.scheduler")
SCALE_ENV = "POLYBOT_SCHEDULE_SCALE"


# --------------------------------------------------------------------------- running one job
@dataclass
class JobResult:
    job: str
    exit_code: int | None
    seconds: float
    timed_out: bool
    detail: str


def _record_start(cfg: Config, job: str, started: float) -> int | None:
    if not Path(cfg.database_path).exists():
        return None
    try:
        conn = db.connect(cfg.database_path)
        try:
            with db.atomic(conn):
                return conn.execute(
                    "INSERT INTO job_runs(job, started_at) VALUES (?, ?)", (job, int(started))
                ).lastrowid
        finally:
            conn.close()
    except Exception as exc:  # logging the run must never stop the job
        log.warning("could not record the start of job %s: %s", job, exc)
        return None


def _record_end(cfg: Config, row_id: int | None, res: JobResult, finished: float) -> None:
    if row_id is None:
        return
    try:
        conn = db.connect(cfg.database_path)
        try:
            with db.atomic(conn):
                conn.execute(
                    "UPDATE job_runs SET finished_at = ?, exit_code = ?, duration = ?, detail = ? "
                    "WHERE id = ?",
                    (int(finished), res.exit_code, round(res.seconds, 3), res.detail[:500], row_id),
                )
        finally:
            conn.close()
    except Exception as exc:
        log.warning("could not record the end of job %s: %s", res.job, exc)


def _kill_tree(proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], capture_output=True)
    with contextlib.suppress(OSError):
        proc.kill()


def _tail(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read()[-4000:].decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return redact(lines[-1]) if lines else ""


def run_job(cfg: Config, job: JobSpec, *, python: str = sys.executable) -> JobResult:
    """Run ``job`` once in a subprocess (output appended to its log), with its timeout."""
    log_dir = Path(cfg.log_dir)
    db.ensure_private_dir(log_dir)
    out_path = log_dir / job.log
    started = time.time()
    row_id = _record_start(cfg, job.name, started)
    args = job.command_args(cfg.root)
    if args is None:
        script = Path(job.script)
        where = script.parent if script.is_absolute() else Path(cfg.root)
        res = JobResult(job.name, 127, 0.0, False, f"{script.name} not found in {where}")
        log.error("Job %s cannot run: %s", job.name, res.detail)
        _record_end(cfg, row_id, res, time.time())
        return res
    argv = [python, *args]
    env = child_env(dict(os.environ, PYTHONIOENCODING="utf-8"))
    if cfg.source:
        env["POLYBOT_CONFIG"] = str(cfg.source)
    new = not out_path.exists()
    fd = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    if new and os.name == "posix":
        os.chmod(out_path, 0o640)
    stamp = iso_seconds(started)
    os.write(fd, f"--- {stamp} run_scheduler: {job.name}: {' '.join(argv[1:])}\n".encode())
    offset = os.lseek(fd, 0, os.SEEK_END)
    kw: dict = (
        {"start_new_session": True}
        if os.name == "posix"
        else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    )
    t0 = time.monotonic()
    timed_out = False
    try:
        proc = subprocess.Popen(
            argv,
            cwd=str(cfg.root),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            **kw,
        )
        try:
            code: int | None = proc.wait(timeout=job.timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_tree(proc)
            code = proc.wait()
    except OSError as exc:
        code, detail = 126, f"cannot start: {exc}"
    else:
        detail = _tail(out_path, offset)
    finally:
        os.close(fd)
    seconds = time.monotonic() - t0
    if timed_out:
        detail = f"timed out after {job.timeout_seconds:g} s and was killed" + (
            f"; last output: {detail}" if detail else ""
        )
    res = JobResult(job.name, code, seconds, timed_out, detail)
    if timed_out:
        log.error("Job %s %s", job.name, detail)
    elif code == 0:
        log.info("Job %s finished: exit 0 in %.1f s", job.name, seconds)
    else:
        log.warning(
            "Job %s finished: exit %s in %.1f s: %s", job.name, code, seconds, detail or "(no output)"
        )
    _record_end(cfg, row_id, res, time.time())
    return res


# --------------------------------------------------------------------------- the scheduler
class Scheduler:
    """Registers the jobs with ``schedule`` and starts each due run in its own thread."""

    def __init__(
        self, cfg: Config, jobs: list[JobSpec], *, scale: float | None = None, python: str = sys.executable
    ):
        import schedule

        self.cfg, self.jobs, self.scale, self.python = cfg, jobs, scale, python
        self.sched = schedule.Scheduler()
        self.stop_event = threading.Event()
        self._running: dict[str, threading.Thread] = {}
        self._skip_logged: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self.results: list[JobResult] = []
        for job in jobs:
            self._register(job)

    def _register(self, job: JobSpec) -> None:
        # schedule annotates every(interval: int) but builds a timedelta from it, so float seconds
        # work (and are needed: scaled test runs, every_minutes: 0.5)
        if self.scale:
            self.sched.every(max(job.period * self.scale, 0.05)).seconds.do(self.start, job)  # type: ignore[arg-type]
        elif job.kind == "interval":
            self.sched.every(job.every_seconds).seconds.do(self.start, job)  # type: ignore[arg-type]
        elif job.kind == "daily":
            self.sched.every().day.at(job.at).do(self.start, job)
        elif job.kind == "weekly":
            getattr(self.sched.every(), job.day).at(job.at).do(self.start, job)
        else:
            self.sched.every().day.at(job.at).do(self._monthly, job)

    def _monthly(self, job: JobSpec) -> None:
        if time.localtime().tm_mday == int(job.day):
            self.start(job)

    def start(self, job: JobSpec) -> None:
        with self._lock:
            t = self._running.get(job.name)
            if t is not None and t.is_alive():
                if self._skip_logged.get(job.name) is not t:  # once per blocking run
                    log.warning("Job %s skipped: its previous run is still going", job.name)
                    self._skip_logged[job.name] = t
                return
            t = threading.Thread(target=self._run, args=(job,), name=f"job-{job.name}", daemon=True)
            self._running[job.name] = t
            t.start()

    def _run(self, job: JobSpec) -> None:
        try:
            res = run_job(self.cfg, job, python=self.python)
        except Exception:  # a bug in the runner must not kill the scheduler
            log.exception("Job %s could not be run", job.name)
            return
        with self._lock:
            self.results.append(res)

    def running(self) -> list[str]:
        with self._lock:
            return [n for n, t in self._running.items() if t.is_alive()]

    def loop(self, run_for: float | None = None) -> None:
        deadline = None if run_for is None else time.monotonic() + run_for
        while not self.stop_event.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.sched.run_pending()
            idle = self.sched.idle_seconds
            wait = 1.0 if idle is None else min(max(idle, 0.02), 1.0)
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            self.stop_event.wait(wait)

    def wait_for_jobs(self) -> None:
        for t in list(self._running.values()):
            t.join()


def scale_from(args) -> float | None:
    value = args.interval_scale if args.interval_scale is not None else os.environ.get(SCALE_ENV)
    if value in (None, ""):
        return None
    scale = float(value)
    if scale <= 0:
        raise ConfigError(f"--interval-scale / {SCALE_ENV} must be > 0 (got {value}).")
    return scale


# --------------------------------------------------------------------------- the script
def _jobs(cfg: Config, args) -> list[JobSpec]:
    return load_jobs_file(Path(args.jobs_file)) if args.jobs_file else default_jobs(cfg)


def main(args) -> int:
    from filelock import FileLock, Timeout

    from ..config import load_config
    from ..logs import configure_from

    systemd_units.check_usage(args)
    cfg = load_config(args.config, require_mode_secrets=False)
    if args.print_systemd:
        return systemd_units.main(cfg, args)
    jobs = _jobs(cfg, args)
    if args.print_crontab or args.print_windows_tasks:
        print("\n".join(crontab_lines(cfg, jobs) if args.print_crontab else windows_task_lines(cfg, jobs)))
        return 0
    if args.list:
        for j in jobs:
            print(
                f"{j.name:<14} {j.describe():<28} {' '.join([Path(j.script).name, *j.args]):<30} "
                f"-> logs/{j.log} (timeout {j.timeout_seconds / 60:g} min)"
            )
        return 0
    configure_from(cfg, console_level="CRITICAL" if args.once else "INFO")
    if args.once:
        match = [j for j in jobs if args.once in (j.name, Path(j.script).name, Path(j.script).stem)]
        if not match:
            raise ConfigError(
                f"No job named {args.once!r}; choose one of: {', '.join(j.name for j in jobs)}."
            )
        res = run_job(cfg, match[0])
        status = "timed out" if res.timed_out else f"exit {res.exit_code}"
        print(
            f"Job {res.job}: {status} in {res.seconds:.1f} s (output in {Path(cfg.log_dir) / match[0].log})"
            + (f"\n  {res.detail}" if res.detail else "")
        )
        return res.exit_code if res.exit_code is not None and res.exit_code >= 0 else 1
    scale = scale_from(args)
    db.ensure_private_dir(Path(cfg.database_path).parent)
    lock = FileLock(str(Path(cfg.database_path).parent / "run_scheduler.lock"), timeout=0, mode=0o600)
    try:
        lock.acquire()
    except Timeout:
        raise AlreadyRunning(
            "run_scheduler.py is already running for this workspace; stop it first, or run "
            "one job now with python run_scheduler.py --once JOB."
        ) from None
    try:
        sched = Scheduler(cfg, jobs, scale=scale)
        _install_signal_handlers(sched)
        log.info(
            "Scheduler started (%s): %s",
            f"interval scale {scale:g}" if scale else "local time",
            "; ".join(f"{j.name} {j.describe()}" for j in jobs),
        )
        with contextlib.suppress(KeyboardInterrupt):
            sched.loop(run_for=args.run_for)
        busy = sched.running()
        if busy:
            log.info("Stopping: waiting for running job(s) %s (each ends by its timeout)", ", ".join(busy))
        sched.wait_for_jobs()
        failed = [r for r in sched.results if r.exit_code != 0]
        log.info("Scheduler stopped: %d run(s), %d not successful", len(sched.results), len(failed))
    finally:
        lock.release()
    return 0


def _install_signal_handlers(sched: Scheduler) -> None:
    def stop(signum, frame):
        sched.stop_event.set()

    with contextlib.suppress(ValueError, AttributeError):  # not the main thread / not available
        signal.signal(signal.SIGTERM, stop)


def add_arguments(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--once",
        metavar="JOB",
        help="run one job now (collect, health, backup, maintenance, "
        "report, weekly_report, audit) and exit with its code",
    )
    group.add_argument(
        "--print-crontab", action="store_true", help="print the crontab lines for this workspace"
    )
    group.add_argument(
        "--print-windows-tasks", action="store_true", help="print the schtasks commands for this workspace"
    )
    group.add_argument(
        "--print-systemd",
        action="store_true",
        help="print systemd units for the bot, this scheduler and the dashboard (RUNBOOK: Running as "
        "systemd services)",
    )
    group.add_argument("--list", action="store_true", help="list the jobs and their schedule")
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="with --print-systemd: write the unit files into DIR (mode 644) instead of printing them",
    )
    parser.add_argument(
        "--user",
        metavar="NAME",
        help="with --print-systemd: the user the services run as (default: the current user)",
    )
    parser.add_argument(
        "--user-units",
        action="store_true",
        help="with --print-systemd: units for systemd --user (~/.config/systemd/user), no User=",
    )
    parser.add_argument("--jobs-file", metavar="YAML", help="use this job list instead of the default one")
    parser.add_argument(
        "--interval-scale",
        type=float,
        default=None,
        metavar="X",
        help=f"testing: run every job every (period x X) seconds (env {SCALE_ENV})",
    )
    parser.add_argument(
        "--run-for",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C / SIGTERM)",
    )
