"""Live trading on Polymarket's CLOB through the official SDK ``py_clob_client_v2``.

Order lifecycle (crash safety, docs: research/style_reliability.md B3):

- :meth:`LiveExchange.prepare` calls the SDK's ``create_order`` /
  ``create_market_order``, which builds and signs the order ONCE (fresh random
  salt + millisecond timestamp). We then compute the order's EIP-712 hash
  locally — the CLOB's ``orderID`` — and serialise the signed order into the
  exact ``POST /order`` body (``payload_json``, the SDK's ``order_to_json_v2``
  with the API key as owner). Nothing is sent.
- :meth:`LiveExchange.submit` rebuilds the ``SignedOrderV2`` from
  ``payload_json`` and calls the SDK's ``post_order`` (never
  ``create_and_post_order``): the body sent is byte-identical to the persisted
  one, so a re-submission re-posts the SAME order (same hash). A
  "Duplicated" answer is resolved by looking the order up.
- Transport is ours (the SDK's ``_get/_post/_delete`` hooks are overridden) so
  that we own the timeout, never retry a POST /order, can tell "never sent"
  (connection refused) from "maybe sent" (timeout, dropped connection, 5xx),
  record the rate-limit headers, and never log a secret. We also skip the
  SDK's post-submit wait for settlement hashes (up to 30 s of polling): fills
  are read with :meth:`trades` / :meth:`lookup` instead.

Error mapping: ``OrderOutcomeUnknown`` for timeout/5xx/dropped connection
after sending; ``TemporaryExchangeError`` when definitely not accepted
(connection refused, 425, 429, 503 cancel-only/post-only/disabled);
``AuthenticationError`` for 401/403; a 4xx order error or ``success: false``
comes back as ``OrderResult(status="rejected", error=...)``.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Mapping, Optional, Union

from py_clob_client_v2.clob_types import (
    ApiCreds, AssetType, BalanceAllowanceParams, MarketOrderArgsV2, OpenOrderParams, OrderArgsV2,
    OrderPayload, PartialCreateOrderOptions, TradeParams,
)
from py_clob_client_v2.exceptions import PolyException
from py_clob_client_v2.order_utils.model.order_data_v2 import SignedOrderV2, order_to_json_v2

from polybot.errors import (
    AuthenticationError, ConfigError, DataError, ExchangeError, ExchangeUnavailable,
    OrderOutcomeUnknown, OrderRejected, RequestRejected, TemporaryExchangeError,
)
from polybot.exchange import parse as P
from polybot.exchange.base import (
    ACCEPTED_STATUSES, BUY, REJECTED, RESULT_STATUSES, UNMATCHED, CancelResult, Exchange, Fill,
    OrderRequest, OrderResult, OrderStatus, Position, PreparedOrder,
)
from polybot.exchange.clob_sdk import (  # noqa: F401  (eip712_order_hash re-exported)
    HttpFailure, SdkClient, Transport, eip712_order_hash, signed_order_from_payload,
)
from polybot.exchange.fills import check_price
from polybot.exchange.models import FeeSchedule
from polybot.exchange.parse_util import micro as _micro, price_micro as _price_micro
from polybot.money import MICRO, taker_fee_micro, to_micro

log = logging.getLogger(__name__)

_NOT_ACCEPTED_503 = ("cancel-only", "cancel only", "post-only", "post only", "disabled",
                     "trading is currently")
_DUPLICATED_ID = re.compile(r"order (0x[0-9a-fA-F]+) is invalid")
FeeSource = Union[Mapping[str, FeeSchedule], Callable[[str], Optional[FeeSchedule]]]


# ----------------------------------------------------------------------------- helpers
def _dec(micro: int) -> float:
    return float(Decimal(int(micro)) / MICRO)


def _tick_str(tick: Any) -> Optional[str]:
    if tick in (None, ""):
        return None
    return format(Decimal(str(tick)).normalize(), "f")


def _norm_status(s: Any) -> str:
    s = str(s or "").strip().lower()
    for prefix in ("order_status_", "status_"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return {"cancelled": "canceled", "canceled_market_resolved": "canceled",
            "invalid": "canceled"}.get(s, s)


# ----------------------------------------------------------------------------- exchange
class LiveExchange(Exchange):
    name = "polymarket"
    mode = "live"

    def __init__(self, *, clob_url: str, private_key: str, chain_id: int = 137,
                 api_key: Optional[str] = None, api_secret: Optional[str] = None,
                 api_passphrase: Optional[str] = None, signature_type: int = 0,
                 funder: Optional[str] = None, timeout_seconds: float = 10.0,
                 max_retries: int = 3, fees_by_token: Optional[FeeSource] = None,
                 reader: Any = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        if not private_key:
            raise ConfigError("Live trading needs polymarket.private_key; export it in the "
                              "environment, or set paper_trading: true.")
        self.transport = Transport(timeout_seconds, max_retries, sleep=sleep)
        creds = None
        if api_key and api_secret and api_passphrase:
            creds = ApiCreds(api_key=api_key, api_secret=api_secret, api_passphrase=api_passphrase)
        try:
            self._sdk = SdkClient(host=clob_url, chain_id=int(chain_id), key=private_key, creds=creds,
                             signature_type=int(signature_type), funder=funder or None,
                             transport=self.transport)
        except Exception as exc:  # noqa: BLE001 — bad key format etc.; never echo the key
            raise ConfigError(f"polymarket.private_key or chain_id is not usable "
                              f"({type(exc).__name__}); check the value in the environment.") from None
        self.chain_id = int(chain_id)
        self.clob_url = clob_url
        self.address = self._sdk.get_address()
        self.funder = funder or self.address
        self._fees = fees_by_token
        self._fee_cache: dict[str, FeeSchedule] = {}
        self._reader = reader
        self._clock = clock
        self._heartbeat_id = ""
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"LiveExchange(clob_url={self.clob_url!r}, address={self.address!r})"

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> "LiveExchange":
        pm = cfg.polymarket
        if kwargs.get("reader") is None:
            from polybot.exchange.client import PolymarketClient
            kwargs["reader"] = PolymarketClient.from_config(cfg)
        return cls(clob_url=pm.base_url, private_key=pm.private_key, chain_id=pm.chain_id,
                   api_key=pm.api_key, api_secret=pm.api_secret, api_passphrase=pm.api_passphrase,
                   signature_type=pm.signature_type, funder=pm.funder_address,
                   timeout_seconds=pm.timeout_seconds, max_retries=pm.max_retries, **kwargs)

    def close(self) -> None:
        self.transport.close()

    # ------------------------------------------------------------------ errors
    def _read_error(self, exc: HttpFailure, doing: str) -> ExchangeError:
        if exc.kind == "http" and exc.status in (401, 403):
            return AuthenticationError(
                f"Polymarket refused {doing} (HTTP {exc.status}: {exc.message}); check "
                f"POLYMARKET_API_KEY/SECRET/PASSPHRASE and the private key (a 403 can also mean "
                f"a geoblocked IP).")
        if exc.kind == "http" and exc.status < 500 and exc.status not in (425, 429):
            return RequestRejected(f"Polymarket rejected {doing} (HTTP {exc.status}): "
                                   f"{exc.message}.", status=exc.status)
        why = (f"HTTP {exc.status} ({exc.message})" if exc.kind == "http"
               else "no answer within %gs" % self.transport.timeout if exc.kind == "timeout"
               else f"connection failed ({exc.message})")
        return ExchangeUnavailable(f"Polymarket CLOB unreachable while {doing}: {why}; check the "
                                   f"network or polymarket.base_url in config.yaml.",
                                   attempts=self.transport.max_retries)

    def _call(self, doing: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except HttpFailure as exc:
            raise self._read_error(exc, doing) from None

    def ensure_credentials(self) -> None:
        """Derive the L2 API credentials from the private key (L1) if none were given."""
        if self._sdk.creds is not None:
            return
        creds = self._call("deriving API credentials", self._sdk.create_or_derive_api_key)
        self._sdk.set_api_creds(creds)

    # ------------------------------------------------------------------ orders
    def prepare(self, request: OrderRequest) -> PreparedOrder:
        self.ensure_credentials()
        tick = _tick_str(request.tick_size)
        if request.price_micro:
            # The SDK silently rounds an off-tick price to the tick; refuse instead, so the
            # order signed is the order the engine asked for.
            market_tick = tick or self._call("reading the tick size",
                                             lambda: self._sdk.get_tick_size(request.token_id))
            code, reason = check_price(request.price_micro, to_micro(market_tick))
            if code:
                raise OrderRejected(f"Order not signed: {reason} (nothing was sent).")
        opts = PartialCreateOrderOptions(tick_size=tick, neg_risk=request.neg_risk)
        side = request.side
        price = _dec(request.price_micro) if request.price_micro else 0.0
        market_args = None
        if request.amount_micro is not None:                     # market BUY by USD
            market_args = MarketOrderArgsV2(token_id=request.token_id, amount=_dec(request.amount_micro),
                                            side=BUY, price=price, order_type=request.order_type)
        elif request.order_type in ("FOK", "FAK") and not request.price_micro:
            if side == BUY:
                raise ValueError("a FOK/FAK BUY by shares needs price_micro (the worst price "
                                 "accepted); or buy by amount_micro (USD)")
            market_args = MarketOrderArgsV2(token_id=request.token_id, amount=_dec(request.size_micro),
                                            side=side, order_type=request.order_type)
        try:
            if market_args is not None:
                signed = self._sdk.create_market_order(market_args, opts)
            else:
                signed = self._sdk.create_order(OrderArgsV2(
                    token_id=request.token_id, price=price, size=_dec(request.size_micro), side=side,
                    expiration=int(request.expiration or 0)), opts)
        except HttpFailure as exc:
            raise self._read_error(exc, "reading the market's tick size / fee data") from None
        except PolyException as exc:
            raise OrderRejected(f"Order not signed: {exc.msg}; fix the price or size "
                                f"(nothing was sent).") from None
        except Exception as exc:  # noqa: BLE001 — the SDK raises bare Exception("no match")
            if "no match" in str(exc):
                raise OrderRejected("Order not signed: the book has no liquidity for this market "
                                    "order (nothing was sent).") from None
            raise
        if not isinstance(signed, SignedOrderV2):
            raise ExchangeError("The CLOB reports order version 1, which Polymarket retired on "
                                "2026-04-28; check polymarket.base_url in config.yaml.")
        h = eip712_order_hash(signed, self.chain_id)
        payload = order_to_json_v2(signed, self._sdk.creds.api_key, request.order_type,
                                   bool(request.post_only), False)
        return PreparedOrder(client_order_id=h, order_hash=h,
                             payload_json=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
                             request=request, created_ts=int(self._clock()), exchange=self.name)

    def submit(self, prepared: PreparedOrder) -> OrderResult:
        self.ensure_credentials()
        payload = json.loads(prepared.payload_json)
        signed = signed_order_from_payload(payload)
        try:
            res = self._sdk.post_order(signed, payload["orderType"], bool(payload.get("postOnly")),
                                       bool(payload.get("deferExec")))
        except HttpFailure as exc:
            return self._submit_failure(prepared, exc)
        try:
            parsed = P.parse_order_post_response(res)
        except DataError:
            raise OrderOutcomeUnknown(f"Order {prepared.order_hash[:12]}… got an unreadable answer; "
                                      f"its outcome is unknown — reconcile it with lookup().") from None
        if "duplicat" in parsed.error_msg.lower():
            return self._already_known(prepared, parsed.error_msg)
        if not parsed.accepted:
            if parsed.success and parsed.status == UNMATCHED and not parsed.error_msg:
                return OrderResult(status=UNMATCHED, exchange_order_id=parsed.order_id or None, raw=res)
            return OrderResult(status=REJECTED, exchange_order_id=parsed.order_id or None,
                               error=parsed.error_msg or f"order not accepted (status {parsed.status!r})",
                               raw=res)
        if parsed.order_id and parsed.order_id.lower() != prepared.order_hash.lower():
            log.warning("order hash mismatch: computed %s, exchange says %s",
                        prepared.order_hash, parsed.order_id)
        oid = parsed.order_id or prepared.order_hash
        fills = self._fills_by_trade_ids(oid, parsed.trade_ids)
        return OrderResult(status=parsed.status if parsed.status in RESULT_STATUSES else "live",
                           exchange_order_id=oid, fills=tuple(fills),
                           size_matched_micro=sum(f.size_micro for f in fills), raw=res)

    def _submit_failure(self, prepared: PreparedOrder, exc: HttpFailure) -> OrderResult:
        short = prepared.order_hash[:12] + "…"
        if exc.kind == "connect":
            raise TemporaryExchangeError(f"Order {short} was not sent: the CLOB refused the "
                                         f"connection; submit the same prepared order again later.")
        if exc.kind in ("timeout", "network"):
            raise OrderOutcomeUnknown(f"Order {short} was sent but got no answer ({exc.message}); "
                                      f"its outcome is unknown — reconcile it with lookup(), "
                                      f"do not sign a new one.")
        status, msg = exc.status, exc.message
        if status in (401, 403):
            raise self._read_error(exc, "the order")
        if status in (425, 429) or (status == 503 and any(s in msg.lower() for s in _NOT_ACCEPTED_503)):
            raise TemporaryExchangeError(f"Order {short} was not accepted (HTTP {status}: {msg}); "
                                         f"submit the same prepared order again later.")
        if status >= 500:
            raise OrderOutcomeUnknown(f"Order {short} got HTTP {status} ({msg}); its outcome is "
                                      f"unknown — reconcile it with lookup().")
        if "duplicat" in msg.lower():
            return self._already_known(prepared, msg)
        return OrderResult(status=REJECTED, error=msg or f"HTTP {status}")

    def _already_known(self, prepared: PreparedOrder, msg: str) -> OrderResult:
        """The exchange says it already has this order (a re-post): report what it has."""
        m = _DUPLICATED_ID.search(msg or "")
        st = self.lookup(m.group(1)) if m else None
        if st is None:
            st = self.resolve(prepared)
        if st is None:
            raise OrderOutcomeUnknown(f"Order {prepared.order_hash[:12]}… is reported duplicated "
                                      f"({msg}) but cannot be found; reconcile it with lookup().")
        status = st.status if st.status in ACCEPTED_STATUSES else (
            "matched" if st.size_matched_micro else UNMATCHED)
        return OrderResult(status=status, exchange_order_id=st.order_id, fills=st.fills,
                           size_matched_micro=st.size_matched_micro)

    # ------------------------------------------------------------------ fills
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
        me = {self.address.lower(), str(self.funder).lower()}
        key = (self._sdk.creds.api_key if self._sdk.creds else "") or ""
        out = []
        if t.trader_side != "MAKER":
            fs = self._fee_schedule(t.asset_id, t.market)
            fee = taker_fee_micro(t.size, t.price, fs.effective_rate, fs.exponent) if fs.effective_rate else 0
            out.append(Fill(trade_id=t.id, order_id=t.taker_order_id, token_id=t.asset_id, side=t.side,
                            price_micro=t.price, size_micro=t.size, fee_micro=fee, ts=ts,
                            liquidity="taker", status=t.status))
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
                    ts=ts, liquidity="maker", status=t.status))
            except Exception as exc:  # noqa: BLE001 — one bad maker row never hides the rest
                log.warning("skipped a maker order in trade %s: %s", t.id, exc)
        if t.trader_side == "MAKER" and not out and (t.owner == key or t.maker_address.lower() in me):
            out.append(Fill(trade_id=t.id, order_id=order_id or "", token_id=t.asset_id, side=t.side,
                            price_micro=t.price, size_micro=t.size, fee_micro=0, ts=ts,
                            liquidity="maker", status=t.status))
        if order_id is not None:
            out = [f for f in out if f.order_id.lower() == order_id.lower()]
        return out

    def _trade_rows(self, tid: str) -> list:
        return self._sdk.get_trades(TradeParams(id=tid), only_first_page=True) or []

    def _fills_by_trade_ids(self, order_id: str, trade_ids) -> list[Fill]:
        """Best effort right after placement: never raises (fills also come via trades())."""
        out: list[Fill] = []
        for tid in trade_ids:
            try:
                rows = self._trade_rows(tid)
            except (HttpFailure, PolyException) as exc:
                log.info("trade %s not readable yet (%s); fills come with trades()", tid, exc)
                return []
            for r in rows:
                out += self._fills_of_trade(r, order_id)
        return out

    # ------------------------------------------------------------------ queries
    def _order_status(self, o, fills=()) -> OrderStatus:
        return OrderStatus(order_id=o.id, status=_norm_status(o.status), token_id=o.asset_id,
                           side=o.side, price_micro=o.price, original_size_micro=o.original_size,
                           size_matched_micro=o.size_matched, order_type=o.order_type,
                           created_ts=o.created_at or 0, market=o.market, expiration=o.expiration,
                           fills=tuple(fills))

    def lookup(self, order_id_or_hash: str) -> Optional[OrderStatus]:
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
                    rows = self._call("reading trades", lambda tid=tid: self._trade_rows(tid))
                    for r in rows:
                        fills += self._fills_of_trade(r, o.id)
            else:
                fills = [f for f in self._trade_fills(asset_id=o.asset_id)
                         if f.order_id.lower() == o.id.lower()]
            return self._order_status(o, fills)
        # Not in the order store: a fully matched market order may only show in trades.
        fills = [f for f in self._trade_fills() if f.order_id.lower() == oid.lower()]
        if not fills:
            return None
        f0 = fills[0]
        size = sum(f.size_micro for f in fills)
        return OrderStatus(order_id=oid, status="matched", token_id=f0.token_id, side=f0.side,
                           price_micro=f0.price_micro, original_size_micro=size,
                           size_matched_micro=size, fills=tuple(fills))

    def resolve(self, prepared: PreparedOrder, known_ids=()) -> Optional[OrderStatus]:
        """What became of a prepared order whose submit outcome is unknown.

        First by its hash (the CLOB's orderID). If the exchange does not know that id,
        fall back to the order's terms: an open order, or taker trades, on the same
        token and side at the same price and size whose id is NOT in ``known_ids``
        (every exchange order id the engine already has on record). This protects
        against a duplicate order even if the exchange's id scheme ever differs from
        the local EIP-712 hash. Several candidates → OrderOutcomeUnknown (resolve by
        hand); none → None (after a grace period: it was never placed).
        """
        st = self.lookup(prepared.order_hash)
        if st is not None:
            return st
        req = prepared.request
        known = {str(i).lower() for i in known_ids} | {prepared.order_hash.lower()}
        size = (req.size_micro // 10_000) * 10_000 if req.size_micro else None   # SDK: 2 dp
        cands: dict[str, Optional[OrderStatus]] = {}
        for o in self.open_orders():
            if (o.token_id == req.token_id and o.side == req.side and o.order_id.lower() not in known
                    and (req.price_micro is None or o.price_micro == req.price_micro)
                    and (size is None or o.original_size_micro == size)):
                cands[o.order_id] = o
        for f in self._trade_fills(asset_id=req.token_id):
            if (f.liquidity == "taker" and f.side == req.side and f.order_id
                    and f.order_id.lower() not in known
                    and (req.price_micro is None or (f.price_micro <= req.price_micro if req.side == BUY
                                                     else f.price_micro >= req.price_micro))):
                cands.setdefault(f.order_id, None)
        if not cands:
            return None
        if len(cands) > 1:
            raise OrderOutcomeUnknown(
                f"Order {prepared.order_hash[:12]}… is not known by its hash and {len(cands)} "
                f"unrecorded orders match its terms ({', '.join(sorted(cands))[:120]}); resolve it "
                f"by hand on polymarket.com before trading this market again.")
        oid, st = next(iter(cands.items()))
        log.warning("order %s resolved by its terms to exchange order %s", prepared.order_hash, oid)
        return self.lookup(oid) or st

    def _trade_fills(self, since_ts: Optional[int] = None, asset_id: Optional[str] = None) -> list[Fill]:
        self.ensure_credentials()
        params = TradeParams(after=int(since_ts) if since_ts else None, asset_id=asset_id)
        rows = self._call("reading trades", lambda: self._sdk.get_trades(params))
        out: list[Fill] = []
        for r in rows or ():
            out += self._fills_of_trade(r)
        return out

    def trades(self, since_ts: Optional[int] = None) -> list[Fill]:
        fills = [f for f in self._trade_fills(since_ts) if since_ts is None or f.ts >= since_ts]
        return sorted(fills, key=lambda f: (f.ts, f.trade_id))

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

    def cancel(self, order_id: str) -> CancelResult:
        self.ensure_credentials()
        res = self._call(f"cancelling order {order_id[:12]}…",
                         lambda: self._sdk.cancel_order(OrderPayload(orderID=order_id)))
        return P.parse_cancel_response(res or {})

    def cancel_all(self) -> CancelResult:
        self.ensure_credentials()
        return P.parse_cancel_response(self._call("cancelling all orders", self._sdk.cancel_all) or {})

    def balance_micro(self) -> int:
        self.ensure_credentials()
        res = self._call("reading the balance", lambda: self._sdk.get_balance_allowance(
            BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)))
        if not isinstance(res, dict) or res.get("balance") in (None, ""):
            raise DataError("The balance answer has no 'balance' field; check polymarket.base_url.")
        return int(Decimal(str(res["balance"])))          # base units = micro-units (6 dp)

    def positions(self) -> list[Position]:
        if self._reader is None:
            raise ConfigError("LiveExchange.positions needs a reader (PolymarketClient) for the "
                              "Data API; build it with LiveExchange.from_config.")
        return [p for p in self._reader.get_positions(self.funder) if p.size > 0]

    def heartbeat(self) -> None:
        """POST /v1/heartbeats: once started, the CLOB cancels every open order if no
        heartbeat arrives within ~10 s (a dead-man switch)."""
        self.ensure_credentials()
        res = self._call("sending the heartbeat", lambda: self._sdk.post_heartbeat(self._heartbeat_id))
        if isinstance(res, dict) and res.get("heartbeat_id"):
            self._heartbeat_id = str(res["heartbeat_id"])

    def rate_limit_status(self) -> dict:
        t = self.transport
        return {"headers": dict(t.last_rate_limit_headers), "throttled": t.throttled_count,
                "requests": t.request_count, "slowest_seconds": t.slowest_seconds}
