"""``python test_api_connectivity.py --live-order-check [--yes]``: the operator's zero-risk proof
that live signing works before real trading.

It picks a liquid market, signs a post-only GTC BUY of the market's minimum size at the lowest
tick (it cannot fill: it never crosses, the exchange refuses it if it would, and the book has
bids above it), confirms the exchange lists it as open, cancels it and confirms it is gone,
printing one ✓ line per step with the order id. The first failure prints ONE ✗ line: what
failed, the exchange's own message and the fix. Nothing it places is left open: any failure
after the order may have reached the exchange cancels it (and says so if that failed too).

It needs live credentials whatever ``paper_trading`` says, asks for confirmation unless
``assume_yes`` (no answer on stdin counts as no), and exits non-zero on any ✗.

Every run that got past the confirmation (or failed before reaching the exchange) is recorded
in the ``job_runs`` table — the contract ``pre_launch_check.py`` reads:
``job = 'live_order_check'``, ``started_at``/``finished_at`` (UTC epoch seconds),
``exit_code`` (0 = passed), ``duration`` (s) and ``detail`` = JSON
``{"result": "pass"|"fail", "order_id", "clob_url", "address", "signature_type", "funder",
"token_id", "message"}``. ``address`` is the signing key's address and ``funder`` the maker
address (the address itself for signature type 0); neither is a secret.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polybot.config import Config
from polybot.domain import BUY
from polybot.errors import (
    AuthenticationError,
    ExchangeUnavailable,
    OrderOutcomeUnknown,
    PolybotError,
    RequestRejected,
    TemporaryExchangeError,
)
from polybot.exchange.base import OrderRequest, OrderResult, OrderStatus, PreparedOrder
from polybot.exchange.live import (
    TYPE3_FIX,  # the deposit-wallet fix sentence (docs/dev/signature_types.md)
    LiveExchange,
)
from polybot.money import fmt_usd, to_micro

if TYPE_CHECKING:
    from polybot.exchange.client import PolymarketClient

log = logging.getLogger(__name__)

JOB = "live_order_check"
OK, FAIL = "✓", "✗"
SAMPLE_MARKETS = 50  # the busiest markets by 24 h volume that are considered
BOOKS_CHECKED = 20
WAIT_SECONDS = 15.0  # how long the exchange may take to list / drop the order
POLL_SECONDS = 0.25

# The env var each credential comes from in config.yaml.example (used when the config
# writes it literally empty rather than as ${VAR}).
CREDENTIAL_VARS = (
    ("private_key", "POLYMARKET_PRIVATE_KEY"),
    ("api_key", "POLYMARKET_API_KEY"),
    ("api_secret", "POLYMARKET_API_SECRET"),
    ("api_passphrase", "POLYMARKET_API_PASSPHRASE"),
)
FUNDER_VAR = "POLYMARKET_FUNDER_ADDRESS"
WALLET_KIND = {1: "Polymarket proxy wallet", 2: "Polymarket Safe", 3: "deposit wallet"}


class CheckFailed(Exception):
    """One failed step: ``step`` and the sentence after it (problem + fix)."""

    def __init__(self, step: str, why: str):
        super().__init__(f"{step}: {why}")
        self.step = step
        self.why = why


@dataclass(frozen=True)
class Pick:
    """The market the check places its order in."""

    question: str
    token_id: str
    tick: str  # "0.01"
    min_size: float
    neg_risk: bool
    best_bid: float
    best_ask: float

    @property
    def price_micro(self) -> int:
        return to_micro(self.tick)

    @property
    def size_micro(self) -> int:
        return to_micro(self.min_size)


# --------------------------------------------------------------------------- pure helpers
def _sentence(text: object) -> str:
    text = " ".join(str(text).split()).rstrip()
    return text[:-1] if text.endswith(".") else text


def credential_problem(cfg: Config) -> str | None:
    """One sentence naming the first missing credential and its env var, or None."""
    pm = cfg.polymarket
    unset = {k: v for k, v in getattr(cfg, "unset_env", ())}
    for key, default_var in CREDENTIAL_VARS:
        if not getattr(pm, key, None):
            var = unset.get(f"polymarket.{key}", default_var)
            return (
                f"polymarket.{key} is not set; export {var} — the live order check needs the "
                f"live credentials whatever paper_trading says"
            )
    st = int(getattr(pm, "signature_type", 0))
    if st in WALLET_KIND and not getattr(pm, "funder_address", None):
        var = unset.get("polymarket.funder_address", FUNDER_VAR)
        return (
            f"polymarket.funder_address is not set but signature_type {st} signs for your "
            f"{WALLET_KIND[st]}; export {var} with that wallet's address (or set the "
            f"signature_type your account uses)"
        )
    return None


def advice_for(message: str, signature_type: int, funder: str = "") -> str | None:
    """The fix for an order the exchange refused, keyed on its message (Polymarket's error codes,
    docs.polymarket.com/resources/error-codes, and the public issues cited in
    docs/dev/signature_types.md); None when the message already carries its fix."""
    m = message.lower()
    if "signer address has to be the address of the api key" in m:
        if signature_type == 3:
            # the live client appends the same sentence to this refusal: say it once
            return None if "deposit wallet" in m else TYPE3_FIX.format(funder=funder or "not set")
        return (
            "POLYMARKET_PRIVATE_KEY is not the key these API credentials belong to; derive "
            "POLYMARKET_API_KEY/SECRET/PASSPHRASE from this private key, or export the matching key"
        )
    if "owner has to be the owner of the api key" in m:
        return "POLYMARKET_API_KEY does not match the other API credentials; export the matching trio"
    if "maker address not allowed" in m or "deposit wallet flow" in m:
        return (
            "this account trades through a deposit wallet: set polymarket.signature_type: 3 and "
            "POLYMARKET_FUNDER_ADDRESS to the deposit wallet's address"
        )
    if "signature" in m:
        kind = WALLET_KIND.get(signature_type)
        if kind:
            return (
                f"signature_type {signature_type} needs POLYMARKET_FUNDER_ADDRESS to be the "
                f"{kind} this key controls (the address on your polymarket.com profile); check "
                f"it and polymarket.signature_type"
            )
        return (
            "with signature_type 0 the key's own address holds the funds; if your funds are in "
            "a Polymarket proxy, Safe or deposit wallet set signature_type 1, 2 or 3 and "
            "POLYMARKET_FUNDER_ADDRESS"
        )
    if "balance" in m or "allowance" in m:
        return (
            "the funder lacks the pUSD for this order or has not approved the exchange; deposit "
            "funds / approve trading on polymarket.com and rerun"
        )
    if "crosses" in m or "post-only" in m or "post only" in m:
        return "the book moved onto the lowest tick; rerun the check (it picks the market again)"
    if "closed only" in m or "closed-only" in m or "geoblock" in m or "region" in m:
        return "this account or IP may only close positions; live trading is not possible from here"
    return "read the message, fix the account or config.yaml, and rerun the check"


def _tick_str(tick: float) -> str:
    return format(Decimal(str(tick)).normalize(), "f")


def pick_market(reader: PolymarketClient, *, sample: int = SAMPLE_MARKETS) -> Pick:
    """A busy, open, plain (not Protocol-V2) market whose book has bids and asks above the
    lowest tick, so a BUY there neither crosses nor is first in line to fill."""
    try:
        markets = list(
            itertools.islice(reader.iter_markets(limit=sample, order="volume24hr", ascending=False), sample)
        )
    except PolybotError as exc:
        raise CheckFailed("Market", f"the market list could not be read ({_sentence(exc)})") from None
    cands = [
        m
        for m in markets
        if m.tokens
        and m.accepting_orders
        and m.enable_order_book
        and not m.closed
        and getattr(m, "version", "v1") == "v1"
    ]
    cands.sort(key=lambda m: (m.neg_risk, -m.volume_24h))
    cands = cands[:BOOKS_CHECKED]
    if not cands:
        raise CheckFailed(
            "Market",
            f"none of the {len(markets)} busiest markets accepts orders; "
            f"check gamma_url in config.yaml or try again later",
        )
    try:
        books = reader.get_books([m.tokens[0].token_id for m in cands])
    except PolybotError as exc:
        raise CheckFailed("Market", f"the order books could not be read ({_sentence(exc)})") from None
    for m in cands:
        b = books.get(m.tokens[0].token_id)
        if b is None or b.best_bid is None or b.best_ask is None:
            continue
        tick = float(b.tick_size or m.tick_size)
        if b.best_bid >= 2 * tick and b.best_ask > 2 * tick:
            return Pick(
                question=m.question,
                token_id=m.tokens[0].token_id,
                tick=_tick_str(tick),
                min_size=float(b.min_order_size or m.min_order_size),
                neg_risk=bool(b.neg_risk),
                best_bid=b.best_bid,
                best_ask=b.best_ask,
            )
    raise CheckFailed(
        "Market", f"no market among the {len(cands)} busiest has bids above the lowest tick; try again later"
    )


# --------------------------------------------------------------------------- recording
def identity(cfg: Config, live: Any = None) -> dict[str, Any]:
    """Who the check runs as: the fields pre_launch_check matches against the config."""
    pm = cfg.polymarket
    address = getattr(live, "address", None) or key_address(getattr(pm, "private_key", None))
    funder = getattr(pm, "funder_address", None) or address or ""
    return {
        "clob_url": str(pm.base_url).rstrip("/"),
        "address": (address or "").lower(),
        "signature_type": int(pm.signature_type),
        "funder": funder.lower(),
    }


def key_address(private_key: str | None) -> str | None:
    """The address of a private key, or None when there is none or it is malformed."""
    if not private_key:
        return None
    try:
        from eth_account import Account

        return Account.from_key(private_key).address
    except Exception:  # noqa: BLE001 — a malformed key; never echo it
        return None


def record_run(
    database_path: Path,
    *,
    started: float,
    finished: float,
    passed: bool,
    ident: dict,
    order_id: str | None,
    token_id: str | None,
    message: str,
) -> None:
    """Insert the ``job_runs`` row (see the module docstring)."""
    from polybot import db

    detail = dict(
        ident,
        result="pass" if passed else "fail",
        order_id=order_id,
        token_id=token_id,
        message=message[:600],
    )
    conn = db.connect(database_path)
    try:
        with db.atomic(conn):
            conn.execute(
                "INSERT INTO job_runs(job, started_at, finished_at, exit_code, duration, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    JOB,
                    int(started),
                    int(finished),
                    0 if passed else 1,
                    round(finished - started, 3),
                    json.dumps(detail, sort_keys=True),
                ),
            )
    finally:
        conn.close()


# --------------------------------------------------------------------------- the check
def _ask(prompt: str, out: Callable[[str], None], stdin: Any) -> bool:
    """True only on an explicit yes; no stdin / end of input counts as no."""
    if stdin is None:
        return False
    out(prompt)
    try:
        line = stdin.readline()
    except (OSError, ValueError):  # stdin closed or not readable
        return False
    return bool(line) and line.strip().lower() in ("y", "yes")


def _wait_for(
    pred: Callable[[], bool], *, seconds: float, sleep: Callable[[float], None], clock: Callable[[], float]
) -> bool:
    deadline = clock() + seconds
    while True:
        if pred():
            return True
        if clock() >= deadline:
            return False
        sleep(POLL_SECONDS)


def _listed(live: LiveExchange, oid: str) -> bool:
    return any(o.order_id.lower() == oid.lower() and o.is_open for o in live.open_orders())


class _Run:
    """State of one check: what was placed, so every failure path can clean it up."""

    def __init__(
        self,
        live: LiveExchange,
        out: Callable[[str], None],
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        wait_seconds: float,
    ):
        self.live, self.out, self.sleep, self.clock = live, out, sleep, clock
        self.wait_seconds = wait_seconds
        self.order_id: str | None = None  # set while it may be open on the exchange
        self.placed_id: str | None = None  # the order's id once signed (recorded)
        self.uncertain = False  # the submit's outcome is unknown

    def gone(self, oid: str) -> bool:
        return _wait_for(
            lambda: not _listed(self.live, oid), seconds=self.wait_seconds, sleep=self.sleep, clock=self.clock
        )

    def cleanup(self) -> tuple[str, str | None]:
        """Cancel whatever may have been placed. Returns (note, problem): ``note`` is a clause
        for the failure's sentence ("" when there is nothing to say); ``problem`` is the
        sentence the operator must act on when the order may still be open, else None.

        When the submit's outcome is unknown (``uncertain``: a timeout, a dropped connection,
        an unreadable answer) the exchange may still be processing it, so the order is looked
        for until ``wait_seconds`` pass before concluding it was never placed."""
        oid = self.order_id
        if not oid:
            return "", None
        manual = "cancel it on polymarket.com (Portfolio → Open orders) now"
        seen: dict[str, OrderStatus | None] = {}

        def present() -> bool:
            seen["st"] = self.live.lookup(oid)
            return seen["st"] is not None

        try:
            if self.uncertain:
                _wait_for(present, seconds=self.wait_seconds, sleep=self.sleep, clock=self.clock)
            else:
                present()
            st = seen.get("st")  # None: the last look did not find it
            if st is None:
                return (
                    (
                        f"the exchange never listed order {oid} within {self.wait_seconds:g} s, so it "
                        f"was most likely not placed (if it appears on polymarket.com, cancel it)"
                    )
                    if self.uncertain
                    else ""
                ), None
            if not st.is_open:
                return f"order {oid} is not open (status {st.status})", None
        except PolybotError as exc:
            return "", f"order {oid} may still be open ({_sentence(exc)}); {manual}"
        cancel_error = None
        try:
            self.live.cancel(oid)
        except PolybotError as exc:  # the cancel may still have worked: look
            cancel_error = exc
        try:
            if self.gone(oid):
                return f"order {oid} did reach the exchange and was cancelled", None
        except PolybotError as exc:
            cancel_error = cancel_error or exc
        why = f" ({_sentence(cancel_error)})" if cancel_error else " after a cancel"
        return "", f"order {oid} may still be open{why}; {manual}"


def _ready(cfg: Config, db_path: Path, out: Callable[[str], None]) -> bool:
    """Credentials set (else CheckFailed) and a database to record in (else False, said)."""
    problem = credential_problem(cfg)
    if problem:
        raise CheckFailed("Credentials", problem)
    if not db_path.exists():
        out(
            f"{FAIL} Database: there is no database at {db_path}; run python initialize_db.py "
            f"first — the result is recorded there for pre_launch_check.py."
        )
        return False
    return True


def _build_reader(cfg: Config) -> PolymarketClient:
    from polybot.exchange.client import PolymarketClient

    return PolymarketClient.from_config(cfg)


def _build_live(cfg: Config, reader: PolymarketClient) -> LiveExchange:
    try:
        from polybot.exchange.live import LiveExchange

        return LiveExchange.from_config(cfg, reader=reader)
    except PolybotError as exc:
        raise CheckFailed("Credentials", _sentence(exc)) from None


def _authenticate(run: _Run, ident: dict) -> None:
    """Say who signs, and prove the exchange accepts the API credentials (open orders)."""
    live = run.live
    funder = f", funder {live.funder}" if str(live.funder).lower() != str(live.address).lower() else ""
    run.out(
        f"Live order check on {ident['clob_url']} as {live.address} (signature type "
        f"{ident['signature_type']}{funder})"
    )
    try:
        n_open = len(live.open_orders())
    except PolybotError as exc:
        # an exchange that does not answer is not a credential problem: say which
        step = "Exchange" if isinstance(exc, ExchangeUnavailable) else "Authentication"
        raise CheckFailed(step, _sentence(exc)) from None
    run.out(f"{OK} Authenticated: the exchange accepts the API credentials ({n_open} open order(s))")


def _confirmed(pick: Pick, out: Callable[[str], None], stdin: Any) -> bool:
    """Ask the operator before placing the order; False (said) unless they answer y."""
    cost = fmt_usd(pick.price_micro * pick.size_micro // 1_000_000)
    out(
        f"This signs and places a REAL post-only BUY of {pick.min_size:g} shares at "
        f"${pick.tick} ({cost} reserved) on that market, then cancels it. It cannot fill."
    )
    if not _ask("Place it? Type y to continue [y/N]:", out, stdin):
        out(f"{FAIL} Not confirmed: nothing was sent; answer y, or pass --yes to run it unattended.")
        return False
    return True


def _submit(run: _Run, prepared: PreparedOrder) -> OrderResult:
    """Send the signed order; every failure is one CheckFailed, and ``run.order_id`` says
    whether it may rest on the exchange (cleaned up on failure)."""
    try:
        return run.live.submit(prepared)
    except TemporaryExchangeError as exc:
        run.order_id = None  # definitely not accepted (live.py's contract)
        raise CheckFailed(
            "Placing the order",
            f"the exchange is not accepting new orders now "
            f"({_sentence(exc)}); nothing was placed — rerun "
            f"the check once Polymarket accepts orders "
            f"again",
        ) from None
    except OrderOutcomeUnknown as exc:
        run.uncertain = True
        raise CheckFailed(
            "Placing the order",
            f"no clear answer from the exchange ({_sentence(exc)}); check the network and rerun",
        ) from None
    except (AuthenticationError, RequestRejected) as exc:
        run.order_id = None  # refused before it was processed
        raise CheckFailed("Placing the order", _sentence(exc)) from None
    except PolybotError as exc:
        raise CheckFailed("Placing the order", _sentence(exc)) from None


def _check_resting(run: _Run, res: OrderResult, ident: dict) -> None:
    """The post-only order at the lowest tick must rest: a refusal or any other status fails."""
    if res.status == "rejected":
        msg = _sentence(res.error or "no reason given")
        run.order_id = None  # refused: nothing rests
        advice = advice_for(msg, ident["signature_type"], str(ident.get("funder") or ""))
        raise CheckFailed(
            "Placing the order", f"the exchange rejected it ({msg})" + (f"; {advice}" if advice else "")
        )
    if res.status not in ("live", "delayed"):
        raise CheckFailed(
            "Placing the order",
            f"the exchange answered status {res.status!r} "
            f"for a post-only order at the lowest tick, which "
            f"should rest unfilled; do not trade live until "
            f"this is understood",
        )


def _place(run: _Run, pick: Pick, ident: dict) -> str:
    """Sign and place the post-only BUY at the lowest tick; returns the order's id."""
    request = OrderRequest(
        token_id=pick.token_id,
        side=BUY,
        order_type="GTC",
        price_micro=pick.price_micro,
        size_micro=pick.size_micro,
        post_only=True,
        tick_size=pick.tick,
        neg_risk=pick.neg_risk,
        client_tag="live_order_check",
    )
    try:
        prepared = run.live.prepare(request)
    except PolybotError as exc:
        raise CheckFailed("Signing the order", _sentence(exc)) from None
    run.out(f"{OK} Order signed: {prepared.order_hash}")
    oid = run.order_id = run.placed_id = prepared.order_hash
    res = _submit(run, prepared)
    if res.exchange_order_id:
        oid = run.order_id = run.placed_id = res.exchange_order_id
    _check_resting(run, res, ident)
    return oid


def _confirm_listed(run: _Run, oid: str) -> None:
    try:
        listed = _wait_for(
            lambda: _listed(run.live, oid), seconds=run.wait_seconds, sleep=run.sleep, clock=run.clock
        )
    except PolybotError as exc:
        raise CheckFailed("Open orders", _sentence(exc)) from None
    if not listed:
        raise CheckFailed(
            "Open orders",
            f"the exchange accepted order {oid} but did not list it "
            f"as open within {run.wait_seconds:g} s; do not trade live "
            f"until its open orders are readable",
        )
    run.out(f"{OK} Order listed as open: {oid}")


def _cancel_and_confirm_gone(run: _Run, oid: str) -> None:
    live = run.live
    try:
        cres = live.cancel(oid)
    except PolybotError as exc:
        raise CheckFailed("Cancelling the order", _sentence(exc)) from None
    if oid.lower() not in {c.lower() for c in cres.canceled}:
        why = next(iter(cres.not_canceled.values()), "not in the canceled list")
        raise CheckFailed(
            "Cancelling the order",
            f"the exchange did not cancel {oid} ({_sentence(why)}); do not trade live until cancels work",
        )
    run.out(f"{OK} Order cancelled: {oid}")
    try:
        gone = run.gone(oid)
        st = live.lookup(oid) if gone else None
    except PolybotError as exc:
        raise CheckFailed("Order gone", _sentence(exc)) from None
    if not gone or (st is not None and st.is_open):
        raise CheckFailed("Order gone", f"order {oid} is still listed as open after the cancel")
    run.out(f"{OK} Order gone: {oid} is no longer open" + (f" (status {st.status})" if st else ""))
    run.order_id = None if st is None or not st.is_open else oid


def _cleanup(run: _Run) -> tuple[str, str | None]:
    """``run.cleanup()``, and if that itself fails, the sentence telling the operator to act."""
    try:
        return run.cleanup()
    except Exception as exc:  # noqa: BLE001 — say so rather than hide the order
        log.exception("live order check cleanup failed")
        return (
            "",
            (
                f"order {run.order_id} may still be open ({type(exc).__name__}); "
                f"cancel it on polymarket.com (Portfolio → Open orders) now"
                if run.order_id
                else None
            ),
        )


def _report_failure(failure: CheckFailed | None, run: _Run | None, out: Callable[[str], None]) -> None:
    """Cancel what the failed check may have placed, then print the ✗ line(s)."""
    if failure is None:
        return
    leftover = None
    if run is not None:
        note, leftover = _cleanup(run)
        if note:
            failure.why = f"{_sentence(failure.why)} — {note}"
    out(f"{FAIL} {failure.step}: {_sentence(failure.why)}.")
    if leftover:
        out(f"{FAIL} Cleanup: {leftover}.")


def _record(
    db_path: Path,
    out: Callable[[str], None],
    *,
    started: float,
    finished: float,
    passed: bool,
    ident: dict,
    run: _Run | None,
    pick: Pick | None,
    message: str,
) -> int:
    """Record the run (when there is a database); the exit code, 1 if recording failed."""
    code = 0 if passed else 1
    if db_path.exists():
        try:
            record_run(
                db_path,
                started=started,
                finished=finished,
                passed=passed,
                ident=ident,
                order_id=run.placed_id if run else None,
                token_id=pick.token_id if pick else None,
                message=message,
            )
        except (PolybotError, OSError) as exc:
            out(
                f"{FAIL} Recording the result: {_sentence(exc)}; fix it and rerun the check "
                f"(pre_launch_check.py reads the result from the database)."
            )
            return 1
    return code


def run_live_order_check(
    cfg: Config,
    *,
    assume_yes: bool = False,
    out: Callable[[str], None] = print,
    stdin: Any = None,
    reader: PolymarketClient | None = None,
    live: LiveExchange | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    wait_seconds: float = WAIT_SECONDS,
) -> int:
    """Run the check; returns the exit code (0 only when every step passed and was recorded)."""
    started = wall()
    db_path = Path(cfg.database_path)
    own_reader = reader is None
    run: _Run | None = None
    pick: Pick | None = None
    failure: CheckFailed | None = None
    ident = identity(cfg)
    try:
        if not _ready(cfg, db_path, out):
            return 1
        if reader is None:
            reader = _build_reader(cfg)
        if live is None:
            live = _build_live(cfg, reader)
        ident = identity(cfg, live)
        run = _Run(live, out, sleep, clock, wait_seconds)
        _authenticate(run, ident)
        pick = pick_market(reader)
        out(
            f"{OK} Market: {pick.question[:70]} — best bid {pick.best_bid:g} / ask {pick.best_ask:g}, "
            f"tick {pick.tick}, minimum {pick.min_size:g} shares"
        )
        if not assume_yes and not _confirmed(pick, out, stdin):
            return 1  # no order was involved: not a recorded run
        oid = _place(run, pick, ident)
        _confirm_listed(run, oid)
        _cancel_and_confirm_gone(run, oid)
        message = f"placed, listed, cancelled and gone: {oid}"
        code = _record(
            db_path,
            out,
            started=started,
            finished=wall(),
            passed=True,
            ident=ident,
            run=run,
            pick=pick,
            message=message,
        )
        if code == 0:
            out(
                f"{OK} Live order check passed: live signing works for {live.address}; recorded in "
                f"{db_path.name} for pre_launch_check.py."
            )
        return code
    except CheckFailed as exc:
        failure = exc
    except KeyboardInterrupt:  # Ctrl-C mid-check: still cancel what was placed
        failure = CheckFailed("Interrupted", "stopped by the operator before the check finished")
    except Exception as exc:  # noqa: BLE001 — a bug must not leave the order open
        log.exception("live order check failed unexpectedly")
        failure = CheckFailed(
            "Unexpected error",
            f"{type(exc).__name__}: {_sentence(exc)} (the traceback is in the log file; please report it)",
        )
    finally:
        _report_failure(failure, run, out)
        if live is not None:
            live.close()
        if own_reader and reader is not None:
            reader.close()
    return _record(
        db_path,
        out,
        started=started,
        finished=wall(),
        passed=False,
        ident=ident,
        run=run,
        pick=pick,
        message=f"{failure.step}: {failure.why}",
    )
