"""The two checklist commands: ``correlation_analysis.py`` and ``plot_correlations.py``."""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from polybot.cli import add_config_arg
from polybot.config import load_config
from polybot.db import open_database
from polybot.logs import configure_from

from .correlation import CorrelationResult, analyse

log = logging.getLogger("polybot.analysis")

STRONG = 0.7
WEAK = 0.3
SUSPICIOUS = 0.999


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError("must be a fraction between 0 and 1, e.g. 0.5")
    return v


def _days(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days")
    if not v > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return v


def common_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--days", type=_days, required=True, help="window length, ending at the newest snapshot")
    p.add_argument("--min-overlap", type=_fraction, default=0.5, metavar="FRACTION",
                   help="share of the window's price changes a pair must have in common (default 0.5)")
    p.add_argument("--change-minutes", type=int, default=None, metavar="M",
                   help="correlate M-minute price changes (default: the collection interval, 5)")
    p.add_argument("--ffill-minutes", type=int, default=15, metavar="M",
                   help="carry a price over gaps of at most M minutes (default 15)")
    return add_config_arg(p)


def _label(days: float) -> str:
    return f"{days:g}"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _run(args) -> tuple[object, CorrelationResult]:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg, console_level="CRITICAL")   # stderr: the one sentence from run_script only
    interval = cfg.collection.interval_minutes * 60
    change = args.change_minutes or cfg.collection.interval_minutes
    conn = open_database(cfg, readonly=True)
    try:
        res = analyse(conn, args.days, interval=interval, change_minutes=change,
                      ffill_points=max(0, args.ffill_minutes * 60 // interval), min_overlap=args.min_overlap)
    finally:
        conn.close()
    return cfg, res


def _short(q: str, width: int = 70) -> str:
    q = (q or "").strip()
    return q if len(q) <= width else q[: width - 1] + "…"


def correlation_main(args) -> int:
    cfg, res = _run(args)
    report_dir = Path(cfg.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    csv_path = report_dir / f"correlation_{_label(args.days)}day.csv"
    groups_path = report_dir / "correlation_groups.json"
    k = len(res.market_ids)
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["market_id", "question", *res.market_ids])
        for i in range(k):
            w.writerow([res.market_ids[i], res.questions[i],
                        *("" if v != v else f"{v:.4f}" for v in res.r[i])])
    os.replace(tmp, csv_path)
    groups = res.groups(args.group_threshold)
    payload = {"generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "days": args.days, "start": _iso(res.start_ts), "end": _iso(res.end_ts),
               "threshold": args.group_threshold, "method": res.method(), "groups": groups}
    tmp = groups_path.with_name(groups_path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, groups_path)

    print(f"Correlation matrix: {k} markets, {_iso(res.start_ts)} to {_iso(res.end_ts)} ({args.days:g} days)")
    print(f"Method: {res.method()}.")
    if res.rows:
        print(f"Data: {res.rows:,} snapshots, {res.backfill_rows / res.rows:.1%} backfilled")
    if res.excluded:
        print(f"Left out: {len(res.excluded)} markets with too little data or no price change "
              f"(e.g. {_short(res.excluded[0][1], 50)}: {res.excluded[0][2]})")
    strong = res.pairs(lo=STRONG + 1e-12)
    strong = [p for p in strong if p[0] > STRONG]
    weak = [p for p in res.pairs(hi=WEAK) if p[0] < WEAK]
    total = k * (k - 1) // 2
    print(f"\nStrong correlations (r > {STRONG}): {len(strong)} of {total} pairs")
    for r, i, j in strong[: args.top]:
        print(f"  r = {r:+.3f}  {_short(res.questions[i], 45)}  ↔  {_short(res.questions[j], 45)}")
    if len(strong) > args.top:
        print(f"  … {len(strong) - args.top} more in {csv_path}")
    print(f"\nWeak correlations (r < {WEAK}): {len(weak)} of {total} pairs")
    weak_sorted = sorted(weak, key=lambda t: (abs(t[0]), res.market_ids[t[1]], res.market_ids[t[2]]))
    for r, i, j in weak_sorted[: args.top]:
        print(f"  r = {r:+.3f}  {_short(res.questions[i], 45)}  ↔  {_short(res.questions[j], 45)}")
    if len(weak) > args.top:
        print(f"  … {len(weak) - args.top} more in {csv_path}")
    suspicious = [p for p in res.pairs(lo=SUSPICIOUS)]
    for r, i, j in suspicious:
        print(f"⚠ Near-perfect correlation r = {r:.4f}: {_short(res.questions[i], 50)} ↔ "
              f"{_short(res.questions[j], 50)} — likely duplicated data (the same book stored twice) or two "
              f"listings of one question; check both markets' snapshots.")
    print(f"\nCorrelated groups (r > {args.group_threshold}): {len(groups)}"
          + (f", largest {len(groups[0]['markets'])} markets" if groups else ""))
    print(f"✓ Matrix written: {csv_path}")
    print(f"✓ Groups written: {groups_path} (read by the risk manager's max_event_exposure cap)")
    log.info("correlation analysis: %d markets, %d strong, %d weak, %d suspicious", k, len(strong), len(weak),
             len(suspicious))
    return 0


def correlation_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p)
    p.add_argument("--group-threshold", type=float, default=STRONG, metavar="R",
                   help=f"markets linked by r > R form a correlated group (default {STRONG})")
    p.add_argument("--top", type=int, default=20, help="pairs printed per list (default 20)")
    return p


def plot_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p)
    p.add_argument("--output", default=None, metavar="PATH",
                   help="PNG path (default: reports/correlation_heatmap_{days}day.png)")
    p.add_argument("--max-markets", type=int, default=60,
                   help="at most this many markets, the most strongly connected first (default 60)")
    return p


def plot_main(args) -> int:
    from .plots import heatmap
    cfg, res = _run(args)
    out = Path(args.output) if args.output else Path(cfg.report_dir) / f"correlation_heatmap_{_label(args.days)}day.png"
    shown = heatmap(res, out, max_markets=args.max_markets, title_days=args.days)
    print(f"✓ Heatmap written: {out} ({shown} of {len(res.market_ids)} markets, clustered order)")
    near = res.pairs(lo=SUSPICIOUS)
    if near:
        print(f"⚠ {len(near)} near-perfect pairs (r ≥ {SUSPICIOUS}): possible duplicated data; see "
              f"python correlation_analysis.py --days {args.days:g}")
    return 0
