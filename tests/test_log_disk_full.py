"""Issue 15 #5: a full logs/ filesystem is reported once, not 74 tracebacks in 8 s."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent("""
    import logging, os, sys
    from pathlib import Path
    from polybot import logs
    seen = []
    logs.on_log_failure(seen.append)
    log = logs.setup_logging(Path(sys.argv[1]), level="INFO", console_level="CRITICAL")
    log.info("before the disk filled")
    ballast = Path(sys.argv[2])
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    for size in (65536, 4096, 1):
        try:
            while True:
                os.write(fd, b"\\0" * size)
        except OSError:
            pass
    os.close(fd)
    # Roll to a new day's file so the write needs new blocks on the full filesystem.
    logs._CONFIGURED["file"]._day = None
    for i in range(200):
        log.info("record %d %s", i, "x" * 4000)
    print("FAILURE", logs.log_file_failure())
    print("SEEN", len(seen), seen[0] is not None if seen else None)
    ballast.unlink()
    log.info("after space came back")
    print("RECOVERED", logs.log_file_failure() is None, seen[-1] is None)
""")


def test_full_log_filesystem_reported_once(small_fs):
    logdir = small_fs / "logs"
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(logdir), str(small_fs / "ballast")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "--- Logging error ---" not in res.stderr and "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "disk is full" in errors[0] and str(logdir) in errors[0]
    assert "FAILURE the log file in" in res.stdout
    assert "SEEN 1 True" in res.stdout  # listeners told once
    assert "RECOVERED True True" in res.stdout
    text = "".join(p.read_text() for p in logdir.glob("*.log"))
    assert "after space came back" in text and "records were lost" in text
