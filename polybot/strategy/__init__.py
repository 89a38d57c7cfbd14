"""Strategies: the interface (:mod:`.base`), the shared view builder (:mod:`.feed`),
the registry (:func:`get_strategy`) and the built-ins (correlation_pairs, mean_reversion).

The engine and the backtester both do::

    strategy = get_strategy(cfg.strategy.name, cfg.strategy.params)
    feed = MarketFeed(markets, history_seconds=strategy.history_seconds, ...)
    feed.add_rows(snapshot_rows)                 # plain snapshot_values rows, time order
    intents = strategy.decide(feed.view(now), portfolio)
"""

from .base import (  # noqa: F401  (the package's API for strategy authors, re-exported)
    BUY,
    ENTER,
    EXIT,
    SELL,
    History,
    Holding,
    Intent,
    MarketInfo,
    MarketView,
    PortfolioView,
    Quote,
    Strategy,
)
from .registry import STRATEGIES, get_strategy, strategy_names  # noqa: F401  (re-exported)
