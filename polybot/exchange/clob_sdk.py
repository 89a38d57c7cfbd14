"""The transport and order-identity helpers under :class:`polybot.exchange.live.LiveExchange`.

- :class:`Transport` — httpx with OUR timeout; retries only idempotent calls (GET,
  DELETE), never ``POST /order``; tells "never sent" (``kind="connect"``) from "may
  have reached the server" (timeout, dropped connection, 5xx); records the
  rate-limit headers; logs method + path only (never headers, bodies or secrets).
- :class:`SdkClient` — ``py_clob_client_v2.ClobClient`` with that transport under its
  ``_get/_post/_delete`` hooks, and without its post-submit wait for settlement
  hashes (fills are reconciled through ``/data/trades`` instead).
- :func:`eip712_order_hash` — the CLOB's ``orderID`` of a signed order, computed
  locally before anything is sent; :func:`signed_order_from_payload` rebuilds the
  SDK's ``SignedOrderV2`` from the persisted ``POST /order`` body.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from eth_account import Account
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.constants import BYTES32_ZERO
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, SignedOrderV2
from py_clob_client_v2.order_utils.model.side import Side
from py_clob_client_v2.order_utils.model.signature_type_v2 import SignatureTypeV2

from polybot.domain import BUY

log = logging.getLogger(__name__)

_RATE_HEADER_PREFIXES = ("poly-ratelimit-", "x-ratelimit-", "ratelimit-")


# ----------------------------------------------------------------------------- transport
class HttpFailure(Exception):
    """A failed HTTP call. ``kind``: "connect" (never sent), "timeout" / "network"
    (may have reached the server), "http" (an answer with ``status``)."""

    def __init__(
        self,
        kind: str,
        what: str,
        *,
        status: int | None = None,
        message: str = "",
        body: Any = None,
        sent: bool = True,
    ):
        super().__init__(f"{what}: {kind} {status or ''} {message}".strip())
        self.kind, self.what, self.status, self.message, self.body, self.sent = (
            kind,
            what,
            status,
            message,
            body,
            sent,
        )


def _error_text(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        msg = body.get("error") or body.get("errorMsg") or body.get("error_msg") or body.get("message") or ""
        if isinstance(msg, (dict, list)):
            msg = json.dumps(msg)
        return " ".join(str(msg).split())[:300] or fallback
    if isinstance(body, str) and body.strip() and "<html" not in body[:200].lower():
        return " ".join(body.split())[:300]
    return fallback


class Transport:
    """httpx for the SDK: our timeout, retries only for idempotent calls, rate-limit
    header bookkeeping. Logs method + path only (never headers or bodies)."""

    def __init__(self, timeout: float, max_retries: int = 3, *, sleep: Callable[[float], None] = time.sleep):
        self.timeout = float(timeout)
        self.max_retries = max(1, int(max_retries))
        self._sleep = sleep
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout))
        self._lock = threading.Lock()
        self.last_rate_limit_headers: dict[str, str] = {}
        self.throttled_count = 0  # 429 answers seen
        self.request_count = 0
        self.last_seconds: float | None = None
        self.slowest_seconds = 0.0

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict | None = None,
        data: Any = None,
        params: dict | None = None,
        retries: int = 1,
    ) -> Any:
        path = httpx.URL(url).path
        what = f"{method} {path}"
        h = dict(headers or {})
        h.setdefault("Accept", "*/*")
        if data is not None:
            h["Content-Type"] = "application/json"
        content = None
        if data is not None:
            content = data.encode("utf-8") if isinstance(data, str) else json.dumps(data).encode("utf-8")
        attempt = 0
        while True:
            attempt += 1
            t0 = time.perf_counter()
            try:
                resp = self._client.request(method, url, headers=h, content=content, params=params)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = HttpFailure("connect", what, message=type(exc).__name__, sent=False)
            except httpx.TimeoutException as exc:
                failure = HttpFailure("timeout", what, message=type(exc).__name__)
            except httpx.HTTPError as exc:
                failure = HttpFailure("network", what, message=type(exc).__name__)
            else:
                secs = time.perf_counter() - t0
                self._record(resp, secs)
                log.debug("%s -> %s in %.3fs", what, resp.status_code, secs)
                try:
                    body = resp.json() if resp.content else None
                except ValueError:
                    body = resp.text
                if 200 <= resp.status_code < 300:
                    return body
                failure = HttpFailure(
                    "http",
                    what,
                    status=resp.status_code,
                    message=_error_text(body, resp.reason_phrase),
                    body=body,
                )
                if resp.status_code < 500 and resp.status_code not in (425, 429):
                    raise failure
            if attempt >= retries:
                raise failure
            self._sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))

    def _record(self, resp: httpx.Response, secs: float) -> None:
        rl = {
            k: v
            for k, v in resp.headers.items()
            if k.lower().startswith(_RATE_HEADER_PREFIXES) or k.lower() == "retry-after"
        }
        with self._lock:
            self.request_count += 1
            self.last_seconds = secs
            self.slowest_seconds = max(self.slowest_seconds, secs)
            if rl:
                self.last_rate_limit_headers = rl
            if resp.status_code == 429:
                self.throttled_count += 1


class SdkClient(ClobClient):
    """The official client with our transport underneath."""

    def __init__(self, *args: Any, transport: Transport, **kwargs: Any):
        self._transport = transport
        super().__init__(*args, **kwargs)

    def _get(self, endpoint: str, headers: dict | None = None, params: dict | None = None) -> Any:
        return self._transport.request(
            "GET", endpoint, headers=headers, params=params, retries=self._transport.max_retries
        )

    def _post(
        self, endpoint: str, headers: dict | None = None, data: Any = None, params: dict | None = None
    ) -> Any:
        return self._transport.request("POST", endpoint, headers=headers, data=data, params=params, retries=1)

    def _delete(
        self, endpoint: str, headers: dict | None = None, data: Any = None, params: dict | None = None
    ) -> Any:
        return self._transport.request(
            "DELETE", endpoint, headers=headers, data=data, params=params, retries=self._transport.max_retries
        )

    def _resolve_transactions_hashes(self, response: Any) -> Any:
        return response  # fills are reconciled via trades(), not awaited here

    def forget_tick(self, token_id: str) -> None:
        """Drop the SDK's cached tick for a token (``ClobClient.get_tick_size`` caches it
        for the life of the client, but the CLOB changes a market's tick at run time when
        its price goes above 0.96 or below 0.04); the next ``get_tick_size`` asks again."""
        getattr(self, "_ClobClient__tick_sizes", {}).pop(token_id, None)

    def sign_v2(
        self,
        *,
        token_id: str,
        side: str,
        maker_amount: int,
        taker_amount: int,
        neg_risk: bool,
        position: bool,
        expiration: int = 0,
    ) -> SignedOrderV2:
        """Sign an order with amounts WE computed (polybot.exchange.amounts), through the
        SDK's lower-level ``ExchangeOrderBuilderV2`` — the same maker/signer/signature-type
        rules as ``OrderBuilder.build_order``, without its float rounding.

        ``position``: a Protocol-V2 market (Gamma ``version: "v2"``, ``positionIds``): the
        asset is the position id and the order signs for ExchangeV3, EIP-712 domain
        version "3" (py_clob_client_v2 1.2.1 ``_resolve_order_routing``: ``position_id``
        selects version 3; docs/dev/api_notes.md §7). Else ExchangeV2 (neg-risk or plain), "2".
        """
        cfg = get_contract_config(self.chain_id)
        if position:
            address, version = cfg.exchange_v3, "3"
        else:
            address, version = (cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2), "2"
        b = self.builder
        data = OrderDataV2(
            maker=b.funder,
            tokenId=str(token_id),
            makerAmount=str(int(maker_amount)),
            takerAmount=str(int(taker_amount)),
            side=Side.BUY if side == BUY else Side.SELL,
            signer=b._v2_order_signer(),
            signatureType=b.signature_type,
            timestamp=str(time.time_ns() // 1_000_000),
            metadata=BYTES32_ZERO,
            builder=(
                self.builder_config.builder_code
                if self.builder_config and getattr(self.builder_config, "builder_code", None)
                else BYTES32_ZERO
            ),
            expiration=str(int(expiration or 0)),
        )
        return ExchangeOrderBuilderV2(
            address, self.chain_id, self.signer, domain_version=version
        ).build_signed_order(data)


def eip712_order_hash(order: dict | SignedOrderV2, chain_id: int = 137, neg_risk: bool | None = None) -> str:
    """The EIP-712 hash of a signed V2/V3 order — the CLOB's ``orderID``.

    ``order``: the wire JSON (``payload["order"]``) or the SDK's SignedOrderV2.
    The SDK does not return the hash, and which exchange contract (plain,
    neg-risk or Protocol-V2 ExchangeV3) it signed against is decided inside the
    SDK, so we try each candidate domain and keep the one the signature actually
    signs (EOA/proxy/safe: ECDSA recovery to ``signer``; POLY_1271: the domain
    separator embedded in the wrapped signature). If none matches (e.g. a fake
    test signature) the plain (or, with ``neg_risk``, the neg-risk) V2 domain is
    used. Pure: no network, no key needed (a simulator can call it too).
    """
    signed = order if isinstance(order, SignedOrderV2) else signed_order_from_payload({"order": order})
    cfg = get_contract_config(chain_id)
    candidates = [(cfg.exchange_v2, "2"), (cfg.neg_risk_exchange_v2, "2"), (cfg.exchange_v3, "3")]
    if neg_risk:
        candidates.insert(0, candidates.pop(1))
    sig = str(signed.signature or "")
    digests = []
    for address, version in candidates:
        b = ExchangeOrderBuilderV2(address, chain_id, None, domain_version=version)
        digest = b.build_order_hash(b.build_order_typed_data(signed))
        digests.append(digest)
        if int(signed.signatureType) == int(SignatureTypeV2.POLY_1271):
            if b.app_domain_separator.hex() in sig.lower():
                return digest
            continue
        try:
            recovered = Account._recover_hash(bytes.fromhex(digest[2:]), signature=bytes.fromhex(sig[2:]))
        except Exception:  # noqa: BLE001 — a malformed signature simply does not match
            continue
        if recovered.lower() == str(signed.signer).lower():
            return digest
    return digests[0]


def signed_order_from_payload(payload: dict) -> SignedOrderV2:
    o = payload["order"]
    return SignedOrderV2(
        salt=str(o["salt"]),
        maker=o["maker"],
        signer=o["signer"],
        tokenId=str(o["tokenId"]),
        makerAmount=str(o["makerAmount"]),
        takerAmount=str(o["takerAmount"]),
        side=Side.BUY if o["side"] == BUY else Side.SELL,
        signatureType=SignatureTypeV2(int(o["signatureType"])),
        timestamp=str(o["timestamp"]),
        metadata=o["metadata"],
        builder=o["builder"],
        expiration=str(o.get("expiration", "0")),
        signature=o["signature"],
    )
