"""A local Polymarket-compatible simulator (Gamma + CLOB + Data API on one port).

Start it from Python::

    from polybot.sim.server import start_simulator
    with start_simulator(port=0, seed=42, n_markets=60, speed=0.0) as h:
        h.gamma_url, h.clob_url, h.data_url      # http://127.0.0.1:PORT/gamma ...
        h.sim.advance(3600); h.sim.resolve(market_id, "YES"); h.sim.set_faults(error_rate=0.1)

or from a shell: ``python -m polybot.sim --port 8765 [--seed N] [--markets N] [--speed X]
[--faults SPEC] [--start-time ISO] [--port-file PATH]`` (127.0.0.1 only).

Modules: ``noise`` (hash-based random-access noise), ``world`` (the synthetic
events/markets/tokens), ``pricing`` (price paths, books, history), ``simulator``
(clock, lifecycle, liquidity), ``exchange`` (keys, accounts, matching), the exchange
rules — ``signing`` (EIP-712 order id, signer recovery, funders), ``order_rules``
(acceptance: signature, funder, precision, tick, size), ``sessions`` (heartbeats,
trading modes), ``lifecycle`` (trade statuses, FAILED reversal), ``ticks`` (run-time
tick changes), ``admin`` (their ``/_sim`` endpoints); the contract is ``RULES.md`` —,
``gamma``, ``clob``, ``clob_trading``, ``data`` (the HTTP APIs), ``faults`` (fault
injection; spec syntax in its docstring), ``server`` (HTTP server, admin endpoints,
``start_simulator``), ``bench`` (``python -m polybot.sim.bench``: POST /books timing).

Determinism: the world, every price path and every book are pure functions of the
seed and the sim time (``start_time`` defaults to 2026-11-01T00:00:00Z, ``speed``
to 0 in Python — the clock then moves only by ``advance``). Prices: a latent
random-walk-like path per driver, computed directly at any instant from a seeded
hash of (seed, series, octave, node index) — no stored history, so
``/prices-history`` can go back any distance (≥ 30 days are always available).

The simulator is an independent model of the exchange, never a mirror of polybot's
client: it does not import ``polybot.exchange``; it verifies every order's EIP-712
signature, the signer/maker binding and the amount/tick rules itself (RULES.md).

Deliberate simplifications (documented so nobody relies on them): L1 timestamps are
not checked for freshness; deposit wallets (signature type 3) are registered per EOA,
count as deployed and accept only their owner's signature (no session signers); user orders match the
synthetic book and other users' resting orders of the SAME token (no YES/NO
complementary matching); the synthetic liquidity a taker consumes comes back the
next sim-minute; positions in resolved markets are paid out automatically
``redeem_delay`` (1 h) after resolution; rate limits are reported in headers but
never enforced.
"""

from __future__ import annotations

__all__ = ["start_simulator", "Simulator", "SimulatorHandle"]


def __getattr__(name):  # lazy: ``import polybot.sim`` stays cheap
    if name in ("start_simulator", "SimulatorHandle"):
        from . import server

        return getattr(server, name)
    if name == "Simulator":
        from .simulator import Simulator

        return Simulator
    raise AttributeError(name)
