"""Our fills, read from the CLOB's ``/data/trades`` (a mixin of
:class:`polybot.exchange.live.LiveExchange`).

A trade row is ours as the taker (``trader_side`` TAKER: the row itself, fee from the
market's schedule) and/or as a maker (our entries in ``maker_orders``, matched by API
key owner or maker address = our EOA or funder). Each Fill carries the trade's status
(MATCHED → MINED → CONFIRMED, or RETRYING → FAILED; REST's ``TRADE_STATUS_`` prefix is
removed by the parser) and ``updated_ts`` (its ``last_update``), so the engine keeps
unconfirmed fills provisional and undoes FAILED ones.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from py_clob_client_v2.clob_types import OpenOrderParams, TradeParams
from py_clob_client_v2.exceptions import PolyException

from polybot.domain import BUY, SELL
from polybot.errors import DataError, ExchangeError, OrderOutcomeUnknown
from polybot.exchange import parse as P
from polybot.exchange.base import Fill, OrderStatus, PreparedOrder
from polybot.exchange.clob_sdk import HttpFailure, SdkClient
from polybot.exchange.models import FeeSchedule, FeeSource, OpenOrder
from polybot.exchange.parse_util import micro as _micro
from polybot.exchange.parse_util import price_micro as _price_micro
from polybot.money import taker_fee_micro

log = logging.getLogger(__name__)
LOOKUP_WINDOW_SECONDS = 86_400  # lookup() of an id the order store lacks: trades this recent


def _norm_status(s: Any) -> str:
    s = str(s or "").strip().lower()
    for prefix in ("order_status_", "status_"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    return {"cancelled": "canceled", "canceled_market_resolved": "canceled", "invalid": "canceled"}.get(s, s)


class TradeReader:
    """The read side of LiveExchange: fills, order lookups, resolving unknown outcomes.
    Needs ``_sdk``, ``address``, ``funder``, ``_fees``, ``_fee_cache``, ``_prepared``,
    ``_clock``, ``_call``, ``_read_error``, ``ensure_credentials`` (LiveExchange)."""

    # What LiveExchange provides, declared so the reads below are type-checked.
    _sdk: SdkClient
    address: str
    funder: str
    _fees: FeeSource | None
    _fee_cache: dict[str, FeeSchedule]
    _prepared: dict[str, tuple[str, int]]
    _clock: Callable[[], float]

    if TYPE_CHECKING:

        def _call(self, doing: str, fn: Callable[[], Any]) -> Any: ...

        def _read_error(self, exc: HttpFailure, doing: str) -> ExchangeError: ...

        def ensure_credentials(self) -> None: ...

    def _fee_schedule(self, token_id: str, market: str = "") -> FeeSchedule:
        if self._fees is not None:
            fee = self._fees(token_id) if callable(self._fees) else self._fees.get(token_id)
            if fee is not None:
                return fee
        if token_id in self._fee_cache:
            return self._fee_cache[token_id]
        fee = FeeSchedule()
        if market:
            try:
                info = self._sdk.get_clob_market_info(market)
                fd = info.get("fd") or {}
                if fd.get("r"):
                    fee = FeeSchedule(
                        rate=float(fd["r"]),
                        exponent=float(fd.get("e") or 1),
                        taker_only=bool(fd.get("to", True)),
                        enabled=True,
                    )
            except (HttpFailure, PolyException) as exc:
                log.info(
                    "fee schedule for market %s unavailable (%s); fees taken as 0", market, type(exc).__name__
                )
                return fee
        self._fee_cache[token_id] = fee
        return fee

    def _fills_of_trade(self, raw: dict, order_id: str | None = None) -> list[Fill]:
        """Our fills in one /data/trades row: the taker side (``trader_side`` TAKER), our
        entries in ``maker_orders``, or — when the row is our maker trade without a
        ``maker_orders`` entry of ours — the row itself, attributed to ``order_id``
        (known from the order's ``associate_trades``; "" when unknown)."""
        try:
            t = P.parse_clob_trade(raw)
        except DataError as exc:
            log.warning("skipped a trade: %s", exc)
            return []
        ts = t.match_time or t.last_update or 0
        upd = t.last_update or ts
        me = {self.address.lower(), str(self.funder).lower()}
        key = (self._sdk.creds.api_key if self._sdk.creds else "") or ""
        out = []
        if t.trader_side != "MAKER":
            fs = self._fee_schedule(t.asset_id, t.market)
            fee = taker_fee_micro(t.size, t.price, fs.effective_rate, fs.exponent) if fs.effective_rate else 0
            out.append(
                Fill(
                    trade_id=t.id,
                    order_id=t.taker_order_id,
                    token_id=t.asset_id,
                    side=t.side,
                    price_micro=t.price,
                    size_micro=t.size,
                    fee_micro=fee,
                    ts=ts,
                    liquidity="taker",
                    status=t.status,
                    updated_ts=upd,
                )
            )
        for i, m in enumerate(t.maker_orders):
            if not isinstance(m, dict):
                continue
            mine = (key and m.get("owner") == key) or str(m.get("maker_address", "")).lower() in me
            if not mine:
                continue
            try:
                out.append(
                    Fill(
                        trade_id=f"{t.id}:{m.get('order_id', i)}",
                        order_id=str(m.get("order_id", "")),
                        token_id=str(m.get("asset_id") or t.asset_id),
                        side=str(m.get("side") or (SELL if t.side == BUY else BUY)).upper(),
                        price_micro=_price_micro(m.get("price"), "price"),
                        size_micro=_micro(m.get("matched_amount"), "matched_amount"),
                        fee_micro=0,
                        ts=ts,
                        liquidity="maker",
                        status=t.status,
                        updated_ts=upd,
                    )
                )
            except Exception as exc:  # noqa: BLE001 — one bad maker row never hides the rest
                log.warning("skipped a maker order in trade %s: %s", t.id, exc)
        if t.trader_side == "MAKER" and not out and (t.owner == key or t.maker_address.lower() in me):
            out.append(
                Fill(
                    trade_id=t.id,
                    order_id=order_id or "",
                    token_id=t.asset_id,
                    side=t.side,
                    price_micro=t.price,
                    size_micro=t.size,
                    fee_micro=0,
                    ts=ts,
                    liquidity="maker",
                    status=t.status,
                    updated_ts=upd,
                )
            )
        if order_id is not None:
            out = [f for f in out if f.order_id.lower() == order_id.lower()]
        return out

    def _trade_rows(self, tid: str) -> list:
        return self._sdk.get_trades(TradeParams(id=tid), only_first_page=True) or []

    def _fills_by_trade_ids(self, order_id: str, trade_ids: Sequence[str]) -> list[Fill] | None:
        """Best effort right after placement: never raises; None when a trade is not
        readable yet (its fills come with lookup()/trades())."""
        out: list[Fill] = []
        for tid in trade_ids:
            try:
                rows = self._trade_rows(tid)
            except (HttpFailure, PolyException) as exc:
                log.info("trade %s not readable yet (%s); fills come with lookup()", tid, exc)
                return None
            got = [f for r in rows for f in self._fills_of_trade(r, order_id)]
            if not got:
                log.info("trade %s not listed yet; fills come with lookup()", tid)
                return None
            out += got
        return out

    def _trade_fills(self, since_ts: int | None = None, asset_id: str | None = None) -> list[Fill]:
        self.ensure_credentials()
        params = TradeParams(after=int(since_ts) if since_ts else None, asset_id=asset_id)
        rows = self._call("reading trades", lambda: self._sdk.get_trades(params))
        out: list[Fill] = []
        for r in rows or ():
            out += self._fills_of_trade(r)
        return out

    def trades(self, since_ts: int | None = None) -> list[Fill]:
        """Our fills matched at or after ``since_ts`` (all when None), oldest first, each
        with its CURRENT trade status. A trade's status changes after its match time, so
        a caller following unconfirmed fills asks from the oldest unconfirmed match time
        (or looks the order up)."""
        fills = [f for f in self._trade_fills(since_ts) if since_ts is None or f.ts >= since_ts]
        return sorted(fills, key=lambda f: (f.ts, f.trade_id))

    def _order_status(self, o: OpenOrder, fills: Sequence[Fill] = ()) -> OrderStatus:
        return OrderStatus(
            order_id=o.id,
            status=_norm_status(o.status),
            token_id=o.asset_id,
            side=o.side,
            price_micro=o.price,
            original_size_micro=o.original_size,
            size_matched_micro=o.size_matched,
            order_type=o.order_type,
            created_ts=o.created_at or 0,
            market=o.market,
            expiration=o.expiration,
            fills=tuple(fills),
        )

    def lookup(
        self, order_id_or_hash: str, *, token_id: str | None = None, since_ts: int | None = None
    ) -> OrderStatus | None:
        """The exchange's view of one order, with its fills read through the order's
        ``associate_trades`` (one ``/data/trades?id=`` each). Never pages the whole trade
        history: when the order store does not know the id (a fully matched market order),
        only trades of ``token_id`` after ``since_ts`` are read — both default to what this
        process prepared, else the last ``LOOKUP_WINDOW_SECONDS`` of all tokens."""
        self.ensure_credentials()
        oid = order_id_or_hash
        try:
            raw = self._sdk.get_order(oid)
        except HttpFailure as exc:
            if exc.kind == "http" and exc.status in (400, 404):
                raw = None
            else:
                raise self._read_error(exc, f"looking up order {oid[:12]}…") from None
        if isinstance(raw, dict) and isinstance(raw.get("order"), dict):
            raw = raw["order"]
        if isinstance(raw, dict) and raw.get("id"):
            o = P.parse_open_order(raw)
            if o.associate_trades:
                fills = []
                for tid in o.associate_trades:
                    rows = self._call("reading trades", functools.partial(self._trade_rows, tid))
                    for r in rows:
                        fills += self._fills_of_trade(r, o.id)
            elif o.size_matched:
                fills = [
                    f
                    for f in self._trade_fills(since_ts=max(0, (o.created_at or 0) - 60), asset_id=o.asset_id)
                    if f.order_id.lower() == o.id.lower()
                ]
            else:
                fills = []
            return self._order_status(o, fills)
        # Not in the order store: a fully matched market order may only show in trades.
        hint_token, hint_ts = self._prepared.get(oid.lower(), (None, None))
        token_id = token_id or hint_token
        since = since_ts if since_ts is not None else hint_ts
        if since is None:
            since = int(self._clock()) - LOOKUP_WINDOW_SECONDS
        fills = [
            f
            for f in self._trade_fills(since_ts=max(0, int(since) - 60), asset_id=token_id)
            if f.order_id.lower() == oid.lower()
        ]
        if not fills:
            return None
        f0 = fills[0]
        size = sum(f.size_micro for f in fills if not f.failed)
        return OrderStatus(
            order_id=oid,
            status="matched",
            token_id=f0.token_id,
            side=f0.side,
            price_micro=f0.price_micro,
            original_size_micro=size,
            size_matched_micro=size,
            fills=tuple(fills),
        )

    def resolve(self, prepared: PreparedOrder, known_ids: Iterable[str] = ()) -> OrderStatus | None:
        """What became of a prepared order whose submit outcome is unknown.

        First by its hash (the CLOB's orderID). If the exchange does not know that id,
        fall back to the order's terms: an open order, or taker trades, on the same
        token and side at the same price and size whose id is NOT in ``known_ids``
        (every exchange order id the engine already has on record). This protects
        against a duplicate order even if the exchange's id scheme ever differs from
        the local EIP-712 hash. Several candidates → OrderOutcomeUnknown (resolve by
        hand); none → None (after a grace period: it was never placed).
        """
        st = self.lookup(
            prepared.order_hash, token_id=prepared.request.token_id, since_ts=prepared.created_ts or None
        )
        if st is not None:
            return st
        req = prepared.request
        known = {str(i).lower() for i in known_ids} | {prepared.order_hash.lower()}
        signed = json.loads(prepared.payload_json).get("order") or {}
        size = int((signed.get("takerAmount") if req.side == BUY else signed.get("makerAmount")) or 0) or None
        since = max(0, int(prepared.created_ts or self._clock()) - 60)
        cands: dict[str, OrderStatus | None] = {}
        for o in self.open_orders():
            if (
                o.token_id == req.token_id
                and o.side == req.side
                and o.order_id.lower() not in known
                and (req.price_micro is None or o.price_micro == req.price_micro)
                and (size is None or o.original_size_micro == size)
            ):
                cands[o.order_id] = o
        for f in self._trade_fills(since_ts=since, asset_id=req.token_id):
            if (
                f.liquidity == "taker"
                and f.side == req.side
                and f.order_id
                and f.order_id.lower() not in known
                and (
                    req.price_micro is None
                    or (
                        f.price_micro <= req.price_micro
                        if req.side == BUY
                        else f.price_micro >= req.price_micro
                    )
                )
            ):
                cands.setdefault(f.order_id, None)
        if not cands:
            return None
        if len(cands) > 1:
            raise OrderOutcomeUnknown(
                f"Order {prepared.order_hash[:12]}… is not known by its hash and {len(cands)} "
                f"unrecorded orders match its terms ({', '.join(sorted(cands))[:120]}); resolve it "
                f"by hand on polymarket.com before trading this market again."
            )
        oid, st = next(iter(cands.items()))
        log.warning("order %s resolved by its terms to exchange order %s", prepared.order_hash, oid)
        return self.lookup(oid, token_id=req.token_id, since_ts=since) or st

    def open_orders(self) -> list[OrderStatus]:
        self.ensure_credentials()
        rows = self._call("listing open orders", lambda: self._sdk.get_open_orders(OpenOrderParams()))
        out = []
        for r in rows or ():
            try:
                out.append(self._order_status(P.parse_open_order(r)))
            except DataError as exc:
                log.warning("skipped an open order: %s", exc)
        return out
