"""Strategy registry: config ``strategy: {name, params}`` → a Strategy object."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from polybot.config import Config
from polybot.errors import ConfigError

from .base import Strategy


def _builtins() -> dict[str, type[Strategy]]:
    from .correlation_pairs import CorrelationPairs
    from .mean_reversion import MeanReversion

    return {cls.name: cls for cls in (CorrelationPairs, MeanReversion)}


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Add a strategy class (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    STRATEGIES[cls.name] = cls
    return cls


def strategy_names() -> list[str]:
    if not STRATEGIES:
        STRATEGIES.update(_builtins())
    return sorted(STRATEGIES)


def get_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Build the named strategy with validated params (ConfigError otherwise)."""
    names = strategy_names()
    cls = STRATEGIES.get(name)
    if cls is None:
        close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"available: {', '.join(names)}."
        raise ConfigError(f"Unknown strategy '{name}' in config key 'strategy.name': {hint}")
    return cls(params or {})


def from_config(cfg: Config, name: str | None = None) -> Strategy:
    """The configured strategy (``name`` overrides ``strategy.name``; params then apply
    only when the name matches the configured one)."""
    if name is None or name == cfg.strategy.name:
        return get_strategy(cfg.strategy.name, cfg.strategy.params)
    return get_strategy(name, {})
