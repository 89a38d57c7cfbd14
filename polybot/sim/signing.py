"""The simulator's own EIP-712 model of a CLOB V2 order: digest (the ``orderID``),
signer recovery (types 0-2: plain EIP-712; type 3: the deposit wallet's ERC-7739 wrap)
and the deterministic funder wallets of an account.

Written from the V2 contract facts (RULES.md §1), not from polybot's client: the
struct and domain below were read from py_clob_client_v2 1.2.1
(``order_utils/exchange_order_builder_v2.py``, ``model/ctf_exchange_v2_typed_data.py``,
``config.py``) and Polymarket's contract docs, and re-implemented here with eth_abi /
eth_utils. Recovery uses eth_account.
"""

from __future__ import annotations

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import SignableMessage
from eth_utils import keccak

CHAIN_ID = 137
DOMAIN_NAME = "Polymarket CTF Exchange"
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"

ORDER_TYPE = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
    "bytes32 builder)"
)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_ORDER_TYPE_HASH = keccak(text=ORDER_TYPE)
_DOMAIN_TYPE_HASH = keccak(text=DOMAIN_TYPE)
_NAME_HASH = keccak(text=DOMAIN_NAME)

SIG_EOA, SIG_PROXY, SIG_SAFE, SIG_1271 = 0, 1, 2, 3


class BadOrder(ValueError):
    """The order's fields cannot be encoded (not a well-formed V2 order)."""


def exchange_for(neg_risk: bool, v2_market: bool) -> tuple:
    """(verifyingContract, domain version) the exchange checks a market's orders against."""
    if v2_market:
        return EXCHANGE_V3, "3"
    return (NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2), "2"


_SEPARATORS: dict = {}


def domain_separator(contract: str, version: str, chain_id: int = CHAIN_ID) -> bytes:
    key = (contract.lower(), version, int(chain_id))
    sep = _SEPARATORS.get(key)
    if sep is None:
        sep = _SEPARATORS[key] = keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [_DOMAIN_TYPE_HASH, _NAME_HASH, keccak(text=version), int(chain_id), contract],
            )
        )
    return sep


def _uint(v, bits: int = 256) -> int:
    if isinstance(v, bool):
        raise BadOrder("boolean where a number is expected")
    n = int(str(v), 10) if isinstance(v, str) else int(v)
    if n != v and not isinstance(v, str):
        raise BadOrder("non-integer number")
    if not 0 <= n < 2**bits:
        raise BadOrder("number out of range")
    return n


def _address(v) -> str:
    s = str(v)
    if len(s) != 42 or not s.startswith("0x") or any(c not in "0123456789abcdefABCDEF" for c in s[2:]):
        raise BadOrder("not an address")
    return s


def _bytes32(v) -> bytes:
    s = str(v if v not in (None, "") else "0x" + "00" * 32)
    if not s.startswith("0x") or len(s) > 66:
        raise BadOrder("not a bytes32")
    try:
        return bytes.fromhex(s[2:].rjust(64, "0"))
    except ValueError:
        raise BadOrder("not a bytes32") from None


def side_code(side) -> int:
    s = str(side).upper()
    if s in ("BUY", "0"):
        return 0
    if s in ("SELL", "1"):
        return 1
    raise BadOrder("side must be BUY or SELL")


def struct_hash(o: dict) -> bytes:
    """keccak256 of the ABI-encoded V2 Order struct (raises BadOrder on a malformed field)."""
    try:
        values = [
            _ORDER_TYPE_HASH,
            _uint(o["salt"]),
            _address(o["maker"]),
            _address(o["signer"]),
            _uint(o["tokenId"]),
            _uint(o["makerAmount"]),
            _uint(o["takerAmount"]),
            side_code(o["side"]),
            _uint(o.get("signatureType", 0), 8),
            _uint(o.get("timestamp") or 0),
            _bytes32(o.get("metadata")),
            _bytes32(o.get("builder")),
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadOrder(str(exc)) from None
    return keccak(
        abi_encode(
            [
                "bytes32",
                "uint256",
                "address",
                "address",
                "uint256",
                "uint256",
                "uint256",
                "uint8",
                "uint8",
                "uint256",
                "bytes32",
                "bytes32",
            ],
            values,
        )
    )


def order_digest(o: dict, contract: str, version: str, chain_id: int = CHAIN_ID) -> bytes:
    """The EIP-712 digest of the order for that exchange: the CLOB's ``orderID``."""
    return keccak(b"\x19\x01" + domain_separator(contract, version, chain_id) + struct_hash(o))


def recover_signer(o: dict, contract: str, version: str, chain_id: int = CHAIN_ID) -> str | None:
    """Lower-case address that signed the order's typed data, or None if the signature is
    not a recoverable 65-byte ECDSA signature."""
    sig = str(o.get("signature") or "")
    try:
        raw = bytes.fromhex(sig[2:] if sig.startswith("0x") else sig)
    except ValueError:
        return None
    if len(raw) != 65:
        return None
    msg = SignableMessage(
        version=b"\x01", header=domain_separator(contract, version, chain_id), body=struct_hash(o)
    )
    try:
        return Account.recover_message(msg, signature=raw).lower()
    except Exception:  # eth_keys raises several types for an invalid v/r/s
        return None


def default_funder(eoa: str, signature_type: int) -> str:
    """The account's deterministic funder wallet for a signature type (0: the EOA itself;
    1 proxy, 2 Safe, 3 deposit wallet: ``"0x" + keccak256("polybot-sim:<kind>:" + eoa)[-20:]``.
    Not Polymarket's CREATE2 addresses: the simulator registers wallets, it does not derive them)."""
    eoa = eoa.lower()
    if signature_type == SIG_EOA:
        return eoa
    kind = {SIG_PROXY: "proxy", SIG_SAFE: "safe", SIG_1271: "deposit"}[signature_type]
    return "0x" + keccak(text=f"polybot-sim:{kind}:{eoa}")[-20:].hex()


# ----------------------------------------------------------------------------- type 3 (POLY_1271)
# A deposit wallet is a smart account; the CLOB validates its orders through ERC-1271
# (docs.polymarket.com/trading/deposit-wallet-migration: "Order maker: Deposit wallet address;
# Order signer field: Deposit wallet address; Signing key: deposit wallet owner or approved
# session signer"; "signatures are validated by the CLOB through ERC-1271"). The wallet's
# isValidSignature(orderHash, signature) is Solady's ERC-1271 with the ERC-7739 nested
# TypedDataSign scheme (solady src/accounts/ERC1271.sol, EIP-7739), the wallet's own EIP-712
# domain being ("DepositWallet", "1", chainId, wallet address, salt 0) — field values read from
# py_clob_client_v2 1.2.1 order_utils/exchange_order_builder_v2.py (``DEPOSIT_WALLET_NAME_HASH``,
# ``_build_poly_1271_order_signature``) and rs_order_utils 0.4.2 src/v2/builder.rs ("per the
# on-chain contract's _domainNameAndVersion"); re-implemented here, nothing imported.
# Signature layout (317 bytes for an order):
#   ownerSig(65) ‖ APP_DOMAIN_SEPARATOR(32) ‖ contents(32) ‖ contentsDescription ‖ uint16(len(desc))
# Session signers are not modelled: only the wallet's owner (the account's EOA) can sign.
DEPOSIT_WALLET_NAME = "DepositWallet"
DEPOSIT_WALLET_VERSION = "1"
_TYPED_DATA_SIGN_FIELDS = "string name,string version,uint256 chainId,address verifyingContract,bytes32 salt"
_BAD_NAME_CHARS = set(", )(\x00")


def split_1271(signature: str | None) -> tuple | None:
    """(owner signature 65 bytes, app domain separator, contents hash, contentsName,
    contentsType) of an ERC-7739 TypedDataSign signature, or None when it is not one.
    Solady's rule for the description: ending in ")" it is the contentsType and the name is
    its prefix up to "(" (implicit mode); else it is contentsType ‖ contentsName, the name
    being what follows the last ")" (explicit mode). An empty name, a name starting with a
    lower-case letter or holding any of ", )(\0" is invalid."""
    s = str(signature or "")
    try:
        raw = bytes.fromhex(s[2:] if s.startswith("0x") else s)
    except ValueError:
        return None
    if len(raw) < 65 + 64 + 2:
        return None
    n = int.from_bytes(raw[-2:], "big")
    if len(raw) != 65 + 64 + n + 2:
        return None
    inner, app_sep, contents = raw[:65], raw[65:97], raw[97:129]
    try:
        desc = raw[129 : 129 + n].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if desc.endswith(")"):
        name, ctype = desc.split("(", 1)[0], desc
    else:
        cut = desc.rfind(")") + 1
        name, ctype = desc[cut:], desc[:cut]
    if not name or not ctype or ("a" <= name[0] <= "z") or _BAD_NAME_CHARS & set(name):
        return None
    return inner, app_sep, contents, name, ctype


def recover_1271_owner(o: dict, contract: str, version: str, chain_id: int = CHAIN_ID) -> str | None:
    """Lower-case address that signed the order's ERC-7739 wrap for the deposit wallet
    ``o["signer"]``, or None when the wrap is malformed or does not nest THIS order for THIS
    exchange: the wallet's isValidSignature(orderHash, sig) requires
    ``orderHash == keccak(0x1901 ‖ APP_DOMAIN_SEPARATOR ‖ contents)``; here both parts are
    compared with the simulator's own exchange domain separator and Order struct hash."""
    parts = split_1271(o.get("signature"))
    if parts is None:
        return None
    inner, app_sep, contents, name, ctype = parts
    if app_sep != domain_separator(contract, version, chain_id) or contents != struct_hash(o):
        return None
    type_hash = keccak(text=f"TypedDataSign({name} contents,{_TYPED_DATA_SIGN_FIELDS}){ctype}")
    wrapped = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
            [
                type_hash,
                contents,
                keccak(text=DEPOSIT_WALLET_NAME),
                keccak(text=DEPOSIT_WALLET_VERSION),
                int(chain_id),
                _address(o["signer"]),
                b"\x00" * 32,
            ],
        )
    )
    msg = SignableMessage(version=b"\x01", header=app_sep, body=wrapped)
    try:
        return Account.recover_message(msg, signature=inner).lower()
    except Exception:  # eth_keys raises several types for an invalid v/r/s
        return None


# ----------------------------------------------------------------------------- L1 (ClobAuth)
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
_CLOB_AUTH_TYPE_HASH = keccak(text="ClobAuth(address address,string timestamp,uint256 nonce,string message)")
_CLOB_AUTH_DOMAIN_TYPE_HASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId)")


def clob_auth_signer(
    address: str, timestamp: str, nonce: int, signature: str, chain_id: int = CHAIN_ID
) -> str | None:
    """Lower-case address that signed the L1 ``ClobAuth`` typed data (docs/dev/api_notes.md §6: domain
    {name "ClobAuthDomain", version "1", chainId}; the SDK signs the EIP-712 digest directly),
    or None when the signature cannot be recovered."""
    try:
        raw = bytes.fromhex(signature[2:] if signature.startswith("0x") else signature)
        if len(raw) != 65:
            return None
        domain = keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256"],
                [_CLOB_AUTH_DOMAIN_TYPE_HASH, keccak(text="ClobAuthDomain"), keccak(text="1"), int(chain_id)],
            )
        )
        struct = keccak(
            abi_encode(
                ["bytes32", "address", "bytes32", "uint256", "bytes32"],
                [
                    _CLOB_AUTH_TYPE_HASH,
                    _address(address),
                    keccak(text=str(timestamp)),
                    int(nonce),
                    keccak(text=CLOB_AUTH_MESSAGE),
                ],
            )
        )
        msg = SignableMessage(version=b"\x01", header=domain, body=struct)
        return Account.recover_message(msg, signature=raw).lower()
    except Exception:  # malformed hex/address or an unrecoverable v/r/s
        return None
