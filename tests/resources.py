"""Real exhausted resources for the failure-handling tests (issue 15): a small tmpfs
mounted by the test (root only, as in CI; otherwise the test is skipped with the
reason), filled to the last byte."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


def can_mount() -> bool:
    return os.name == "posix" and hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m"):
    """A size-limited tmpfs mounted at ``path`` for the duration (root only, as in CI; the
    test is skipped with the reason otherwise)."""
    if not can_mount():
        pytest.skip("needs root to mount a size-limited tmpfs (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write one file until the filesystem holding ``directory`` has no byte left."""
    ballast = directory / "ballast.bin"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):  # unbuffered: every byte that fits is written
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return ballast
