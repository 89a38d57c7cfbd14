"""Which markets the collector tracks (config ``collection:``).

Filters, applied in this order to the open markets Gamma lists (``/markets/keyset``,
``closed=false``, ordered by ``collection.order_by`` descending):

1. open: ``active`` and not ``closed``/``archived`` (``active_only``);
2. accepting orders with the order book enabled (``accepting_orders_only``);
3. 24 h volume ≥ ``min_volume_24h``;
4. liquidity ≥ ``min_liquidity``;
5. tags: at least one tag label/slug in ``tags`` (when set; case-insensitive);
6. keywords: at least one of ``keywords`` in the question, slug or event title (when set);
7. the cap: the ``max_markets`` best by ``order_by`` (``max_markets: all``: no cap — every
   market that passes, the whole active universe when the volume/liquidity floors are 0).

``market_ids`` and ``slugs`` are always tracked, whatever the filters and the cap (they
count towards the cap), unless the market is closed (a closed market has no order book;
its resolution is still recorded by the lifecycle refresh).

Closed markets (``collect_market_data.py --backfill``, survivorship-free history):
:func:`passes_closed` takes those that closed inside the backfill window and match
``tags``/``keywords`` and ``backfill_closed_min_volume`` (lifetime volume); the backfill
lists them most traded first, up to ``backfill_closed_max_markets``.

The scan stops early once the cap is reached — valid because Gamma sorts by
``order_by`` descending; the scan checks that order as it goes and falls back to a full
scan (sorting client-side) if a page arrives out of order. ``--initial`` always scans
everything so its per-filter counts are complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..config import CollectionConfig
from ..errors import ConfigError
from ..exchange.models import Market, ParseIssue

# config order_by (Gamma field) -> Market attribute
ORDER_KEYS = {
    "liquidityNum": "liquidity",
    "liquidity": "liquidity",
    "liquidityClob": "liquidity",
    "volume24hr": "volume_24h",
    "volume24hrClob": "volume_24h",
    "volumeNum": "volume",
    "volume": "volume",
}

FILTERS = ("scanned", "open", "accepting", "volume", "liquidity", "tags", "keywords")


def sort_attr(order_by: str) -> str:
    try:
        return ORDER_KEYS[order_by]
    except KeyError:
        raise ConfigError(
            f"Config key 'collection.order_by' is {order_by!r}; use one of "
            f"liquidityNum, volume24hr or volumeNum; fix it in config.yaml."
        ) from None


@dataclass
class Selection:
    """The tracked universe of one cycle and how it was chosen."""

    markets: list[Market]  # tracked, best first (explicit first)
    counts: dict[str, int] = field(default_factory=dict)  # filter -> markets passing it
    explicit: list[Market] = field(default_factory=list)
    explicit_missing: list[str] = field(default_factory=list)  # ids/slugs not found or closed
    issues: list[ParseIssue] = field(default_factory=list)  # skipped malformed records
    full_scan: bool = True
    capped: int = 0  # passing markets left out by the cap

    @property
    def token_ids(self) -> list[str]:
        return [t for m in self.markets for t in m.token_ids]


def _matches_tags(m: Market, tags: set[str]) -> bool:
    return any(t.lower() in tags for t in m.tags)


def _matches_keywords(m: Market, words: list[str]) -> bool:
    hay = f"{m.question}\n{m.slug}\n{m.event_title or ''}".lower()
    return any(w in hay for w in words)


def passes(m: Market, cc: CollectionConfig, counts: dict | None = None) -> bool:
    """Whether ``m`` passes every filter of ``cc`` (CollectionConfig), counting in ``counts``."""

    def ok(name: str) -> None:
        if counts is not None:
            counts[name] = counts.get(name, 0) + 1

    ok("scanned")
    if cc.active_only and (not m.active or m.closed or m.archived):
        return False
    ok("open")
    if cc.accepting_orders_only and (not m.accepting_orders or not m.enable_order_book):
        return False
    ok("accepting")
    if (m.volume_24h or 0.0) < cc.min_volume_24h:
        return False
    ok("volume")
    if (m.liquidity or 0.0) < cc.min_liquidity:
        return False
    ok("liquidity")
    if cc.tags and not _matches_tags(m, {t.lower() for t in cc.tags}):
        return False
    ok("tags")
    if cc.keywords and not _matches_keywords(m, [k.lower() for k in cc.keywords]):
        return False
    ok("keywords")
    return True


def passes_closed(m: Market, cc: CollectionConfig, start: int, end: int) -> bool:
    """Whether a market that CLOSED is one the collection would have tracked in the
    window [start, end] (the backfill's survivorship-free part): closed, with outcome
    tokens, closed (Gamma ``closedTime``, else its end date) inside the window, matching
    ``tags`` and ``keywords``, lifetime volume ≥ ``backfill_closed_min_volume``. The live
    filters (24 h volume, liquidity, accepting orders) say nothing about a closed market."""
    if not m.closed or not m.tokens:
        return False
    closed_at = m.closed_time if m.closed_time is not None else m.end_date
    if closed_at is None or not start <= closed_at <= end + 86_400:
        return False  # end date moved, or no time known: not this window's
    if cc.tags and not _matches_tags(m, {t.lower() for t in cc.tags}):
        return False
    if cc.keywords and not _matches_keywords(m, [k.lower() for k in cc.keywords]):
        return False
    return (m.volume or 0.0) >= cc.backfill_closed_min_volume


def select(
    markets: Iterable[Market],
    cc: CollectionConfig,
    *,
    explicit: Iterable[Market] = (),
    full_scan: bool = False,
    issues: Callable[[], list] = list,
    on_final: Callable[[Market], None] | None = None,
) -> Selection:
    """Choose the tracked markets from Gamma's listing ``markets`` (an iterator, consumed
    lazily so the scan can stop early) plus the ``explicit`` markets (fetched by id/slug).
    ``issues`` returns the parse issues of the listing once it is consumed. ``on_final``
    is called for each market as soon as it is certain to be tracked (explicit ones first,
    then passing ones inside the cap while the listing is sorted), so work on it can start
    before the scan ends; if the listing turns out unsorted, a few of those may end up
    outside the final selection."""
    key = sort_attr(cc.order_by)
    explicit = [m for m in explicit if not m.closed]
    explicit_ids = {m.id for m in explicit}
    cap = cc.market_cap  # None: all (every passing market is final as soon as it is seen)
    room = max(0, cap - len(explicit)) if cap is not None else None
    if on_final:
        for m in explicit:
            on_final(m)
    counts = {name: 0 for name in FILTERS}
    passing: list[Market] = []
    sorted_so_far = True
    last_key: float | None = None
    stopped_early = False
    for m in markets:
        k = float(getattr(m, key) or 0.0)
        if last_key is not None and k > last_key + 1e-9:
            sorted_so_far = False  # server did not sort: scan everything
        last_key = k
        if m.id in explicit_ids:
            counts["scanned"] += 1
            continue
        if passes(m, cc, counts):
            passing.append(m)
            if on_final and (room is None or (sorted_so_far and len(passing) <= room)):
                on_final(m)
        if room is not None and not full_scan and sorted_so_far and len(passing) >= room:
            stopped_early = True
            break
    passing.sort(key=lambda m: float(getattr(m, key) or 0.0), reverse=True)
    chosen = passing[:room] if room is not None else passing
    return Selection(
        markets=explicit + chosen,
        counts=counts,
        explicit=explicit,
        issues=list(issues()),
        full_scan=not stopped_early,
        capped=max(0, len(passing) - room) if room is not None else 0,
    )


def describe(sel: Selection, cc: CollectionConfig, *, top: int = 10) -> list[str]:
    """The ``--initial`` report: counts per filter and the top markets."""
    c = sel.counts
    scope = "every open market" if sel.full_scan else "open markets until the cap was reached"
    lines = [
        f"Universe selection (Gamma, ordered by {cc.order_by} descending; scanned {scope}):",
        f"  {c.get('scanned', 0):>7,}  markets listed (parsed)",
    ]
    rows = [
        ("open", "open (active, not closed or archived)" if cc.active_only else "open filter off"),
        (
            "accepting",
            "accepting orders, order book enabled"
            if cc.accepting_orders_only
            else "accepting-orders filter off",
        ),
        ("volume", f"24h volume >= ${cc.min_volume_24h:,.0f}"),
        ("liquidity", f"liquidity >= ${cc.min_liquidity:,.0f}"),
        ("tags", f"tags {', '.join(cc.tags)}" if cc.tags else "tags (not set)"),
        ("keywords", f"keywords {', '.join(cc.keywords)}" if cc.keywords else "keywords (not set)"),
    ]
    for name, label in rows:
        lines.append(f"  {c.get(name, 0):>7,}  {label}")
    n_sel = len(sel.markets) - len(sel.explicit)
    cap_note = f" ({sel.capped:,} more passed but are over the cap)" if sel.capped else ""
    if cc.market_cap is None:
        lines.append(f"  {n_sel:>7,}  tracked: max_markets = all (no cap)")
    else:
        lines.append(f"  {n_sel:>7,}  within the cap max_markets = {cc.max_markets}{cap_note}")
    if cc.market_ids or cc.slugs:
        lines.append(f"  {len(sel.explicit):>7,}  explicit market_ids/slugs (always tracked)")
    for what in sel.explicit_missing:
        lines.append(f"  ! explicit market {what} was not tracked (not found or closed)")
    lines.append(f"  {len(sel.markets):>7,}  markets tracked, {len(sel.token_ids):,} outcome tokens")
    if sel.issues:
        lines.append(f"Skipped {len(sel.issues)} malformed market record(s):")
        for issue in sel.issues[:10]:
            lines.append(f"  - {issue.record_id}: {issue.reason}")
    if sel.markets:
        lines.append(f"Top {min(top, len(sel.markets))} tracked markets:")
        lines.append(f"  {'#':>3}  {'liquidity':>12}  {'24h volume':>12}  question")
        for i, m in enumerate(sel.markets[:top], 1):
            q = m.question if len(m.question) <= 70 else m.question[:67] + "..."
            lines.append(
                f"  {i:>3}  {'$' + format(m.liquidity, ',.0f'):>12}  "
                f"{'$' + format(m.volume_24h, ',.0f'):>12}  {q}"
            )
    return lines
