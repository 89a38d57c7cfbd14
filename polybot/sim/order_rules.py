"""The exchange's acceptance rules for one posted order (RULES.md §1-§2).

``check_order`` turns a POST /order body into a ``Checked`` order or raises the
ApiError the real CLOB answers. Everything is exact integer arithmetic on the
signed base-unit amounts (6 decimals); nothing here is borrowed from polybot's client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polybot.money import to_micro

from . import signing
from .api import ApiError
from .world import SimMarket

ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")
MARKET_TYPES = ("FOK", "FAK")
INVALID = "Invalid order payload"  # Docs /resources/error-codes
# py-clob-client-v2 #64 #62 (signer is not the API key's address, V2 CLOB)
SIGNER_NOT_KEY = "the order signer address has to be the address of the API KEY"
# py-clob-client #79 (neg-risk market signed for the plain exchange), #198, #277 (wrong funder, type 2)
INVALID_SIG = "invalid signature"
# py-clob-client-v2 #104 (POLY_PROXY order whose signature/maker does not verify)
INVALID_PROXY_SIG = "invalid POLY_PROXY signature"


@dataclass
class Checked:
    id: str
    market: SimMarket
    outcome: int
    token: str
    side: str
    order_type: str
    maker: str
    signature_type: int
    maker_amount: int
    taker_amount: int
    shares: int  # BUY: taker amount, SELL: maker amount
    ticks: int  # limit price in ticks of 1/nt (market orders: the worst price, rounded safe)
    nt: int
    cash_cap: int  # market BUY: pUSD to spend (else 0)
    expiration: int
    post_only: bool


def _fail_id(oid: str, msg: str) -> ApiError:
    return ApiError(400, f"order {oid} is invalid. {msg}")


@dataclass(frozen=True)
class _Body:
    """The well-formed fields of a POST /order body (RULES.md §1 checks 1-3)."""

    order: dict
    order_type: str
    signature_type: int
    side: str
    maker_amount: int
    taker_amount: int
    post_only: bool


def _parse_body(body: object, api_key: str) -> _Body:
    """The order's fields, or the ApiError for a missing/malformed one or a foreign owner."""
    o = body.get("order") if isinstance(body, dict) else None
    if not isinstance(o, dict) or not isinstance(body, dict):
        raise ApiError(400, INVALID)
    for f in ("salt", "maker", "signer", "tokenId", "makerAmount", "takerAmount", "side", "signature"):
        if o.get(f) in (None, ""):
            raise ApiError(400, INVALID)
    if body.get("owner") != api_key:
        raise ApiError(400, "the order owner has to be the owner of the API KEY")
    otype = str(body.get("orderType") or "GTC").upper()
    if otype not in ORDER_TYPES:
        raise ApiError(400, INVALID)
    try:
        sig_type = int(o.get("signatureType", 0))
        side = ("BUY", "SELL")[signing.side_code(o["side"])]
        maker_amt, taker_amt = int(str(o["makerAmount"])), int(str(o["takerAmount"]))
        signing.struct_hash(o)  # every signed field well-formed
    except (TypeError, ValueError):
        raise ApiError(400, INVALID) from None
    if sig_type not in (signing.SIG_EOA, signing.SIG_PROXY, signing.SIG_SAFE, signing.SIG_1271):
        raise ApiError(400, INVALID)
    return _Body(o, otype, sig_type, side, maker_amt, taker_amt, bool(body.get("postOnly")))


def _check_signer(ex: Any, acct: Any, sig_type: int, signer: str, maker: str) -> None:
    """The signer must be the API key's address (type 3: its deposit wallet, = the maker)."""
    if sig_type == signing.SIG_1271:
        # Type 3: maker = signer = the deposit wallet of the API key's owner (the key is bound
        # to the EOA: py_clob_client_v2 1.2.1 headers.py sets POLY_ADDRESS to the EOA for L1 and
        # L2; builder.py ``_v2_order_signer`` makes the funder the signer for POLY_1271 only).
        # Any other wallet is the error the public reports show for a wrong or foreign wallet
        # (py-clob-client-v2 #64 #85 #90 #103; docs/dev/signature_types.md).
        if signer != ex.funder_of(acct, sig_type) or maker != signer:
            raise ApiError(400, SIGNER_NOT_KEY)
    elif signer != acct.address:
        raise ApiError(400, SIGNER_NOT_KEY)


def _verify_signature(
    ex: Any, acct: Any, o: dict, m: SimMarket, sig_type: int, signer: str, maker: str
) -> tuple[str, str]:
    """Check the signature for this market's exchange; returns (exchange contract, version)."""
    chain_id = ex.sim.chain_id
    contract, version = signing.exchange_for(m.neg_risk, m.is_v2)
    if sig_type == signing.SIG_1271:
        # ERC-1271 through the wallet: the wrap must nest this order for this market's exchange
        # and be signed by the wallet's owner; the docs' wording for a failed check is not
        # published, "invalid signature" is what the other types answer (RULES.md §1 check 5).
        if signing.recover_1271_owner(o, contract, version, chain_id) != acct.address:
            raise ApiError(400, INVALID_SIG)
    else:
        if signing.recover_signer(o, contract, version, chain_id) != signer:
            raise ApiError(400, INVALID_SIG)
        if maker != ex.funder_of(acct, sig_type):
            raise ApiError(400, INVALID_PROXY_SIG if sig_type == signing.SIG_PROXY else INVALID_SIG)
    return contract, version


def _limit_ticks(oid: str, b: _Body, m: SimMarket, nt: int, usd: int, shares: int) -> int:
    """The order's price in ticks of 1/nt (market orders: the worst price, rounded in the
    owner's favour); raises the CLOB's precision or tick-size error."""
    market_order = b.order_type in MARKET_TYPES
    _check_precision(b.side, market_order, b.maker_amount, b.taker_amount, nt)
    tick_msg = _fail_id(oid, f"Price ({_price_text(usd, shares)}) breaks minimum tick size rule: {m.tick:g}")
    if market_order:
        # worst acceptable price, rounded to the tick in the owner's favour (never worse than signed)
        ticks = usd * nt // shares if b.side == "BUY" else -(-usd * nt // shares)
    else:
        if usd * nt % shares:
            raise tick_msg
        ticks = usd * nt // shares
    if not 1 <= ticks <= nt - 1:
        raise tick_msg
    return ticks


def _expiration(o: dict, otype: str, t: float) -> int:
    try:
        expiration = int(str(o.get("expiration") or 0))
    except ValueError:
        raise ApiError(400, INVALID) from None
    if otype == "GTD" and expiration - 60 <= t:
        raise ApiError(400, "invalid expiration")
    return expiration


def check_order(ex: Any, acct: Any, api_key: str, body: object, t: float) -> Checked:
    """Validate one order body for account ``acct`` posting with ``api_key`` (raises ApiError)."""
    sim, w = ex.sim, ex.sim.world
    b = _parse_body(body, api_key)
    o, otype, side = b.order, b.order_type, b.side
    signer, maker = str(o["signer"]).lower(), str(o["maker"]).lower()
    _check_signer(ex, acct, b.signature_type, signer, maker)
    token = str(o["tokenId"])
    m, outcome = w.market_by_token(token)
    if m is None:
        raise ApiError(404, "market not found")
    contract, version = _verify_signature(ex, acct, o, m, b.signature_type, signer, maker)
    oid = "0x" + signing.order_digest(o, contract, version, sim.chain_id).hex()
    if oid in ex.orders:
        raise _fail_id(oid, "Duplicated.")
    if b.maker_amount <= 0 or b.taker_amount <= 0:
        raise ApiError(400, INVALID)
    if sim.phase(m.index, t) != "open":
        raise _fail_id(oid, "The market is closed and no longer accepts orders.")
    nt = int(w.col_nt[m.index])
    usd, shares = (b.maker_amount, b.taker_amount) if side == "BUY" else (b.taker_amount, b.maker_amount)
    market_order = otype in MARKET_TYPES
    ticks = _limit_ticks(oid, b, m, nt, usd, shares)
    if not market_order and shares < to_micro(m.min_size):
        raise _fail_id(oid, f"Size ({shares / 1e6:g}) lower than the minimum: {m.min_size:g}")
    expiration = _expiration(o, otype, t)
    post_only = b.post_only
    if post_only and otype not in ("GTC", "GTD"):
        raise ApiError(400, "invalid post-only order: only GTC and GTD orders can be post-only")
    return Checked(
        id=oid,
        market=m,
        outcome=outcome,
        token=token,
        side=side,
        order_type=otype,
        maker=maker,
        signature_type=b.signature_type,
        maker_amount=b.maker_amount,
        taker_amount=b.taker_amount,
        shares=shares,
        ticks=ticks,
        nt=nt,
        cash_cap=b.maker_amount if (side == "BUY" and market_order) else 0,
        expiration=expiration,
        post_only=post_only,
    )


def amount_decimals(nt: int) -> int:
    """pUSD decimals a limit order may carry on a tick of 1/nt: price decimals + 2
    (py_clob_client_v2 ``ROUNDING_CONFIG``: 0.1→3, 0.01→4, 0.001→5, 0.0001→6)."""
    return len(str(nt)) - 1 + 2


def _check_precision(side: str, market_order: bool, maker_amt: int, taker_amt: int, nt: int) -> None:
    if market_order:
        # The CLOB caps market orders at 2 decimals (maker) / 4 decimals (taker) whatever the
        # tick: py-clob-client #121 #253, py-clob-client-v2 #99, rs-clob-client-v2 #59,
        # clob-client PR #266 (the 400 text below is quoted from those reports).
        if maker_amt % 10_000 or taker_amt % 100:
            raise ApiError(
                400,
                f"invalid amounts, the market {side.lower()} orders maker amount supports a max "
                f"accuracy of 2 decimals, taker amount a max of 4 decimals",
            )
        return
    # Limit orders: shares at most 2 decimals, pUSD at most ROUNDING_CONFIG[tick].amount
    # decimals (py-clob-client #305 quotes the 0.01-tick BUY message).
    usd_dp = amount_decimals(nt)
    usd_unit = 10 ** (6 - usd_dp)
    if side == "BUY":
        bad, maker_dp, taker_dp = maker_amt % usd_unit or taker_amt % 10_000, usd_dp, 2
    else:
        bad, maker_dp, taker_dp = maker_amt % 10_000 or taker_amt % usd_unit, 2, usd_dp
    if bad:
        raise ApiError(
            400,
            f"invalid amounts, the {side.lower()} orders maker amount supports a max accuracy of "
            f"{maker_dp} decimals, taker amount a max of {taker_dp} decimals",
        )


def _price_text(usd: int, shares: int) -> str:
    return f"{usd / shares:.6g}" if shares else "0"
