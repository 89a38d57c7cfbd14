"""Configuration checks behind ``validate_config.py`` (one ✓/✗/⚠ line each)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .config import check_mode_requirements, find_config_path, load_config, read_yaml, risk_bound_problems
from .errors import ConfigError

OK, FAIL, WARN = "✓", "✗", "⚠"


@dataclass
class Check:
    status: str  # OK / FAIL / WARN
    text: str

    def line(self) -> str:
        return f"{self.status} {self.text}"


def _writable_target(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` if it is not writable, else None."""
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    target = p if p.is_dir() else p.parent
    return None if os.access(target, os.W_OK) else target


def validate(path: str | None = None, env: dict | None = None) -> list[Check]:
    """Run every check; stop early only when the file cannot be parsed at all."""
    checks: list[Check] = []
    cfg_path = find_config_path(path)
    try:
        read_yaml(cfg_path)
    except ConfigError as exc:
        checks.append(Check(FAIL, str(exc)))
        return checks
    checks.append(Check(OK, f"Valid YAML ({cfg_path})"))
    try:
        cfg = load_config(cfg_path, env=env, require_mode_secrets=False)
    except ConfigError as exc:
        checks.append(Check(FAIL, str(exc)))
        return checks
    checks.append(Check(OK, "Required keys present, types and ranges valid, no unknown keys"))

    try:
        # The very function the bot uses, so the bot and validate_config.py accept the same
        # set (the simulator-only `drill` strategy included, issue 15 #10).
        from .engine.bot import build_strategy

        build_strategy(cfg, cfg.mode)
        checks.append(Check(OK, f"Strategy {cfg.strategy.name}: parameters valid"))
    except ConfigError as exc:
        checks.append(Check(FAIL, str(exc)))

    if cfg.unset_env:
        for key, var in cfg.unset_env:
            checks.append(
                Check(
                    FAIL,
                    f"Environment variable {var} is not set (used by {key}); export it "
                    f"(Windows: setx {var} ...), or write ${{{var}:-}} to make it optional.",
                )
            )
    else:
        checks.append(Check(OK, "All referenced environment variables are set"))

    try:
        check_mode_requirements(cfg)
        checks.append(
            Check(
                OK,
                f"Mode: {'PAPER' if cfg.paper_trading else 'LIVE'} trading, "
                f"everything this mode needs is configured",
            )
        )
    except ConfigError as exc:
        checks.append(Check(FAIL, str(exc)))

    problems = risk_bound_problems(cfg)
    if not problems:
        r = cfg.risk_limits
        checks.append(
            Check(
                OK,
                f"Risk limits within the checklist's bounds for ${cfg.capital:g} capital "
                f"(max_position=${r.max_position_size:g}, max_exposure={r.max_portfolio_exposure:g}, "
                f"stop_loss={r.stop_loss_percent:g}, daily_loss=${r.daily_loss_limit:g})",
            )
        )
    else:
        status = WARN if cfg.paper_trading else FAIL
        for p in problems:
            suffix = " (allowed in paper mode, refused in live mode)" if cfg.paper_trading else ""
            checks.append(Check(status, f"{p}{suffix}"))

    if cfg.literal_secrets:
        for key in cfg.literal_secrets:
            checks.append(
                Check(
                    FAIL,
                    f"Config key '{key}' holds a secret written literally; replace it with "
                    f"${{ENV_VAR}} and export the value (never commit secrets).",
                )
            )
    else:
        checks.append(Check(OK, "No hardcoded secrets (credentials use ${VAR})"))

    if cfg.log_level.upper() == "DEBUG":
        checks.append(Check(WARN, "log_level is DEBUG; use INFO for production"))
    else:
        checks.append(Check(OK, f"log_level is {cfg.log_level.upper()}"))

    bad = []
    for label, p in (
        ("database_path", cfg.database_path),
        ("log_dir", cfg.log_dir),
        ("backup_dir", cfg.backup_dir),
        ("report_dir", cfg.report_dir),
    ):
        target = _writable_target(p if label != "database_path" else p.parent)
        if target is not None:
            bad.append(f"{label} ({p}): {target} is not writable")
    if bad:
        for b in bad:
            checks.append(Check(FAIL, f"Path not writable: {b}; fix the permissions or change the path."))
    else:
        checks.append(Check(OK, "Paths writable (database, logs, backups, reports)"))

    if os.name == "posix":
        mode = stat.S_IMODE(cfg_path.stat().st_mode)
        if mode & 0o077:
            checks.append(
                Check(
                    WARN,
                    f"{cfg_path.name} is readable by others (mode {mode:o}); run chmod 600 {cfg_path.name}",
                )
            )
        else:
            checks.append(Check(OK, f"{cfg_path.name} permissions {mode:o}"))
    return checks


def main(args) -> int:
    checks = validate(args.config)
    for c in checks:
        print(c.line())
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        print(f"FAIL: {len(failed)} check(s) failed")
        return 1
    print("PASS: configuration valid")
    return 0
