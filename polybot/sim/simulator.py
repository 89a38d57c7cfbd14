"""The Simulator: clock, world, prices, market lifecycle and the exchange state.

Clock: ``sim_time = start_time + offset + real_elapsed × speed``; ``advance(s)``
adds to ``offset`` (with ``speed=0`` the clock only moves that way).

Lifecycle of a market with end date E (sim time t):
- t < E: open (books, trading);
- E ≤ t < E + proposal (2 h by default): ``closed: true``, ``umaResolutionStatus``
  "proposed", books empty, open orders cancelled;
- t ≥ E + proposal: "resolved": outcomePrices 1/0 (0.5/0.5 for 50-50), CLOB
  ``tokens[].winner`` set. ``redeem_delay`` later (1 h by default) holders are paid
  automatically (the sim's stand-in for Polymarket's auto-redeemer) and the
  positions drop to zero.
``resolve(market_id, outcome)`` ends a market now and resolves it at once.

Every public method takes ``self.lock`` (re-entrant); the HTTP layer holds it for
the whole request, so state never changes under a handler.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import numpy as np

from ..timefmt import iso_seconds
from . import lifecycle, ticks
from .exchange import Exchange
from .faults import FaultRule, Faults, parse_spec, rule_from_dict
from .pricing import PriceModel
from .world import World

DEFAULT_START = "2026-11-01T00:00:00Z"
OUTCOMES = ("YES", "NO", "50-50")
_PAYOUT = {"YES": (1.0, 0.0), "NO": (0.0, 1.0), "50-50": (0.5, 0.5)}


def parse_time(value) -> int:
    """ISO-8601 string (Z or offset) or epoch number → epoch seconds (UTC)."""
    if value is None:
        value = DEFAULT_START
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().replace("Z", "+00:00")
    d = dt.datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return int(d.timestamp())


class Simulator:
    def __init__(
        self,
        *,
        seed: int = 42,
        n_markets: int = 60,
        speed: float = 0.0,
        start_time=None,
        initial_balance: float = 10_000.0,
        faults=None,
        n_resolving: int = 5,
        resolve_days: tuple = (1.0, 3.0),
        proposal_seconds: int = 7200,
        redeem_delay: int = 3600,
        heartbeat_timeout: float = 10.0,
        chain_id: int = 137,
        trade_delays: tuple = (2.0, 5.0),
    ):
        if speed < 0:
            raise ValueError("speed must be 0 (manual clock) or positive")
        self.lock = threading.RLock()
        self.seed = int(seed)
        self.speed = float(speed)
        self.start_ts = parse_time(start_time)
        self.proposal_seconds = int(proposal_seconds)
        self.redeem_delay = int(redeem_delay)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.chain_id = int(chain_id)  # EIP-712 domain chainId orders must be signed for
        self.world = World(
            seed=self.seed,
            n_markets=int(n_markets),
            start_ts=self.start_ts,
            n_resolving=n_resolving,
            resolve_days=tuple(resolve_days),
        )
        self.prices = PriceModel(self.world)
        self.faults = Faults(self.seed, self._rules(faults))
        self.request_count: Counter = Counter()  # per family: gamma / clob / data / admin
        self.path_count: Counter = Counter()  # per full path (no query)
        self.overrides: dict = {}  # market index -> {"outcome", "proposal"}
        self.lazy_outcome: dict = {}  # market index -> outcome of unplanned markets
        self.consumed: dict = {}  # (mi, yes side 0/1, ticks) -> (minute, micro)
        self.last_trade: dict = {}  # token -> (ticks, side, t)
        self.book_override: dict = {}  # market index -> (bids, asks) YES [[price micro, micro]]
        self._real0 = time.monotonic()
        self._offset = 0.0
        self.exchange = Exchange(self, initial_balance)
        lifecycle.set_delays(self.exchange, *trade_delays)
        self._last_sync = self.now_float()
        ticks.init(self)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # ------------------------------------------------------------------ clock
    def now_float(self) -> float:
        return self.start_ts + self._offset + (time.monotonic() - self._real0) * self.speed

    def now(self) -> int:
        """Current sim time, integer epoch seconds."""
        return int(self.now_float())

    def advance(self, seconds: float) -> int:
        """Move the sim clock forward (fills resting orders the path crosses on the way)."""
        if seconds < 0:
            raise ValueError("advance() needs a non-negative number of seconds")
        with self.lock:
            self._offset += float(seconds)
            self.sync()
            return self.now()

    def set_speed(self, speed: float) -> int:
        """Change the clock speed at run time without a jump (0 = manual clock)."""
        if speed < 0:
            raise ValueError("speed must be 0 (manual clock) or positive")
        with self.lock:
            now = self.now_float()
            self._real0 = time.monotonic()
            self._offset = now - self.start_ts
            self.speed = float(speed)
            return self.now()

    def sync(self) -> None:
        """Bring the exchange state up to the current sim time (fills, closes, payouts)."""
        with self.lock:
            now = self.now_float()
            if now <= self._last_sync:
                return
            ticks.update(self, now)
            self.exchange.sweep(self._last_sync, now)
            self._lifecycle(now)
            lifecycle.advance(self.exchange, now)
            self._last_sync = now

    # ------------------------------------------------------------------ faults
    @staticmethod
    def _rules(faults) -> list:
        if not faults:
            return []
        if isinstance(faults, str):
            return parse_spec(faults)
        if isinstance(faults, dict):
            return [rule_from_dict(faults)]
        return [r if isinstance(r, FaultRule) else rule_from_dict(r) for r in faults]

    def set_faults(self, **kw) -> None:
        """Replace all fault rules by one rule built from keywords (spec keys, e.g.
        ``error_rate=0.1, burst="429:5:1", path="/clob/books"``)."""
        self.faults.set([rule_from_dict(kw)] if kw else [])

    def add_faults(self, **kw) -> None:
        self.faults.add(rule_from_dict(kw))

    def clear_faults(self) -> None:
        self.faults.clear()

    def count_request(self, family: str, path: str) -> None:
        with self.lock:
            self.request_count[family] += 1
            self.path_count[path] += 1

    # ------------------------------------------------------------------ lifecycle
    def end_of(self, mi: int) -> float:
        return float(self.world.col_end[mi])

    def outcome_of(self, mi: int) -> str:
        ov = self.overrides.get(mi)
        if ov:
            return ov["outcome"]
        m = self.world.markets[mi]
        if m.resolution:
            return m.resolution
        if mi not in self.lazy_outcome:
            p = float(self.prices.probs([mi], [self.end_of(mi)])[0, 0])
            self.lazy_outcome[mi] = "YES" if p >= 0.5 else "NO"
        return self.lazy_outcome[mi]

    def resolved_at(self, mi: int) -> float:
        ov = self.overrides.get(mi)
        return self.end_of(mi) + (ov["proposal"] if ov else self.proposal_seconds)

    def phase(self, mi: int, t: float | None = None) -> str:
        t = self.now_float() if t is None else t
        if t < self.end_of(mi):
            return "open"
        return "proposed" if t < self.resolved_at(mi) else "resolved"

    def payouts(self, mi: int) -> tuple:
        return _PAYOUT[self.outcome_of(mi)]

    def resolve(self, market_id: str, outcome: str, *, proposed: bool = False) -> dict:
        """End a market now and resolve it (``proposed=True``: only propose; it resolves
        after the proposal period). ``market_id`` may be a Gamma id, condition id or slug."""
        canonical = {"YES": "YES", "NO": "NO", "50-50": "50-50", "50/50": "50-50"}.get(str(outcome).upper())
        if canonical is None:
            raise ValueError("outcome must be YES, NO or 50-50")
        outcome = canonical
        w = self.world
        m = (
            w.by_id.get(str(market_id))
            or w.by_condition.get(str(market_id).lower())
            or w.by_slug.get(str(market_id))
        )
        if m is None:
            raise KeyError(f"market {market_id} does not exist in the simulator")
        with self.lock:
            self.sync()
            now = self.now_float()
            if self.phase(m.index, now) == "resolved":
                raise ValueError(f"market {m.id} is already resolved")
            if self.end_of(m.index) > now:
                w.col_end[m.index] = now
                if m.resolution != outcome:
                    w.col_target[m.index] = np.nan
                self.prices._cache_t = None
            elapsed = now - self.end_of(m.index)
            self.overrides[m.index] = {
                "outcome": outcome,
                "proposal": max(self.proposal_seconds, elapsed + 1) if proposed else max(0.0, elapsed),
            }
            self._lifecycle(now)
            return {"market_id": m.id, "outcome": outcome, "phase": self.phase(m.index, now)}

    def _lifecycle(self, now: float) -> None:
        ex = self.exchange
        ex.cancel_where(lambda o: self.phase(o.mi, now) != "open", "market closed")
        for acct in ex.accounts.values():
            for token, size in list(acct.positions.items()):
                if size <= 0:
                    continue
                mi, k = self.world.token_index[token]
                if self.phase(mi, now) == "resolved" and now >= self.resolved_at(mi) + self.redeem_delay:
                    ex.redeem(acct, token, self.payouts(mi)[k], now)

    # ------------------------------------------------------------------ liquidity
    def yes_levels(self, mis, t: float) -> dict:
        """mi -> (bids, asks) of the synthetic YES book, best first, sizes in micro-shares,
        after liquidity consumed this minute; empty for markets that are not open."""
        mis = [int(m) for m in dict.fromkeys(int(x) for x in mis)]
        open_mis = [m for m in mis if t < self.end_of(m)]
        out: dict[int, tuple[list, list]] = {m: ([], []) for m in mis}
        minute = int(t // 60)
        consumed = self.consumed
        synth = [m for m in open_mis if m not in self.book_override]
        synthetic = dict(zip(synth, self.prices.synthetic_levels(synth, t), strict=True))  # one per market
        for mi in open_mis:
            bids, asks = synthetic[mi] if mi in synthetic else self._override_levels(mi)
            if consumed:
                sides = []
                for side, levels in ((0, bids), (1, asks)):
                    lv = []
                    for ticks, micro in levels:
                        used = consumed.get((mi, side, ticks))
                        if used and used[0] == minute:
                            micro -= used[1]
                        if micro > 0:
                            lv.append([ticks, micro])
                    sides.append(lv)
                bids, asks = sides
            out[mi] = (bids, asks)
        return out

    def _override_levels(self, mi: int):
        """The admin-set YES book of market ``mi`` in its current ticks (off-tick levels dropped)."""
        nt = int(self.world.col_nt[mi])
        unit = 1_000_000 // nt
        out = []
        for side in self.book_override[mi]:
            out.append(
                [[pm // unit, q] for pm, q in side if pm % unit == 0 and 0 < pm // unit < nt and q > 0]
            )
        return out[0], out[1]

    def set_book(self, token: str, bids=None, asks=None, clear: bool = False) -> dict:
        """Replace the synthetic book of ``token``'s market (levels given for that token, as
        [[price, size], ...] decimal strings or numbers), or ``clear`` it (RULES.md §6)."""
        from polybot.money import to_micro

        m, k = self.world.market_by_token(str(token))
        if m is None:
            raise KeyError(f"token {token} does not exist in the simulator")
        with self.lock:
            self.sync()
            self.consumed = {key: v for key, v in self.consumed.items() if key[0] != m.index}
            if clear:
                self.book_override.pop(m.index, None)
                return {"token_id": str(token), "override": False}

            def parse(levels, name):
                out = []
                for lv in levels or []:
                    if not isinstance(lv, (list, tuple)) or len(lv) != 2:
                        raise ValueError(
                            f'{name} must be a list of [price, size] pairs, e.g. [["0.45", "3"]]'
                        )
                    pm, q = to_micro(str(lv[0])), to_micro(str(lv[1]))
                    if not 0 < pm < 1_000_000 or q <= 0:
                        raise ValueError(f"{name} level {lv} needs 0 < price < 1 and a positive size")
                    out.append((pm if k == 0 else 1_000_000 - pm, q))
                return out

            b, a = parse(bids, "bids"), parse(asks, "asks")
            if k == 1:  # a NO bid is a YES ask at 1 - price
                b, a = a, b
            self.book_override[m.index] = (sorted(b, reverse=True), sorted(a))
            return {"token_id": str(token), "override": True}

    def token_levels(self, mi: int, outcome: int, t: float, yes=None):
        """(bids, asks) of one token's synthetic book, best first, in that token's ticks."""
        bids, asks = yes if yes is not None else self.yes_levels([mi], t)[mi]
        if outcome == 0:
            return bids, asks
        nt = int(self.world.col_nt[mi])
        return [[nt - p, s] for p, s in asks], [[nt - p, s] for p, s in bids]

    def consume(self, mi: int, outcome: int, token_side: int, ticks: int, micro: int, t: float) -> None:
        """Remove ``micro`` shares of synthetic liquidity at a token book level until the
        next minute (token_side 0 = bids, 1 = asks)."""
        side, yes_ticks = token_side, ticks
        if outcome == 1:
            side, yes_ticks = 1 - token_side, int(self.world.col_nt[mi]) - ticks
        minute = int(t // 60)
        key = (mi, side, yes_ticks)
        used = self.consumed.get(key)
        self.consumed[key] = (minute, (used[1] if used and used[0] == minute else 0) + int(micro))
        if len(self.consumed) > 50_000:
            self.consumed = {k: v for k, v in self.consumed.items() if v[0] == minute}

    # ------------------------------------------------------------------ background
    def start_background(self) -> None:
        """Heartbeat dead-man switch and time-driven fills/closes, every 0.25 s (real)."""
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_loop, name="polybot-sim-ticker", daemon=True)
            self._ticker.start()

    def stop_background(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
            self._ticker = None

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.25):
            with self.lock:
                self.exchange.check_heartbeats(time.monotonic())
                self.sync()

    def state(self) -> dict:
        with self.lock:
            now = self.now_float()
            ex = self.exchange
            return {
                "now": int(now),
                "now_iso": iso_seconds(now),
                "start_time": self.start_ts,
                "speed": self.speed,
                "seed": self.seed,
                "markets": len(self.world.markets),
                "events": len(self.world.events),
                "tokens": len(self.world.token_index),
                "open_markets": sum(1 for m in self.world.markets if self.phase(m.index, now) == "open"),
                "accounts": len(ex.accounts),
                "open_orders": sum(1 for o in ex.orders.values() if o.status == "LIVE"),
                "orders": len(ex.orders),
                "trades": len(ex.trades),
                "faults": self.faults.describe(),
                "request_count": dict(self.request_count),
                "mode": ex.mode,
                "trade_delays": {"mined_after": ex.mined_after, "confirmed_after": ex.confirmed_after},
                "resolving": [
                    {
                        "market_id": m.id,
                        "end": int(self.end_of(m.index)),
                        "outcome": self.outcome_of(m.index),
                        "phase": self.phase(m.index, now),
                    }
                    for m in self.world.markets
                    if m.resolution and self.end_of(m.index) >= self.start_ts
                ],
            }
