"""run_scheduler.py: every job runs on a compressed schedule, a crash or a hang never stops the
others, every run is logged (job_runs + log lines); --once; crontab / schtasks output."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from polybot.config import default_config, load_config
from polybot.ops.common import pid_alive
from polybot.ops.crontab import crontab_lines, venv_python, windows_task_lines
from polybot.ops.scheduler import Scheduler, default_jobs
from tests.conftest import ROOT, run_cli
from tests.ops.helpers import init_workspace

OK_JOB = """
import sys, pathlib
with open(pathlib.Path(__file__).with_name("ok_runs.txt"), "a") as fh:
    fh.write("run\\n")
print("ok job done")
"""
CRASH_JOB = """
print("about to crash")
raise SystemExit(3)
"""
HANG_JOB = """
import pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(pathlib.Path(__file__).with_name("hang_pids.txt"), "a") as fh:
    fh.write(f"{child.pid}\\n")
print("hanging", flush=True)
time.sleep(120)
"""
JOBS = """
jobs:
  - {name: ok, script: ok_job.py, every_seconds: 0.5, timeout_seconds: 10, log: ok.log}
  - {name: crash, script: crash_job.py, every_seconds: 0.5, timeout_seconds: 10, log: crash.log}
  - {name: hang, script: hang_job.py, every_seconds: 0.5, timeout_seconds: 1, log: hang.log}
"""


def _fake_jobs(tmp_path: Path) -> Path:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "ok_job.py").write_text(OK_JOB)
    (jobs / "crash_job.py").write_text(CRASH_JOB)
    (jobs / "hang_job.py").write_text(HANG_JOB)
    (jobs / "jobs.yaml").write_text(JOBS)
    return jobs


def test_every_job_runs_and_a_crash_or_a_hang_does_not_stop_the_others(tmp_path):
    cfg = init_workspace(tmp_path)
    jobs = _fake_jobs(tmp_path)
    res = run_cli(
        "run_scheduler.py", "--jobs-file", str(jobs / "jobs.yaml"), "--run-for", "5", cwd=tmp_path, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr

    ok_runs = len((jobs / "ok_runs.txt").read_text().splitlines())
    assert ok_runs >= 4  # kept running every 0.5 s despite the others
    conn = sqlite3.connect(cfg.database_path)
    rows = conn.execute("SELECT job, exit_code, finished_at, detail FROM job_runs ORDER BY id").fetchall()
    conn.close()
    by_job: dict[str, list] = {}
    for job, code, finished, detail in rows:
        assert finished is not None  # every run was closed before exit
        by_job.setdefault(job, []).append((code, detail))
    assert len(by_job["ok"]) == ok_runs and all(c == 0 for c, _ in by_job["ok"])
    assert by_job["ok"][0][1] == "ok job done"
    assert len(by_job["crash"]) >= 4 and all(c == 3 and d == "about to crash" for c, d in by_job["crash"])
    assert len(by_job["hang"]) >= 2
    assert all("timed out after 1 s and was killed" in d for _, d in by_job["hang"])
    for pid in (jobs / "hang_pids.txt").read_text().split():  # the hung job's children were killed too
        assert not pid_alive(int(pid))

    logs = cfg.log_dir
    assert "--- " in (logs / "ok.log").read_text() and "ok job done" in (logs / "ok.log").read_text()
    assert "about to crash" in (logs / "crash.log").read_text()
    text = "".join(p.read_text() for p in logs.glob("trading_system_*.log"))
    assert "Job ok finished: exit 0" in text
    assert "Job crash finished: exit 3" in text
    assert "[ERROR] polybot.scheduler: Job hang timed out after 1 s and was killed" in text
    assert "Job hang skipped: its previous run is still going" in text


def test_once_runs_one_job_and_returns_its_code(tmp_path):
    init_workspace(tmp_path)
    jobs = _fake_jobs(tmp_path)
    res = run_cli("run_scheduler.py", "--jobs-file", str(jobs / "jobs.yaml"), "--once", "crash", cwd=tmp_path)
    assert res.returncode == 3
    assert "Job crash: exit 3" in res.stdout and "about to crash" in res.stdout
    res = run_cli("run_scheduler.py", "--jobs-file", str(jobs / "jobs.yaml"), "--once", "ok", cwd=tmp_path)
    assert res.returncode == 0
    res = run_cli("run_scheduler.py", "--once", "nope", cwd=tmp_path)
    assert res.returncode == 2 and "No job named 'nope'" in res.stderr


def test_a_second_scheduler_exits_cleanly(tmp_path):
    init_workspace(tmp_path)
    jobs = _fake_jobs(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    first = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "run_scheduler.py"),
            "--jobs-file",
            str(jobs / "jobs.yaml"),
            "--run-for",
            "4",
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (jobs / "ok_runs.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        res = run_cli(
            "run_scheduler.py", "--jobs-file", str(jobs / "jobs.yaml"), "--run-for", "1", cwd=tmp_path
        )
        assert res.returncode == 0 and "already running" in res.stderr
    finally:
        first.wait(timeout=60)


def test_default_jobs_follow_the_config_and_scale(tmp_path):
    init_workspace(tmp_path, {"schedule": {"backup_time": "01:30", "maintenance_day": "Saturday"}})
    cfg = load_config(tmp_path / "config.yaml")
    jobs = {j.name: j for j in default_jobs(cfg)}
    assert set(jobs) == {"collect", "health", "backup", "maintenance", "report", "weekly_report", "audit"}
    assert jobs["backup"].describe() == "daily at 01:30"
    assert jobs["maintenance"].describe() == "every Saturday at 03:00"
    assert jobs["audit"].describe() == "monthly on day 1 at 04:00"
    assert jobs["collect"].describe() == "every 5 minutes"
    s = Scheduler(cfg, list(jobs.values()), scale=0.001)
    assert {j.unit for j in s.sched.jobs} == {"seconds"}
    periods = sorted(round(j.interval, 6) for j in s.sched.jobs)
    assert periods == [0.3, 0.3, 86.4, 86.4, 604.8, 604.8, 2592.0]
    s = Scheduler(cfg, list(jobs.values()))
    at = {str(j.at_time) for j in s.sched.jobs if j.at_time}
    assert {"01:30:00", "03:00:00", "18:00:00", "04:00:00"} <= at


def test_print_crontab_for_this_checkout_matches_the_checklist():
    cfg = default_config(ROOT)
    lines = crontab_lines(cfg, default_jobs(cfg))
    py = venv_python()
    assert f"*/5 * * * * cd {ROOT} && {py} collect_market_data.py >> logs/cron.log 2>&1" in lines
    assert f"0 2 * * * cd {ROOT} && {py} backup_database.py >> logs/backup.log 2>&1" in lines
    assert f"0 3 * * 0 cd {ROOT} && {py} maintain_database.py >> logs/maintenance.log 2>&1" in lines
    assert f"0 18 * * * cd {ROOT} && {py} daily_report.py >> logs/reports.log 2>&1" in lines
    assert f"*/5 * * * * cd {ROOT} && {py} health_check.py >> logs/health.log 2>&1" in lines
    assert f"0 4 1 * * cd {ROOT} && {py} audit_backups.py >> logs/audit.log 2>&1" in lines
    win = "\n".join(windows_task_lines(cfg, default_jobs(cfg)))
    assert 'schtasks /create /tn "Polymarket_DataCollection" /tr "cmd /c cd /d ' in win
    assert 'collect_market_data.py >> logs\\cron.log 2>&1" /sc minute /mo 5 /ru "SYSTEM"' in win
    assert 'backup_database.py >> logs\\backup.log 2>&1" /sc daily /st 02:00 /ru "SYSTEM"' in win
    assert "/sc weekly /d SUN /st 03:00" in win and "/sc monthly /d 1 /st 04:00" in win
    assert 'schtasks /query /tn "Polymarket_Backup"' in win


def test_print_crontab_for_another_workspace(tmp_path):
    init_workspace(tmp_path)
    res = run_cli("run_scheduler.py", "--print-crontab", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    py = venv_python()
    assert (
        f"0 2 * * * cd {tmp_path} && {py} -m polybot backup >> logs/backup.log 2>&1"
        in res.stdout.splitlines()
    )
    res = run_cli("run_scheduler.py", "--print-windows-tasks", cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.count("schtasks /create") == 7
