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

import logging
from typing import Optional

from py_clob_client_v2.clob_types import TradeParams
from py_clob_client_v2.exceptions import PolyException

from polybot.errors import DataError
from polybot.exchange import parse as P
from polybot.exchange.base import BUY, Fill
from polybot.exchange.clob_sdk import HttpFailure
from polybot.exchange.models import FeeSchedule
from polybot.exchange.parse_util import micro as _micro, price_micro as _price_micro
from polybot.money import taker_fee_micro

log = logging.getLogger(__name__)


class TradeReader:
    """Needs ``_sdk``, ``address``, ``funder``, ``_fees``, ``_fee_cache``, ``_call``,
    ``ensure_credentials`` (provided by LiveExchange)."""

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
                    fee = FeeSchedule(rate=float(fd["r"]), exponent=float(fd.get("e") or 1),
                                      taker_only=bool(fd.get("to", True)), enabled=True)
            except (HttpFailure, PolyException) as exc:
                log.info("fee schedule for market %s unavailable (%s); fees taken as 0",
                         market, type(exc).__name__)
                return fee
        self._fee_cache[token_id] = fee
        return fee

    def _fills_of_trade(self, raw: dict, order_id: Optional[str] = None) -> list[Fill]:
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
            out.append(Fill(trade_id=t.id, order_id=t.taker_order_id, token_id=t.asset_id, side=t.side,
                            price_micro=t.price, size_micro=t.size, fee_micro=fee, ts=ts,
                            liquidity="taker", status=t.status, updated_ts=upd))
        for i, m in enumerate(t.maker_orders):
            if not isinstance(m, dict):
                continue
            mine = (key and m.get("owner") == key) or str(m.get("maker_address", "")).lower() in me
            if not mine:
                continue
            try:
                out.append(Fill(
                    trade_id=f"{t.id}:{m.get('order_id', i)}", order_id=str(m.get("order_id", "")),
                    token_id=str(m.get("asset_id") or t.asset_id),
                    side=str(m.get("side") or ("SELL" if t.side == BUY else BUY)).upper(),
                    price_micro=_price_micro(m.get("price"), "price"),
                    size_micro=_micro(m.get("matched_amount"), "matched_amount"), fee_micro=0,
                    ts=ts, liquidity="maker", status=t.status, updated_ts=upd))
            except Exception as exc:  # noqa: BLE001 — one bad maker row never hides the rest
                log.warning("skipped a maker order in trade %s: %s", t.id, exc)
        if t.trader_side == "MAKER" and not out and (t.owner == key or t.maker_address.lower() in me):
            out.append(Fill(trade_id=t.id, order_id=order_id or "", token_id=t.asset_id, side=t.side,
                            price_micro=t.price, size_micro=t.size, fee_micro=0, ts=ts,
                            liquidity="maker", status=t.status, updated_ts=upd))
        if order_id is not None:
            out = [f for f in out if f.order_id.lower() == order_id.lower()]
        return out

    def _trade_rows(self, tid: str) -> list:
        return self._sdk.get_trades(TradeParams(id=tid), only_first_page=True) or []

    def _fills_by_trade_ids(self, order_id: str, trade_ids) -> Optional[list[Fill]]:
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

    def _trade_fills(self, since_ts: Optional[int] = None, asset_id: Optional[str] = None) -> list[Fill]:
        self.ensure_credentials()
        params = TradeParams(after=int(since_ts) if since_ts else None, asset_id=asset_id)
        rows = self._call("reading trades", lambda: self._sdk.get_trades(params))
        out: list[Fill] = []
        for r in rows or ():
            out += self._fills_of_trade(r)
        return out

    def trades(self, since_ts: Optional[int] = None) -> list[Fill]:
        """Our fills matched at or after ``since_ts`` (all when None), oldest first, each
        with its CURRENT trade status. A trade's status changes after its match time, so
        a caller following unconfirmed fills asks from the oldest unconfirmed match time
        (or looks the order up)."""
        fills = [f for f in self._trade_fills(since_ts) if since_ts is None or f.ts >= since_ts]
        return sorted(fills, key=lambda f: (f.ts, f.trade_id))

