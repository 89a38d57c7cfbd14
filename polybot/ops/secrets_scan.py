"""The checklist's "no hardcoded secrets" greps, made precise enough to act on.

The checklist runs::

    grep -r "sk-.*" . --exclude-dir=venv --exclude-dir=.git
    grep -r "api_key.*=.*['\\"]" . --exclude-dir=venv --exclude-dir=.git
    grep -r "bot_token.*=.*['\\"]" . --exclude-dir=venv --exclude-dir=.git

and accepts "only environment variable references". Taken literally those patterns also match
ordinary code (``api_key = cfg.polymarket.api_key``), so this scan reports only an actual
value: an ``sk-`` key of 20+ characters, or a secret-named key (api_key, api_secret,
api_passphrase, private_key, bot_token, password, passphrase) assigned a quoted literal of 8+
characters (any value in YAML/.env-style files) that is not a ``${VAR}`` reference or an
obvious placeholder (``your_key``, ``****``, ``<...>``). Skipped: .git, .venv/venv, caches,
runtime folders (data, logs, backups, reports), ``tests/`` (fixtures hold fake values on
purpose), ``.env`` (the sanctioned place: it must be 600 and git-ignored), binary and large files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "env",
    "__pycache__",
    "node_modules",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "data",
    "logs",
    "backups",
    "reports",
    "demo_workspace",
    "test-artifacts",
    "tests",
}
SKIP_FILES = {".env"}
SKIP_SUFFIXES = {
    ".db",
    ".sqlite",
    ".pyc",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".pdf",
    ".gz",
    ".zip",
    ".whl",
    ".so",
    ".dll",
    ".exe",
}
MAX_BYTES = 1_000_000
CONFIG_SUFFIXES = {".yaml", ".yml", ".env", ".ini", ".cfg", ".toml", ".conf", ".txt", ".sh", ".ps1", ".bat"}

SK_RE = re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}")
_KEYS = r"(?:api[_-]?key|api[_-]?secret|api[_-]?passphrase|private[_-]?key|bot[_-]?token|password|passphrase)"
QUOTED_RE = re.compile(_KEYS + r"[\"']?\s*[:=]\s*[\"']([^\"'\s]{8,})[\"']", re.I)
BARE_RE = re.compile(r"^\s*(?:export\s+)?[\w.-]*" + _KEYS + r"[\"']?\s*[:=]\s*([^\s\"'#,}]{8,})", re.I)
PLACEHOLDERS = (
    "your",
    "example",
    "xxx",
    "***",
    "changeme",
    "placeholder",
    "dummy",
    "fake",
    "redacted",
    "<",
    "${",
    "$env",
    "here",
    "replace",
    "secret_value",
    "none",
    "null",
)


def _is_placeholder(value: str) -> bool:
    v = value.lower()
    return value.startswith("$") or any(p in v for p in PLACEHOLDERS)


def _findings_in(path: Path, rel: str) -> list[str]:
    try:
        if path.stat().st_size > MAX_BYTES:
            return []
        raw = path.read_bytes()
    except OSError:
        return []
    if b"\x00" in raw[:2048]:
        return []
    text = raw.decode("utf-8", errors="replace")
    config_like = path.suffix.lower() in CONFIG_SUFFIXES or path.name.startswith(("config.yaml", ".env"))
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if "pragma: allowlist secret" in line:
            continue
        if SK_RE.search(line):
            out.append(f"{rel}:{n}: an sk-… key")
            continue
        values = [m.group(1) for m in QUOTED_RE.finditer(line)]
        if config_like:
            m = BARE_RE.match(line)
            if m:
                values.append(m.group(1))
        if any(not _is_placeholder(v) for v in values):
            out.append(f"{rel}:{n}: a literal secret value")
    return out


def scan_for_secrets(root: Path) -> list[str]:
    """``file:line: what`` for every hardcoded secret found under ``root``."""
    root = Path(root)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name in SKIP_FILES or p.suffix.lower() in SKIP_SUFFIXES or p.is_symlink():
                continue
            found += _findings_in(p, str(p.relative_to(root)))
    return found
