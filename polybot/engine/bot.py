"""``trading_bot.py``: start-up, halt handling, reconciliation, then the loop.

Start-up order:

1. config → mode: paper when ``paper_trading: true`` or ``--paper-trading``; live only
   when the config says ``paper_trading: false``, the credentials are set and the risk
   limits are inside the checklist's bounds (``check_mode_requirements``);
2. ``EMERGENCY_STOP`` exists → one sentence, exit 5 (nothing else is touched);
3. database (migrated if needed), single-instance lock, ``PRAGMA quick_check``;
4. latched halt? → refuse (exit 5) unless ``--restart``. An *emergency-stop* halt is
   also cleared by removing the EMERGENCY_STOP file (the operator's own action; the
   checklist's update procedure restarts with plain ``python trading_bot.py``);
   every other breaker needs ``--restart``;
5. the checklist's lines: ``Trading bot started (PAPER MODE|LIVE MODE)``,
   ``Capital: $500.00``, ``Risk limits: max_position=$100, max_exposure=0.8``;
6. exchange clock (retried; ``max_consecutive_api_errors`` failures trip breaker #1),
   universe, feed, exchange (paper: rebuilt from the recorded trades), reconciliation —
   every difference logged; the FIRST live start records the baseline first: what the
   account holds and traded before the bot's first live order is external, never the
   bot's (polybot/engine/external.py; ``--close-external`` lets the emergency close-out
   sell it too); on ``--restart`` the operator (getpass user), the time and
   what was reconciled are logged and the halt is cleared;
7. ``Monitoring markets...`` and the loop.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from polybot import db
from polybot.config import Config, check_mode_requirements, load_config
from polybot.engine import breakers, state
from polybot.engine.breakers import BreakerTripped
from polybot.engine.loop import Engine
from polybot.errors import ConfigError, DataError, ExchangeError, HaltedError
from polybot.logs import configure_from, redact
from polybot.timefmt import iso_seconds

if TYPE_CHECKING:
    from polybot.exchange.client import PolymarketClient
    from polybot.strategy.base import Strategy

log = logging.getLogger("polybot.engine")

LOCAL_HOSTS = ("http://127.0.0.1", "http://localhost", "https://127.0.0.1", "https://localhost")


def resolve_mode(cfg: Config, paper_flag: bool) -> str:
    if cfg.paper_trading or paper_flag:
        return "paper"
    check_mode_requirements(cfg)
    return "live"


def build_strategy(cfg: Config, mode: str) -> Strategy:
    from polybot.engine.drill import NAME, register_drill
    from polybot.strategy.registry import from_config

    register_drill()
    if cfg.strategy.name == NAME:
        pm = cfg.polymarket
        if not all(str(u).startswith(LOCAL_HOSTS) for u in (pm.base_url, pm.gamma_url, pm.data_url)):
            raise ConfigError(
                "Config key 'strategy.name' is 'drill', which only runs against the local "
                "simulator; choose a real strategy (correlation_pairs or mean_reversion)."
            )
    return from_config(cfg)


def operator_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 — no user name on some service accounts
        return "unknown"


def check_halt(conn: sqlite3.Connection, cfg: Config, *, restart: bool) -> state.Halt | None:
    """The halt to clear after reconciliation, or raise HaltedError when starting is refused."""
    halt = state.current_halt(conn, cfg)
    if halt is None or restart:
        return halt
    if halt.breaker == breakers.EMERGENCY_STOP:
        log.warning(
            "The emergency stop of %s was acknowledged by removing %s",
            iso_seconds(halt.since),
            cfg.emergency_stop_file.name,
        )
        return halt
    n = breakers.NUMBERS.get(halt.breaker)
    label = breakers.LABELS.get(halt.breaker, halt.breaker)
    which = f"circuit breaker #{n} ({label})" if n else f"'{halt.breaker}'"
    raise HaltedError(
        f"Trading is halted since {iso_seconds(halt.since)} by {which}: {halt.reason}; fix the cause, "
        f"then start with python trading_bot.py --restart."
    )


def startup_lines(cfg: Config, mode: str) -> None:
    r = cfg.risk_limits
    log.info("Trading bot started (%s MODE)", mode.upper())
    log.info("Capital: $%s", f"{cfg.capital:,.2f}")
    log.info(
        "Risk limits: max_position=$%s, max_exposure=%s",
        f"{r.max_position_size:g}",
        f"{r.max_portfolio_exposure:g}",
    )


def startup(engine: Engine, *, halt: state.Halt | None, restart: bool) -> list[str]:
    """Clock, setup, reconciliation, halt clearing. Breakers here STOP like in the loop."""
    cfg = engine.cfg
    attempts = 0
    try:
        while True:
            breakers.check_emergency_stop(cfg)
            attempts += 1
            try:
                engine.sync_clock()
                engine.guarded(engine.setup)
                from polybot.engine.reconcile import reconcile

                report: list[str] = []

                def run_reconcile(report: list[str] = report) -> None:  # bound now, not at call time
                    report.extend(reconcile(engine))

                engine.guarded(run_reconcile)
                engine.api_errors.success()
                break
            except (ExchangeError, DataError) as exc:
                engine.api_errors.failure(
                    exc, "starting up (exchange clock / reconciliation)", transient=True
                )
                if attempts >= cfg.trading.max_consecutive_api_errors:  # belt and braces
                    raise BreakerTripped(
                        breakers.API_ERRORS, f"start-up failed {attempts} times: {exc}"
                    ) from exc
                engine.sleep(min(cfg.trading.loop_interval_seconds, 30))
    except BreakerTripped as trip:
        engine.stop(trip)
    for line in report:
        log.warning("reconcile: %s", line)
    summary = f"{len(report)} difference(s)" if report else "no differences"
    if restart or halt is not None:
        who = operator_name()
        now = int(engine.wall())
        if halt is not None:
            how = "--restart" if restart else f"{cfg.emergency_stop_file.name} removed"
            state.clear_halt(engine.conn, cfg, by=f"{who} ({how})", now=now, exchange_now=engine.now_ts)
            log.warning(
                "Restart by %s at %s: halt '%s' (%s) cleared after reconciliation: %s",
                who,
                iso_seconds(now),
                halt.breaker,
                halt.reason,
                summary,
            )
        else:
            log.info(
                "Restart by %s at %s: no halt was active; reconciliation: %s", who, iso_seconds(now), summary
            )
    else:
        log.info("Reconciliation: %s", summary)
    return report


def refuse(message: str) -> int:
    """A refused start: one sentence on the console, the same line in the log file, exit 5."""
    log.error("Start refused: %s", message)
    sys.stderr.write(redact(f"Error: {message}") + "\n")
    sys.stderr.flush()
    return HaltedError.exit_code


def pause_command(cfg: Config, *, pause: bool, reason: str | None) -> int:
    """``--pause [--reason TEXT]`` / ``--resume``: set or clear the stored pause, print one sentence.

    Only ``bot_state`` is written (no lock: a running bot reads it at its next iteration)."""
    from polybot import control_state

    configure_from(cfg, console_level="CRITICAL")
    who = f"{operator_name()} (terminal)"
    now = int(time.time())
    conn = db.open_database(cfg)
    try:
        if pause:
            before = control_state.set_pause(conn, reason=reason or "", by=who, now=now)
            log.warning("Entries paused by %s: %s", who, reason or "no reason given")
            again = "were already paused; reason updated" if before is not None else "paused"
            print(
                f"New entries {again}: the bot keeps managing its positions (stop losses, exits, "
                f"settlement) but opens none until python trading_bot.py --resume (or Telegram /resume)."
            )
            return 0
        lifted = control_state.clear_pause(conn, now=now)
        if lifted is None:
            print("Entries were not paused; nothing changed.")
            return 0
        log.warning("Entries resumed by %s (%s)", who, control_state.pause_sentence(lifted))
        print(
            f"Entries resumed ({control_state.pause_sentence(lifted)}, {lifted.skipped} entr"
            f"{'y' if lifted.skipped == 1 else 'ies'} skipped): the bot opens positions again at its next decision."
        )
        return 0
    finally:
        conn.close()


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, require_mode_secrets=False)
    if getattr(args, "reason", None) is not None and not getattr(args, "pause", False):
        raise ConfigError(
            '--reason only goes with --pause, e.g. python trading_bot.py --pause --reason "news due".'
        )
    if getattr(args, "pause", False) or getattr(args, "resume", False):
        return pause_command(cfg, pause=bool(args.pause), reason=getattr(args, "reason", None))
    mode = resolve_mode(cfg, getattr(args, "paper_trading", False))
    configure_from(cfg, console_level="CRITICAL")  # quiet until the bot really starts
    stop_file = Path(cfg.emergency_stop_file)
    if stop_file.exists():
        return refuse(
            f"The emergency stop file {stop_file} exists, so the bot will not start; find the cause, "
            f"then rm {stop_file.name} and run python trading_bot.py --restart."
        )
    conn = db.open_database(cfg)
    lock = state.InstanceLock(Path(cfg.database_path).parent / state.LOCK_FILE)
    engine: Engine | None = None
    client: PolymarketClient | None = None
    listener_stop = threading.Event()
    listener = None
    try:
        lock.acquire()
        try:
            halt = check_halt(conn, cfg, restart=bool(getattr(args, "restart", False)))
        except HaltedError as exc:
            return refuse(str(exc))
        state.reserve_halt_file(cfg)  # room for a halt record even on a full disk later
        result = db.quick_check(conn)
        if result != "ok":
            configure_from(cfg, console_level="INFO")
            _database_halt(cfg, conn, mode, result)
        configure_from(cfg, console_level="DEBUG" if getattr(args, "verbose", False) else "INFO")
        if getattr(args, "verbose", False):
            logging.getLogger().setLevel(logging.DEBUG)
        startup_lines(cfg, mode)
        from polybot.exchange.client import PolymarketClient

        client = PolymarketClient.from_config(cfg)
        engine = Engine(cfg, conn, mode=mode, client=client, strategy=build_strategy(cfg, mode))
        engine.close_external = bool(getattr(args, "close_external", False))
        if engine.close_external:
            log.warning(
                "--close-external: an emergency stop also sells the external holdings (not the bot's)"
            )
        _install_signals(engine)
        startup(engine, halt=halt, restart=bool(getattr(args, "restart", False)))
        engine.heartbeat()
        engine.start_exchange_heartbeat()
        listener = _start_telegram_commands(cfg, listener_stop)
        log.info("Monitoring markets...")
        return engine.run(
            once=bool(getattr(args, "once", False)), max_runtime=getattr(args, "max_runtime", None)
        )
    finally:
        listener_stop.set()
        if listener is not None:
            listener.join(5)
        if engine is not None:
            engine.stop_exchange_heartbeat()
            with contextlib.suppress(Exception):  # closing the alerter never blocks the exit
                engine.alerter.close(15)
        state.remove_pid_file(state.pid_path(cfg), os.getpid())
        if client is not None:
            client.close()
        lock.release()
        conn.close()


def _start_telegram_commands(cfg: Config, stop: threading.Event) -> threading.Thread | None:
    """The Telegram command listener (/status, /stop …) in its own thread, beside the loop."""
    if not (cfg.telegram.enabled and cfg.telegram.commands_enabled):
        return None
    try:
        from polybot.notify.commands import start_command_listener

        thread = start_command_listener(cfg, stop)
        log.info("Telegram commands enabled for the configured chat")
        return thread
    except Exception:  # noqa: BLE001 — the listener must never stop the bot
        log.exception("Telegram command listener could not start; trading continues without it")
        return None


def _database_halt(cfg: Config, conn: sqlite3.Connection, mode: str, result: str) -> None:
    reason = f"database integrity check failed at start: {' '.join(str(result).split())[:300]}"
    log.critical("Circuit breaker #4 (%s) tripped: %s → STOP", breakers.LABELS[breakers.DATABASE], reason)
    where = state.persist_halt(
        conn, cfg, mode=mode, breaker=breakers.DATABASE, reason=reason, now=int(time.time())
    )
    try:
        from polybot.alerts import Alerter, checks

        a = Alerter(cfg, conn)
        a.report(checks.check_database(result, cfg.database_path))
        a.close(15)
    except Exception:  # noqa: BLE001 — alerting never blocks a stop
        log.exception("could not send the database alert")
    raise HaltedError(
        f"Trading halted by circuit breaker #4 (database corruption): {reason} (halt recorded in the "
        f"{where}); restore the latest backup with python backup_database.py --restore FILE, then "
        f"run python trading_bot.py --restart."
    )


def _install_signals(engine: Engine) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("Signal %s received: stopping after this iteration (no halt)", signum)
        engine.stop_requested = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, handler)
