"""The strategy interface, shared by the backtester and the trading engine.

A strategy is a pure decision function with (optional) memory::

    intents = strategy.decide(view, portfolio)

- ``view`` (:class:`MarketView`) is a point-in-time picture of the market at
  ``view.now``: for every token the latest stored snapshot at or before ``now``
  (a :class:`Quote`, with the order book on demand), a bounded history of mids
  on a fixed grid, and static market metadata (:class:`MarketInfo`: question,
  event, negRisk group, end date, tick, minimum size, fee schedule). Nothing
  after ``now`` is reachable from it. Views are built by
  :class:`polybot.strategy.feed.MarketFeed` from plain ``market_snapshots`` rows
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
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from polybot.errors import ConfigError
from polybot.exchange.models import BookLevel, FeeSchedule
from polybot.money import MICRO

ENTER = "ENTER"
EXIT = "EXIT"
ACTIONS = (ENTER, EXIT)
BUY = "BUY"
SELL = "SELL"

COLLECTED = "collected"
BACKFILL = "backfill"


# ----------------------------------------------------------------------------- intents
@dataclass(frozen=True)
class Intent:
    """What a strategy wants done. Money in integer micro-units.

    - ``action`` ENTER (open or add to a position: side must be BUY) or EXIT
      (reduce/close a position: side must be SELL, ``size_micro`` shares).
    - Exactly one of ``size_micro`` (shares) or ``notional_micro`` (USD to
      spend, BUY only) is set.
    - ``limit_price_micro``: the worst price accepted (a BUY pays at most it, a
      SELL gets at least it); ``None`` = any price (exits that must happen).
    - ``reason``: a short human sentence, stored with the order and trade.
    - ``tag``: the strategy's own machine label (e.g. the pair), never sent anywhere.
    """

    action: str
    token_id: str
    market_id: str
    side: str
    size_micro: int | None = None
    notional_micro: int | None = None
    limit_price_micro: int | None = None
    reason: str = ""
    strategy: str = ""
    tag: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"Intent.action must be ENTER or EXIT, got {self.action!r}")
        if self.action == ENTER and self.side != BUY:
            raise ValueError("an ENTER intent must be a BUY (Polymarket has no short selling)")
        if self.action == EXIT and self.side != SELL:
            raise ValueError("an EXIT intent must be a SELL of shares held")
        if (self.size_micro is None) == (self.notional_micro is None):
            raise ValueError("give exactly one of Intent.size_micro (shares) or notional_micro (USD)")
        if self.notional_micro is not None and self.side != BUY:
            raise ValueError("Intent.notional_micro (USD) is for BUYs; give a SELL in shares")
        for name in ("size_micro", "notional_micro"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ValueError(f"Intent.{name} must be a positive integer of micro-units, got {v!r}")
        p = self.limit_price_micro
        if p is not None and (not isinstance(p, int) or not 0 < p < MICRO):
            raise ValueError(f"Intent.limit_price_micro must be an integer in (0, 1_000_000), got {p!r}")

    @property
    def is_entry(self) -> bool:
        return self.action == ENTER

    def with_size(self, *, size_micro: int | None = None, notional_micro: int | None = None) -> Intent:
        """A copy with a new size (used by the risk manager when it resizes)."""
        from dataclasses import replace

        return replace(self, size_micro=size_micro, notional_micro=notional_micro)

    def estimated_price_micro(self, fallback_micro: int | None = None) -> int | None:
        return self.limit_price_micro if self.limit_price_micro is not None else fallback_micro


# ----------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class MarketInfo:
    """Static metadata of one market (a ``markets`` row). No outcome, no status.

    What changes over time and could leak the future — ``closed``, ``payouts``,
    ``resolved_at`` — is deliberately NOT here: ask the view
    (``view.is_resolved(market_id)``), which answers for ``view.now``.
    """

    market_id: str
    question: str = ""
    token_ids: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    event_id: str | None = None
    event_title: str | None = None
    neg_risk: bool = False
    neg_risk_market_id: str | None = None
    end_date: int | None = None  # epoch seconds UTC (scheduled end)
    tick_size: float = 0.01
    min_order_size: float = 5.0
    fee: FeeSchedule = field(default_factory=FeeSchedule)

    @property
    def primary_token(self) -> str | None:
        """The YES / first outcome token (the one series per market we analyse)."""
        return self.token_ids[0] if self.token_ids else None

    @property
    def tick_micro(self) -> int:
        return int(round(self.tick_size * MICRO))

    @property
    def min_size_micro(self) -> int:
        return int(round(self.min_order_size * MICRO))

    def short_label(self, width: int = 28) -> str:
        q = (self.question or self.market_id).strip()
        return q if len(q) <= width else q[: width - 1] + "…"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MarketInfo:
        """Build from a ``markets`` row (sqlite3.Row or dict)."""
        keys = row.keys() if hasattr(row, "keys") else row

        def get(k: str, d: Any = None) -> Any:
            return row[k] if k in keys and row[k] is not None else d

        token_ids = get("token_ids", "[]")
        outcomes = get("outcomes", "[]")
        token_ids = tuple(json.loads(token_ids) if isinstance(token_ids, str) else token_ids)
        outcomes = tuple(json.loads(outcomes) if isinstance(outcomes, str) else outcomes)
        fee = FeeSchedule(
            rate=float(get("fee_rate", 0.0)),
            exponent=float(get("fee_exponent", 1.0)),
            enabled=bool(get("fees_enabled", 0)),
        )
        end = get("end_date")
        return cls(
            market_id=str(row["id"]),
            question=str(get("question", "")),
            token_ids=tuple(str(t) for t in token_ids),
            outcomes=tuple(str(o) for o in outcomes),
            event_id=get("event_id"),
            event_title=get("event_title"),
            neg_risk=bool(get("neg_risk", 0)),
            neg_risk_market_id=get("neg_risk_market_id"),
            end_date=int(end) if end is not None else None,
            tick_size=float(get("tick_size", 0.01)),
            min_order_size=float(get("min_order_size", 5.0)),
            fee=fee,
        )


def parse_levels(text: str | None) -> tuple[BookLevel, ...]:
    """``"0.49:120,0.48:300"`` (best first) → BookLevels; empty/None → ()."""
    if not text:
        return ()
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


# ----------------------------------------------------------------------------- portfolio
@dataclass(frozen=True)
class Holding:
    """One open position (mirrors the ``positions`` table). Micro-units."""

    token_id: str
    market_id: str
    size_micro: int  # shares held
    cost_micro: int  # cost basis incl. buy fees of the shares held
    opened_at: int  # epoch s of the first fill
    strategy: str = ""
    group_key: str = ""  # "|"-joined risk groups at entry (see polybot.risk)

    @property
    def avg_price_micro(self) -> int:
        return 0 if not self.size_micro else (self.cost_micro * MICRO) // self.size_micro

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Holding:
        keys = row.keys() if hasattr(row, "keys") else row
        return cls(
            token_id=str(row["token_id"]),
            market_id=str(row["market_id"]),
            size_micro=int(row["size_micro"]),
            cost_micro=int(row["cost_micro"]),
            opened_at=int(row["opened_at"]),
            strategy=str(row["strategy"] or "") if "strategy" in keys else "",
            group_key=str(row["group_key"] or "") if "group_key" in keys else "",
        )


@dataclass(frozen=True)
class PortfolioView:
    """What a strategy may know about the account: cash and open positions."""

    cash_micro: int
    positions: Mapping[str, Holding] = field(default_factory=dict)  # token → Holding

    def holds(self, token_id: str) -> bool:
        h = self.positions.get(token_id)
        return h is not None and h.size_micro > 0

    def market_ids(self) -> set[str]:
        return {h.market_id for h in self.positions.values() if h.size_micro > 0}


# ----------------------------------------------------------------------------- the view
from .view import MarketView  # noqa: E402  (after Quote/History/MarketInfo; view.py imports nothing from here)


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
