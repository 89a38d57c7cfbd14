"""The two checklist commands: ``correlation_analysis.py`` and ``plot_correlations.py``."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from polybot.cli import add_config_arg
from polybot.config import Config, load_config
from polybot.db import open_database
from polybot.logs import configure_from
from polybot.timefmt import iso_seconds, utc_minute

from .correlation import CorrelationResult, analyse

log = logging.getLogger("polybot.analysis")

STRONG = 0.7
WEAK = 0.3
SUSPICIOUS = 0.999


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError("must be a fraction between 0 and 1, e.g. 0.5")
    return v


def _days(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not v > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return v


def common_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--days", type=_days, required=True, help="window length, ending at the newest snapshot")
    p.add_argument(
        "--min-overlap",
        type=_fraction,
        default=0.5,
        metavar="FRACTION",
        help="share of the window's price changes a pair must have in common (default 0.5)",
    )
    p.add_argument(
        "--change-minutes",
        type=int,
        default=None,
        metavar="M",
        help="correlate M-minute price changes (default: the collection interval, 5)",
    )
    p.add_argument(
        "--ffill-minutes",
        type=int,
        default=15,
        metavar="M",
        help="carry a price over gaps of at most M minutes (default 15)",
    )
    p.add_argument(
        "--min-shared-moves",
        type=_min_moves,
        default=None,
        metavar="N",
        help="steps where both prices moved that a pair needs before it is tested "
        "(default: analysis.min_shared_moves, 20)",
    )
    p.add_argument(
        "--fdr",
        type=_fraction,
        default=None,
        metavar="Q",
        help="Benjamini–Hochberg false discovery rate across all pairs (default: analysis.fdr_q, 0.05)",
    )
    return add_config_arg(p)


def _min_moves(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 4:
        raise argparse.ArgumentTypeError("must be at least 4 (Fisher's z needs more than 3 observations)")
    return v


def _label(days: float) -> str:
    return f"{days:g}"


def _run(args: argparse.Namespace) -> tuple[Config, CorrelationResult]:
    cfg = load_config(args.config, require_mode_secrets=False)
    configure_from(cfg, console_level="CRITICAL")  # stderr: the one sentence from run_script only
    interval = cfg.collection.interval_minutes * 60
    change = args.change_minutes or cfg.collection.interval_minutes
    conn = open_database(cfg, readonly=True)
    try:
        res = analyse(
            conn,
            args.days,
            interval=interval,
            change_minutes=change,
            ffill_points=max(0, args.ffill_minutes * 60 // interval),
            min_overlap=args.min_overlap,
            min_shared_moves=args.min_shared_moves or cfg.analysis.min_shared_moves,
            fdr_q=args.fdr or cfg.analysis.fdr_q,
        )
    finally:
        conn.close()
    return cfg, res


def _short(q: str, width: int = 70) -> str:
    q = (q or "").strip()
    return q if len(q) <= width else q[: width - 1] + "…"


def _pair_line(d: dict) -> str:
    return (
        f"  r = {d['r']:+.3f}  p = {_p(d['p'])}  q = {_p(d['q'])}  n_eff = {d['n_eff']:g}  "
        f"shared moves {d['shared_moves']}  {_short(d['question_a'], 40)}  ↔  {_short(d['question_b'], 40)}"
    )


def _p(x) -> str:
    return "n/a" if x is None else ("<1e-12" if x < 1e-12 else f"{x:.2g}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_csvs(res: CorrelationResult, csv_path: Path, pairs_path: Path, rows: list[dict]) -> None:
    """The matrix and the pair list, each written whole to a temporary file, then both moved in."""
    k = len(res.market_ids)
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["market_id", "question", *res.market_ids])
        for i in range(k):
            w.writerow(
                [res.market_ids[i], res.questions[i], *("" if v != v else f"{v:.4f}" for v in res.r[i])]
            )
    tmp_pairs = pairs_path.with_name(pairs_path.name + ".tmp")
    with open(tmp_pairs, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        cols = [
            "a",
            "b",
            "r",
            "p",
            "q",
            "n_eff",
            "shared_moves",
            "n",
            "move_share",
            "not_significant_because",
            "question_a",
            "question_b",
        ]
        w.writerow(cols)
        for d in rows:
            w.writerow(["" if d[c] is None else d[c] for c in cols])
    os.replace(tmp, csv_path)
    os.replace(tmp_pairs, pairs_path)


def _print_pairs(pairs: list[dict], top: int, pairs_path: Path) -> None:
    for d in pairs[:top]:
        print(_pair_line(d))
    if len(pairs) > top:
        print(f"  … {len(pairs) - top} more in {pairs_path}")


def _print_header(res: CorrelationResult, days: float) -> None:
    k = len(res.market_ids)
    print(
        f"Correlation matrix: {k} markets, {utc_minute(res.start_ts)} to {utc_minute(res.end_ts)} ({days:g} days)"
    )
    print(f"Method: {res.method()}.")
    if res.rows:
        print(f"Data: {res.rows:,} snapshots, {res.backfill_rows / res.rows:.1%} backfilled")
    if res.excluded:
        print(
            f"Left out: {len(res.excluded)} markets with too little data or no price change "
            f"(e.g. {_short(res.excluded[0][1], 50)}: {res.excluded[0][2]})"
        )


def _coincidences(res: CorrelationResult, threshold: float) -> list[dict]:
    """Pairs with |r| ≥ threshold that are NOT significant (too few shared moves, one dominant
    step, or rejected by the false-discovery control)."""
    with np.errstate(invalid="ignore"):
        high = ~res.significant_mask() & (np.abs(np.nan_to_num(res.r)) >= threshold)
    np.fill_diagonal(high, False)
    return res.pair_rows(high)


def _print_weak(rows: list[dict], total: int, top: int, pairs_path: Path) -> int:
    """Print the weak pairs; returns how many there are."""
    weak = [(d["r"], d) for d in rows if abs(d["r"]) < WEAK]
    print(f"\nWeak correlations (|r| < {WEAK}): {len(weak)} of {total} pairs")
    for r, d in sorted(weak, key=lambda t: (abs(t[0]), t[1]["a"], t[1]["b"]))[:top]:
        print(f"  r = {r:+.3f}  {_short(d['question_a'], 45)}  ↔  {_short(d['question_b'], 45)}")
    if len(weak) > top:
        print(f"  … {len(weak) - top} more in {pairs_path}")
    return len(weak)


def _print_suspicious(res: CorrelationResult) -> int:
    """Warn about near-perfect correlations; returns how many there are."""
    suspicious = [p for p in res.pairs(lo=SUSPICIOUS)]
    for r, i, j in suspicious:
        print(
            f"⚠ Near-perfect correlation r = {r:.4f}: {_short(res.questions[i], 50)} ↔ "
            f"{_short(res.questions[j], 50)} — likely duplicated data (the same book stored twice) or two "
            f"listings of one question; check both markets' snapshots."
        )
    return len(suspicious)


def _print_groups(groups: list[dict], top: int) -> None:
    print(
        f"\nCorrelated groups (strong pairs, by |r|): {len(groups)}"
        + (f", largest {len(groups[0]['markets'])} markets" if groups else "")
    )
    for g in groups[:top]:
        neg = f", {g['negative_links']} negative links" if g["negative_links"] else ""
        print(
            f"  {g['id']}: {len(g['markets'])} markets, mean r {g['mean_r']:+.2f}{neg}: "
            + "; ".join(_short(q, 30) for q in g["questions"][:4])
            + (" …" if len(g["questions"]) > 4 else "")
        )


def correlation_main(args: argparse.Namespace) -> int:
    cfg, res = _run(args)
    report_dir = Path(cfg.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    csv_path = report_dir / f"correlation_{_label(args.days)}day.csv"
    pairs_path = report_dir / f"correlation_{_label(args.days)}day_pairs.csv"
    groups_path = report_dir / "correlation_groups.json"
    threshold = args.group_threshold if args.group_threshold is not None else cfg.analysis.strong_correlation
    k = len(res.market_ids)
    st = res.pair_stats
    rows = res.pair_rows()
    _write_csvs(res, csv_path, pairs_path, rows)
    groups = res.groups(threshold)
    strong_mask = res.strong_mask(threshold)
    strong = res.pair_rows(strong_mask)
    payload = {
        "generated_at": iso_seconds(time.time()),
        "days": args.days,
        "start": utc_minute(res.start_ts),
        "end": utc_minute(res.end_ts),
        "threshold": threshold,
        "uses_abs_r": True,
        "min_shared_moves": st.min_shared_moves,
        "fdr_q": st.fdr_q,
        "pairs_tested": st.m,
        "method": res.method(),
        "groups": groups,
        "strong_pairs": strong,
    }
    _write_atomic(groups_path, json.dumps(payload, indent=2))

    _print_header(res, args.days)
    total = st.m
    print(
        f"\nStrong correlations (significant at FDR {st.fdr_q:g} and |r| ≥ {threshold}): "
        f"{len(strong)} of {total} pairs"
    )
    _print_pairs(strong, args.top, pairs_path)
    sig = res.pair_rows(res.significant_mask() & ~strong_mask)
    print(f"\nSignificant but weaker (|r| < {threshold}): {len(sig)} pairs")
    _print_pairs(sig, args.top, pairs_path)
    coincidences = _coincidences(res, threshold)
    if coincidences:
        print(
            f"\nNOT strong although |r| ≥ {threshold} (too few shared moves, one dominant step, or not "
            f"significant after the false-discovery control — likely coincidences): {len(coincidences)} pairs"
        )
        for d in sorted(coincidences, key=lambda d: (d["shared_moves"], -abs(d["r"])))[: args.top]:
            print(_pair_line(d) + f"  — {d['not_significant_because']}")
    n_weak = _print_weak(rows, total, args.top, pairs_path)
    n_suspicious = _print_suspicious(res)
    _print_groups(groups, args.top)
    print(f"✓ Matrix written: {csv_path}")
    print(f"✓ Pairs with p, q, n_eff and shared moves: {pairs_path}")
    print(f"✓ Groups written: {groups_path} (read by the risk manager's max_event_exposure cap)")
    log.info(
        "correlation analysis: %d markets, %d strong, %d significant weaker, %d coincidences, %d weak, "
        "%d suspicious",
        k,
        len(strong),
        len(sig),
        len(coincidences),
        n_weak,
        n_suspicious,
    )
    return 0


def correlation_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p)
    p.add_argument(
        "--group-threshold",
        type=float,
        default=None,
        metavar="R",
        help="markets linked by significant pairs with |r| ≥ R form a correlated group "
        f"(default: analysis.strong_correlation, {STRONG})",
    )
    p.add_argument("--top", type=int, default=20, help="pairs printed per list (default 20)")
    return p


def plot_parser(doc: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p)
    p.add_argument(
        "--output",
        default=None,
        metavar="PATH",
        help="PNG path (default: reports/correlation_heatmap_{days}day.png)",
    )
    p.add_argument(
        "--max-markets",
        type=int,
        default=60,
        help="at most this many markets, the most strongly connected first (default 60)",
    )
    return p


def plot_main(args: argparse.Namespace) -> int:
    from .plots import heatmap

    cfg, res = _run(args)
    out = (
        Path(args.output)
        if args.output
        else Path(cfg.report_dir) / f"correlation_heatmap_{_label(args.days)}day.png"
    )
    shown = heatmap(res, out, max_markets=args.max_markets, title_days=args.days)
    print(f"✓ Heatmap written: {out} ({shown} of {len(res.market_ids)} markets, clustered order)")
    if res.stats is not None:
        iu = np.triu_indices(len(res.market_ids), 1)
        n_sig = int(res.significant_mask()[iu].sum())
        print(
            f"Significant pairs (marked): {n_sig} of {res.stats.m} (BH q ≤ {res.stats.fdr_q:g}, ≥ "
            f"{res.stats.min_shared_moves} shared moves); python correlation_analysis.py --days {args.days:g} "
            f"lists them with r, p and q"
        )
    near = res.pairs(lo=SUSPICIOUS)
    if near:
        print(
            f"⚠ {len(near)} near-perfect pairs (r ≥ {SUSPICIOUS}): possible duplicated data; see "
            f"python correlation_analysis.py --days {args.days:g}"
        )
    return 0
