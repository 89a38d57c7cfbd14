"""The simulator's exchange state: API keys, accounts, orders, matching, trades.

The exchange RULES (signature, funder binding, amount precision, tick, heartbeats,
trading modes, trade lifecycle) and the admin endpoints other tests rely on are the
contract in ``polybot/sim/RULES.md``.

Money is integer micro-units (polybot.money). Rules:
- a taker order walks the book (other owners' resting orders first at a price, then
  the synthetic liquidity; your own orders are skipped — no self-trade) and fills
  at each level's price; taker fee = shares × rate × p(1−p) (the market's
  feeSchedule, exponent 1), makers pay nothing;
- a BUY limit order fills by shares (takerAmount) with price improvement; a FOK/FAK
  BUY (a "market buy") spends up to makerAmount of collateral;
- synthetic liquidity taken is gone until the next sim-minute;
- the unfilled rest of a GTC/GTD order rests (its cash or shares are reserved) and
  fills as a maker when the simulated book later trades through its price (see
  ``sweep``), limited by the synthetic depth at that moment;
- open orders are cancelled when their market closes; a GTD order expires at
  ``expiration - 60`` (sim time); the heartbeat dead-man switch cancels an
  account's orders 10 real seconds after its last accepted heartbeat (sessions.py);
- order acceptance (signature, funder, precision, tick, size) is order_rules.py; trade
  statuses and FAILED reversals are lifecycle.py; run-time tick changes are ticks.py.
"""

from __future__ import annotations

import base64
import hashlib
import math
import uuid
from dataclasses import dataclass, field

import numpy as np

from polybot.money import notional_micro, taker_fee_micro, to_micro

from . import lifecycle, sessions, signing
from .api import ApiError, micro_str, price_str
from .order_rules import check_order

FOK_MSG = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_MSG = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)


@dataclass
class Account:
    address: str  # signer EOA (lower case): the API key's owner
    cash: int  # micro-USDC
    funder: str = ""  # maker address of the last accepted order (lower case)
    funders: dict = field(default_factory=dict)  # signature type -> registered funder (lower case)
    positions: dict = field(default_factory=dict)  # token -> micro shares
    cost: dict = field(default_factory=dict)  # token -> micro cost of current holdings
    bought: dict = field(default_factory=dict)  # token -> micro shares ever bought
    realized: dict = field(default_factory=dict)  # token -> micro realized P&L
    heartbeat_at: float | None = None  # real time of the last accepted heartbeat (armed)
    heartbeat_id: str | None = None  # the id the next heartbeat must carry (None: no session)
    fail_next: int = 0  # the next N trades of this account will FAIL


@dataclass
class Order:
    id: str
    account: Account
    owner: str
    maker: str
    token: str
    mi: int
    outcome: int
    side: str
    ticks: int
    nt: int
    size: int  # micro shares (BUY: takerAmount, SELL: makerAmount)
    order_type: str
    created_at: int
    expiration: int = 0
    cash_cap: int = 0  # FOK/FAK BUY: micro collateral to spend
    matched: int = 0
    status: str = "LIVE"
    trade_ids: list = field(default_factory=list)
    reserved_cash: int = 0
    reserved_shares: int = 0
    signature_type: int = 0  # 0 EOA, 1 proxy, 2 Safe, 3 deposit wallet (the signed order's)

    @property
    def remaining(self) -> int:
        return max(0, self.size - self.matched)

    @property
    def price_micro(self) -> int:
        return self.ticks * (1_000_000 // self.nt)


@dataclass
class Trade:
    id: str
    account: Account
    owner: str
    order_id: str
    taker_order_id: str
    mi: int
    token: str
    outcome: int
    side: str
    size: int
    ticks: int
    nt: int
    fee: int
    fee_rate_bps: str
    match_time: float
    tx_hash: str
    trader_side: str
    maker_address: str
    maker_orders: list = field(default_factory=list)
    status: str = "MATCHED"
    last_update: float = 0.0
    fail: bool = False  # goes RETRYING -> FAILED instead of MINED -> CONFIRMED
    peer: Trade | None = None  # the other party's trade of the same match (None: synthetic liquidity)
    delta: dict = field(default_factory=dict)  # what settlement changed on the account (reversal)


class Exchange:
    def __init__(self, sim, initial_balance: float):
        self.sim = sim
        self.initial_cash = to_micro(initial_balance)
        self.accounts: dict = {}  # address -> Account
        self.keys: dict = {}  # api key -> (Account, secret, passphrase)
        self.orders: dict = {}  # order id -> Order
        self.live: dict = {}  # token -> [Order] (LIVE only)
        self.trades: list = []
        self.redemptions: list = []
        self.pending: list = []  # trades not yet CONFIRMED/FAILED
        self.mined_after = 2.0  # sim seconds MATCHED -> MINED (or RETRYING)
        self.confirmed_after = 5.0  # sim seconds MATCHED -> CONFIRMED (or FAILED)
        self.mode = "normal"  # normal | cancel-only | post-only | disabled (sessions.py)
        self.mode_until: float | None = None
        self._seq = 0
        self._hb_seq = 0

    # ------------------------------------------------------------------ keys & accounts
    def account(self, address: str) -> Account:
        addr = address.lower()
        if addr not in self.accounts:
            self.accounts[addr] = Account(
                address=addr,
                cash=self.initial_cash,
                funder=addr,
                funders={
                    k: signing.default_funder(addr, k)
                    for k in (signing.SIG_EOA, signing.SIG_PROXY, signing.SIG_SAFE, signing.SIG_1271)
                },
            )
        return self.accounts[addr]

    def funder_of(self, acct: Account, signature_type: int) -> str:
        """The maker address an order of this signature type must carry (RULES.md §1)."""
        return acct.address if signature_type == signing.SIG_EOA else acct.funders[signature_type]

    def find_account(self, address: str) -> Account | None:
        """The account whose EOA, registered funder or last maker address is ``address``."""
        addr = (address or "").lower()
        hit = self.accounts.get(addr)
        return hit or next(
            (a for a in self.accounts.values() if a.funder == addr or addr in a.funders.values()), None
        )

    def creds(self, address: str, nonce: int) -> dict:
        """Deterministic API credentials for (address, nonce); registers them."""
        seed = self.sim.seed

        def h(tag: str) -> bytes:
            return hashlib.sha256(f"{seed}:{tag}:{address.lower()}:{nonce}".encode()).digest()

        api_key = str(uuid.UUID(bytes=h("key")[:16], version=4))
        secret = base64.urlsafe_b64encode(h("secret")).decode()
        passphrase = h("pass").hex()
        self.keys[api_key] = (self.account(address), secret, passphrase)
        return {"apiKey": api_key, "secret": secret, "passphrase": passphrase}

    def available_cash(self, acct: Account) -> int:
        return acct.cash - sum(
            o.reserved_cash for lst in self.live.values() for o in lst if o.account is acct
        )

    def available_shares(self, acct: Account, token: str) -> int:
        return acct.positions.get(token, 0) - sum(
            o.reserved_shares for o in self.live.get(token, []) if o.account is acct
        )

    # ------------------------------------------------------------------ placing orders
    def place(self, acct: Account, api_key: str, body, t: float) -> dict:
        c = check_order(self, acct, api_key, body, t)
        m, side, otype, shares, post_only = c.market, c.side, c.order_type, c.shares, c.post_only
        order = Order(
            id=c.id,
            account=acct,
            owner=api_key,
            maker=c.maker,
            token=c.token,
            mi=m.index,
            outcome=c.outcome,
            side=side,
            ticks=c.ticks,
            nt=c.nt,
            size=shares,
            order_type=otype,
            created_at=int(t),
            expiration=c.expiration,
            cash_cap=c.cash_cap,
            signature_type=c.signature_type,
        )
        oid, nt, maker_amt, token = c.id, c.nt, c.maker_amount, c.token
        fills = self._plan(order, t)
        got = sum(q for _, q, _ in fills)
        spent = sum(notional_micro(p * (1_000_000 // nt), q) for p, q, _ in fills)
        fees = sum(self._fee(m, p * (1_000_000 // nt), q) for p, q, _ in fills)
        full = spent >= order.cash_cap - 10_000 if order.cash_cap else got >= shares
        if post_only and fills:
            raise ApiError(400, "invalid post-only order: order crosses book")
        if otype == "FOK" and not full:
            raise ApiError(400, FOK_MSG)
        if otype == "FAK" and not fills:
            raise ApiError(400, FAK_MSG)
        if side == "BUY":
            need = (spent if order.cash_cap else maker_amt) + fees
            if need > self.available_cash(acct):
                raise ApiError(400, "not enough balance / allowance")
        elif shares > self.available_shares(acct, token):
            raise ApiError(400, "not enough balance / allowance")
        acct.funder = c.maker
        self.orders[oid] = order
        trade_ids = self._execute(order, fills, t, taker=True)
        lifecycle.advance(self, t)  # zero delays: statuses are final at once
        if order.remaining > 0 and otype in ("GTC", "GTD"):
            self._rest(order)
        else:
            order.status = "MATCHED"  # filled, or a FOK/FAK whose rest was killed
        making = spent if side == "BUY" else got
        taking = got if side == "BUY" else spent
        return {
            "success": True,
            "orderID": oid,
            "status": "matched" if fills else "live",
            "makingAmount": str(making),
            "takingAmount": str(taking),
            "errorMsg": "",
            "tradeIDs": trade_ids,
        }

    def _fee(self, m, price_micro: int, q: int) -> int:
        return taker_fee_micro(q, price_micro, m.fee_rate, 1) if m.fees_enabled else 0

    def _plan(self, order: Order, t: float) -> list[tuple[int, int, Order | None]]:
        """[(ticks, micro shares, maker Order or None)] the order would take now."""
        bids, asks = self.sim.token_levels(order.mi, order.outcome, t)
        buy = order.side == "BUY"
        levels: dict = {}
        for o in self.live.get(order.token, []):
            if o.side != order.side and o.account is not order.account:
                levels.setdefault(o.ticks, []).append((o, o.remaining))
        for ticks, size in asks if buy else bids:
            levels.setdefault(ticks, []).append((None, size))
        prices = sorted(
            (p for p in levels if (p <= order.ticks if buy else p >= order.ticks)), reverse=not buy
        )
        left_shares, left_cash = order.remaining, order.cash_cap
        fills: list[tuple[int, int, Order | None]] = []
        unit = 1_000_000 // order.nt
        for p in prices:
            for maker, avail in levels[p]:
                if order.cash_cap:
                    q = min(avail, left_cash * 1_000_000 // (p * unit)) // 100 * 100
                else:
                    q = min(avail, left_shares)
                if q <= 0:
                    return fills
                fills.append((p, q, maker))
                left_shares -= q
                left_cash -= notional_micro(p * unit, q)
        return fills

    def _execute(self, order: Order, fills: list, t: float, taker: bool, consume: bool = True) -> list:
        sim, m = self.sim, self.sim.world.markets[order.mi]
        ids = []
        for ticks, q, maker in fills:
            price_micro = ticks * (1_000_000 // order.nt)
            notional = notional_micro(price_micro, q)
            fee = self._fee(m, price_micro, q) if taker else 0
            delta = self._settle(order.account, order.token, order.side, q, notional, fee)
            order.matched += q
            if order.status == "LIVE" and order.reserved_cash:
                order.reserved_cash = notional_micro(order.price_micro, order.remaining)
            if order.reserved_shares:
                order.reserved_shares = order.remaining
            tr = self._trade(
                order,
                q,
                ticks,
                fee,
                t,
                "TAKER" if taker else "MAKER",
                order.id if taker else _synthetic_taker(order.id, t),
            )
            tr.delta = delta
            if not taker:  # a resting order filled by the synthetic flow
                tr.maker_orders = [_maker_entry(order, q, ticks, m)]
            if maker is None:
                if consume:
                    sim.consume(order.mi, order.outcome, 1 if order.side == "BUY" else 0, ticks, q, t)
            else:
                maker.matched += q
                maker_delta = self._settle(maker.account, maker.token, maker.side, q, notional, 0)
                if maker.side == "BUY":
                    maker.reserved_cash = notional_micro(maker.price_micro, maker.remaining)
                else:
                    maker.reserved_shares = maker.remaining
                mt = self._trade(maker, q, ticks, 0, t, "MAKER", order.id)
                mt.tx_hash, mt.delta, mt.peer, tr.peer = tr.tx_hash, maker_delta, tr, mt
                if mt.fail or tr.fail:  # one settlement transaction: both fail together
                    mt.fail = tr.fail = True
                tr.maker_orders = [_maker_entry(maker, q, ticks, m)]
                mt.maker_orders = list(tr.maker_orders)  # the maker sees its own order in the match
                if maker.remaining == 0:
                    self._unrest(maker, "MATCHED")
            ids.append(tr.id)
            sim.last_trade[order.token] = (ticks, order.side, t)
        return ids

    def _trade(
        self, order: Order, q: int, ticks: int, fee: int, t: float, trader_side: str, taker_order_id: str
    ) -> Trade:
        self._seq += 1
        m = self.sim.world.markets[order.mi]
        tid = str(
            uuid.UUID(
                bytes=hashlib.sha256(f"{self.sim.seed}:trade:{self._seq}".encode()).digest()[:16], version=4
            )
        )
        bps = str(int(round(m.fee_rate * 10_000))) if trader_side == "TAKER" and m.fees_enabled else "0"
        tr = Trade(
            id=tid,
            account=order.account,
            owner=order.owner,
            order_id=order.id,
            taker_order_id=taker_order_id,
            mi=order.mi,
            token=order.token,
            outcome=order.outcome,
            side=order.side,
            size=q,
            ticks=ticks,
            nt=order.nt,
            fee=fee,
            fee_rate_bps=bps,
            match_time=t,
            tx_hash=self._tx(tid, self._seq),
            trader_side=trader_side,
            maker_address=order.maker,
        )
        tr.last_update = t
        acct = order.account
        if acct.fail_next > 0:
            acct.fail_next -= 1
            tr.fail = True
        self.trades.append(tr)
        self.pending.append(tr)
        order.trade_ids.append(tid)
        return tr

    def _tx(self, *parts) -> str:
        return (
            "0x"
            + hashlib.sha256(":".join(str(p) for p in (self.sim.seed, "tx") + parts).encode()).hexdigest()
        )

    @staticmethod
    def _settle(acct: Account, token: str, side: str, q: int, notional: int, fee: int) -> dict:
        """Apply one fill to the account; returns what changed (for a FAILED trade's reversal)."""
        pos = acct.positions.get(token, 0)
        if side == "BUY":
            d = {"cash": -(notional + fee), "positions": q, "cost": notional, "bought": q, "realized": 0}
        else:
            removed = acct.cost.get(token, 0) * q // pos if pos > 0 else 0
            d = {
                "cash": notional - fee,
                "positions": -q,
                "cost": -removed,
                "bought": 0,
                "realized": notional - fee - removed,
            }
        acct.cash += d["cash"]
        for k in ("positions", "cost", "bought", "realized"):
            book = getattr(acct, k)
            book[token] = book.get(token, 0) + d[k]
        return d

    def _rest(self, order: Order) -> None:
        order.status = "LIVE"
        if order.side == "BUY":
            order.reserved_cash = notional_micro(order.price_micro, order.remaining)
        else:
            order.reserved_shares = order.remaining
        self.live.setdefault(order.token, []).append(order)

    def _unrest(self, order: Order, status: str) -> None:
        order.status = status
        order.reserved_cash = order.reserved_shares = 0
        lst = self.live.get(order.token, [])
        if order in lst:
            lst.remove(order)
            if not lst:
                del self.live[order.token]

    # ------------------------------------------------------------------ time-driven fills
    def sweep(self, t0: float, t1: float) -> None:
        """Fill resting orders the synthetic book traded through between t0 and t1."""
        live = [o for lst in self.live.values() for o in lst]
        for o in live:
            if o.order_type == "GTD" and o.expiration and o.expiration - 60 <= t1:
                self._unrest(o, "CANCELED")
        by_market: dict[int, list[Order]] = {}
        for lst in self.live.values():
            for o in lst:
                by_market.setdefault(o.mi, []).append(o)
        sim = self.sim
        for mi, orders in by_market.items():
            t_hi = min(t1, sim.end_of(mi) - 1e-3)
            if t_hi <= t0:
                continue
            if mi in sim.book_override:  # an admin-set book: fill what crosses it now
                for o in sorted(orders, key=lambda x: x.created_at):
                    if o.status == "LIVE":
                        self._fill_resting(o, t_hi)
                continue
            self._sweep_synthetic(mi, orders, t0, t_hi)

    def _sweep_synthetic(self, mi: int, orders: list[Order], t0: float, t_hi: float) -> None:
        """Fill the resting ``orders`` of market ``mi`` in each sim minute of (t0, t_hi] in
        which the model's top of book crossed their price."""
        sim, w = self.sim, self.sim.world
        n = int(min(2000, max(1, math.ceil((t_hi - t0) / 60.0))))
        times = t0 + (t_hi - t0) * np.arange(1, n + 1) / n
        p = sim.prices.probs([mi], times)[0]
        m = w.markets[mi]
        nt = int(w.col_nt[mi])
        bb = np.ceil(p * nt - m.half_spread - 1e-9).astype(np.int64)
        ba = np.floor(p * nt + m.half_spread + 1e-9).astype(np.int64)
        for o in sorted(orders, key=lambda x: x.created_at):
            buy = o.side == "BUY"
            use_bids = (o.outcome == 1) == buy  # which YES side the fill comes from
            if m.empty_side == ("bid" if use_bids else "ask"):
                continue
            limit = o.ticks if o.outcome == 0 else nt - o.ticks
            cross = (bb >= limit) if use_bids else (ba <= limit)
            seen = set()
            for i in np.nonzero(cross)[0][:200]:
                minute = int(times[i] // 60)
                if minute in seen or o.status != "LIVE":
                    continue
                seen.add(minute)
                self._fill_resting(o, float(times[i]))

    def _fill_resting(self, o: Order, tg: float) -> None:
        bids, asks = self.sim.token_levels(o.mi, o.outcome, tg)
        buy = o.side == "BUY"
        fills, left = [], o.remaining
        for ticks, size in asks if buy else bids:
            if (ticks > o.ticks) if buy else (ticks < o.ticks):
                break
            q = min(size, left)
            self.sim.consume(o.mi, o.outcome, 1 if buy else 0, ticks, q, tg)
            fills.append((o.ticks, q, None))
            left -= q
            if left <= 0:
                break
        if not fills:
            return
        total = sum(q for _, q, _ in fills)
        # a maker trades at its own price; the liquidity it met was consumed above
        self._execute(o, [(o.ticks, total, None)], tg, taker=False, consume=False)
        if o.remaining == 0:
            self._unrest(o, "MATCHED")

    # ------------------------------------------------------------------ cancels, heartbeats, payouts
    def cancel(self, acct: Account, ids) -> dict:
        canceled, not_canceled = [], {}
        for oid in ids:
            o = self.orders.get(str(oid))
            if o is None or o.account is not acct:
                not_canceled[str(oid)] = "order not found"
            elif o.status == "CANCELED":
                not_canceled[o.id] = "the order is already canceled"
            elif o.status == "MATCHED":
                not_canceled[o.id] = "the order is already matched"
            else:
                self._unrest(o, "CANCELED")
                canceled.append(o.id)
        return {"canceled": canceled, "not_canceled": not_canceled}

    def cancel_where(self, pred, reason: str = "") -> list:
        hits = [o for lst in self.live.values() for o in lst if pred(o)]
        for o in hits:
            self._unrest(o, "CANCELED")
        return [o.id for o in hits]

    def heartbeat(self, acct: Account, heartbeat_id, real_now: float) -> dict:
        return sessions.heartbeat(self, acct, heartbeat_id, real_now)

    def check_heartbeats(self, real_now: float) -> None:
        sessions.check_heartbeats(self, real_now)

    def redeem(self, acct: Account, token: str, payout: float, t: float) -> None:
        q = acct.positions.get(token, 0)
        value = int(round(q * payout))
        acct.cash += value
        acct.realized[token] = acct.realized.get(token, 0) + value - acct.cost.get(token, 0)
        acct.positions[token] = 0
        acct.cost[token] = 0
        self.redemptions.append(
            {"address": acct.address, "token": token, "shares": q, "paid": value, "time": int(t)}
        )


def order_hash(
    o: dict, neg_risk: bool = False, v2_market: bool = False, chain_id: int = signing.CHAIN_ID
) -> str:
    """The order's id as the real CLOB computes it: its EIP-712 digest for the market's
    exchange (the simulator's own encoder, signing.py; raises signing.BadOrder)."""
    contract, version = signing.exchange_for(neg_risk, v2_market)
    return "0x" + signing.order_digest(o, contract, version, chain_id).hex()


def _maker_entry(maker: Order, q: int, ticks: int, m) -> dict:
    """One ``maker_orders`` element of a trade: the resting order and what it matched."""
    return {
        "order_id": maker.id,
        "owner": maker.owner,
        "maker_address": maker.maker,
        "matched_amount": micro_str(q),
        "price": price_str(ticks, maker.nt),
        "fee_rate_bps": "0",
        "asset_id": maker.token,
        "outcome": m.outcomes[maker.outcome],
        "side": maker.side,
    }


def _synthetic_taker(order_id: str, t: float) -> str:
    return "0x" + hashlib.sha256(f"sim-taker:{order_id}:{t}".encode()).hexdigest()


def _is_address(a: str) -> bool:
    return len(a) == 42 and a.startswith("0x") and all(c in "0123456789abcdefABCDEF" for c in a[2:])
