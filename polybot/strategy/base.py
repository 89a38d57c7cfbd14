"""The strategy interface, shared by the backtester and the trading engine.

A strategy is a pure decision function with (optional) memory::

    intents = strategy.decide(view, portfolio)

- ``view`` (:class:`MarketView`) is a point-in-time picture of the market at
  ``view.now``: for every token the latest stored snapshot at or before ``now``
  (a :class:`Quote`, with the order book on demand), a bounded history of mids
  on a fixed grid, and static market metadata (:class:`MarketInfo`: question,
  event, negRisk group, end date, tick, minimum size, fee schedule). Nothing
  after ``now`` is reachable from it. Views are built by
  :class:`polybot.strategy.feed.MarketFeed` from plain ``snapshot_values`` rows
  — the backtester feeds stored rows in time order, the engine feeds the rows it
  has just stored — so both paths give a strategy identical inputs.
- ``portfolio`` (:class:`PortfolioView`) is cash and open positions
  (:class:`Holding`, mirroring the ``positions`` table).
- The result is a list of :class:`Intent`: ENTER (always a BUY — Polymarket has
  no short selling; to bet against an outcome, buy the other outcome's token)
  or EXIT (a SELL of shares held). Intents are wishes: the shared risk manager
  (:mod:`polybot.risk`) approves, resizes or rejects each one, and the caller
  (backtester or engine) executes what was approved.

Rules for strategy authors (tests enforce the first three):
- no I/O, no clock reads (use ``view.now``), no exchange calls, no randomness
  unless seeded from params;
- identical sequences of (view, portfolio) must give identical intents, so any
  memory a strategy keeps must be derived from those inputs only;
- never keep a :class:`MarketView` after ``decide`` returns (it is invalidated
  as soon as the feed moves on; using it raises ``RuntimeError``);
- parameters come from config ``strategy: {name, params}``; declare them in
  ``PARAMS`` (name → default) and they are validated by :meth:`Strategy.__init__`
  (unknown key → ``ConfigError`` naming ``strategy.params.<key>`` and the
  closest valid name; wrong type → ``ConfigError``).
"""

from __future__ import annotations

import abc
import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from polybot.domain import (  # noqa: F401  (the records and names strategies use, re-exported)
    BUY,
    ENTER,
    EXIT,
    SELL,
    Holding,
    Intent,
    MarketInfo,
    PortfolioView,
)
from polybot.errors import ConfigError
from polybot.exchange.models import BookLevel
from polybot.money import MICRO
from polybot.snapshots.codec import levels_of

from .view import BACKFILL, COLLECTED, History, MarketView, Quote  # noqa: F401  (re-exported)


def parse_levels(text: str | bytes | None) -> tuple[BookLevel, ...]:
    """Recorded levels, best first → BookLevels (levels without size dropped); empty/None →
    (). ``text`` is the packed BLOB of a stored snapshot or the text ``"0.49:120,0.48:300"``
    (:func:`polybot.snapshots.codec.levels_of` reads both)."""
    if not text:
        return ()
    if isinstance(text, (bytes, bytearray, memoryview)):
        return tuple(BookLevel(p, s) for p, s in levels_of(bytes(text)) if s > 0)
    out = []
    for part in text.split(","):
        p, _, s = part.partition(":")
        try:
            price, size = float(p), float(s)
        except ValueError:
            continue
        if size > 0:
            out.append(BookLevel(price, size))
    return tuple(out)


# ----------------------------------------------------------------------------- strategies
class Strategy(abc.ABC):
    """Base class of every strategy. Subclasses set ``name``, ``PARAMS`` and ``decide``.

    ``PARAMS`` maps each parameter name to its default; the default's type is the
    parameter's type (ints accept whole numbers, floats accept ints, bools only
    true/false). :meth:`check_params` may add range checks (raise via :meth:`bad`).
    """

    name: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Any]] = {}
    DESCRIPTION: ClassVar[str] = ""

    def __init__(self, params: Mapping[str, Any] | None = None):
        self.params: dict[str, Any] = self.validate_params(params or {})
        self.check_params()

    # ---- parameters
    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(params, Mapping):
            raise ConfigError(
                "Config key 'strategy.params' must be a mapping of parameter: value; fix it in config.yaml."
            )
        out = dict(cls.PARAMS)
        valid = sorted(cls.PARAMS)
        for key, value in params.items():
            dotted = f"strategy.params.{key}"
            if key not in cls.PARAMS:
                close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else f"valid parameters of {cls.name}: {', '.join(valid)}."
                )
                raise ConfigError(f"Unknown config key '{dotted}' for strategy {cls.name}: {hint}")
            out[key] = _coerce_param(value, cls.PARAMS[key], dotted)
        return out

    def check_params(self) -> None:  # noqa: B027 — an optional hook: a strategy without range checks keeps it
        """Range checks; override and call :meth:`bad` for a broken value."""

    @staticmethod
    def bad(key: str, problem: str) -> None:
        raise ConfigError(f"Config key 'strategy.params.{key}' {problem}; fix it in config.yaml.")

    # ---- what the feed must keep for this strategy
    @property
    def history_seconds(self) -> int:
        """How much mid history the strategy reads (the feed keeps at least this)."""
        return 24 * 3600

    # ---- the decision
    @abc.abstractmethod
    def decide(self, view: MarketView, portfolio: PortfolioView) -> list[Intent]:
        """Return the intents for ``view.now``. Pure: no I/O, no clock, no exchange."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


def _param_type_error(dotted: str, value: Any, kind: str) -> ConfigError:
    return ConfigError(f"Config key '{dotted}' must be {kind} (got {value!r}); fix it in config.yaml.")


def _coerce_int(value: Any, dotted: str) -> int:
    """A whole number: an int (not a bool) or an integral float."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _param_type_error(dotted, value, "a whole number")


def _coerce_param(value: Any, default: Any, dotted: str) -> Any:
    """``value`` as the type of the parameter's ``default``; ConfigError naming the key if it is not one."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise _param_type_error(dotted, value, "true or false")
    if isinstance(default, int):
        return _coerce_int(value, dotted)
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _param_type_error(dotted, value, "a number")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise _param_type_error(dotted, value, "text")
    if isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise _param_type_error(dotted, value, "a list")
    return value


def price_to_micro(price: float) -> int:
    """A float market price → integer micro-units (rounded to the nearest micro)."""
    return int(round(price * MICRO))


def limit_for_buy(ask: float, tick: float, slippage_ticks: int) -> int:
    """Worst price accepted by a marketable BUY: the ask plus ``slippage_ticks`` ticks,
    on the tick grid and at most 1 − tick (micro-units)."""
    tick_m = int(round(tick * MICRO))
    p = int(round(ask * MICRO)) + slippage_ticks * tick_m
    p = -(-p // tick_m) * tick_m
    return max(tick_m, min(MICRO - tick_m, p))


def limit_for_sell(bid: float, tick: float, slippage_ticks: int) -> int:
    """Worst price accepted by a marketable SELL: the bid minus ``slippage_ticks`` ticks."""
    tick_m = int(round(tick * MICRO))
    p = int(round(bid * MICRO)) - slippage_ticks * tick_m
    p = (p // tick_m) * tick_m
    return max(tick_m, min(MICRO - tick_m, p))


def group_by_timestamp(rows: Iterable[Mapping[str, Any]]) -> dict[int, list]:
    out: dict[int, list] = {}
    for r in rows:
        out.setdefault(int(r["timestamp"]), []).append(r)
    return out
