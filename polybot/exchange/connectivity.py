"""The operator checklist's API connectivity test (``python test_api_connectivity.py``).

Prints one line per check, exactly as the checklist expects::

    ✓ API authentication successful (0.21 s)        (or: skipped: paper mode)
    ✓ Market data retrieved (20 markets in 0.15 s; 40 order books in 0.04 s)
    ✓ Account balance retrieved: $500.00 (paper)
    ✓ Rate limits: OK (no 429 seen; ...)

A failed check prints ``✗ <check>: <one sentence with the fix>``; a check that
passed but took longer than 2 s prints ``⚠`` instead of ``✓``. The exit code is 0
only when every check passed (slow answers are a warning, not a failure).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from polybot.config import Config, PolymarketConfig
from polybot.errors import PolybotError
from polybot.money import fmt_usd, to_micro

if TYPE_CHECKING:
    from polybot.exchange.client import PolymarketClient
    from polybot.exchange.live import LiveExchange

OK, WARN, FAIL = "✓", "⚠", "✗"
SLOW_SECONDS = 2.0
SAMPLE_MARKETS = 20
LOW_REMAINING = 5  # remaining calls in the current window considered "low"


def _secs(s: float) -> str:
    return f"{s:.2f} s"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if text.endswith(".") else text + "."


class Checker:
    def __init__(self, out: Callable[[str], None]):
        self.out = out
        self.failed = 0
        self.warned = 0

    def ok(self, text: str, *times: float) -> None:
        slow = [t for t in times if t > SLOW_SECONDS]
        if slow:
            self.warned += 1
            self.out(
                f"{WARN} {text} — slower than {SLOW_SECONDS:g} s ({_secs(max(slow))}); "
                f"check the network or the server"
            )
        else:
            self.out(f"{OK} {text}")

    def fail(self, check: str, why: str) -> None:
        self.failed += 1
        self.out(f"{FAIL} {check}: {why}")


def _credentials(pm: PolymarketConfig) -> tuple[bool, str | None]:
    """(configured, problem): configured when a private key is set; a problem sentence
    when the API key/secret/passphrase are set only partly."""
    trio = [bool(getattr(pm, k, None)) for k in ("api_key", "api_secret", "api_passphrase")]
    if any(trio) and not all(trio):
        missing = [k for k, v in zip(("api_key", "api_secret", "api_passphrase"), trio, strict=True) if not v]
        return True, (
            f"polymarket.{missing[0]} is not set while other API credentials are; "
            f"export all three (POLYMARKET_API_KEY/SECRET/PASSPHRASE) or none"
        )
    if not getattr(pm, "private_key", None):
        return (
            any(trio),
            "polymarket.private_key is not set; export POLYMARKET_PRIVATE_KEY (see config.yaml)"
            if any(trio)
            else None,
        )
    return True, None


def _rate_limit_check(chk: Checker, header_sets: dict[str, dict], throttled: int) -> None:
    low = []
    warned = []
    remaining_txt = []
    for host, headers in header_sets.items():
        h = {k.lower(): v for k, v in headers.items()}
        for key in ("poly-ratelimit-remaining", "x-ratelimit-remaining", "ratelimit-remaining"):
            if key in h:
                try:
                    rem = float(str(h[key]).split(",")[0])
                except ValueError:
                    continue
                remaining_txt.append(f"{host} {rem:g} left")
                if rem <= LOW_REMAINING:
                    low.append(f"{host} has {rem:g} calls left in its window")
                break
        if str(h.get("poly-ratelimit-warning", "")).lower() == "true":
            warned.append(host)
    if throttled:
        chk.fail(
            "Rate limits",
            f"{throttled} request(s) were answered 429 Too Many Requests; wait "
            f"a few minutes, and make sure no other bot or collector shares this "
            f"IP or API key",
        )
    elif low or warned:
        why = "; ".join(low + [f"{h} sent a rate-limit warning" for h in warned])
        chk.fail(
            "Rate limits",
            f"close to the limit ({why}); wait a few minutes before trading, "
            f"and lower collection.frequency if it persists",
        )
    else:
        detail = ", ".join(remaining_txt) if remaining_txt else "no rate-limit headers sent"
        chk.ok(f"Rate limits: OK (no 429 seen; {detail})")


@dataclass
class _Clients:
    """The clients the checks use; whatever is set here is closed when they end."""

    reader: PolymarketClient
    live: LiveExchange | None = None


def _check_auth(chk: Checker, cfg: Config, clients: _Clients, paper: bool) -> bool:
    """1. authentication: an authenticated (L2) call with the live credentials. True when it worked."""
    configured, cred_problem = _credentials(cfg.polymarket)
    if cred_problem:
        chk.fail("API authentication", cred_problem)
        return False
    if not configured:
        if paper:
            chk.ok("API authentication skipped: paper mode")
        else:
            chk.fail(
                "API authentication",
                "no credentials are configured for live trading; "
                "export POLYMARKET_PRIVATE_KEY and the API key/secret/passphrase, or set "
                "paper_trading: true",
            )
        return False
    t0 = time.perf_counter()
    try:
        if clients.live is None:
            from polybot.exchange.live import LiveExchange

            clients.live = LiveExchange.from_config(cfg, reader=clients.reader)
        clients.live.ensure_credentials()
        clients.live.open_orders()  # an authenticated (L2) call
        chk.ok(
            f"API authentication successful ({_secs(time.perf_counter() - t0)})",
            time.perf_counter() - t0,
        )
        return True
    except PolybotError as exc:
        chk.fail("API authentication", _one_line(exc))
    except (ValueError, TypeError) as exc:  # e.g. a secret that is not base64
        chk.fail(
            "API authentication",
            f"the configured credentials are malformed ({exc}); check "
            f"POLYMARKET_API_SECRET (urlsafe base64), POLYMARKET_PRIVATE_KEY (0x + 64 hex)",
        )
    return False


def _check_market_data(chk: Checker, reader: PolymarketClient) -> None:
    """2. market data (Gamma listing + CLOB books)."""
    try:
        t0 = time.perf_counter()
        markets = list(itertools.islice(reader.iter_markets(limit=SAMPLE_MARKETS), SAMPLE_MARKETS))
        t_markets = time.perf_counter() - t0
        tokens = [t for m in markets for t in m.token_ids]
        t1 = time.perf_counter()
        books = reader.get_books(tokens) if tokens else {}
        t_books = time.perf_counter() - t1
        if not markets:
            chk.fail("Market data", "Gamma returned no active markets; check gamma_url in config.yaml")
        else:
            chk.ok(
                f"Market data retrieved ({len(markets)} markets in {_secs(t_markets)}; "
                f"{len(books)} order books in {_secs(t_books)})",
                t_markets,
                t_books,
            )
    except PolybotError as exc:
        chk.fail("Market data", _one_line(exc))


def _check_balance(
    chk: Checker, cfg: Config, live: LiveExchange | None, *, paper: bool, authed: bool
) -> None:
    """3. balance: the configured capital in paper mode, else the exchange's."""
    if paper:
        chk.ok(f"Account balance retrieved: {fmt_usd(to_micro(cfg.capital))} (paper)")
    elif not authed or live is None:  # authed: _check_auth built the live client
        chk.fail("Account balance", "not checked because API authentication failed; fix that first")
    else:
        try:
            t0 = time.perf_counter()
            bal = live.balance_micro()
            dt = time.perf_counter() - t0
            chk.ok(f"Account balance retrieved: {fmt_usd(bal)} ({_secs(dt)})", dt)
        except PolybotError as exc:
            chk.fail("Account balance", _one_line(exc))


def _check_rate_limits(chk: Checker, reader: PolymarketClient, live: LiveExchange | None) -> None:
    """4. rate limits (headers the clients recorded during the calls above)."""
    stats = reader.stats
    headers = dict(stats.last_rate_limit_headers)
    throttled = answered = 0
    for host in (reader.gamma, reader.clob, reader.data):
        calls = list(host.stats.calls)
        throttled += sum(1 for c in calls if c.status == 429)
        answered += sum(1 for c in calls if c.status is not None)
    if live is not None:
        rl = live.rate_limit_status()
        if rl["headers"]:
            headers["CLOB (trading)"] = rl["headers"]
        throttled += rl["throttled"]
        answered += rl["requests"]
    if not answered:
        chk.fail("Rate limits", "not checked because no API call was answered; fix the connection first")
    else:
        _rate_limit_check(chk, headers, throttled)


def run_checks(
    cfg: Config,
    *,
    out: Callable[[str], None] = print,
    reader: PolymarketClient | None = None,
    live: LiveExchange | None = None,
) -> int:
    """Run the four checks against the configured endpoints; returns the exit code.

    ``reader`` (a PolymarketClient) and ``live`` (a LiveExchange) are built from
    ``cfg`` when not given.
    """
    from polybot.exchange.client import PolymarketClient

    chk = Checker(out)
    paper = bool(cfg.paper_trading)
    own_reader = reader is None
    clients = _Clients(reader if reader is not None else PolymarketClient.from_config(cfg), live)
    try:
        authed = _check_auth(chk, cfg, clients, paper)
        _check_market_data(chk, clients.reader)
        _check_balance(chk, cfg, clients.live, paper=paper, authed=authed)
        _check_rate_limits(chk, clients.reader, clients.live)
    finally:
        if own_reader:
            clients.reader.close()
        if clients.live is not None:
            clients.live.close()

    if chk.failed:
        out(f"{chk.failed} check(s) failed.")
        return 1
    hint = (
        ""
        if paper
        else " Before trading live, prove signing works with python "
        "test_api_connectivity.py --live-order-check."
    )
    out("All checks passed." + (f" ({chk.warned} slow)" if chk.warned else "") + hint)
    return 0
