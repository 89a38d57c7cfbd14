"""Configuration: YAML → environment expansion → typed, immutable objects.

``load_config(path)`` reads the YAML file, expands ``${VAR}`` and ``${VAR:-default}``
from the environment, and builds the frozen dataclass tree below. Every problem is
a :class:`ConfigError` with one sentence naming the key and the fix: missing key,
wrong type, unknown key (with the closest valid name), unset environment variable,
out-of-range value.

Relative paths are resolved against the directory of the config file, so cron
jobs work whatever their working directory.

Unset environment variables: a ``${VAR}`` without default whose variable is unset
is recorded in ``Config.unset_env`` and its value becomes ``None``. It is an error
where the value is needed (live credentials when ``paper_trading: false``, the
Telegram token when Telegram is enabled, the SMTP password when email is used, the
dashboard password when the dashboard is exposed); ``validate_config.py`` reports
every unset variable as a failure.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

DEFAULT_CONFIG = "config.yaml"
CONFIG_ENV = "POLYBOT_CONFIG"

# Keys whose value is a secret: must come from ${VAR}, never written literally.
SECRET_KEYS = (
    "api_key",
    "api_secret",
    "api_passphrase",
    "private_key",
    "bot_token",
    "password",
    "secret",
    "passphrase",
)

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class PolymarketConfig:
    """Polymarket credentials (env only) and API endpoints."""

    api_key: str | None = None
    api_secret: str | None = None
    api_passphrase: str | None = None
    private_key: str | None = None
    funder_address: str | None = None
    # Default 0 (EOA): the only type that is complete without another setting — the order's
    # maker is the key's own address. The old default 2 with no funder made the SDK sign
    # maker = EOA for a Safe account (py_clob_client_v2 builder.py:62), an invalid order.
    # Types 1/2/3 must name their wallet in funder_address (checked below).
    signature_type: int = 0
    chain_id: int = 137
    base_url: str = "https://clob.polymarket.com"  # the CLOB
    gamma_url: str = "https://gamma-api.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    timeout_seconds: float = 10.0
    max_retries: int = 3

    SIGNATURE_TYPES = {
        0: "EOA",
        1: "POLY_PROXY: email/Magic proxy wallet",
        2: "POLY_GNOSIS_SAFE: browser-wallet Safe",
        3: "POLY_1271: deposit wallet",
    }

    @staticmethod
    def signing_problem(
        signature_type: int, funder: str | None, eoa: str | None, where: str = "polymarket"
    ) -> str | None:
        """One sentence when the signature type and funder cannot sign a valid order, else None.
        Type 0: the maker is the EOA (funder empty or equal to it). Types 1/2/3: the maker is
        the proxy / Safe / deposit wallet in ``funder_address`` (required, not the EOA)."""
        funder = (funder or "").strip()
        names = PolymarketConfig.SIGNATURE_TYPES
        if funder and not re.fullmatch(r"0x[0-9a-fA-F]{40}", funder):
            return (
                f"Config key '{where}.funder_address' must be a 0x address of 40 hex digits "
                f"(got {funder[:12]!r}…); set POLYMARKET_FUNDER_ADDRESS to your Polymarket wallet."
            )
        same = bool(eoa and funder and funder.lower() == eoa.lower())
        if signature_type == 0:
            if funder and eoa and not same:
                return (
                    f"signature_type 0 (EOA) trades from the key's own address {eoa}, but "
                    f"{where}.funder_address is {funder}; set signature_type 1 (email proxy), "
                    f"2 (browser-wallet Safe) or 3 (deposit wallet) for that wallet, or clear "
                    f"funder_address."
                )
            return None
        if not funder:
            return (
                f"signature_type {signature_type} ({names[signature_type]}) signs for the wallet in "
                f"{where}.funder_address, which is not set; export POLYMARKET_FUNDER_ADDRESS=<the "
                f"wallet address on your polymarket.com profile>, or use signature_type 0 if the "
                f"funds are in the key's own address."
            )
        if same:
            return (
                f"signature_type {signature_type} ({names[signature_type]}) needs that wallet's "
                f"address as {where}.funder_address, not the key's own address {eoa}; use "
                f"signature_type 0 to trade from the key's own address."
            )
        return None

    def _check_credential_formats(self, where: str) -> None:
        """Malformed credentials fail here, at load (validate_config.py shows them), not at live
        start with "Incorrect padding" and a traceback (issue 15 #9). Values are never echoed."""
        key = (self.private_key or "").strip()
        if key and not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", key):
            raise ConfigError(
                f"Config key '{where}.private_key' is not a private key (0x followed by 64 hex "
                f"digits, {len(key)} characters given); export POLYMARKET_PRIVATE_KEY as "
                f"exported from your wallet."
            )
        secret = (self.api_secret or "").strip()
        if secret:
            import base64
            import binascii

            try:
                # exactly what the HMAC of every authenticated request does with it
                # (py_clob_client_v2 signing/hmac.py: base64.urlsafe_b64decode(secret))
                base64.urlsafe_b64decode(secret)
            except (binascii.Error, ValueError):
                raise ConfigError(
                    f"Config key '{where}.api_secret' is not the URL-safe base64 secret "
                    f"Polymarket issues ({len(secret)} characters, not decodable); export "
                    f"POLYMARKET_API_SECRET exactly as create_or_derive_api_key returned "
                    f"it."
                ) from None
        for name in ("api_key", "api_passphrase"):
            value = getattr(self, name) or ""
            if value and (value != value.strip() or any(c.isspace() for c in value)):
                raise ConfigError(
                    f"Config key '{where}.{name}' contains spaces or line breaks; export it "
                    f"again without them."
                )

    def _check(self, where: str) -> None:
        _require(
            self.signature_type in (0, 1, 2, 3),
            f"{where}.signature_type",
            "must be 0 (EOA), 1 (POLY_PROXY), 2 (POLY_GNOSIS_SAFE) or 3 (POLY_1271)",
        )
        self._check_credential_formats(where)
        if self.private_key or self.funder_address:
            eoa = None
            if self.private_key:
                from eth_account import Account

                eoa = Account.from_key(self.private_key).address  # format checked above
            if eoa or self.funder_address:
                problem = self.signing_problem(self.signature_type, self.funder_address, eoa, where)
                if problem and (eoa or "funder_address' must be" in problem):
                    raise ConfigError(problem)
        _require(self.timeout_seconds > 0, f"{where}.timeout_seconds", "must be > 0")
        _require(1 <= self.max_retries <= 10, f"{where}.max_retries", "must be between 1 and 10")
        for key in ("base_url", "gamma_url", "data_url"):
            url = getattr(self, key)
            _require(
                url.startswith(("http://", "https://")),
                f"{where}.{key}",
                f"must start with http:// or https:// (got {url!r})",
            )


@dataclass(frozen=True)
class RampUpStep:
    from_day: int
    max_positions: int


@dataclass(frozen=True)
class RiskLimits:
    """The checklist's risk limits; $ amounts in USDC."""

    max_position_size: float = 100.0
    max_positions: int = 4
    max_portfolio_exposure: float = 0.8
    stop_loss_percent: float = 0.15
    daily_loss_limit: float = 100.0
    max_leverage: float = 1.0
    max_event_exposure: float = 0.4  # fraction of capital per event / correlated group
    ramp_up: tuple[RampUpStep, ...] = (RampUpStep(0, 2), RampUpStep(7, 4))
    stop_loss_cooldown_hours: float = 24.0  # no re-entry into a token this long after its stop loss
    max_entry_cost_share_of_stop: float = 0.5  # entry's instant loss at the bid (spread + fee) ≤ this × stop

    def _check(self, where: str) -> None:
        _require(
            self.stop_loss_cooldown_hours >= 0, f"{where}.stop_loss_cooldown_hours", "must be ≥ 0 (0 = off)"
        )
        _require(
            0 < self.max_entry_cost_share_of_stop <= 1,
            f"{where}.max_entry_cost_share_of_stop",
            "must be between 0 and 1, e.g. 0.5 (an entry may lose at most half the stop at once)",
        )
        _require(self.max_position_size > 0, f"{where}.max_position_size", "must be > 0")
        _require(self.max_positions >= 1, f"{where}.max_positions", "must be at least 1")
        _require(
            0 < self.max_portfolio_exposure <= 1,
            f"{where}.max_portfolio_exposure",
            f"must be between 0 and 1 (got {self.max_portfolio_exposure}); the checklist asks for 0.8 or lower",
        )
        _require(
            0 < self.stop_loss_percent < 1,
            f"{where}.stop_loss_percent",
            f"must be between 0 and 1 (got {self.stop_loss_percent}), e.g. 0.15 for 15%",
        )
        _require(self.daily_loss_limit > 0, f"{where}.daily_loss_limit", "must be > 0")
        _require(self.max_leverage >= 1.0, f"{where}.max_leverage", "must be at least 1.0")
        _require(0 < self.max_event_exposure <= 1, f"{where}.max_event_exposure", "must be between 0 and 1")
        days = [s.from_day for s in self.ramp_up]
        _require(days == sorted(days), f"{where}.ramp_up", "steps must be in increasing from_day order")


@dataclass(frozen=True)
class TradingConfig:
    loop_interval_seconds: float = 30.0
    max_consecutive_api_errors: int = 3
    order_type: str = "FAK"  # marketable orders for entries/exits
    quick_check_interval_minutes: float = 60.0
    stale_order_seconds: float = 300.0
    use_exchange_heartbeat: bool = True  # live: Polymarket dead-man switch
    reconcile_mismatch_loops: int = 3  # live: loops a ledger/exchange position mismatch may last
    # paper and backtest: an order decided on the book recorded at t fills on the first recorded
    # book at or after t + this (1 = the next snapshot; 0 = the book it was decided on, optimistic)
    fill_latency_seconds: int = 1

    def _check(self, where: str) -> None:
        _require(
            self.fill_latency_seconds >= 0,
            f"{where}.fill_latency_seconds",
            "must be ≥ 0 seconds (1, the default, fills on the next recorded book)",
        )
        _require(self.loop_interval_seconds > 0, f"{where}.loop_interval_seconds", "must be > 0")
        _require(self.reconcile_mismatch_loops >= 1, f"{where}.reconcile_mismatch_loops", "must be ≥ 1")
        _require(self.max_consecutive_api_errors >= 1, f"{where}.max_consecutive_api_errors", "must be ≥ 1")
        _require(
            self.order_type in ("GTC", "GTD", "FOK", "FAK"),
            f"{where}.order_type",
            "must be one of GTC, GTD, FOK, FAK",
        )


@dataclass(frozen=True)
class StrategyConfig:
    """Which strategy runs, and its parameters (validated by the strategy itself)."""

    name: str = "correlation_pairs"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisConfig:
    """When a correlation counts (correlation_analysis.py, plot_correlations.py, the groups file)."""

    min_shared_moves: int = 20  # steps where both prices moved, before a pair is tested
    fdr_q: float = 0.05  # Benjamini–Hochberg false discovery rate across all pairs
    strong_correlation: float = 0.7  # |r| a significant pair needs to be "strong" / grouped

    def _check(self, where: str) -> None:
        _require(
            self.min_shared_moves >= 4,
            f"{where}.min_shared_moves",
            "must be ≥ 4 (Fisher's z needs more than 3 observations; default 20)",
        )
        _require(0 < self.fdr_q < 1, f"{where}.fdr_q", "must be between 0 and 1 (e.g. 0.05)")
        _require(
            0 < self.strong_correlation < 1,
            f"{where}.strong_correlation",
            "must be between 0 and 1 (e.g. 0.7)",
        )


@dataclass(frozen=True)
class WalkForwardConfig:
    """backtest.py --walk-forward: rolling in-sample (pair selection, parameter choice) and out-of-sample
    segments; the verdict is on the out-of-sample trades only."""

    in_sample_days: int = 14  # each segment's fitting window
    out_of_sample_days: int = 7  # each segment's test window (segments roll by this much)
    select_by: str = "sharpe"  # in-sample score that picks the params: sharpe or total_return

    def _check(self, where: str) -> None:
        _require(self.in_sample_days >= 1, f"{where}.in_sample_days", "must be ≥ 1 day")
        _require(self.out_of_sample_days >= 1, f"{where}.out_of_sample_days", "must be ≥ 1 day")
        _require(
            self.select_by in ("sharpe", "total_return"),
            f"{where}.select_by",
            "must be sharpe or total_return",
        )


ALL_MARKETS = "all"  # collection.max_markets: no cap


@dataclass(frozen=True)
class CollectionConfig:
    interval_minutes: int = 5
    max_markets: int | str = 200  # or "all": every market that passes the filters (market_cap)
    active_only: bool = True
    accepting_orders_only: bool = True
    min_volume_24h: float = 0.0
    min_liquidity: float = 0.0
    order_by: str = "liquidityNum"
    tags: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    market_ids: tuple[str, ...] = ()
    slugs: tuple[str, ...] = ()
    depth_levels: int = 5
    books_batch_size: int = 500
    min_price: float = 0.01  # data quality bounds
    max_price: float = 0.99
    freshness_minutes: float = 10.0
    min_coverage: float = 0.8
    # --backfill also fetches the markets that CLOSED inside the window (Gamma closed=true by
    # end date) and records their outcome, so a replay is not survivors-only. The live
    # filters (volume_24h, liquidity, accepting orders) mean nothing for a closed market:
    # these pass tags/keywords, then lifetime volume ≥ min, the most traded first, up to max.
    backfill_closed: bool = True
    backfill_closed_max_markets: int | None = None  # None: the same as max_markets
    backfill_closed_min_volume: float = 0.0  # lifetime volume (USDC)

    def _check(self, where: str) -> None:
        _require(1 <= self.interval_minutes <= 1440, f"{where}.interval_minutes", "must be 1–1440")
        _require(
            self.backfill_closed_max_markets is None or self.backfill_closed_max_markets >= 0,
            f"{where}.backfill_closed_max_markets",
            "must be ≥ 0 (0: none), or leave it out",
        )
        _require(self.backfill_closed_min_volume >= 0, f"{where}.backfill_closed_min_volume", "must be ≥ 0")
        _require(
            self.max_markets == ALL_MARKETS if isinstance(self.max_markets, str) else self.max_markets >= 1,
            f"{where}.max_markets",
            f"is {self.max_markets!r}; allowed: a whole number ≥ 1 (the most liquid N markets) or "
            f"{ALL_MARKETS} (every market that passes the filters: the whole active universe with "
            "min_volume_24h: 0 and min_liquidity: 0)",
        )
        _require(
            1 <= self.books_batch_size <= 500,
            f"{where}.books_batch_size",
            "must be 1–500 (the CLOB's POST /books limit)",
        )
        _require(
            0 <= self.min_price < self.max_price <= 1,
            f"{where}.min_price",
            "min_price and max_price must satisfy 0 ≤ min_price < max_price ≤ 1",
        )
        _require(0 < self.min_coverage <= 1, f"{where}.min_coverage", "must be between 0 and 1")

    @property
    def market_cap(self) -> int | None:
        """``max_markets`` as a number; None for ``all`` (no cap)."""
        return None if isinstance(self.max_markets, str) else int(self.max_markets)


@dataclass(frozen=True)
class BacktestConfig:
    # Backfilled rows (price history, no book) trade on a synthetic one-level book: the
    # token's (else its market's) RECORDED median spread and top-of-book depth where any
    # exist, else these conservative defaults (polybot/backtest/data.py, docs/strategies.md).
    backfill_half_spread: float = 0.02  # price ± this: a 4-cent spread, wider than most real books
    backfill_default_depth: float = 100.0  # shares at that level a side (a bigger order fills in part)
    min_win_rate: float = 0.52
    min_sharpe: float = 0.5
    max_drawdown: float = 0.20
    # the verdict's statistical floor (polybot/backtest/verdict.py; docs/strategies.md)
    min_trades: int = 30  # fewer closed trades → INSUFFICIENT_DATA
    min_coverage: float = 0.95  # data must cover this share of the window
    min_recorded_days: float = 7.0  # go-live: days of recorded (not backfilled) books
    min_psr: float = 0.95  # probabilistic (and deflated) Sharpe ratio for a PASS
    bootstrap_samples: int = 2000  # day-block bootstrap resamples for the 95 % intervals
    bootstrap_block_days: int = 1  # days per resampled block
    max_report_age_days: float = 7.0  # pre_launch_check: oldest backtest report accepted

    def _check(self, where: str) -> None:
        _require(
            0 <= self.backfill_half_spread <= 0.25,
            f"{where}.backfill_half_spread",
            "must be 0–0.25 (a price distance), e.g. 0.02",
        )
        _require(
            self.backfill_default_depth > 0, f"{where}.backfill_default_depth", "must be > 0 shares, e.g. 100"
        )
        _require(self.min_trades >= 1, f"{where}.min_trades", "must be at least 1, e.g. 30")
        _require(0 < self.min_coverage <= 1, f"{where}.min_coverage", "must be between 0 and 1, e.g. 0.95")
        _require(self.min_recorded_days >= 0, f"{where}.min_recorded_days", "must be ≥ 0 days, e.g. 7")
        _require(
            0.5 <= self.min_psr < 1,
            f"{where}.min_psr",
            "must be at least 0.5 and below 1, e.g. 0.95 (95 % confidence that the Sharpe ratio is above 0)",
        )
        _require(
            100 <= self.bootstrap_samples <= 100_000,
            f"{where}.bootstrap_samples",
            "must be 100–100000, e.g. 2000",
        )
        _require(self.bootstrap_block_days >= 1, f"{where}.bootstrap_block_days", "must be at least 1 day")
        _require(self.max_report_age_days > 0, f"{where}.max_report_age_days", "must be > 0 days, e.g. 7")


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False
    bot_token: str | None = None
    chat_id: str | None = None
    base_url: str = "https://api.telegram.org/bot"
    commands_enabled: bool = True
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class EmailConfig:
    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    from_addr: str | None = None
    to_addrs: tuple[str, ...] = ()
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class AlertThresholds:
    win_rate: float = 0.5
    win_rate_trades: int = 20
    drawdown: float = 0.15
    api_response_seconds: float = 3.0
    no_trades_hours: float = 4.0


@dataclass(frozen=True)
class AlertsConfig:
    critical: tuple[str, ...] = ("telegram", "email")
    warning: tuple[str, ...] = ("telegram",)
    info: tuple[str, ...] = ("email",)
    throttle_minutes: float = 15.0
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)

    def _check(self, where: str) -> None:
        for level in ("critical", "warning", "info"):
            for ch in getattr(self, level):
                _require(
                    ch in ("telegram", "email", "log"),
                    f"{where}.{level}",
                    f"unknown channel {ch!r}; use telegram, email or log",
                )


@dataclass(frozen=True)
class BackupConfig:
    retention_days: int = 30
    offsite_dir: str | None = None
    offsite_command: str | None = None


def describe_tiers(
    full_depth_days: int, top_of_book_days: int, hourly_bar_days: int, hard_limit_days: int
) -> str:
    """The retention tiers of market snapshots in words (0 days: that step never happens)."""
    if not (full_depth_days or top_of_book_days or hard_limit_days):
        return "off (every snapshot keeps its full depth forever)"
    if full_depth_days:
        parts = [f"full depth for {full_depth_days} days"]
        parts.append(
            f"top of book until {top_of_book_days} days" if top_of_book_days else "then top of book forever"
        )
    else:
        parts = [f"full depth for {top_of_book_days} days" if top_of_book_days else "full depth"]
    if top_of_book_days:
        parts.append(
            f"hourly bars until {hourly_bar_days} days" if hourly_bar_days else "hourly bars forever"
        )
    text = ", ".join(parts)
    if hard_limit_days:
        text += f"; nothing older than {hard_limit_days} days (snapshot_retention_days)"
    return text


@dataclass(frozen=True)
class MaintenanceConfig:
    # The hard age limit of market data: maintain_database.py deletes snapshot rows AND hourly
    # bars older than this, whatever the tiers below say (0 = no age limit).
    snapshot_retention_days: int = 0
    log_retention_days: int = 90
    # The retention tiers of market snapshots (polybot/ops/retention.py, RUNBOOK.md "Retention
    # tiers"): every book level for full_depth_days, then top of book only (best bid/ask, last
    # trade; volume and liquidity once an hour) until top_of_book_days, then one bar per token per hour kept for
    # hourly_bar_days. 0 = that step never happens. Off unless config.yaml sets them, so an
    # upgrade never thins data the operator did not ask to thin (config.yaml.example sets them).
    full_depth_days: int = 0
    top_of_book_days: int = 0
    hourly_bar_days: int = 0

    def _check(self, where: str) -> None:
        for key in ("snapshot_retention_days", "full_depth_days", "top_of_book_days", "hourly_bar_days"):
            _require(getattr(self, key) >= 0, f"{where}.{key}", "must be ≥ 0 (0: off)")
        if self.full_depth_days and self.top_of_book_days:
            _require(
                self.full_depth_days < self.top_of_book_days,
                f"{where}.full_depth_days",
                f"({self.full_depth_days}) must be less than {where}.top_of_book_days "
                f"({self.top_of_book_days}): rows keep their depth, then lose it, then become bars",
            )
        if self.hourly_bar_days:
            _require(
                self.top_of_book_days > 0,
                f"{where}.hourly_bar_days",
                f"needs {where}.top_of_book_days (bars are made from rows older than it); set "
                f"top_of_book_days or set hourly_bar_days to 0",
            )
            _require(
                self.hourly_bar_days > self.top_of_book_days,
                f"{where}.hourly_bar_days",
                f"({self.hourly_bar_days}) must be more than {where}.top_of_book_days "
                f"({self.top_of_book_days}), or 0 to keep bars forever",
            )

    def describe_tiers(self) -> str:
        """The tiers in one line, for maintain_database.py and --estimate-storage."""
        return describe_tiers(
            self.full_depth_days, self.top_of_book_days, self.hourly_bar_days, self.snapshot_retention_days
        )

    def depth_required_since(self, now: float, margin: int = 3600) -> int | None:
        """The oldest snapshot time whose rows must still hold their book levels (the full-depth
        tier), less ``margin`` seconds for clock differences; None when rows are never thinned."""
        if self.full_depth_days <= 0:
            return None
        return int(now) - self.full_depth_days * 86400 + margin


@dataclass(frozen=True)
class HealthConfig:
    heartbeat_max_age_seconds: float = 180.0
    last_trade_warn_minutes: float = 60.0
    # The one set of disk thresholds (polybot.checks.disk): health_check.py WARNs below warn and
    # FAILs below fail; pre_launch_check.py needs warn; the disk_space_low alert fires below fail.
    disk_warn_gb: float = 5.0
    disk_fail_gb: float = 2.0

    def _check(self, where: str) -> None:
        _require(self.disk_fail_gb >= 0, f"{where}.disk_fail_gb", "must be ≥ 0")
        _require(
            self.disk_fail_gb <= self.disk_warn_gb,
            f"{where}.disk_fail_gb",
            f"({self.disk_fail_gb:g}) must not be above health.disk_warn_gb ({self.disk_warn_gb:g})",
        )


@dataclass(frozen=True)
class ScheduleConfig:
    collection_minutes: int = 5
    health_minutes: int = 5
    backup_time: str = "02:00"
    maintenance_day: str = "sunday"
    maintenance_time: str = "03:00"
    report_time: str = "18:00"
    audit_day_of_month: int = 1
    audit_time: str = "04:00"
    job_timeout_minutes: float = 30.0


@dataclass(frozen=True)
class DashboardConfig:
    host: str = "127.0.0.1"
    port: int = 5000
    password: str | None = None
    refresh_seconds: int = 5
    trust_proxy: bool = False  # honour X-Forwarded-For/-Proto/-Host (behind nginx/Caddy only)
    secure_cookie: bool | None = None  # None = auto: Secure when the request arrived over HTTPS
    health_seconds: int = 60  # how often the system-health panel re-runs the health check

    def _check(self, where: str) -> None:
        _require(1 <= self.port <= 65535, f"{where}.port", "must be between 1 and 65535")
        _require(1 <= self.refresh_seconds <= 3600, f"{where}.refresh_seconds", "must be between 1 and 3600")
        _require(
            10 <= self.health_seconds <= 86400, f"{where}.health_seconds", "must be between 10 and 86400"
        )


@dataclass(frozen=True)
class Config:
    """The whole configuration. ``source`` is the file it came from."""

    paper_trading: bool = True
    capital: float = 500.0
    log_level: str = "INFO"
    database_path: Path = Path("data/polymarket.db")
    log_dir: Path = Path("logs")
    backup_dir: Path = Path("backups")
    report_dir: Path = Path("reports")
    emergency_stop_file: Path = Path("EMERGENCY_STOP")
    polymarket: PolymarketConfig = field(default_factory=PolymarketConfig)
    risk_limits: RiskLimits = field(default_factory=RiskLimits)
    trading: TradingConfig = field(default_factory=TradingConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    collection: CollectionConfig = field(default_factory=CollectionConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    walk_forward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    # Filled by the loader, not from YAML:
    source: Path | None = None
    root: Path = Path(".")
    unset_env: tuple[tuple[str, str], ...] = ()  # (dotted key, VAR)
    literal_secrets: tuple[str, ...] = ()  # dotted keys written literally

    def _check(self, where: str) -> None:
        _require(self.capital > 0, "capital", "must be > 0 (your starting capital in USDC)")
        _require(
            self.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
            "log_level",
            "must be DEBUG, INFO, WARNING, ERROR or CRITICAL",
        )

    @property
    def mode(self) -> str:
        return "paper" if self.paper_trading else "live"

    def secret_values(self) -> list[str]:
        """Every configured secret value (for log masking)."""
        vals = [
            self.polymarket.api_key,
            self.polymarket.api_secret,
            self.polymarket.api_passphrase,
            self.polymarket.private_key,
            self.telegram.bot_token,
            self.email.password,
            self.dashboard.password,
        ]
        return [v for v in vals if v]


_LOADER_FIELDS = {"source", "root", "unset_env", "literal_secrets"}
_PATH_FIELDS = {"database_path", "log_dir", "backup_dir", "report_dir", "emergency_stop_file"}


# --------------------------------------------------------------------------- helpers
def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"Config key '{key}' {problem}; fix it in config.yaml.")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0])
    if origin is tuple:
        return "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text", Path: "a path"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


# No setting of this bot is a number beyond a billion (dollars, seconds, counts); larger
# values are typos or attacks, and they overflow the integer micro-unit money math.
MAX_CONFIG_NUMBER = 1_000_000_000


def _in_range(number: int | float, key: str) -> int | float:
    if isinstance(number, float) and not math.isfinite(number):
        raise ConfigError(
            f"Config key '{key}' is {number!r}, not a finite number; give it a real value in config.yaml."
        )
    if abs(number) > MAX_CONFIG_NUMBER:
        raise ConfigError(
            f"Config key '{key}' is {number:g}, beyond any sensible setting "
            f"(at most {MAX_CONFIG_NUMBER:,}); fix it in config.yaml."
        )
    return number


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to the annotated type, or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, tp, key)
    if value is None:
        raise ConfigError(f"Config key '{key}' is empty; give it {_type_name(tp)} in config.yaml.")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"Config key '{key}' must be a mapping of settings; fix it in config.yaml.")
        return _build(tp, value, key)
    if origin is tuple:
        return _convert_tuple(value, tp, key)
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"Config key '{key}' must be a mapping; fix it in config.yaml.")
        return dict(value)
    for scalar_type, convert in _SCALAR_CONVERTERS:
        if tp is scalar_type:
            converted = convert(value, key)
            if converted is not _UNCONVERTIBLE:
                return converted
            break
    raise ConfigError(f"Config key '{key}' must be {_type_name(tp)} (got {value!r}); fix it in config.yaml.")


# Keys that were moved: the old name is an error naming the new one (a silently ignored
# threshold would be worse than a refused config).
REPLACED_KEYS = {
    "alerts.thresholds.disk_free_gb": "health.disk_fail_gb",
}


def _convert_union(value: Any, tp: Any, key: str) -> Any:
    """``X | None``: None or X; ``int | str`` (scalars): the first type that takes the value."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if value is None:
        return None
    if len(args) > 1 and all(a in _SCALAR_TYPES for a in args):
        for arg in args:
            converted = _SCALAR_TYPES[arg](value, key)
            if converted is not _UNCONVERTIBLE:
                return converted
        raise ConfigError(
            f"Config key '{key}' must be {_type_name(tp)} (got {value!r}); fix it in config.yaml."
        )
    return _convert(value, args[0], key)


def _convert_tuple(value: Any, tp: Any, key: str) -> tuple[Any, ...]:
    """A list (or one scalar, as a list of one) converted item by item."""
    (inner, *_rest) = typing.get_args(tp)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"Config key '{key}' must be a list; fix it in config.yaml.")
    return tuple(_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value))


# What a scalar converter returns for a value it cannot convert (None and False are values).
_UNCONVERTIBLE = object()


def _to_bool(value: Any, key: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    return _UNCONVERTIBLE


def _to_int(value: Any, key: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, key)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return _in_range(int(value), key)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return _in_range(int(value), key)
    return _UNCONVERTIBLE


def _to_float(value: Any, key: str) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _in_range(float(value), key)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return _UNCONVERTIBLE
        return _in_range(number, key)
    return _UNCONVERTIBLE


def _to_str(value: Any, key: str) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return _UNCONVERTIBLE


def _to_path(value: Any, key: str) -> Any:
    if isinstance(value, str) and value.strip():
        return Path(value)
    return _UNCONVERTIBLE


_SCALAR_CONVERTERS: tuple[tuple[type, typing.Callable[[Any, str], Any]], ...] = (
    (bool, _to_bool),
    (int, _to_int),
    (float, _to_float),
    (str, _to_str),
    (Path, _to_path),
)
_SCALAR_TYPES = dict(_SCALAR_CONVERTERS)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _LOADER_FIELDS]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if dotted in REPLACED_KEYS:
            raise ConfigError(
                f"Config key '{dotted}' was replaced by '{REPLACED_KEYS[dotted]}' (one set of disk "
                f"thresholds, under health:); move its value there and delete '{key}' from config.yaml."
            )
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys here: {', '.join(names)}."
            raise ConfigError(f"Unknown config key '{dotted}': {hint}")
        kwargs[key] = _convert(value, hints[key], dotted)
    obj = cls(**kwargs)
    check = getattr(obj, "_check", None)
    if check:
        check(where)
    return obj


def _expand_env(node: Any, key: str, unset: list, literal: list, env: Mapping[str, str]) -> Any:
    """Expand ${VAR} / ${VAR:-default} in every string; record unset variables."""
    if isinstance(node, dict):
        return {
            k: _expand_env(v, f"{key}.{k}" if key else str(k), unset, literal, env) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_expand_env(v, f"{key}[{i}]", unset, literal, env) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    leaf = key.rsplit(".", 1)[-1]
    if leaf in SECRET_KEYS and node.strip() and not _ENV_RE.search(node):
        literal.append(key)
    matches = list(_ENV_RE.finditer(node))
    if not matches:
        return node
    missing = False

    def sub(m: re.Match) -> str:
        nonlocal missing
        var, default = m.group(1), m.group(2)
        val = env.get(var)
        if val is None or val == "":
            if default is not None:
                return default
            unset.append((key, var))
            missing = True
            return ""
        return val

    out = _ENV_RE.sub(sub, node)
    if missing:
        return None
    if out == "" and len(matches) == 1 and matches[0].group(0) == node:
        return None  # ${VAR:-} → not set
    return out


def find_config_path(path: str | os.PathLike | None = None) -> Path:
    """The config file to use: ``path``, else $POLYBOT_CONFIG, else ./config.yaml, else
    config.yaml beside the running script (Task Scheduler starts scripts in System32)."""
    if path:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path(DEFAULT_CONFIG)
    if not local.exists() and sys.argv and sys.argv[0]:
        beside = Path(sys.argv[0]).resolve().parent / DEFAULT_CONFIG
        if beside.exists():
            return beside
    return local


class DuplicateKeyError(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key written twice in one mapping: YAML's "last one wins"
    would let ``max_position_size: 100`` be silently overridden further down."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}  # YAML keys need not be strings
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: let SafeLoader report it
                continue
            if first is not None:
                raise DuplicateKeyError(
                    f"sets '{key}' twice (lines {first} and {key_node.start_mark.line + 1}); keep one "
                    f"and delete the other."
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def example_config_text() -> str:
    """The annotated example configuration shipped inside the package (``polybot/config.yaml.example``,
    byte-identical to the project root's ``config.yaml.example`` — tests/test_packaging.py checks it:
    the checklist copies the root file, an installed polybot has only the packaged one)."""
    return (resources.files("polybot") / "config.yaml.example").read_text(encoding="utf-8")


def read_yaml(path: Path) -> dict[str, Any]:
    """Read and parse the YAML file, with one-sentence errors."""
    if not path.exists():
        raise ConfigError(
            f"Config file {path} not found; copy config.yaml.example to {path.name} (or run "
            f"polybot init-config) and edit it, or pass --config PATH."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Config file {path} cannot be read ({exc.strerror}); check its permissions."
        ) from exc
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise ConfigError(
            f"Config file {path} is empty; copy config.yaml.example to {path.name} and edit it."
        )
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 — a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise ConfigError(f"Config file {path} {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise ConfigError(
            f"Config file {path} is not valid YAML{where} ({problem}); fix the syntax there."
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"Config file {path} must be a mapping of settings at the top level; see config.yaml.example."
        )
    return data


def load_config(
    path: str | os.PathLike | None = None,
    *,
    env: Mapping[str, str] | None = None,
    require_mode_secrets: bool = True,
) -> Config:
    """Load, expand and validate the configuration file.

    ``require_mode_secrets``: raise if a secret needed by the configured mode is unset
    (live credentials, Telegram token when enabled, SMTP password when email is used).
    """
    cfg_path = find_config_path(path)
    data = read_yaml(cfg_path)
    unset: list = []
    literal: list = []
    data = _expand_env(data, "", unset, literal, dict(os.environ if env is None else env))
    cfg = _build(Config, data, "")
    root = cfg_path.resolve().parent
    paths = {
        name: (getattr(cfg, name) if getattr(cfg, name).is_absolute() else root / getattr(cfg, name))
        for name in _PATH_FIELDS
    }
    cfg = dataclasses.replace(
        cfg,
        source=cfg_path.resolve(),
        root=root,
        unset_env=tuple(unset),
        literal_secrets=tuple(literal),
        **paths,
    )
    if require_mode_secrets:
        check_mode_requirements(cfg)
    return cfg


def default_config(root: Path, **overrides: Any) -> Config:
    """A config with defaults rooted at ``root`` (used by tests and tools)."""
    cfg = Config(**overrides)
    paths = {name: root / getattr(cfg, name) for name in _PATH_FIELDS if not getattr(cfg, name).is_absolute()}
    return dataclasses.replace(cfg, root=root, **paths)


def _unset_for(cfg: Config, prefix: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in cfg.unset_env if k.startswith(prefix)]


def check_mode_requirements(cfg: Config) -> None:
    """Raise ConfigError if something the configured mode needs is missing."""
    if not cfg.paper_trading:
        for key in ("private_key", "api_key", "api_secret", "api_passphrase"):
            if not getattr(cfg.polymarket, key):
                var = dict(_unset_for(cfg, "polymarket")).get(f"polymarket.{key}")
                how = f"export {var}" if var else f"set polymarket.{key} to ${{VAR}}"
                raise ConfigError(
                    f"Live trading needs polymarket.{key}, which is not set; {how}, or set paper_trading: true."
                )
        problems = risk_bound_problems(cfg)
        if problems:
            raise ConfigError(
                f"Live trading refuses risk limits outside the checklist's bounds: {problems[0]}."
            )
        if cfg.literal_secrets:
            raise ConfigError(
                f"Config key '{cfg.literal_secrets[0]}' holds a secret written literally; live mode refuses it: "
                f"use ${{ENV_VAR}} and export the value instead."
            )
    if cfg.telegram.enabled:
        if not cfg.telegram.bot_token:
            raise ConfigError(
                "telegram.enabled is true but telegram.bot_token is not set; "
                "export TELEGRAM_BOT_TOKEN or set telegram.enabled: false."
            )
        if not cfg.telegram.chat_id:
            raise ConfigError(
                "telegram.enabled is true but telegram.chat_id is empty; "
                "run python get_telegram_chat_id.py and put the id in config.yaml."
            )
    uses_email = any("email" in getattr(cfg.alerts, lvl) for lvl in ("critical", "warning", "info"))
    if cfg.email.enabled and uses_email and (not cfg.email.to_addrs or not cfg.email.from_addr):
        raise ConfigError(
            "email.enabled is true but email.from_addr or email.to_addrs is empty; "
            "fill them in config.yaml or set email.enabled: false."
        )


def risk_bound_problems(cfg: Config) -> list[str]:
    """The checklist's bounds for the configured capital, as sentences (empty = OK)."""
    r, cap = cfg.risk_limits, cfg.capital
    out = []
    if r.max_position_size > 0.2 * cap:
        out.append(
            f"risk_limits.max_position_size ${r.max_position_size:g} is above 20% of capital "
            f"(${0.2 * cap:g}); lower it"
        )
    if r.max_portfolio_exposure > 0.8:
        out.append(f"risk_limits.max_portfolio_exposure {r.max_portfolio_exposure:g} is above 0.8; lower it")
    if r.stop_loss_percent > 0.20:
        out.append(f"risk_limits.stop_loss_percent {r.stop_loss_percent:g} is looser than 0.20; tighten it")
    if r.max_leverage != 1.0:
        out.append(f"risk_limits.max_leverage {r.max_leverage:g} must be 1.0 (no leverage)")
    if r.daily_loss_limit > 0.2 * cap:
        out.append(
            f"risk_limits.daily_loss_limit ${r.daily_loss_limit:g} is above 20% of capital "
            f"(${0.2 * cap:g}); lower it"
        )
    if r.max_positions > 5 and cap <= 1000:
        out.append(f"risk_limits.max_positions {r.max_positions} is above 5 for ${cap:g} capital; lower it")
    return out


def redacted(cfg: Config) -> dict[str, Any]:
    """The config as a plain dict with every secret replaced by '****' (for display)."""

    def walk(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj):
            out = {}
            for f in dataclasses.fields(obj):
                v = getattr(obj, f.name)
                out[f.name] = "****" if (f.name in SECRET_KEYS and v) else walk(v)
            return out
        if isinstance(obj, tuple):
            return [walk(v) for v in obj]
        if isinstance(obj, Path):
            return str(obj)
        return obj

    return walk(cfg)
