"""A tiny test-side CLOB V2 client for the simulator, independent of polybot.exchange,
py_clob_client_v2 and polybot/sim's own encoder: orders are signed with eth_account's
``encode_typed_data`` (the EIP-712 struct and domains of RULES.md §1) and requests carry
L2 HMAC headers built here.

    trader = SimTrader(sim.clob_url, "0x" + "11" * 32)
    order = trader.sign(token, maker_amount=5_000_000, taker_amount=10_000_000, side="BUY")
    r = trader.post_order(order, "GTC")          # requests.Response

Signature type 3 (deposit wallet): ``sign(..., signature_type=3, maker=wallet)`` makes
maker = signer = the wallet and wraps the owner's signature in ERC-7739 ``TypedDataSign``
(EIP-7739; Solady ERC1271; deposit-wallet domain "DepositWallet" / "1" / chainId / wallet /
salt 0 as docs.polymarket.com/trading/deposit-wallet-migration and py_clob_client_v2's
``exchange_order_builder_v2.py`` describe it), hashed here by eth_account's own EIP-712 encoder
with ``TypedDataSign`` as the primary type and ``Order`` as its ``contents``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import requests
from eth_account import Account
from eth_account.messages import encode_typed_data

EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
ZERO32 = "0x" + "00" * 32

_ORDER_FIELDS = [
    {"name": "salt", "type": "uint256"},
    {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"},
    {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"},
    {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"},
    {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]
_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def exchange_of(market) -> tuple:
    """(verifyingContract, version) for a sim market object (``neg_risk``, ``is_v2``)."""
    if market.is_v2:
        return EXCHANGE_V3, "3"
    return (NEG_RISK_EXCHANGE_V2 if market.neg_risk else EXCHANGE_V2), "2"


def typed_data(order: dict, contract: str, version: str, chain_id: int = 137) -> dict:
    msg = {
        "salt": int(order["salt"]),
        "maker": order["maker"],
        "signer": order["signer"],
        "tokenId": int(order["tokenId"]),
        "makerAmount": int(order["makerAmount"]),
        "takerAmount": int(order["takerAmount"]),
        "side": 0 if order["side"] == "BUY" else 1,
        "signatureType": int(order["signatureType"]),
        "timestamp": int(order["timestamp"]),
        "metadata": bytes.fromhex(order["metadata"][2:]),
        "builder": bytes.fromhex(order["builder"][2:]),
    }
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "Order": _ORDER_FIELDS},
        "primaryType": "Order",
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": version,
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": msg,
    }


_TYPED_DATA_SIGN_FIELDS = [
    {"name": "contents", "type": "Order"},
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
    {"name": "salt", "type": "bytes32"},
]
ORDER_TYPE_STRING = "Order(" + ",".join(f"{f['type']} {f['name']}" for f in _ORDER_FIELDS) + ")"


def wrap_1271(
    order: dict,
    contract: str,
    version: str,
    key,
    *,
    chain_id: int = 137,
    wallet_name: str = "DepositWallet",
    wallet_version: str = "1",
    wallet: str = None,
    wallet_chain_id: int = None,
) -> str:
    """The ERC-7739 signature of a type-3 order: the owner ``key`` signs the EIP-712
    ``TypedDataSign{contents: Order, name, version, chainId, verifyingContract, salt}`` under the
    exchange's domain; the result is ownerSig(65) ‖ exchange domain separator(32) ‖ Order
    struct hash(32) ‖ the Order type string ‖ its length as uint16 (317 bytes). The keyword
    arguments change the deposit wallet's domain fields (to build wrong signatures)."""
    td = typed_data(order, contract, version, chain_id)
    plain = encode_typed_data(full_message=td)  # header: domain sep, body: Order hash
    nested = {
        "types": {
            "EIP712Domain": _DOMAIN_FIELDS,
            "TypedDataSign": _TYPED_DATA_SIGN_FIELDS,
            "Order": _ORDER_FIELDS,
        },
        "primaryType": "TypedDataSign",
        "domain": td["domain"],
        "message": {
            "contents": td["message"],
            "name": wallet_name,
            "version": wallet_version,
            "chainId": chain_id if wallet_chain_id is None else wallet_chain_id,
            "verifyingContract": wallet or order["signer"],
            "salt": b"\x00" * 32,
        },
    }
    sig = Account.sign_message(encode_typed_data(full_message=nested), private_key=key).signature
    ctype = ORDER_TYPE_STRING.encode()
    return "0x" + (bytes(sig) + plain.header + plain.body + ctype + len(ctype).to_bytes(2, "big")).hex()


def order_id(order: dict, contract: str, version: str, chain_id: int = 137) -> str:
    """The EIP-712 digest (the CLOB's orderID), via eth_account's encoder."""
    from eth_utils import keccak

    sm = encode_typed_data(full_message=typed_data(order, contract, version, chain_id))
    return "0x" + keccak(b"\x19" + sm.version + sm.header + sm.body).hex()


class SimTrader:
    """One EOA trading on the simulator through raw HTTP."""

    _salt = 1000

    def __init__(self, clob_url: str, key: str, nonce: int = 0):
        self.url = clob_url
        self.account = Account.from_key(key)
        self.address = self.account.address
        self.http = requests.Session()
        r = self.http.get(clob_url + "/auth/derive-api-key", headers=self.l1_headers(nonce), timeout=10)
        r.raise_for_status()
        self.creds = r.json()

    def l1_headers(self, nonce: int = 0, chain_id: int = 137, key=None) -> dict:
        """L1 headers: an EIP-712 ``ClobAuth`` signature (domain ClobAuthDomain / "1")."""
        ts = str(int(time.time()))
        data = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                ],
                "ClobAuth": [
                    {"name": "address", "type": "address"},
                    {"name": "timestamp", "type": "string"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "message", "type": "string"},
                ],
            },
            "primaryType": "ClobAuth",
            "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
            "message": {
                "address": self.address,
                "timestamp": ts,
                "nonce": nonce,
                "message": "This message attests that I control the given wallet",
            },
        }
        sig = Account.sign_message(encode_typed_data(full_message=data), private_key=key or self.account.key)
        return {
            "POLY_ADDRESS": self.address,
            "POLY_SIGNATURE": "0x" + sig.signature.hex().removeprefix("0x"),
            "POLY_TIMESTAMP": ts,
            "POLY_NONCE": str(nonce),
        }

    # ------------------------------------------------------------------ signing
    def sign(
        self,
        token: str,
        maker_amount: int,
        taker_amount: int,
        side: str,
        *,
        market=None,
        contract: str = None,
        version: str = None,
        signature_type: int = 0,
        maker: str = None,
        signer: str = None,
        chain_id: int = 137,
        expiration: int = 0,
        key=None,
        wrap: dict = None,
    ) -> dict:
        """A signed V2 order dict (the ``order`` object of POST /order). Type 3: ``maker`` is
        the deposit wallet, ``signer`` defaults to it, and the signature is ``wrap_1271``'s
        (``wrap``: keyword arguments for it, e.g. ``{"wallet_version": "2"}``)."""
        if contract is None:
            contract, version = exchange_of(market) if market is not None else (EXCHANGE_V2, "2")
        SimTrader._salt += 1
        if signer is None:
            signer = (maker or self.address) if int(signature_type) == 3 else self.address
        order = {
            "salt": SimTrader._salt,
            "maker": maker or self.address,
            "signer": signer,
            "tokenId": str(token),
            "makerAmount": str(int(maker_amount)),
            "takerAmount": str(int(taker_amount)),
            "side": side,
            "expiration": str(int(expiration)),
            "signatureType": int(signature_type),
            "timestamp": str(int(time.time() * 1000) + SimTrader._salt),
            "metadata": ZERO32,
            "builder": ZERO32,
        }
        if int(signature_type) == 3:
            order["signature"] = wrap_1271(
                order, contract, version, key or self.account.key, chain_id=chain_id, **(wrap or {})
            )
            return order
        signed = Account.sign_message(
            encode_typed_data(full_message=typed_data(order, contract, version, chain_id)),
            private_key=key or self.account.key,
        )
        order["signature"] = "0x" + signed.signature.hex().removeprefix("0x")
        return order

    def body(self, order: dict, order_type: str = "GTC", post_only: bool = False) -> dict:
        return {
            "order": order,
            "owner": self.creds["apiKey"],
            "orderType": order_type,
            "deferExec": False,
            "postOnly": post_only,
        }

    # ------------------------------------------------------------------ HTTP with L2 headers
    def _headers(self, method: str, path: str, body: str) -> dict:
        ts = str(int(time.time()))
        msg = f"{ts}{method}{path}{body}"
        digest = hmac.new(
            base64.urlsafe_b64decode(self.creds["secret"]), msg.encode(), hashlib.sha256
        ).digest()
        return {
            "POLY_ADDRESS": self.address,
            "POLY_SIGNATURE": base64.urlsafe_b64encode(digest).decode(),
            "POLY_TIMESTAMP": ts,
            "POLY_API_KEY": self.creds["apiKey"],
            "POLY_PASSPHRASE": self.creds["passphrase"],
            "Content-Type": "application/json",
        }

    def request(self, method: str, path: str, payload=None, params=None) -> requests.Response:
        body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
        return self.http.request(
            method,
            self.url + path,
            data=body.encode() if body else None,
            params=params,
            headers=self._headers(method, path, body),
            timeout=10,
        )

    def post_order(self, order: dict, order_type: str = "GTC", post_only: bool = False) -> requests.Response:
        return self.request("POST", "/order", self.body(order, order_type, post_only))

    def heartbeat(self, heartbeat_id) -> requests.Response:
        return self.request("POST", "/v1/heartbeats", {"heartbeat_id": heartbeat_id})

    def order(self, oid: str) -> dict:
        r = self.request("GET", f"/data/order/{oid}")
        r.raise_for_status()
        return r.json()

    def trades(self, **params) -> list:
        r = self.request("GET", "/data/trades", params=params)
        r.raise_for_status()
        return r.json()["data"]

    def balance(self, token: str = None) -> int:
        params = {"asset_type": "CONDITIONAL", "token_id": token} if token else {"asset_type": "COLLATERAL"}
        r = self.request("GET", "/balance-allowance", params=params)
        r.raise_for_status()
        return int(r.json()["balance"])
