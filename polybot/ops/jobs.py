"""The periodic jobs: what runs when (:class:`JobSpec`), the default list from ``schedule:`` in
config.yaml, and the YAML job-list format.

Shared by :mod:`polybot.ops.scheduler` (runs them) and :mod:`polybot.ops.crontab` (prints the
cron / Task Scheduler lines for them); imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..commands import child_argv, for_script
from ..config import Config, read_yaml
from ..errors import ConfigError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PERIODS = {"daily": 86400.0, "weekly": 7 * 86400.0, "monthly": 30 * 86400.0}


@dataclass(frozen=True)
class JobSpec:
    name: str
    script: str  # a polybot script name (collect_market_data.py) or an absolute path
    args: tuple[str, ...] = ()
    kind: str = "interval"  # interval | daily | weekly | monthly
    every_seconds: float = 300.0  # interval jobs
    at: str = "00:00"  # HH:MM local time (daily / weekly / monthly)
    day: str = ""  # weekday name (weekly) or day of month (monthly)
    timeout_seconds: float = 1800.0
    log: str = "cron.log"  # output file in log_dir
    task: str = ""  # Windows Task Scheduler name

    def command_args(self, root: str | Path) -> list[str] | None:
        """What follows the interpreter on the command line: the script (absolute, or the one in
        the workspace ``root``: a clone's ``collect_market_data.py``) and the job's arguments;
        else ``-m polybot COMMAND`` for a polybot script (an installed polybot); else None."""
        p = Path(self.script)
        if not p.is_absolute() and (Path(root) / p).exists():
            p = Path(root).resolve() / p
        if p.is_absolute():
            return [str(p), *self.args] if p.exists() else None
        try:
            name = for_script(p.name).name
        except KeyError:
            return None
        return child_argv(name, *self.args)[1:]

    @property
    def period(self) -> float:
        return self.every_seconds if self.kind == "interval" else PERIODS[self.kind]

    def describe(self) -> str:
        if self.kind == "interval":
            s = self.every_seconds
            return f"every {s / 60:g} minutes" if s >= 60 and s % 60 == 0 else f"every {s:g} s"
        if self.kind == "daily":
            return f"daily at {self.at}"
        if self.kind == "weekly":
            return f"every {self.day.capitalize()} at {self.at}"
        return f"monthly on day {self.day} at {self.at}"


def _hhmm(value: str, key: str) -> str:
    try:
        h, m = str(value).split(":")
        if 0 <= int(h) < 24 and 0 <= int(m) < 60:
            return f"{int(h):02d}:{int(m):02d}"
    except ValueError:
        pass
    raise ConfigError(f"Config key '{key}' must be a time HH:MM (got {value!r}); fix it in config.yaml.")


def default_jobs(cfg: Config) -> list[JobSpec]:
    s = cfg.schedule
    timeout = float(s.job_timeout_minutes) * 60
    day = s.maintenance_day.strip().lower()
    if day not in WEEKDAYS:
        raise ConfigError(
            f"Config key 'schedule.maintenance_day' must be a weekday name (got {day!r}); "
            f"fix it in config.yaml."
        )
    if not 1 <= s.audit_day_of_month <= 28:
        raise ConfigError("Config key 'schedule.audit_day_of_month' must be 1-28; fix it in config.yaml.")
    return [
        JobSpec(
            "collect",
            "collect_market_data.py",
            every_seconds=s.collection_minutes * 60.0,
            timeout_seconds=min(timeout, s.collection_minutes * 60.0 * 2),
            log="cron.log",
            task="Polymarket_DataCollection",
        ),
        JobSpec(
            "health",
            "health_check.py",
            every_seconds=s.health_minutes * 60.0,
            timeout_seconds=min(timeout, 120.0),
            log="health.log",
            task="Polymarket_HealthCheck",
        ),
        JobSpec(
            "backup",
            "backup_database.py",
            kind="daily",
            at=_hhmm(s.backup_time, "schedule.backup_time"),
            timeout_seconds=timeout,
            log="backup.log",
            task="Polymarket_Backup",
        ),
        JobSpec(
            "maintenance",
            "maintain_database.py",
            kind="weekly",
            day=day,
            at=_hhmm(s.maintenance_time, "schedule.maintenance_time"),
            timeout_seconds=timeout,
            log="maintenance.log",
            task="Polymarket_Maintenance",
        ),
        JobSpec(
            "report",
            "daily_report.py",
            kind="daily",
            at=_hhmm(s.report_time, "schedule.report_time"),
            timeout_seconds=timeout,
            log="reports.log",
            task="Polymarket_DailyReport",
        ),
        JobSpec(
            "weekly_report",
            "daily_report.py",
            ("--weekly",),
            kind="weekly",
            day=day,
            at=_hhmm(s.report_time, "schedule.report_time"),
            timeout_seconds=timeout,
            log="reports.log",
            task="Polymarket_WeeklyReport",
        ),
        JobSpec(
            "audit",
            "audit_backups.py",
            kind="monthly",
            day=str(s.audit_day_of_month),
            at=_hhmm(s.audit_time, "schedule.audit_time"),
            timeout_seconds=timeout,
            log="audit.log",
            task="Polymarket_BackupAudit",
        ),
    ]


def load_jobs_file(path: Path) -> list[JobSpec]:
    """A YAML job list (test hook / custom setups)::

    jobs:
      - name: collect
        script: collect_market_data.py   # relative to this file's directory, or absolute
        args: []
        every_seconds: 300               # or every_minutes, or daily: "02:00",
                                         # weekly: "sunday 03:00", monthly: "1 04:00"
        timeout_seconds: 60
        log: cron.log
    """
    data = read_yaml(Path(path))
    base = Path(path).resolve().parent
    jobs = []
    for i, j in enumerate(data.get("jobs") or []):
        where = f"jobs[{i}]"
        try:
            name, script = str(j["name"]), str(j["script"])
        except (KeyError, TypeError):
            raise ConfigError(f"{path}: {where} needs 'name' and 'script'.") from None
        sp = Path(script)
        kw: dict = dict(
            args=tuple(str(a) for a in j.get("args") or ()),
            log=str(j.get("log", f"{name}.log")),
            timeout_seconds=float(j.get("timeout_seconds", 1800)),
            task=str(j.get("task", "")),
        )
        if "every_seconds" in j or "every_minutes" in j:
            secs = float(j["every_seconds"]) if "every_seconds" in j else float(j["every_minutes"]) * 60
            kw.update(kind="interval", every_seconds=secs)
        elif "daily" in j:
            kw.update(kind="daily", at=_hhmm(j["daily"], f"{where}.daily"))
        elif "weekly" in j:
            d, t = str(j["weekly"]).split()
            kw.update(kind="weekly", day=d.lower(), at=_hhmm(t, f"{where}.weekly"))
        elif "monthly" in j:
            d, t = str(j["monthly"]).split()
            kw.update(kind="monthly", day=str(int(d)), at=_hhmm(t, f"{where}.monthly"))
        else:
            raise ConfigError(
                f"{path}: {where} needs every_seconds, every_minutes, daily, weekly or monthly."
            )
        jobs.append(JobSpec(name, str(sp if sp.is_absolute() else base / sp), **kw))
    if not jobs:
        raise ConfigError(f"{path} has no jobs; see polybot/ops/jobs.py load_jobs_file for the format.")
    return jobs
