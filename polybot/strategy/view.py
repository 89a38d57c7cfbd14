"""The strategy's point-in-time view (:class:`MarketView`), a guarded proxy on the feed, and
what it hands out (:class:`Quote`, :class:`History`).

Split from :mod:`polybot.strategy.base` (which re-exports it); imports nothing from it. See the class docstring for
what isolation it guarantees and what it does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from polybot.domain import MarketInfo

if TYPE_CHECKING:
    from polybot.exchange.models import OrderBook

COLLECTED = "collected"
BACKFILL = "backfill"


@dataclass(frozen=True)
class Quote:
    """The latest snapshot of one token at or before ``view.now`` (market data: floats).

    For backfilled rows (price history only, no book) ``best_bid``/``best_ask`` are
    synthesised as price ∓ ``backtest.backfill_half_spread`` rounded outward to the
    tick, and ``source == 'backfill'``.
    """

    token_id: str
    market_id: str
    timestamp: int
    best_bid: float | None
    best_ask: float | None
    mid: float | None
    source: str = COLLECTED

    @property
    def spread(self) -> float | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid

    @property
    def backfilled(self) -> bool:
        return self.source == BACKFILL

    def age(self, now: int) -> int:
        return int(now) - self.timestamp


@dataclass(frozen=True)
class History:
    """Mids of some tokens on the feed's grid, oldest first.

    ``timestamps[i]`` is the start of grid bucket i (epoch s); ``mids[i, j]`` is the
    last mid of ``token_ids[j]`` seen in that bucket, NaN when it had none (no
    forward fill: the caller chooses its own gap policy). Arrays are copies.
    """

    timestamps: np.ndarray  # int64, shape (n,)
    mids: np.ndarray  # float64, shape (n, k)
    token_ids: tuple[str, ...]

    def column(self, token_id: str) -> np.ndarray:
        return self.mids[:, self.token_ids.index(token_id)]


_VIEW_PUBLIC = frozenset(
    {
        "now",
        "markets",
        "markets_version",
        "market",
        "market_of",
        "is_resolved",
        "interval_seconds",
        "token_ids",
        "index_of",
        "quote",
        "book",
        "latest",
        "history",
        "history_by_index",
        # harmless object machinery (no state): the class, its repr, comparisons, hashing
        "__class__",
        "__repr__",
        "__str__",
        "__eq__",
        "__ne__",
        "__hash__",
        "__init_subclass__",
        "__subclasshook__",
        "__format__",
        "__sizeof__",
        "__dir__",
        "__doc__",
        "__module__",
    }
)


class MarketView:
    """A point-in-time, read-only window on the feed at ``now``.

    Built only by :meth:`MarketFeed.view`. Everything it returns was recorded at
    or before ``now``, as copies or frozen objects. It becomes invalid
    (``RuntimeError``) as soon as the feed receives newer rows, so a strategy
    cannot hold on to it and peek later.

    **Isolation by construction** (issue 14, finding 6). The view is a guarded
    proxy: only the public methods and properties above can be read from it;
    any other attribute (``view._feed``, ``view.__dict__``, ``vars(view)``,
    ``view.__reduce_ex__``, ``copy.copy(view)``, ``pickle.dumps(view)``) raises.
    Nothing it returns leads back: ``markets`` is a read-only mapping of frozen
    :class:`MarketInfo`, arrays are copies, quotes and books are frozen data, and
    a bound method's ``__self__`` is the guarded view itself. So a strategy has
    no attribute path to the database connection, the feed (its depth loader,
    its future rows) or resolution times after ``now``.

    Not guaranteed (deliberate circumvention of Python itself, out of scope):
    ``object.__getattribute__(view, ...)`` or the class's slot descriptors,
    ``gc.get_referents``, inspecting the caller's frames, or opening the
    database file directly. A strategy doing that is sabotage, not a bug; code
    review and the no-I/O rule cover it.
    """

    __slots__ = ("_feed", "_version", "_now")

    def __init__(self, feed: Any, now: int, version: int):
        object.__setattr__(self, "_now", int(now))
        object.__setattr__(self, "_feed", feed)
        object.__setattr__(self, "_version", version)

    def __getattribute__(self, name: str) -> Any:
        if name in _VIEW_PUBLIC:
            return object.__getattribute__(self, name)
        raise AttributeError(
            f"a strategy's MarketView exposes only its public methods ({name!r} is not one): "
            f"strategies see the point-in-time view, never the feed or the database"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a MarketView is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a MarketView is read-only")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a MarketView cannot be copied or pickled: it is valid only inside decide()")

    def __reduce__(self) -> Any:
        raise TypeError("a MarketView cannot be copied or pickled: it is valid only inside decide()")

    def __getstate__(self) -> Any:
        raise TypeError("a MarketView cannot be copied or pickled: it is valid only inside decide()")

    def __copy__(self) -> Any:
        raise TypeError("a MarketView cannot be copied: it is valid only inside decide()")

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError("a MarketView cannot be copied: it is valid only inside decide()")

    def __repr__(self) -> str:
        return f"MarketView(now={_view_now(self)})"

    @property
    def now(self) -> int:
        """The view's time (epoch s): nothing after it is visible."""
        return _view_now(self)

    # --- metadata
    @property
    def markets(self) -> Mapping[str, MarketInfo]:
        """Every known market by id (static metadata; a read-only mapping)."""
        return MappingProxyType(_view_feed(self).markets)

    @property
    def markets_version(self) -> int:
        """Changes whenever market metadata changes (for strategies' caches)."""
        return _view_feed(self).markets_version

    def market(self, market_id: str) -> MarketInfo | None:
        return _view_feed(self).markets.get(market_id)

    def market_of(self, token_id: str) -> MarketInfo | None:
        f = _view_feed(self)
        mid = f.token_market.get(token_id)
        return f.markets.get(mid) if mid is not None else None

    def is_resolved(self, market_id: str) -> bool:
        """True once the market's resolution time is at or before ``now``."""
        t = _view_feed(self).resolved_at.get(market_id)
        return t is not None and t <= _view_now(self)

    @property
    def interval_seconds(self) -> int:
        return _view_feed(self).interval

    # --- latest books
    @property
    def token_ids(self) -> tuple[str, ...]:
        """All tokens the feed knows (index order; see :meth:`index_of`)."""
        return tuple(_view_feed(self).tokens)

    def index_of(self, token_id: str) -> int:
        return _view_feed(self).token_index[token_id]

    def quote(self, token_id: str) -> Quote | None:
        """The latest snapshot of ``token_id`` at or before ``now``; None if never seen."""
        return _view_feed(self).quote(token_id)

    def book(self, token_id: str) -> OrderBook | None:
        """The full recorded book of the latest snapshot (levels best first)."""
        return _view_feed(self).book(token_id)

    def latest(self) -> dict[str, np.ndarray]:
        """Latest top of book for ALL tokens as arrays in index order (copies):
        ``timestamp`` (int64, −1 = never seen), ``bid``, ``ask``, ``mid`` (NaN = none),
        ``backfill`` (bool)."""
        return _view_feed(self).latest_arrays()

    # --- history
    def history(self, token_ids: Sequence[str] | None = None, *, seconds: int | None = None) -> History:
        """Mids on the grid for ``token_ids`` (default all) over the last ``seconds``
        (default the whole retained window), oldest first, the current bucket last."""
        return _view_feed(self).history(token_ids, seconds)

    def history_by_index(self, indices: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: (timestamps, mids[points, len(indices)]) for token indices (copies)."""
        return _view_feed(self).history_by_index(indices, points)


_slot_feed = MarketView.__dict__["_feed"].__get__
_slot_version = MarketView.__dict__["_version"].__get__
_view_now = MarketView.__dict__["_now"].__get__


def _view_feed(view: MarketView) -> Any:
    """The feed behind a view, for the view's own methods (refused once the feed moved on)."""
    feed = _slot_feed(view)
    if feed._version != _slot_version(view):
        raise RuntimeError(
            "this MarketView is stale: the feed has moved past its time; "
            "strategies must not keep views between decide() calls"
        )
    return feed
