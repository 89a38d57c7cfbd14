"""Tick-size changes at run time (RULES.md §3).

Polymarket refines a market's tick from 0.01 to 0.001 while its price is above 0.96
or below 0.04 (Docs ``/trading/orders/overview`` tick sizes; issue 13 finding 8). The
simulator applies the rule to markets whose base tick is 0.01, with one cent of
hysteresis on the way back (coarsen only inside [0.05, 0.95]) so the tick cannot flap
at the boundary. An admin can force a tick per market. Changing the tick re-grids the
market: prices in ticks (resting orders, last trade) are converted exactly; a resting
order whose price is off a coarser new tick is cancelled (the real CLOB's handling is
undocumented; this never fills an order at a price it was not placed at).
"""

from __future__ import annotations

import numpy as np

FINE_NT, COARSE_NT = 1000, 100
TICKS = {"0.01": COARSE_NT, "0.001": FINE_NT}


NEAR = (0.08, 0.92)  # markets outside this band are re-checked every sim minute


def init(sim) -> None:
    sim.tick_forced = {}  # market index -> nt forced by an admin
    sim._tick_checked = None  # last sim minute the rule ran
    sim._tick_full = None  # last sim hour every market was checked
    sim._tick_near = []  # markets near a threshold (or fine), checked every minute
    for m in sim.world.markets:
        m.base_tick = m.tick
    sim._tick_base_coarse = [m.index for m in sim.world.markets if m.base_tick == 0.01]
    update(sim, sim.now_float())


def tick_text(nt: int) -> str:
    return {COARSE_NT: "0.01", FINE_NT: "0.001"}.get(int(nt), f"{1 / nt:g}")


def update(sim, now: float) -> None:
    """Apply the price rule: every market once per sim hour, markets near a threshold once
    per sim minute (a price model path cannot cross from inside NEAR to beyond 0.04/0.96
    within an hour; evaluating ~4000 markets costs ~40 ms, so not every request)."""
    minute = int(now // 60)
    if sim._tick_checked == minute:
        return
    sim._tick_checked = minute
    hour = int(now // 3600)
    full = sim._tick_full != hour
    w = sim.world
    pool = sim._tick_base_coarse if full else sim._tick_near
    mis = [mi for mi in pool if mi not in sim.tick_forced and now < sim.end_of(mi)]
    if full:
        sim._tick_full = hour
    if not mis:
        if full:
            sim._tick_near = []
        return
    p = sim.prices.yes_prices(mis, now)
    nts = w.col_nt[np.asarray(mis, dtype=np.int64)]
    near = []
    for mi, price, nt in zip(mis, p.tolist(), nts.tolist(), strict=True):
        if nt == COARSE_NT and (price > 0.96 or price < 0.04):
            set_tick(sim, mi, FINE_NT)
        elif nt == FINE_NT and 0.05 <= price <= 0.95:
            set_tick(sim, mi, COARSE_NT)
        if not NEAR[0] <= price <= NEAR[1] or int(w.col_nt[mi]) == FINE_NT:
            near.append(mi)
    if full:
        sim._tick_near = near


def set_tick(sim, mi: int, new_nt: int) -> None:
    """Re-grid market ``mi`` to ticks of 1/new_nt."""
    w = sim.world
    m = w.markets[mi]
    old = int(w.col_nt[mi])
    new_nt = int(new_nt)
    if new_nt == old:
        return
    w.col_nt[mi] = new_nt
    m.tick = 1.0 / new_nt if new_nt not in (COARSE_NT, FINE_NT) else float(tick_text(new_nt))
    sim.__dict__.get("_book_strs", {}).pop(mi, None)
    sim.consumed = {k: v for k, v in sim.consumed.items() if k[0] != mi}
    ex = sim.exchange
    for tok in m.token_ids:
        lt = sim.last_trade.get(tok)
        if lt:
            sim.last_trade[tok] = (max(1, min(new_nt - 1, round(lt[0] * new_nt / old))), lt[1], lt[2])
        for o in list(ex.live.get(tok, [])):
            num = o.ticks * new_nt
            if num % o.nt:
                ex._unrest(o, "CANCELED")
            else:
                o.ticks, o.nt = num // o.nt, new_nt


def force(sim, token: str, tick) -> dict:
    """Force the tick of ``token``'s market ("0.01" / "0.001"), or None: back to the rule."""
    m, _ = sim.world.market_by_token(str(token))
    if m is None:
        raise KeyError(f"token {token} does not exist in the simulator")
    if tick is None:
        sim.tick_forced.pop(m.index, None)
        if m.base_tick != 0.01:
            set_tick(sim, m.index, round(1 / m.base_tick))
        sim._tick_checked = sim._tick_full = None
        update(sim, sim.now_float())
    else:
        key = tick_text(round(1 / float(tick))) if float(tick) > 0 else str(tick)
        if key not in TICKS:
            raise ValueError(
                f"tick must be 0.01 or 0.001 (or null to return to the automatic rule), got {tick!r}"
            )
        sim.tick_forced[m.index] = TICKS[key]
        set_tick(sim, m.index, TICKS[key])
    return {
        "token_id": str(token),
        "tick": tick_text(int(sim.world.col_nt[m.index])),
        "forced": m.index in sim.tick_forced,
    }


def state(sim) -> dict:
    w = sim.world
    ticks = {}
    for m in w.markets:
        if m.tick != m.base_tick or m.index in sim.tick_forced:
            for tok in m.token_ids:
                ticks[tok] = tick_text(int(w.col_nt[m.index]))
    return {"ticks": ticks, "forced": [w.markets[i].condition_id for i in sorted(sim.tick_forced)]}
