"""The simulator's synthetic world: events, markets and tokens, generated
deterministically from a seed (no I/O, no clock).

Three kinds of event give the world a latent structure that tests and strategies
can check against (``World.driver_of`` / ``World.groups``):

- ``single``  — one binary market driven by its own independent latent path;
- ``ladder``  — 2-5 binary markets (e.g. "Bitcoin above $X" thresholds) that share
  one latent driver (loading 0.85-0.95) plus small idiosyncratic noise, so their
  price changes are strongly positively correlated;
- ``negrisk`` — a 3-5 outcome negative-risk event; each outcome market has its
  own latent score and YES prices are the softmax of the scores (they sum to 1).

A few single markets (and one negRisk event when the world is big enough) are
planned to resolve 1-3 sim-days after the start (YES, NO and 50-50), and a few
were already resolved before the start (``closed=true`` in Gamma).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

import numpy as np

from .noise import key_of

DAY = 86_400

# category -> (fee rate, rebate rate, feeType, tag id)
CATEGORIES = {
    "Politics": (0.04, 0.25, "politics_fees", "2"),
    "Crypto": (0.07, 0.20, "crypto_fees", "21"),
    "Sports": (0.05, 0.15, "sports_fees", "1"),
    "Economics": (0.05, 0.25, "economics_fees", "100328"),
    "Culture": (0.05, 0.25, "culture_fees", "596"),
    "Tech": (0.04, 0.25, "tech_fees", "1401"),
    "Finance": (0.04, 0.25, "finance_fees", "120"),
    "Geopolitics": (0.0, 0.0, None, "100265"),
}

_PEOPLE = (
    "Avery Quinn",
    "Jordan Blake",
    "Morgan Hale",
    "Riley Park",
    "Casey Moreno",
    "Taylor Reed",
    "Jamie Ortiz",
    "Alex Carter",
    "Sam Whitfield",
    "Drew Navarro",
    "Robin Okafor",
    "Kai Lindqvist",
    "Noor Haddad",
    "Elena Petrova",
    "Marcus Bell",
    "Priya Raman",
    "Lucas Ferreira",
    "Hana Sato",
)
_PLACES = (
    "Arcadia",
    "Borealis",
    "Calder",
    "Dunmore",
    "Elmira",
    "Fairhaven",
    "Glenrock",
    "Harlow",
    "Islington",
    "Juniper",
    "Kestrel",
    "Lakeview",
    "Marlow",
    "Northgate",
    "Oakridge",
    "Pinecrest",
)
_TEAMS = (
    "Comets",
    "Titans",
    "Wolves",
    "Falcons",
    "Rangers",
    "Pirates",
    "Hornets",
    "Vipers",
    "Bears",
    "Sharks",
    "Storm",
    "Knights",
    "Raptors",
    "Dragons",
    "Mariners",
    "Giants",
)
_FILMS = (
    "The Long Tide",
    "Glass Orchard",
    "Northern Lights",
    "Paper Moons",
    "The Quiet Hour",
    "Iron Meadow",
    "Silver Coast",
    "Last Orbit",
    "Velvet Road",
    "The Cartographer",
)
_COINS = (("Bitcoin", 100_000, 5_000), ("Ethereum", 4_000, 250), ("Solana", 200, 20), ("XRP", 3, 0.25))
_COUNTRIES = ("Valoria", "Ostmark", "Kerenia", "Dalmor", "Tessaly", "Brevania", "Montague", "Sarnia")
_COMPANIES = ("Nimbus", "Quanta", "Helix", "Orbital", "Lumen", "Vertex", "Cobalt", "Synapse")
_PRODUCTS = ("a foldable phone", "an AR headset", "a new LLM", "a robotaxi service", "a quantum chip")
_TICKERS = ("NVDA", "AAPL", "TSLA", "MSFT", "AMZN", "META", "GOOGL")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _hex(*parts) -> str:
    return "0x" + hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def _token_id(*parts) -> str:
    n = int.from_bytes(hashlib.sha256(":".join(str(p) for p in parts).encode()).digest(), "big")
    return str(10**75 + n % (9 * 10**76))  # 76-77 decimal digits, like real ids


def _slugify(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")[:90]


@dataclass
class SimEvent:
    index: int
    id: str
    kind: str  # single | ladder | negrisk
    title: str
    slug: str
    category: str
    market_indices: list = field(default_factory=list)
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    created_ts: int = 0
    end_ts: int = 0
    comment_count: int = 0


@dataclass
class SimMarket:
    index: int
    id: str  # Gamma id (decimal string)
    event_index: int
    kind: str  # single | ladder | negrisk
    question: str
    slug: str
    group_item_title: str
    category: str
    condition_id: str
    question_id: str
    token_ids: tuple  # (yes/outcome-0 token, no token)
    outcomes: tuple = ("Yes", "No")
    version: str | None = "v1"  # "v1", "v2" (positionIds) or None (field omitted)
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    neg_risk_request_id: str = ""
    driver: str = ""
    base: float = 0.0  # logit (binary) or softmax score (negrisk)
    vol: float = 0.15  # one-day std of the latent logit/score
    loading: float = 1.0  # weight of the shared driver (ladder)
    tick: float = 0.01
    half_spread: int = 1  # ticks either side of the path price
    depth_bid: int = 6
    depth_ask: int = 6
    size_scale: float = 100.0
    empty_side: str = ""  # "", "bid" or "ask" (YES book side always empty)
    never_traded: bool = False
    min_size: float = 5.0
    fee_rate: float = 0.0
    rebate_rate: float = 0.0
    fee_type: str | None = None
    fees_enabled: bool = False
    liquidity: float = 0.0
    volume: float = 0.0
    volume24hr: float = 0.0
    volume1wk: float = 0.0
    volume1mo: float = 0.0
    volume1yr: float = 0.0
    created_ts: int = 0
    start_ts: int = 0
    end_ts: int = 0
    resolution: str | None = None  # planned outcome: YES | NO | 50-50 (None: after the run)
    tag_id: str = ""

    @property
    def is_v2(self) -> bool:
        return self.version == "v2"


class World:
    """All static facts of the simulated exchange, plus numpy columns for pricing."""

    def __init__(
        self,
        *,
        seed: int,
        n_markets: int,
        start_ts: int,
        n_resolving: int = 5,
        resolve_days: tuple = (1.0, 3.0),
    ):
        if n_markets < 1:
            raise ValueError("n_markets must be at least 1")
        self.seed = int(seed)
        self.start_ts = int(start_ts)
        self.events: list[SimEvent] = []
        self.markets: list[SimMarket] = []
        self._rng = random.Random(self.seed)
        self._build(n_markets)
        self._plan_resolutions(n_resolving, resolve_days)
        self._index()

    # ------------------------------------------------------------------ generation
    def _build(self, n: int) -> None:
        rng = self._rng
        left = n
        forced = ["ladder", "negrisk", "single", "single"] if n >= 9 else []
        while left > 0:
            if forced:
                kind = forced.pop(0)
            else:
                r = rng.random()
                kind = "negrisk" if r < 0.22 else "ladder" if r < 0.50 else "single"
            if kind == "negrisk" and left >= 3:
                size = min(rng.randint(3, 5), left)
            elif kind == "ladder" and left >= 2:
                size = min(rng.randint(2, 5), left)
            else:
                kind, size = "single", 1
            self._make_event(kind, size)
            left -= size

    def _make_event(self, kind: str, size: int) -> None:
        rng, seed = self._rng, self.seed
        ei = len(self.events)
        if kind == "negrisk":
            category = rng.choice(("Politics", "Sports", "Culture"))
        elif kind == "ladder":
            category = rng.choice(("Crypto", "Crypto", "Economics", "Finance", "Politics"))
        else:
            category = rng.choice(tuple(CATEGORIES))
        end_ts = self.start_ts + int(rng.uniform(7, 400)) * DAY + rng.choice((0, 12 * 3600))
        title, questions, labels = self._texts(kind, category, size, end_ts)
        event = SimEvent(
            index=ei,
            id=str(30_000 + ei * 7 + rng.randint(0, 6)),
            kind=kind,
            title=title,
            slug=_slugify(title) + f"-{ei}",
            category=category,
            neg_risk=(kind == "negrisk"),
            created_ts=self.start_ts - int(rng.uniform(45, 400) * DAY),
            end_ts=end_ts,
            comment_count=rng.randint(0, 900),
        )
        if event.neg_risk:
            event.neg_risk_market_id = _hex(seed, "nrm", ei)
        version = "v2" if (rng.random() < 0.1 or ei == 3) else ("v1" if ei % 3 else None)
        fee_rate, rebate, fee_type, tag_id = CATEGORIES[category]
        liq_event = math.exp(rng.gauss(math.log(20_000), 1.9))
        weights = [rng.gammavariate(1.2, 1.0) for _ in range(size)]
        top = max(weights)
        for k in range(size):
            mi = len(self.markets)
            liquidity = min(max(liq_event * math.exp(rng.gauss(0, 0.6)), 40.0), 6e7)
            v24 = liquidity * math.exp(rng.gauss(-0.8, 1.4))
            thin = liquidity < 1500
            m = SimMarket(
                index=mi,
                id=str(500_000 + mi * 13 + rng.randint(0, 12)),
                event_index=ei,
                kind=kind,
                question=questions[k],
                slug=_slugify(questions[k]) + f"-{mi}",
                group_item_title=labels[k],
                category=category,
                condition_id=_hex(seed, "cond", mi),
                question_id=_hex(seed, "q", mi),
                token_ids=(_token_id(seed, "tok", mi, 0), _token_id(seed, "tok", mi, 1)),
                version=version,
                neg_risk=event.neg_risk,
                neg_risk_market_id=event.neg_risk_market_id,
                neg_risk_request_id=_hex(seed, "nrr", mi) if event.neg_risk else "",
                fee_rate=fee_rate,
                rebate_rate=rebate,
                fee_type=fee_type,
                fees_enabled=fee_rate > 0,
                tag_id=tag_id,
                liquidity=round(liquidity, 5),
                volume24hr=round(v24, 6),
                created_ts=event.created_ts,
                start_ts=event.created_ts + rng.randint(60, 3600),
                end_ts=end_ts,
            )
            m.volume1wk = round(v24 * rng.uniform(4, 9), 6)
            m.volume1mo = round(m.volume1wk * rng.uniform(3, 5), 6)
            m.volume1yr = round(m.volume1mo * rng.uniform(3, 12), 6)
            m.volume = m.volume1yr * rng.uniform(1.0, 1.3)
            if kind == "ladder":
                m.driver = f"ladder-{event.id}"
                m.loading = rng.uniform(0.85, 0.95)
                m.base = 1.3 - 2.6 * (k + 0.5) / size + rng.gauss(0, 0.15)
                m.vol = rng.uniform(0.15, 0.25)
            elif kind == "negrisk":
                m.driver = f"negrisk-{event.id}"
                m.base = math.log(weights[k] / top + 0.02)
                m.vol = rng.uniform(0.12, 0.22)
            else:
                m.driver = f"single-{m.id}"
                m.base = rng.gauss(0, 1.1)
                m.vol = rng.uniform(0.08, 0.25)
            m.tick = 0.001 if (kind == "negrisk" and rng.random() < 0.35) or rng.random() < 0.08 else 0.01
            m.half_spread = rng.randint(2, 5) if thin else rng.randint(1, 3)
            m.depth_bid = rng.randint(1, 3) if thin else rng.randint(5, 10)
            m.depth_ask = rng.randint(1, 3) if thin else rng.randint(5, 10)
            m.size_scale = max(5.0, min(liquidity / (m.depth_bid + m.depth_ask), 2e6))
            m.never_traded = thin and rng.random() < 0.5
            if kind == "single" and rng.random() < 0.06:
                m.empty_side = rng.choice(("ask", "bid"))
                m.base = -5.5 if m.empty_side == "ask" else 5.5  # a long shot / a near-certainty
                m.tick = 0.001
            event.market_indices.append(mi)
            self.markets.append(m)
        self.events.append(event)

    def _texts(self, kind: str, category: str, size: int, end_ts: int):
        rng = self._rng
        t = _date_words(end_ts)
        year = 2027 + rng.randint(0, 2)
        if kind == "ladder":
            if category == "Crypto":
                coin, level, step = rng.choice(_COINS)
                levels = [_money(level + step * (k - size // 2)) for k in range(size)]
                qs = [f"Will {coin} be above ${lv} on {t}?" for lv in levels]
                return f"{coin} above ___ on {t}?", qs, [f"${lv}" for lv in levels]
            if category in ("Economics", "Finance"):
                rates = [round(2.0 + 0.25 * k + rng.choice((0, 0.5)), 2) for k in range(size)]
                qs = [
                    f"US inflation above {lv}% in {_MONTHS[k % 12]} {year}? #{rng.randint(1, 999)}"
                    for k, lv in enumerate(rates)
                ]
                return f"US inflation ladder {year} #{rng.randint(1, 9999)}", qs, [f"{lv}%" for lv in rates]
            party = rng.choice(("Blue Party", "Green Party", "Union Party"))
            seats = [200 + 15 * k for k in range(size)]
            qs = [f"Will the {party} win {s}+ seats in {year}? #{rng.randint(1, 999)}" for s in seats]
            return f"{party} seats in {year}", qs, [f"{s}+" for s in seats]
        if kind == "negrisk":
            if category == "Politics":
                names = rng.sample(_PEOPLE, size)
                office = (
                    f"{rng.choice(_PLACES)} {rng.choice(('Mayoral', 'Gubernatorial', 'Senate'))} Election"
                )
                return (f"{office} {year}", [f"Will {n} win the {office} {year}?" for n in names], names)
            if category == "Sports":
                names = [f"{rng.choice(_PLACES)} {tm}" for tm in rng.sample(_TEAMS, size)]
                league = rng.choice(("Premier Cup", "Continental League", "Champions Series"))
                return (
                    f"{league} {year} Winner",
                    [f"Will the {n} win the {league} {year}?" for n in names],
                    names,
                )
            names = rng.sample(_FILMS, size)
            return (f"Best Picture {year}", [f"Will {n} win Best Picture {year}?" for n in names], names)
        a, b = rng.sample(_COUNTRIES, 2)
        options = {
            "Politics": f"Will {rng.choice(_PEOPLE)} announce a run for {rng.choice(_PLACES)} mayor by {t}?",
            "Crypto": f"Will {rng.choice(_COINS)[0]} hit a new all-time high by {t}?",
            "Sports": f"Will the {rng.choice(_PLACES)} {rng.choice(_TEAMS)} reach the final in {year}?",
            "Economics": f"Will the Fed cut rates in {rng.choice(_MONTHS)} {year}?",
            "Culture": f"Will {rng.choice(_FILMS)} gross $500M by {t}?",
            "Tech": f"Will {rng.choice(_COMPANIES)} release {rng.choice(_PRODUCTS)} by {t}?",
            "Finance": f"Will {rng.choice(_TICKERS)} close above ${rng.randint(50, 900)} on {t}?",
            "Geopolitics": f"{a} x {b} ceasefire by {t}?",
        }
        q = options[category]
        return q, [q], [""]

    def _plan_resolutions(self, n_resolving: int, resolve_days: tuple) -> None:
        rng = random.Random(self.seed * 7919 + 1)
        singles = [m for m in self.markets if m.kind == "single" and not m.empty_side and not m.is_v2]
        rng.shuffle(singles)
        cycle = ("YES", "NO", "50-50")
        lo, hi = resolve_days
        future = singles[: max(0, n_resolving)]
        for k, m in enumerate(future):
            m.resolution = cycle[k % 3]
            self._set_end(m, self.start_ts + int(rng.uniform(lo, hi) * DAY) // 900 * 900)
        past = singles[len(future) : len(future) + max(1, len(self.markets) // 25)]
        for k, m in enumerate(past):
            m.resolution = ("YES", "NO")[k % 2]
            self._set_end(m, self.start_ts - int(rng.uniform(2, 20) * DAY) // 900 * 900)
        if len(self.markets) >= 20:
            nr = [e for e in self.events if e.kind == "negrisk"]
            if nr:
                ev = nr[rng.randrange(len(nr))]
                end = self.start_ts + int(rng.uniform(lo, hi) * DAY) // 900 * 900
                winner = rng.randrange(len(ev.market_indices))
                for k, mi in enumerate(ev.market_indices):
                    self.markets[mi].resolution = "YES" if k == winner else "NO"
                    self._set_end(self.markets[mi], end)

    def _set_end(self, m: SimMarket, end_ts: int) -> None:
        m.end_ts = end_ts
        ev = self.events[m.event_index]
        ev.end_ts = max(self.markets[i].end_ts for i in ev.market_indices)

    # ------------------------------------------------------------------ lookups
    def _index(self) -> None:
        ms = self.markets
        self.by_id = {m.id: m for m in ms}
        self.by_slug = {m.slug: m for m in ms}
        self.by_condition = {m.condition_id.lower(): m for m in ms}
        self.events_by_id = {e.id: e for e in self.events}
        self.events_by_slug = {e.slug: e for e in self.events}
        self.token_index = {}  # token id -> (market index, outcome index)
        for m in ms:
            for k, tok in enumerate(m.token_ids):
                self.token_index[tok] = (m.index, k)
        self.driver_of = {m.id: m.driver for m in ms}
        self.groups: dict[str, list[str]] = {}
        for m in ms:
            self.groups.setdefault(m.driver, []).append(m.id)
        s = self.seed
        # numpy columns used by the vectorised price model
        self.col_kind = np.array(
            [{"single": 0, "ladder": 1, "negrisk": 2}[m.kind] for m in ms], dtype=np.int8
        )
        self.col_base = np.array([m.base for m in ms])
        self.col_vol = np.array([m.vol for m in ms])
        self.col_loading = np.array([m.loading for m in ms])
        self.col_driver_key = np.array([key_of(s, 1, m.event_index) for m in ms], dtype=np.uint64)
        self.col_idio_key = np.array([key_of(s, 2, m.index) for m in ms], dtype=np.uint64)
        self.col_event = np.array([m.event_index for m in ms], dtype=np.int64)
        self.col_nt = np.array([int(round(1 / m.tick)) for m in ms], dtype=np.int64)
        self.col_half = np.array([m.half_spread for m in ms], dtype=np.int64)
        self.col_scale = np.array([m.size_scale for m in ms])
        self.col_end = np.array([m.end_ts for m in ms], dtype=np.float64)
        self.col_target = np.array(
            [{"YES": 1.0, "NO": 0.0, "50-50": 0.5}.get(m.resolution or "", np.nan) for m in ms]
        )

    def market_by_token(self, token_id: str):
        hit = self.token_index.get(str(token_id))
        return (self.markets[hit[0]], hit[1]) if hit else (None, None)

    def correlated_pairs(self) -> list[tuple[str, str]]:
        """(market id, market id) pairs that share a ladder driver."""
        out: list[tuple[str, str]] = []
        for driver, ids in self.groups.items():
            if driver.startswith("ladder-"):
                out.extend((ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids)))
        return out

    def independent_markets(self) -> list:
        """Ids of single markets: each has its own latent driver."""
        return [m.id for m in self.markets if m.kind == "single"]

    def neg_risk_events(self) -> list:
        return [e for e in self.events if e.kind == "negrisk"]


def _money(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _date_words(ts: int) -> str:
    import datetime as _dt

    d = _dt.datetime.fromtimestamp(ts, _dt.UTC)
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"
