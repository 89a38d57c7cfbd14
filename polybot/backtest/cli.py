"""``backtest.py``: replay stored snapshots through the configured strategy and the
shared risk manager; print the checklist's lines, write the JSON and PNG reports;
exit 0 on PASS, 1 on FAIL, 6 on INSUFFICIENT_DATA, 2 on bad arguments / no data, 3 on a
database problem."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path

from polybot.cli import add_config_arg
from polybot.config import Config, load_config
from polybot.db import open_database
from polybot.errors import ConfigError
from polybot.logs import configure_from
from polybot.money import to_micro
from polybot.strategy.registry import from_config, get_strategy

from .coverage import data_coverage
from .engine import DAY, Backtester
from .metrics import compute_metrics
from .report import format_report, write_json, write_png
from .verdict import EXIT_CODES, config_fingerprint, config_hash
from .walkforward import (
    choose,
    format_sweep,
    format_walk_forward,
    oos_evaluation,
    parse_sweep,
    run_once,
    stderr_progress,
    swept_keys,
    trials_variance,
    walk_forward,
    walk_forward_report,
    write_report,
)

log = logging.getLogger("polybot.backtest")


def _date(text: str) -> int:
    try:
        d = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date in YYYY-MM-DD form (e.g. 2026-01-31)"
        ) from None
    return int(d.timestamp())


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError("the capital must be greater than 0")
    return v


def build_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=doc or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--start-date", required=True, type=_date, metavar="YYYY-MM-DD", help="first day replayed (00:00 UTC)"
    )
    p.add_argument(
        "--end-date",
        required=True,
        type=_date,
        metavar="YYYY-MM-DD",
        help="last day replayed (through 23:59:59 UTC)",
    )
    p.add_argument(
        "--capital", type=_positive, default=None, help="starting capital in USDC (default: capital)"
    )
    p.add_argument(
        "--strategy",
        default=None,
        metavar="NAME",
        help="strategy to test (default: strategy.name; its params apply only to that name)",
    )
    p.add_argument(
        "--output",
        default=None,
        metavar="PATH",
        help="JSON report path (default: reports/backtest_{days}day.json; the PNG goes beside it)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="try every value of a strategy parameter (repeatable: every combination); every set is "
        "reported and the verdict is deflated for the number of sets tried",
    )
    p.add_argument(
        "--walk-forward",
        action="store_true",
        help="rolling in-sample (parameter choice, pair selection) / out-of-sample segments "
        "(walk_forward: in config.yaml, default 14 + 7 days); the verdict is on the "
        "out-of-sample trades only",
    )
    return add_config_arg(p)


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg, console_level="CRITICAL")  # stderr: the one sentence from run_script only
    start_ts = args.start_date
    end_ts = args.end_date + DAY - 1
    if end_ts < start_ts:
        raise ConfigError("--end-date is before --start-date; give the first day, then the last day.")
    days = (end_ts - start_ts) // DAY + 1
    capital = args.capital if args.capital is not None else cfg.capital
    strategy = from_config(cfg, args.strategy)
    json_path = Path(args.output) if args.output else Path(cfg.report_dir) / f"backtest_{days}day.json"
    png_path = json_path.with_suffix(".png")
    sweep_sets = parse_sweep(args.sweep, strategy.name, strategy.params) if args.sweep else None
    if args.walk_forward:
        return _walk_forward(
            args,
            cfg,
            strategy.name,
            sweep_sets or [dict(strategy.params)],
            start_ts,
            end_ts,
            capital,
            json_path,
        )
    n_trials, trials_var, sweep_text, sweep_rows = 1, None, None, None
    conn = open_database(cfg, readonly=True)
    try:
        if sweep_sets:
            runs = []
            for i, ps in enumerate(sweep_sets, start=1):
                runs.append(run_once(conn, cfg, strategy.name, ps, start_ts, end_ts, to_micro(capital)))
                if not args.no_progress:
                    stderr_progress(
                        f"[{i}/{len(sweep_sets)}] set {i}: Sharpe {runs[-1].sharpe:.2f}, "
                        f"{runs[-1].trades} trades"
                    )
            best = choose(runs, cfg.walk_forward.select_by)
            keys = swept_keys(sweep_sets)
            n_trials, trials_var = len(runs), trials_variance(runs)
            sweep_text = format_sweep(runs, best, keys, cfg.walk_forward.select_by)
            sweep_rows = {
                "sets": len(runs),
                "params": keys,
                "chosen": best + 1,
                "select_by": cfg.walk_forward.select_by,
                "trials_sharpe_variance": trials_var,
                "trials": [r.summary(keys) for r in runs],
            }
            strategy = get_strategy(strategy.name, runs[best].params)
        bt = Backtester(
            conn,
            cfg,
            strategy,
            start_ts=start_ts,
            end_ts=end_ts,
            capital_micro=to_micro(capital),
            progress=not args.no_progress,
        )
        res = bt.run()
        coverage = data_coverage(conn, bt.feed.tokens, start_ts, end_ts, grid_seconds=bt.interval)
    finally:
        conn.close()
    m = compute_metrics(
        res, cfg.backtest, coverage=coverage, n_trials=n_trials, trials_sharpe_variance=trials_var
    )
    write_json(
        json_path,
        res,
        m,
        {
            "capital": capital,
            "days": days,
            **({"sweep": sweep_rows} if sweep_rows else {}),
            "config_hash": config_hash(cfg, strategy.name, strategy.params),
            "config_fingerprint": config_fingerprint(cfg, strategy.name, strategy.params),
            "config": str(cfg.source) if cfg.source else None,
            "fill_model": f"next snapshot (t+1), taker, walking recorded depth, {bt.order_type} orders",
        },
    )
    write_png(png_path, res, m)
    print(format_report(res, m, json_path=json_path, png_path=png_path), flush=True)
    if sweep_text:
        print(sweep_text, flush=True)
    log.info(
        "backtest %s..%s %s: %s trades, return %+.2f%%, %s",
        args.start_date,
        args.end_date,
        strategy.name,
        m["total_trades"],
        m["total_return"] * 100,
        m["verdict"],
    )
    return EXIT_CODES[m["verdict"]]


def _walk_forward(
    args: argparse.Namespace,
    cfg: Config,
    strategy_name: str,
    param_sets: list,
    start_ts: int,
    end_ts: int,
    capital: float,
    json_path: Path,
) -> int:
    """``--walk-forward``: see :mod:`polybot.backtest.walkforward`."""
    wf = cfg.walk_forward
    conn = open_database(cfg, readonly=True)
    try:
        segs = walk_forward(
            conn,
            cfg,
            strategy_name,
            param_sets,
            start_ts,
            end_ts,
            to_micro(capital),
            in_days=wf.in_sample_days,
            out_days=wf.out_of_sample_days,
            select_by=wf.select_by,
            progress=None if args.no_progress else stderr_progress,
        )
    finally:
        conn.close()
    ev = oos_evaluation(segs, cfg, len(param_sets))
    rep = walk_forward_report(
        segs,
        ev,
        cfg,
        strategy_name,
        param_sets,
        capital=capital,
        start_ts=start_ts,
        end_ts=end_ts,
        in_days=wf.in_sample_days,
        out_days=wf.out_of_sample_days,
        select_by=wf.select_by,
    )
    write_report(json_path, rep)
    print(format_walk_forward(rep) + f"\nReport: {json_path}", flush=True)
    log.info(
        "walk-forward %s..%s %s: %d segments, %d out-of-sample trades, %s",
        args.start_date,
        args.end_date,
        strategy_name,
        len(segs),
        rep["total_trades"],
        rep["verdict"],
    )
    return EXIT_CODES[rep["verdict"]]
