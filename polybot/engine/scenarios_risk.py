"""``test_risk_limits.py``: risky scenarios through the real engine and risk manager.

Each scenario builds the paper engine in this process on a fresh temporary workspace
against the bundled simulator and checks the outcome from the database:

- position size: a strategy asks for 2.5 × max_position_size → the entry is resized to
  the limit, and adding to the full position is refused;
- portfolio exposure: a strategy asks for many full-size positions at once → the total
  cost basis stops at max_portfolio_exposure × capital, the rest is refused;
- daily loss: a realised loss beyond daily_loss_limit today → new entries are refused
  and circuit breaker #2 trips;
- stop loss: a position worth less than (1 − stop_loss_percent) × its cost → the engine
  sells it at the next loop.
"""

from __future__ import annotations

import argparse
import logging
import math
import traceback
from dataclasses import replace
from typing import Any

from polybot import db
from polybot.config import Config
from polybot.domain import BUY, ENTER, SELL, Intent
from polybot.engine import ledger
from polybot.engine.bot import startup
from polybot.engine.breakers import DAILY_LOSS, BreakerTripped
from polybot.engine.drill import Drill
from polybot.engine.loop import Engine, Executed
from polybot.engine.scenarios import ScenarioFailed, Scenarios, operator_config, report
from polybot.exchange.models import OrderBook
from polybot.logs import configure_from
from polybot.money import MICRO, fmt_usd, notional_micro, to_micro
from polybot.risk import RULE_DAILY_LOSS, RULE_PORTFOLIO_EXPOSURE, RULE_POSITION_SIZE

log = logging.getLogger("polybot.scenarios")

WIDE = {"min_price": 0.05, "max_price": 0.95, "max_spread": 0.2}


def engine_for(cfg: Config, params: dict[str, Any]) -> Engine:
    from polybot.exchange.client import PolymarketClient

    configure_from(cfg, console_level="CRITICAL")
    # books the risk manager's entry_cost rule would refuse are not what these scenarios test
    r = cfg.risk_limits
    params = dict(params, max_entry_cost=0.9 * r.stop_loss_percent * r.max_entry_cost_share_of_stop)
    # the risk rules are under test, on immediate fills: no paper fill latency (see
    # polybot.strategy.execution; the default fills on the next recorded snapshot)
    cfg = replace(cfg, trading=replace(cfg.trading, fill_latency_seconds=0))
    conn = db.open_database(cfg)
    client = PolymarketClient.from_config(cfg)
    eng = Engine(cfg, conn, mode="paper", client=client, strategy=Drill(params), sleep=lambda s: None)
    startup(eng, halt=None, restart=False)
    if not eng.refresh():
        raise ScenarioFailed("the simulator did not answer the book request")
    return eng


def close(eng: Engine) -> None:
    eng.client.close()
    eng.alerter.close(5)
    eng.conn.close()


def liquid_book(cfg: Config) -> tuple[str, str, OrderBook, int]:
    """(token, market_id, book, exchange time) of a two-sided book away from the edges."""
    from polybot.exchange.client import PolymarketClient

    conn = db.connect(cfg.database_path)
    tokens = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT t.token_id, t.market_id FROM market_tokens t JOIN markets m ON m.id = t.market_id "
            "WHERE m.tracked = 1 ORDER BY t.token_id"
        )
    }
    conn.close()
    with PolymarketClient.from_config(cfg) as client:
        books = client.get_books(list(tokens))
        now = client.get_server_time()
    for token in sorted(books):
        b = books[token]
        if b.bids and b.asks and 0.25 <= b.bids[0].price <= 0.75:
            return token, tokens[token], b, now
    raise ScenarioFailed("the simulator has no two-sided book")


def seed(cfg: Config, trades: list[dict[str, Any]]) -> None:
    conn = db.connect(cfg.database_path)
    try:
        with db.atomic(conn):
            for t in trades:
                ledger.record_trade(conn, mode="paper", **t)
    finally:
        conn.close()


def entries(results: list[Executed]) -> list[Executed]:
    return [(it, d, out) for it, d, out in results if it.action == ENTER]


def position(eng: Engine, token_id: str) -> ledger.PositionRow:
    pos = ledger.get_position(eng.conn, "paper", token_id)
    if pos is None:
        raise ScenarioFailed(f"no position was recorded for token {token_id[:12]}…")
    return pos


def entry_cost(it: Intent) -> int:
    """What an approved entry spends: its notional, or limit price × its shares."""
    if it.notional_micro is not None:
        return it.notional_micro
    if it.size_micro is None or it.limit_price_micro is None:
        raise ScenarioFailed(f"the approved entry has neither a notional nor a priced size: {it}")
    return notional_micro(it.limit_price_micro, it.size_micro)


# ----------------------------------------------------------------------------- scenarios
def position_size(sc: Scenarios) -> str:
    _, cfg = sc.workspace("position_size")
    limit = to_micro(cfg.risk_limits.max_position_size)
    asked = limit * 5 // 2
    eng = engine_for(cfg, dict(WIDE, size_usd=asked / MICRO, max_holdings=1))
    try:
        res = entries(eng.trade())
        if not res:
            raise ScenarioFailed("the strategy made no entry")
        it, d, out = res[0]
        if not (d.approved and d.resized and d.rule == RULE_POSITION_SIZE):
            raise ScenarioFailed(f"the oversized entry was not resized by max_position_size: {d}")
        if out is None or not out.filled:
            raise ScenarioFailed(f"the resized order did not fill ({out})")
        pos = position(eng, it.token_id)
        fees = sum(
            r[0] for r in eng.conn.execute("SELECT fee_micro FROM trades WHERE token_id=?", (it.token_id,))
        )
        if pos.cost_micro - fees > limit:
            raise ScenarioFailed(f"position cost {fmt_usd(pos.cost_micro)} is above {fmt_usd(limit)}")
        more = eng.require_risk().check(
            Intent(
                ENTER,
                it.token_id,
                it.market_id,
                BUY,
                notional_micro=limit,
                limit_price_micro=it.limit_price_micro,
            ),
            eng.account(),
            eng.md.info(it.market_id),
            eng.now_ts,
        )
        if more.rule != RULE_POSITION_SIZE:
            raise ScenarioFailed(f"adding {fmt_usd(limit)} to the position was not capped: {more}")
        if more.approved:
            if more.intent is None:
                raise ScenarioFailed(f"the risk manager approved adding but gave no order: {more}")
            extra = entry_cost(more.intent)
            if pos.cost_micro + extra > limit + fees:
                raise ScenarioFailed(
                    f"adding to the position was allowed up to {fmt_usd(pos.cost_micro + extra)}"
                )
            added = f"adding {fmt_usd(limit)} more is cut to {fmt_usd(extra)}"
        else:
            added = f"adding {fmt_usd(limit)} more is refused"
        return (
            f"asked {fmt_usd(asked)}; bought {fmt_usd(pos.cost_micro - fees)} (+{fmt_usd(fees)} fees) "
            f"≤ max_position_size {fmt_usd(limit)}; {added}"
        )
    finally:
        close(eng)


def portfolio_exposure(sc: Scenarios) -> str:
    r = sc.base.risk_limits
    cap_micro = to_micro(sc.base.capital)
    max_exp = cap_micro * to_micro(r.max_portfolio_exposure) // MICRO
    # positions large enough that the exposure cap binds within a handful of entries (only the
    # exposure fraction and the capital are under test here; other caps are opened wide)
    size = max(r.max_position_size, math.ceil(max_exp / MICRO / 3.5))
    wanted = math.ceil(max_exp / to_micro(size)) + 2
    _, cfg = sc.workspace(
        "exposure",
        {
            "risk_limits": {
                "max_positions": wanted + 5,
                "max_event_exposure": 1.0,
                "max_position_size": size,
                "daily_loss_limit": sc.base.capital,
            }
        },
    )
    eng = engine_for(cfg, dict(WIDE, size_usd=size, max_holdings=wanted, entries_per_decision=wanted))
    try:
        res = entries(eng.trade())
        refused = [d for _, d, _ in res if d.rule == RULE_PORTFOLIO_EXPOSURE]
        if len(res) < wanted - 1:
            raise ScenarioFailed(f"the strategy made only {len(res)} entries; not enough liquid markets")
        if not refused:
            raise ScenarioFailed("no entry was refused or cut by max_portfolio_exposure")
        pf = eng.account()
        fees = sum(r[0] for r in eng.conn.execute("SELECT fee_micro FROM trades WHERE side='BUY'"))
        exposure = pf.exposure_micro()
        if exposure - fees > max_exp:
            raise ScenarioFailed(f"exposure {fmt_usd(exposure)} is above {fmt_usd(max_exp)}")
        return (
            f"asked {len(res)} × {fmt_usd(to_micro(size))}; {len(pf.open_positions())} positions, exposure "
            f"{fmt_usd(exposure - fees)} (+{fmt_usd(fees)} fees) ≤ {r.max_portfolio_exposure:g} × capital "
            f"= {fmt_usd(max_exp)}; {len(refused)} entr{'y' if len(refused) == 1 else 'ies'} cut or refused"
        )
    finally:
        close(eng)


def daily_loss(sc: Scenarios) -> str:
    _, cfg = sc.workspace("daily_loss")
    token, market, book, now = liquid_book(cfg)
    limit = to_micro(cfg.risk_limits.daily_loss_limit)
    shares = 200 * MICRO
    loss_per_share = (limit * MICRO // shares) + 10_000  # a loss just beyond the limit
    buy = min(990_000, 500_000 + loss_per_share // 2 // 10_000 * 10_000)
    sell = max(10_000, buy - loss_per_share // 10_000 * 10_000 - 10_000)
    seed(
        cfg,
        [
            dict(
                trade_id="seed-buy",
                token_id=token,
                market_id=market,
                side=BUY,
                price_micro=buy,
                size_micro=shares,
                fee_micro=0,
                ts=now,
            ),  # today (UTC, exchange clock)
            dict(
                trade_id="seed-sell",
                token_id=token,
                market_id=market,
                side=SELL,
                price_micro=sell,
                size_micro=shares,
                fee_micro=0,
                ts=now,
            ),
        ],
    )
    realised = notional_micro(sell, shares) - notional_micro(buy, shares)
    eng = engine_for(cfg, dict(WIDE, size_usd=20, max_holdings=2))
    try:
        d = eng.require_risk().check(
            Intent(
                ENTER,
                token,
                market,
                BUY,
                notional_micro=20 * MICRO,
                limit_price_micro=min(990_000, to_micro(book.asks[0].price)),
            ),
            eng.account(),
            eng.md.info(market),
            eng.now_ts,
        )
        if d.approved or d.rule != RULE_DAILY_LOSS:
            raise ScenarioFailed(f"a new entry after the loss was not refused: {d}")
        before = eng.conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        try:
            eng.trade()
        except BreakerTripped as trip:
            if trip.breaker != DAILY_LOSS:
                raise ScenarioFailed(f"the wrong breaker tripped: {trip.breaker}") from trip
        else:
            raise ScenarioFailed("circuit breaker #2 did not trip")
        if eng.conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] != before:
            raise ScenarioFailed("an order was placed after the daily loss limit")
        return (
            f"today's loss {fmt_usd(-realised)} ≥ daily_loss_limit {fmt_usd(limit)}: new entries refused, "
            f"circuit breaker #2 trips"
        )
    finally:
        close(eng)


def stop_loss(sc: Scenarios) -> str:
    _, cfg = sc.workspace("stop_loss")
    token, market, book, now = liquid_book(cfg)
    pct = cfg.risk_limits.stop_loss_percent
    bid = to_micro(book.bids[0].price)
    paid = min(990_000, -(-int(bid / (1 - pct - 0.05)) // 10_000) * 10_000)  # now worth < (1 − pct) × cost
    shares = 20 * MICRO
    seed(
        cfg,
        [
            dict(
                trade_id="seed-buy",
                token_id=token,
                market_id=market,
                side=BUY,
                price_micro=paid,
                size_micro=shares,
                fee_micro=0,
                ts=now - 60,
            )
        ],
    )
    eng = engine_for(cfg, dict(WIDE, size_usd=5, max_holdings=0))
    try:
        res = [(it, d, out) for it, d, out in eng.trade() if it.strategy == "stop_loss"]
        if not res:
            raise ScenarioFailed(
                f"no stop loss fired for a position bought at {paid / MICRO:.2f} with the bid "
                f"at {bid / MICRO:.2f}"
            )
        it, d, out = res[0]
        if out is None or out.filled_micro != shares:
            raise ScenarioFailed(f"the stop-loss sell did not fill the whole position ({out})")
        pos = position(eng, token)
        if pos.status != "closed":
            raise ScenarioFailed("the position is still open after the stop loss")
        value = notional_micro(bid, shares)
        cost = notional_micro(paid, shares)
        return (
            f"bought at {paid / MICRO:.2f}, bid {bid / MICRO:.2f}: worth {fmt_usd(value)} = "
            f"{(value - cost) / cost:+.1%} of cost (stop at -{pct:.0%}) → sold, realised "
            f"{fmt_usd(pos.realized_pnl_micro, signed=True)}"
        )
    finally:
        close(eng)


SCENARIOS = [
    ("Position size limit enforced", position_size),
    ("Portfolio exposure limit enforced", portfolio_exposure),
    ("Daily loss limit enforced", daily_loss),
    ("Stop loss triggers correctly", stop_loss),
]


def main(args: argparse.Namespace) -> int:
    base, where = operator_config(getattr(args, "config", None))
    r = base.risk_limits
    print(
        f"Risk scenarios on the bundled simulator in a temporary workspace (your database and Polymarket "
        f"are not touched); limits from {where}: capital ${base.capital:,.2f}, max_position=${r.max_position_size:g}, "
        f"max_exposure={r.max_portfolio_exposure:g}, daily_loss_limit=${r.daily_loss_limit:g}, "
        f"stop_loss={r.stop_loss_percent:g}",
        flush=True,
    )
    failures = 0
    with Scenarios(base, speed=0.0, n_markets=40, keep=getattr(args, "keep", False)) as sc:
        for line, fn in SCENARIOS:
            try:
                detail = fn(sc)
                report(True, line, detail)
            except ScenarioFailed as exc:
                failures += 1
                report(
                    False,
                    line.replace("enforced", "NOT enforced").replace("triggers correctly", "did NOT trigger"),
                    str(exc),
                )
            except Exception as exc:  # noqa: BLE001 — a scenario that crashes is a failed scenario
                failures += 1
                log.error("scenario %s crashed:\n%s", line, traceback.format_exc())
                report(False, f"{line}: the scenario crashed", f"{type(exc).__name__}: {exc}")
        if failures:
            sc.failed = True
            print(f"{failures} scenario(s) failed; workspaces and logs kept in {sc.dir}", flush=True)
        else:
            print("PASS: every risk limit is enforced", flush=True)
    return 1 if failures else 0
