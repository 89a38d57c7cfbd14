"""``python -m polybot.sim`` — run the local Polymarket-compatible simulator."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from polybot.cli import run_script
from polybot.errors import ConfigError

from .faults import parse_spec

FAULT_HELP = (
    "fault spec: rules separated by ';', each 'key=value,...' with keys error_rate=F, "
    "burst=STATUS:COUNT[:RETRY_AFTER], latency_ms=N, timeout=SECONDS[:COUNT], malformed=F, "
    "outage=1, bad_market=missing_id|bad_price|unparsable|all, path=/prefix "
    "(e.g. 'error_rate=0.1,latency_ms=200;burst=429:5:1,path=/clob/books')"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m polybot.sim",
        description="Local Polymarket-compatible simulator: Gamma (/gamma), CLOB (/clob) and Data API (/data) "
        "on one port, with a deterministic synthetic world and fault injection.",
        epilog=FAULT_HELP,
    )
    p.add_argument("--port", type=int, default=8765, help="TCP port (0 = pick a free one; default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="bind address; only 127.0.0.1 is accepted")
    p.add_argument("--seed", type=int, default=42, help="world seed (default 42)")
    p.add_argument("--markets", type=int, default=60, help="number of markets (default 60)")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="sim seconds per real second (1 = real time, 60 = a minute per second, 0 = frozen)",
    )
    p.add_argument("--faults", default="", metavar="SPEC", help="faults to inject from the start (see below)")
    p.add_argument(
        "--start-time",
        default=None,
        metavar="ISO",
        help="sim start time, ISO-8601 (default 2026-11-01T00:00:00Z)",
    )
    p.add_argument("--balance", type=float, default=10000.0, help="starting USDC per account (default 10000)")
    p.add_argument("--port-file", default=None, metavar="PATH", help="write the chosen port to this file")
    p.add_argument(
        "--chain-id",
        type=int,
        default=137,
        help="EIP-712 chainId orders must be signed for (137 Polygon, 80002 Amoy; default 137)",
    )
    p.add_argument(
        "--trade-delays",
        default="2:5",
        metavar="MINED:CONFIRMED",
        help="sim seconds from match to MINED and to CONFIRMED (default 2:5; see RULES.md)",
    )
    return p


def _checked_args(args: argparse.Namespace) -> tuple[list, tuple[float, ...]]:
    """(fault rules, trade delays) from the options; ConfigError naming a bad option."""
    if args.host not in ("127.0.0.1", "localhost"):
        raise ConfigError(f"The simulator binds 127.0.0.1 only; --host {args.host} is refused (omit --host).")
    if args.markets < 1:
        raise ConfigError("--markets must be at least 1.")
    if args.speed < 0:
        raise ConfigError("--speed must be 0 (frozen clock) or positive.")
    try:
        faults = parse_spec(args.faults)
    except ValueError as exc:
        raise ConfigError(f"Invalid --faults: {exc}.") from None
    try:
        delays = tuple(float(x) for x in args.trade_delays.split(":"))
        if len(delays) != 2 or not 0 <= delays[0] <= delays[1]:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"Invalid --trade-delays {args.trade_delays!r}; use MINED:CONFIRMED seconds with "
            f"0 <= MINED <= CONFIRMED, e.g. 2:5."
        ) from None
    if args.chain_id <= 0:
        raise ConfigError("--chain-id must be a positive chain id, e.g. 137.")
    return faults, delays


def main(args: argparse.Namespace) -> int:
    faults, delays = _checked_args(args)
    from .server import start_simulator
    from .simulator import parse_time

    try:
        start = parse_time(args.start_time)
    except ValueError:
        raise ConfigError(
            f"Invalid --start-time {args.start_time!r}; use ISO-8601 like 2026-11-01T00:00:00Z."
        ) from None
    try:
        handle = start_simulator(
            port=args.port,
            seed=args.seed,
            n_markets=args.markets,
            speed=args.speed,
            faults=faults,
            start_time=start,
            initial_balance=args.balance,
            chain_id=args.chain_id,
            trade_delays=delays,
        )
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); pick another --port."
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if hasattr(signal, "SIGBREAK"):
        signal.signal(signal.SIGBREAK, lambda *_: stop.set())
    try:
        if args.port_file:
            Path(args.port_file).write_text(f"{handle.port}\n", encoding="utf-8")
        u = handle.url
        print(f"Simulator listening on {u} (gamma: {u}/gamma, clob: {u}/clob, data: {u}/data)", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    logging.getLogger().addHandler(logging.NullHandler())  # errors are printed once, by run_script
    _console = logging.StreamHandler(sys.stderr)
    _console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("polybot.sim").addHandler(_console)  # simulator bugs (500s) with tracebacks
    run_script(main, build_parser())
