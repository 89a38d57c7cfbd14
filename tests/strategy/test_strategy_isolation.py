"""Isolation by construction (issue 14, finding 6): a strategy gets only the point-in-time
view. On 15cb2c7 a strategy could reach the database through
``view._feed.depth_loader.__self__.conn`` and future resolution times through
``view._feed.resolved_at``; cheating strategies reached Sharpe 10.4 on flat prices.

Guaranteed (and tested here): no attribute path from the objects handed to ``decide()``
— the view, what its methods return, its bound methods, the portfolio — to the feed, its
depth loader, the database connection or data after ``view.now``; copying or pickling the
view is refused; a view kept after ``decide()`` refuses to answer.
Not guaranteed (deliberate circumvention of Python, out of scope; see MarketView's
docstring): ``object.__getattribute__``, the class's slot descriptors, ``gc``, the
caller's frames, or opening the database file directly.
"""

from __future__ import annotations

import copy
import pickle

import pytest

from polybot.strategy import ENTER, Intent, Strategy
from polybot.strategy.base import MarketInfo, MarketView
from polybot.strategy.feed import MarketFeed
from tests.backtest.helpers import DAY, T0, M, add_market, new_db, snap
from tests.backtest.test_backtest import run_bt

# The paths a cheating strategy tried on 15cb2c7, and the generic ways to get at an
# object's insides through ordinary attribute access.
CHEATS = {
    "the database through the depth loader": lambda v: v._feed.depth_loader.__self__.conn,
    "future resolution times": lambda v: v._feed.resolved_at,
    "the feed": lambda v: v._feed,
    "the instance dict": lambda v: v.__dict__,
    "vars()": lambda v: vars(v),
    "the feed through a bound method": lambda v: v.quote.__self__._feed,
    "the pickled state": lambda v: v.__reduce_ex__(4),
    "getstate": lambda v: v.__getstate__(),
    "object.__reduce_ex__": lambda v: object.__reduce_ex__(v, 2),
    "copy.copy": lambda v: copy.copy(v),
    "copy.deepcopy": lambda v: copy.deepcopy(v),
    "pickle": lambda v: pickle.dumps(v),
    "the version counter": lambda v: v._version,
    "a method's closure": lambda v: v.quote.__func__.__closure__[0].cell_contents,
    "writing an attribute": lambda v: setattr(v, "now", 0),
    "writing the market metadata": lambda v: v.markets.__setitem__("X", None),
}


class Cheater(Strategy):
    """Tries every path in CHEATS at each decision and records what each one gave."""

    name = "cheater"
    PARAMS: dict = {}

    def __init__(self):
        super().__init__({})
        self.outcomes: dict[str, str] = {}
        self.kept: list = []

    @property
    def history_seconds(self):
        return 3600

    def decide(self, view, portfolio):
        for what, cheat in CHEATS.items():
            try:
                got = cheat(view)
            except Exception as exc:  # noqa: BLE001 — every refusal counts, whatever its type
                self.outcomes.setdefault(what, f"refused: {type(exc).__name__}")
            else:
                self.outcomes[what] = f"LEAKED {type(got).__name__}"
        self.kept.append(view)
        # legitimate use still works: buy once at the first decision
        if portfolio.cash_micro == 500 * M and not portfolio.positions and view.quote("A-yes") is not None:
            q = view.quote("A-yes")
            return [
                Intent(
                    action=ENTER,
                    token_id="A-yes",
                    market_id="A",
                    side="BUY",
                    notional_micro=10 * M,
                    limit_price_micro=int(round(q.best_ask * M)),
                    reason="legit",
                )
            ]
        return []


def _db(tmp_path):
    db = tmp_path / "iso.db"
    conn = new_db(db)
    # A resolves at T0 + 1500: a cheater knowing it in advance could trade on it
    add_market(conn, "A", payouts={"A-yes": 1, "A-no": 0}, resolved_at=T0 + 1500)
    for k in range(6):
        snap(conn, T0 + 300 * k, "A-yes", "A", 0.49, 0.50)
    conn.close()
    return db


def test_a_cheating_strategy_in_a_backtest_reaches_nothing(tmp_path):
    cheater = Cheater()
    _, res, _ = run_bt(_db(tmp_path), cheater, T0, T0 + DAY - 1)
    leaks = {k: v for k, v in cheater.outcomes.items() if not v.startswith("refused")}
    assert set(cheater.outcomes) == set(CHEATS)
    assert leaks == {}, leaks
    # the legitimate part ran: the view answered, the entry filled on the next snapshot
    assert [(f.timestamp, f.side) for f in res.ledger.fills][:1] == [(T0 + 300, "BUY")]
    # a view kept after decide() refuses to answer once the replay moved on
    with pytest.raises(RuntimeError, match="stale"):
        cheater.kept[0].quote("A-yes")


def test_the_view_answers_only_for_its_time():
    feed = MarketFeed(
        [MarketInfo("A", token_ids=("A-yes",))], interval_seconds=300, resolved_at={"A": T0 + 600}
    )
    feed.add_rows([{"timestamp": T0, "token_id": "A-yes", "best_bid": 0.4, "best_ask": 0.5}])
    view = feed.view(T0)
    assert isinstance(view, MarketView) and view.now == T0
    assert view.is_resolved("A") is False  # resolution at T0+600 is the future
    assert view.quote("A-yes").best_ask == 0.5
    with pytest.raises(AttributeError, match="exposes only its public methods"):
        view._feed  # noqa: B018
    assert repr(view) == f"MarketView(now={T0})"
