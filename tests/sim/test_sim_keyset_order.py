"""Gamma's keyset listing over the cached world order (a 50,000-market walk in time
proportional to the pages) returns exactly what filtering then sorting the world returns,
page by page, cursor by cursor — including after a market resolves mid-walk."""

from __future__ import annotations

from polybot.sim import gamma
from polybot.sim.api import Request


def _req(params: dict) -> Request:
    return Request(
        "GET", "/markets/keyset", "/gamma/markets/keyset", {k: [str(v)] for k, v in params.items()}, {}
    )


def _walk(sim, params: dict, handler) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        p = dict(params, **({"after_cursor": cursor} if cursor else {}))
        body = handler(sim, _req(p), sim.now_float())
        pages.append([m["id"] for m in body["markets"]])
        cursor = body.get("next_cursor")
        if not cursor:
            return pages


def _reference(sim, req: Request, t: float) -> dict:
    """The listing as the simulator computed it before the cache: filter, sort, slice."""
    page, nxt = gamma._keyset(sim, req, gamma._market_filter(sim, req, t), lambda m: m, 100)
    body = {"markets": gamma.market_dicts(sim, [m.index for m in page], t)}
    if nxt:
        body["next_cursor"] = nxt
    return body


QUERIES = [
    {"limit": 100, "closed": "false", "order": "liquidityNum", "ascending": "false"},
    {"limit": 7, "closed": "false", "order": "liquidityNum", "ascending": "false"},
    {"limit": 9, "closed": "true", "order": "volumeNum", "ascending": "false"},
    {"limit": 11, "order": "volume24hr", "ascending": "true", "liquidity_num_min": 5000},
    {"limit": 13, "order": "id"},
    {"limit": 6, "order": "endDate", "ascending": "false"},  # not cached: the old path
]


def test_cached_order_pages_equal_filter_then_sort(sim):
    for q in QUERIES:
        assert _walk(sim.sim, q, gamma.markets_keyset) == _walk(sim.sim, q, _reference), q


def test_a_market_resolving_mid_walk_leaves_the_open_listing(sim):
    q = {"limit": 5, "closed": "false", "order": "liquidityNum", "ascending": "false"}
    first = gamma.markets_keyset(sim.sim, _req(q), sim.sim.now_float())
    later = _walk(sim.sim, q, gamma.markets_keyset)
    gone = later[-1][-1]  # a market the walk has not reached yet
    sim.sim.resolve(gone, "YES")
    rest = gamma.markets_keyset(
        sim.sim, _req(dict(q, after_cursor=first["next_cursor"])), sim.sim.now_float()
    )
    walked = [i for page in _walk(sim.sim, q, gamma.markets_keyset) for i in page]
    assert gone not in walked and gone not in [m["id"] for m in rest["markets"]]
    assert walked == [i for page in _walk(sim.sim, q, _reference) for i in page]
