"""Live trading on Polymarket's CLOB, signing with the official SDK ``py_clob_client_v2``.

Order lifecycle (crash safety, docs/dev/api_notes.md §13):

- :meth:`LiveExchange.prepare` computes the order's amounts exactly
  (:mod:`polybot.exchange.amounts`: limit orders at the tick, market orders with the
  CLOB's 2/4-decimal rule) at the market's CURRENT tick, and signs them ONCE through
  the SDK's lower-level ``ExchangeOrderBuilderV2`` (fresh random salt + millisecond
  timestamp; ExchangeV3 / domain "3" for Protocol-V2 position markets). We compute the
  order's EIP-712 hash locally — the CLOB's ``orderID`` — and serialise the signed
  order into the exact ``POST /order`` body (``payload_json``). Nothing is sent.
- :meth:`LiveExchange.submit` rebuilds the ``SignedOrderV2`` from ``payload_json`` and
  calls the SDK's ``post_order`` (never ``create_and_post_order``): the body sent is
  byte-identical to the persisted one, so a re-submission re-posts the SAME order
  (same hash). A "Duplicated" answer is resolved by looking the order up. It never
  re-signs: a "breaks minimum tick size rule" answer comes back REJECTED with
  ``code=TICK_SIZE_CHANGED`` (the tick is refreshed; the engine prepares anew).
- Transport is ours (the SDK's ``_get/_post/_delete`` hooks are overridden) so
  that we own the timeout, never retry a POST /order, can tell "never sent"
  (connection refused) from "maybe sent" (timeout, dropped connection, 5xx),
  record the rate-limit headers, and never log a secret. We also skip the
  SDK's post-submit wait for settlement hashes (up to 30 s of polling): fills
  are read with :meth:`trades` / :meth:`lookup` instead (polybot.exchange.live_fills).

Error mapping: ``OrderOutcomeUnknown`` for timeout/5xx/dropped connection
after sending; ``TemporaryExchangeError`` when definitely not accepted
(connection refused, 425, 429, 503 cancel-only/post-only/disabled);
``AuthenticationError`` for 401/403; a 4xx order error or ``success: false``
comes back as ``OrderResult(status="rejected", error=...)``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypedDict

from py_clob_client_v2.clob_types import (
    ApiCreds,
    AssetType,
    BalanceAllowanceParams,
    OrderPayload,
)
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

from polybot.config import Config, PolymarketConfig
from polybot.domain import BUY, ExchangeOrderStatus
from polybot.errors import (
    AuthenticationError,
    ConfigError,
    DataError,
    ExchangeError,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    OrderRejected,
    RequestRejected,
    TemporaryExchangeError,
)
from polybot.exchange import amounts as A
from polybot.exchange import parse as P
from polybot.exchange.base import (
    ACCEPTED_STATUSES,
    RESULT_STATUSES,
    TICK_SIZE_CHANGED,
    CancelResult,
    Exchange,
    OrderRequest,
    OrderResult,
    Position,
    PreparedOrder,
)
from polybot.exchange.clob_sdk import (  # noqa: F401  (eip712_order_hash re-exported)
    HttpFailure,
    SdkClient,
    Transport,
    eip712_order_hash,
    signed_order_from_payload,
)
from polybot.exchange.live_fills import TradeReader
from polybot.exchange.models import FeeSchedule, FeeSource
from polybot.money import MICRO, to_micro

log = logging.getLogger(__name__)

_NOT_ACCEPTED_503 = (
    "cancel-only",
    "cancel only",
    "post-only",
    "post only",
    "disabled",
    "trading is currently",
)
_DUPLICATED_ID = re.compile(r"order (0x[0-9a-fA-F]+) is invalid")
# The CLOB's 400 for a price off the market's tick (https://docs.polymarket.com/resources/error-codes:
# "order {id} is invalid. Price ({price}) breaks minimum tick size rule: {tick}"): a definitive
# refusal, nothing was placed.
_TICK_RULE = ("minimum tick size", "tick size rule", "invalid tick size")
TICK_TTL_SECONDS = 300.0
# Signature type 3 (deposit wallet): the CLOB's answer when the wallet is wrong, not deployed
# or not owned by the key (py-clob-client-v2 #64 #70 #75 #77 #85 #90 #91 #103), and the fix
# (docs/dev/signature_types.md: py_clob_client_v2 1.2.1 signs type 3 byte for byte like the
# official polymarket-client 0.14.0, so the cause is the account, not the signing).
_TYPE3_SIGNER_ERROR = "order signer address has to be the address of the api key"
TYPE3_FIX = (
    "signature type 3 (deposit wallet) needs POLYMARKET_FUNDER_ADDRESS ({funder}) to be the "
    "deployed deposit wallet of this key's address — deploy it once with Polymarket's official "
    "polymarket-client SDK or one trade on polymarket.com, then rerun python "
    "test_api_connectivity.py --live-order-check; accounts with a Polymarket proxy or Safe "
    "use signature type 1 or 2 with that wallet as the funder"
)
HEARTBEAT_MISMATCH = "invalid heartbeat id"


class RateLimitStatus(TypedDict):
    """What the trading transport saw: the last rate-limit headers, 429s, calls, slowest call."""

    headers: dict[str, str]
    throttled: int
    requests: int
    slowest_seconds: float


# ----------------------------------------------------------------------------- helpers
def _answer_shares(parsed: Any, prepared: PreparedOrder) -> int:
    """Shares a POST /order answer says matched (BUY: takingAmount, SELL: makingAmount).
    Real answers show decimals ("4.599999"), the docs' example base units ("100000000")
    (parse_account.parse_order_post_response): read it as decimals unless that exceeds the
    signed shares, then as base units; never more than the order's signed shares."""
    o = json.loads(prepared.payload_json).get("order") or {}
    buy = prepared.request.side == BUY
    signed = int((o.get("takerAmount") if buy else o.get("makerAmount")) or 0)
    raw = (parsed.raw_taking_amount if buy else parsed.raw_making_amount) or ""
    as_decimal = parsed.taking_amount if buy else parsed.making_amount
    if as_decimal and as_decimal <= signed:
        return int(as_decimal)
    if raw.isdigit() and int(raw) <= signed:
        return int(raw)
    return 0


def _heartbeat_expected(exc: HttpFailure) -> str | None:
    """The id a 400 "Invalid Heartbeat ID" answer says the CLOB expects, else None."""
    body = exc.body
    if (
        exc.kind == "http"
        and exc.status == 400
        and isinstance(body, dict)
        and str(body.get("error_msg") or body.get("error") or "").strip().lower() == HEARTBEAT_MISMATCH
        and isinstance(body.get("heartbeat_id"), str)
    ):
        return body["heartbeat_id"]
    return None


# ----------------------------------------------------------------------------- exchange
class LiveExchange(TradeReader, Exchange):
    name = "polymarket"
    mode = "live"

    def __init__(
        self,
        *,
        clob_url: str,
        private_key: str | None,
        chain_id: int = 137,
        api_key: str | None = None,
        api_secret: str | None = None,
        api_passphrase: str | None = None,
        signature_type: int = 0,
        funder: str | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 3,
        fees_by_token: FeeSource | None = None,
        reader: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not private_key:
            raise ConfigError(
                "Live trading needs polymarket.private_key; export it in the "
                "environment, or set paper_trading: true."
            )
        self.transport = Transport(timeout_seconds, max_retries, sleep=sleep)
        creds = None
        if api_key and api_secret and api_passphrase:
            creds = ApiCreds(api_key=api_key, api_secret=api_secret, api_passphrase=api_passphrase)
        try:
            self._sdk = SdkClient(
                host=clob_url,
                chain_id=int(chain_id),
                key=private_key,
                creds=creds,
                signature_type=int(signature_type),
                funder=funder or None,
                transport=self.transport,
            )
        except Exception as exc:  # noqa: BLE001 — bad key format etc.; never echo the key
            raise ConfigError(
                f"polymarket.private_key or chain_id is not usable "
                f"({type(exc).__name__}); check the value in the environment."
            ) from None
        self.chain_id = int(chain_id)
        self.clob_url = clob_url
        self.address = self._sdk.get_address()
        self.signature_type = int(signature_type)
        problem = PolymarketConfig.signing_problem(self.signature_type, funder, self.address)
        if problem:
            raise ConfigError(problem)
        self.funder = funder or self.address
        self._fees = fees_by_token
        self._fee_cache: dict[str, FeeSchedule] = {}
        self._reader = reader
        self._clock = clock
        self._heartbeat_id = ""
        self._lock = threading.RLock()
        self._ticks: dict[str, tuple[str, float]] = {}  # token → (tick, read at)
        self._versions: dict[str, str] = {}  # token → Gamma market version
        self._prepared: dict[str, tuple[str, int]] = {}  # order hash → (token, created_ts)

    def __repr__(self) -> str:
        return f"LiveExchange(clob_url={self.clob_url!r}, address={self.address!r})"

    @classmethod
    def from_config(cls, cfg: Config, **kwargs: Any) -> LiveExchange:
        pm = cfg.polymarket
        if kwargs.get("reader") is None:
            from polybot.exchange.client import PolymarketClient

            kwargs["reader"] = PolymarketClient.from_config(cfg)
        return cls(
            clob_url=pm.base_url,
            private_key=pm.private_key,
            chain_id=pm.chain_id,
            api_key=pm.api_key,
            api_secret=pm.api_secret,
            api_passphrase=pm.api_passphrase,
            signature_type=pm.signature_type,
            funder=pm.funder_address,
            timeout_seconds=pm.timeout_seconds,
            max_retries=pm.max_retries,
            **kwargs,
        )

    def close(self) -> None:
        self.transport.close()

    # ------------------------------------------------------------------ errors
    def _read_error(self, exc: HttpFailure, doing: str) -> ExchangeError:
        if exc.kind == "http" and exc.status in (401, 403):
            return AuthenticationError(
                f"Polymarket refused {doing} (HTTP {exc.status}: {exc.message}); check "
                f"POLYMARKET_API_KEY/SECRET/PASSPHRASE and the private key (a 403 can also mean "
                f"a geoblocked IP)."
            )
        if (
            exc.kind == "http"
            and exc.status is not None
            and exc.status < 500
            and exc.status not in (425, 429)
        ):
            return RequestRejected(
                f"Polymarket rejected {doing} (HTTP {exc.status}): {exc.message}.", status=exc.status
            )
        why = (
            f"HTTP {exc.status} ({exc.message})"
            if exc.kind == "http"
            else f"no answer within {self.transport.timeout:g}s"
            if exc.kind == "timeout"
            else f"connection failed ({exc.message})"
        )
        return ExchangeUnavailable(
            f"Polymarket CLOB unreachable while {doing}: {why}; check the "
            f"network or polymarket.base_url in config.yaml.",
            attempts=self.transport.max_retries,
        )

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
    def tick_size(self, token_id: str, *, refresh: bool = False) -> str:
        """The market's current tick ("0.01", "0.001", ...). Cached for ``TICK_TTL_SECONDS``;
        ``refresh=True`` (or a "minimum tick size" rejection) asks the exchange again."""
        with self._lock:
            hit = self._ticks.get(token_id)
            if hit and not refresh and self._clock() - hit[1] < TICK_TTL_SECONDS:
                return hit[0]
            self._sdk.forget_tick(token_id)
        raw = self._call("reading the tick size", lambda: self._sdk.get_tick_size(token_id))
        try:
            tick = A.valid_tick(raw)
        except A.AmountError as exc:
            raise DataError(
                f"The CLOB reports an unusable tick size for token {token_id[:12]}… "
                f"({exc}); check polymarket.base_url."
            ) from None
        with self._lock:
            if hit and hit[0] != tick:
                log.warning("tick size of token %s changed: %s -> %s", token_id[:12], hit[0], tick)
            self._ticks[token_id] = (tick, self._clock())
        return tick

    def forget_tick(self, token_id: str) -> None:
        with self._lock:
            self._ticks.pop(token_id, None)
            self._sdk.forget_tick(token_id)

    def _is_position_market(self, request: OrderRequest) -> bool:
        """Protocol-V2 market (Gamma ``version: "v2"``)? From the request, else asked once."""
        if request.market_version is not None:
            return request.market_version == "v2"
        tid = request.token_id
        if tid not in self._versions:
            version = "v1"
            if self._reader is not None:
                try:
                    found, _ = self._reader.list_markets(closed=None, position_ids=[tid])
                    version = next((m.version for m in found if tid in m.token_ids), "v1")
                except (ExchangeError, DataError) as exc:  # unknown: sign as v1; a v2 market rejects it (400)
                    log.warning(
                        "market version of token %s unknown (%s); signing for ExchangeV2", tid[:12], exc
                    )
                    return False
            self._versions[tid] = version
        return self._versions[tid] == "v2"

    def prepare(self, request: OrderRequest) -> PreparedOrder:
        """Build the amounts (polybot.exchange.amounts) and sign the order ONCE; send nothing.

        Signs at the market's CURRENT tick. A GTC/GTD price off that tick is refused; a
        FOK/FAK worst price outside [tick, 1 − tick] is clamped to it (no bid or ask exists
        beyond, so the order is no looser) and the adjusted request is what
        ``PreparedOrder.request`` carries. Raises OrderRejected (one sentence, nothing sent)
        when the order cannot be valid."""
        self.ensure_credentials()
        tick = self.tick_size(request.token_id)
        price = request.price_micro
        try:
            theirs = A.tick_str(request.tick_size)
        except A.AmountError:
            theirs = None  # unreadable: the exchange's tick decides
        stale = (theirs is not None and theirs != tick) or (
            request.order_type in ("GTC", "GTD") and price is not None and price % A.tick_micro(tick)
        )
        if stale:  # the engine's tick or price disagrees with the tick we hold: ask again
            tick = self.tick_size(request.token_id, refresh=True)
        t = A.tick_micro(tick)
        if request.order_type in ("FOK", "FAK"):
            if price is None:
                if request.side != BUY or request.amount_micro is None:
                    raise ValueError(
                        "a FOK/FAK order by shares needs price_micro (the worst "
                        "price accepted); or buy by amount_micro (USD)"
                    )
                price = self._market_buy_price(request, request.amount_micro)
            clamped = min(max(price, t), 1_000_000 - t)
            if clamped != price:
                log.info(
                    "token %s: worst price %s clamped to %s (tick %s)",
                    request.token_id[:12],
                    price,
                    clamped,
                    tick,
                )
            price = clamped
        request = dataclasses.replace(request, price_micro=price, tick_size=tick)
        try:
            amounts = A.order_amounts(
                request.side,
                request.order_type,
                tick,
                price_micro=price,
                size_micro=request.size_micro,
                amount_micro=request.amount_micro,
            )
        except A.AmountError as exc:
            raise OrderRejected(f"Order not signed: {exc} (nothing was sent).") from None
        position = self._is_position_market(request)
        neg_risk = (
            False
            if position
            else (
                request.neg_risk
                if request.neg_risk is not None
                else bool(
                    self._call(
                        "reading the market's neg-risk flag", lambda: self._sdk.get_neg_risk(request.token_id)
                    )
                )
            )
        )
        signed = self._sdk.sign_v2(
            token_id=request.token_id,
            side=request.side,
            maker_amount=amounts.maker_micro,
            taker_amount=amounts.taker_micro,
            neg_risk=neg_risk,
            position=position,
            expiration=int(request.expiration or 0) if request.order_type == "GTD" else 0,
        )
        h = eip712_order_hash(signed, self.chain_id, neg_risk=neg_risk)
        payload = order_to_json_v2(
            signed, self._sdk.creds.api_key, request.order_type, bool(request.post_only), False
        )
        self._remember(h, request.token_id, int(self._clock()))
        return PreparedOrder(
            client_order_id=h,
            order_hash=h,
            payload_json=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            request=request,
            created_ts=int(self._clock()),
            exchange=self.name,
        )

    def _market_buy_price(self, request: OrderRequest, amount_micro: int) -> int:
        """Worst price for a BUY of ``amount_micro`` pUSD without one: the SDK's book walk
        (FOK: the whole amount must fit; FAK: the deepest ask)."""
        try:
            p = self._call(
                "reading the order book",
                lambda: self._sdk.calculate_market_price(
                    request.token_id, BUY, amount_micro / MICRO, request.order_type
                ),
            )
        except Exception as exc:  # noqa: BLE001 — the SDK raises bare Exception("no match")
            if "no match" in str(exc):
                raise OrderRejected(
                    "Order not signed: the book has no liquidity for this market order (nothing was sent)."
                ) from None
            raise
        return to_micro(str(p))

    def _remember(self, order_hash: str, token_id: str, created_ts: int) -> None:
        with self._lock:
            if len(self._prepared) > 10_000:
                self._prepared.clear()
            self._prepared[order_hash.lower()] = (token_id, created_ts)

    def submit(self, prepared: PreparedOrder) -> OrderResult:
        self.ensure_credentials()
        self._remember(prepared.order_hash, prepared.request.token_id, prepared.created_ts)
        payload = json.loads(prepared.payload_json)
        signed = signed_order_from_payload(payload)
        try:
            res = self._sdk.post_order(
                signed, payload["orderType"], bool(payload.get("postOnly")), bool(payload.get("deferExec"))
            )
        except HttpFailure as exc:
            return self._submit_failure(prepared, exc)
        try:
            parsed = P.parse_order_post_response(res)
        except DataError:
            raise OrderOutcomeUnknown(
                f"Order {prepared.order_hash[:12]}… got an unreadable answer; "
                f"its outcome is unknown — reconcile it with lookup()."
            ) from None
        if "duplicat" in parsed.error_msg.lower():
            return self._already_known(prepared, parsed.error_msg)
        if not parsed.accepted:
            if parsed.success and parsed.status == ExchangeOrderStatus.UNMATCHED and not parsed.error_msg:
                return OrderResult(
                    status=ExchangeOrderStatus.UNMATCHED, exchange_order_id=parsed.order_id or None, raw=res
                )
            return self._rejected(
                prepared,
                parsed.error_msg or f"order not accepted (status {parsed.status!r})",
                parsed.order_id or None,
                res,
            )
        if parsed.order_id and parsed.order_id.lower() != prepared.order_hash.lower():
            log.warning(
                "order hash mismatch: computed %s, exchange says %s", prepared.order_hash, parsed.order_id
            )
        oid = parsed.order_id or prepared.order_hash
        status = parsed.status if parsed.status in RESULT_STATUSES else "live"
        fills = self._fills_by_trade_ids(oid, parsed.trade_ids)
        matched = sum(f.size_micro for f in fills or () if not f.failed)
        pending = status == ExchangeOrderStatus.MATCHED and (fills is None or not parsed.trade_ids)
        if pending:
            # "matched" but its trades are not readable yet: NOT a cancel — report the size
            # the answer states (BUY: takingAmount = shares, SELL: makingAmount) and let the
            # caller poll lookup() for the fills.
            matched = max(matched, _answer_shares(parsed, prepared))
        return OrderResult(
            status=status,
            exchange_order_id=oid,
            fills=tuple(fills or ()),
            size_matched_micro=matched,
            raw=res,
            fills_pending=pending,
        )

    def _rejected(
        self, prepared: PreparedOrder, msg: str, oid: str | None = None, raw: Any = None
    ) -> OrderResult:
        """A definitive refusal. A tick-size rule violation means the market's tick changed
        under us: forget the tick we hold, so the NEXT prepare signs at the new one; this
        order stays rejected (the engine decides whether to prepare a new one)."""
        code = None
        if self.signature_type == 3 and _TYPE3_SIGNER_ERROR in (msg or "").lower():
            msg = f"{msg} — {TYPE3_FIX.format(funder=self.funder)}"
        if any(k in (msg or "").lower() for k in _TICK_RULE):
            self.forget_tick(prepared.request.token_id)
            code = TICK_SIZE_CHANGED
            msg = (
                f"{msg} — the market's tick size changed; prepare the order again to sign it at the new tick"
            )
        return OrderResult(
            status=ExchangeOrderStatus.REJECTED,
            exchange_order_id=oid,
            error=msg,
            code=code,
            raw=raw if isinstance(raw, dict) else None,
        )

    def _submit_failure(self, prepared: PreparedOrder, exc: HttpFailure) -> OrderResult:
        short = prepared.order_hash[:12] + "…"
        if exc.kind == "connect":
            raise TemporaryExchangeError(
                f"Order {short} was not sent: the CLOB refused the "
                f"connection; submit the same prepared order again later."
            )
        if exc.kind in ("timeout", "network"):
            raise OrderOutcomeUnknown(
                f"Order {short} was sent but got no answer ({exc.message}); "
                f"its outcome is unknown — reconcile it with lookup(), "
                f"do not sign a new one."
            )
        status, msg = exc.status, exc.message
        if status in (401, 403):
            raise self._read_error(exc, "the order")
        if status in (425, 429) or (status == 503 and any(s in msg.lower() for s in _NOT_ACCEPTED_503)):
            raise TemporaryExchangeError(
                f"Order {short} was not accepted (HTTP {status}: {msg}); "
                f"submit the same prepared order again later."
            )
        if status is None or status >= 500:  # None: an "http" failure always has a status
            raise OrderOutcomeUnknown(
                f"Order {short} got HTTP {status} ({msg}); its outcome is "
                f"unknown — reconcile it with lookup()."
            )
        if "duplicat" in msg.lower():
            return self._already_known(prepared, msg)
        return self._rejected(prepared, msg or f"HTTP {status}")

    def _already_known(self, prepared: PreparedOrder, msg: str) -> OrderResult:
        """The exchange says it already has this order (a re-post): report what it has."""
        m = _DUPLICATED_ID.search(msg or "")
        st = self.lookup(m.group(1)) if m else None
        if st is None:
            st = self.resolve(prepared)
        if st is None:
            raise OrderOutcomeUnknown(
                f"Order {prepared.order_hash[:12]}… is reported duplicated "
                f"({msg}) but cannot be found; reconcile it with lookup()."
            )
        status = (
            st.status
            if st.status in ACCEPTED_STATUSES
            else ("matched" if st.size_matched_micro else ExchangeOrderStatus.UNMATCHED)
        )
        return OrderResult(
            status=status,
            exchange_order_id=st.order_id,
            fills=st.fills,
            size_matched_micro=st.size_matched_micro,
        )

    # ------------------------------------------------------------------ queries
    # lookup / resolve / open_orders / trades: polybot.exchange.live_fills.TradeReader

    def cancel(self, order_id: str) -> CancelResult:
        self.ensure_credentials()
        res = self._call(
            f"cancelling order {order_id[:12]}…",
            lambda: self._sdk.cancel_order(OrderPayload(orderID=order_id)),
        )
        return P.parse_cancel_response(res or {})

    def cancel_all(self) -> CancelResult:
        self.ensure_credentials()
        return P.parse_cancel_response(self._call("cancelling all orders", self._sdk.cancel_all) or {})

    def balance_micro(self) -> int:
        self.ensure_credentials()
        res = self._call(
            "reading the balance",
            lambda: self._sdk.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)),
        )
        if not isinstance(res, dict) or res.get("balance") in (None, ""):
            raise DataError("The balance answer has no 'balance' field; check polymarket.base_url.")
        return int(Decimal(str(res["balance"])))  # base units = micro-units (6 dp)

    def positions(self) -> list[Position]:
        if self._reader is None:
            raise ConfigError(
                "LiveExchange.positions needs a reader (PolymarketClient) for the "
                "Data API; build it with LiveExchange.from_config."
            )
        return [p for p in self._reader.get_positions(self.funder) if p.size > 0]

    def heartbeat(self) -> None:
        """POST /v1/heartbeats: once started, the CLOB cancels every open order if no
        heartbeat arrives within ~10 s (a dead-man switch). Each answer carries the id to
        send next. After a missed window the CLOB answers 400 ``{"error_msg": "Invalid
        Heartbeat ID", "heartbeat_id": <expected>}`` (py-sdk
        ``polymarket/models/clob/order_heartbeats.py`` ``OrderHeartbeatMismatchResponse``;
        its transport raises ``OrderHeartbeatMismatchError(heartbeat_id)`` for a 400 on
        /v1/heartbeats): adopt the expected id and send once more."""
        self.ensure_credentials()
        try:
            res = self._sdk.post_heartbeat(self._heartbeat_id)
        except HttpFailure as exc:
            expected = _heartbeat_expected(exc)
            if expected is None:
                raise self._read_error(exc, "sending the heartbeat") from None
            log.warning(
                "heartbeat id %r refused; adopting the exchange's %r and sending again",
                self._heartbeat_id,
                expected,
            )
            self._heartbeat_id = expected
            res = self._call("sending the heartbeat", lambda: self._sdk.post_heartbeat(self._heartbeat_id))
        if isinstance(res, dict) and res.get("heartbeat_id"):
            self._heartbeat_id = str(res["heartbeat_id"])

    def rate_limit_status(self) -> RateLimitStatus:
        t = self.transport
        return {
            "headers": dict(t.last_rate_limit_headers),
            "throttled": t.throttled_count,
            "requests": t.request_count,
            "slowest_seconds": t.slowest_seconds,
        }
