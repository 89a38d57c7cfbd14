"""Configuration checks behind ``validate_config.py`` (one ✓/✗/⚠ line each)."""

from __future__ import annotations

import argparse
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .config import (
    Config,
    check_mode_requirements,
    find_config_path,
    load_config,
    read_yaml,
    risk_bound_problems,
)
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


def validate(path: str | None = None, env: dict[str, str] | None = None) -> list[Check]:
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
    checks += _strategy_checks(cfg)
    checks += _environment_checks(cfg)
    checks += _mode_checks(cfg)
    checks += _risk_bound_checks(cfg)
    checks += _literal_secret_checks(cfg)
    checks += _log_level_checks(cfg)
    checks += _path_checks(cfg)
    checks += _file_mode_checks(cfg_path)
    return checks


def _strategy_checks(cfg: Config) -> list[Check]:
    try:
        # The very function the bot uses, so the bot and validate_config.py accept the same
        # set (the simulator-only `drill` strategy included, issue 15 #10).
        from .engine.bot import build_strategy

        build_strategy(cfg, cfg.mode)
        return [Check(OK, f"Strategy {cfg.strategy.name}: parameters valid")]
    except ConfigError as exc:
        return [Check(FAIL, str(exc))]


def _environment_checks(cfg: Config) -> list[Check]:
    if not cfg.unset_env:
        return [Check(OK, "All referenced environment variables are set")]
    return [
        Check(
            FAIL,
            f"Environment variable {var} is not set (used by {key}); export it "
            f"(Windows: setx {var} ...), or write ${{{var}:-}} to make it optional.",
        )
        for key, var in cfg.unset_env
    ]


def _mode_checks(cfg: Config) -> list[Check]:
    try:
        check_mode_requirements(cfg)
    except ConfigError as exc:
        return [Check(FAIL, str(exc))]
    return [
        Check(
            OK,
            f"Mode: {'PAPER' if cfg.paper_trading else 'LIVE'} trading, "
            f"everything this mode needs is configured",
        )
    ]


def _risk_bound_checks(cfg: Config) -> list[Check]:
    problems = risk_bound_problems(cfg)
    if not problems:
        r = cfg.risk_limits
        return [
            Check(
                OK,
                f"Risk limits within the checklist's bounds for ${cfg.capital:g} capital "
                f"(max_position=${r.max_position_size:g}, max_exposure={r.max_portfolio_exposure:g}, "
                f"stop_loss={r.stop_loss_percent:g}, daily_loss=${r.daily_loss_limit:g})",
            )
        ]
    status = WARN if cfg.paper_trading else FAIL
    suffix = " (allowed in paper mode, refused in live mode)" if cfg.paper_trading else ""
    return [Check(status, f"{problem}{suffix}") for problem in problems]


def _literal_secret_checks(cfg: Config) -> list[Check]:
    if not cfg.literal_secrets:
        return [Check(OK, "No hardcoded secrets (credentials use ${VAR})")]
    return [
        Check(
            FAIL,
            f"Config key '{key}' holds a secret written literally; replace it with "
            f"${{ENV_VAR}} and export the value (never commit secrets).",
        )
        for key in cfg.literal_secrets
    ]


def _log_level_checks(cfg: Config) -> list[Check]:
    if cfg.log_level.upper() == "DEBUG":
        return [Check(WARN, "log_level is DEBUG; use INFO for production")]
    return [Check(OK, f"log_level is {cfg.log_level.upper()}")]


def _path_checks(cfg: Config) -> list[Check]:
    bad = []
    for label, folder in (
        ("database_path", cfg.database_path.parent),
        ("log_dir", cfg.log_dir),
        ("backup_dir", cfg.backup_dir),
        ("report_dir", cfg.report_dir),
    ):
        target = _writable_target(folder)
        if target is not None:
            shown = cfg.database_path if label == "database_path" else folder
            bad.append(f"{label} ({shown}): {target} is not writable")
    if not bad:
        return [Check(OK, "Paths writable (database, logs, backups, reports)")]
    return [Check(FAIL, f"Path not writable: {b}; fix the permissions or change the path.") for b in bad]


def _file_mode_checks(cfg_path: Path) -> list[Check]:
    if os.name != "posix":
        return []
    mode = stat.S_IMODE(cfg_path.stat().st_mode)
    if mode & 0o077:
        return [
            Check(
                WARN,
                f"{cfg_path.name} is readable by others (mode {mode:o}); run chmod 600 {cfg_path.name}",
            )
        ]
    return [Check(OK, f"{cfg_path.name} permissions {mode:o}")]


def main(args: argparse.Namespace) -> int:
    checks = validate(args.config)
    for c in checks:
        print(c.line())
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        print(f"FAIL: {len(failed)} check(s) failed")
        return 1
    print("PASS: configuration valid")
    return 0
