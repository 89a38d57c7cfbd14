"""The backtest report: the checklist's lines first, then the rest; JSON and PNG files."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polybot.analysis.equity_chart import equity_drawdown_png
from polybot.timefmt import iso_seconds, utc_day

from .engine import BacktestResult


def _usd(x: float, signed: bool = False) -> str:
    sign = "-" if x < 0 else ("+" if signed and x > 0 else "")
    return f"{sign}${abs(x):,.2f}"


def format_report(
    res: BacktestResult, m: dict[str, Any], *, json_path: Path | None = None, png_path: Path | None = None
) -> str:
    """The text printed by backtest.py. The first five lines are exactly the checklist's."""
    lines = [
        f"Total trades: {m['total_trades']}",
        f"Win rate: {m['win_rate'] * 100:.1f}%",
        f"Sharpe ratio: {m['sharpe_ratio']:.2f}",
        f"Max drawdown: {m['max_drawdown'] * 100:.1f}%",
        f"Final capital: {_usd(m['final_capital'])}",
        "",
        f"Period: {utc_day(res.start_ts)} to {utc_day(res.end_ts)} ({(res.end_ts - res.start_ts) // 86400 + 1} days), "
        f"strategy {res.strategy}, starting capital {_usd(m['initial_capital'])}",
        f"Total return: {m['total_return'] * 100:+.2f}%",
    ]
    pf = m["profit_factor"]
    lines.append(
        "Profit factor: "
        + (
            "n/a (no closed trades)"
            if pf is None
            else "∞ (no losing trade)"
            if pf == math.inf
            else f"{pf:.2f}"
        )
    )
    lines.append(
        f"Average trade: {_usd(m['average_trade'], True)} ({m['average_trade_return'] * 100:+.2f}%), "
        f"{m['wins']} won, {m['losses']} lost"
    )
    lines.append(f"Fees paid: {_usd(m['fees_paid'])}")
    lines.append(
        f"Exposure: average {m['exposure_average'] * 100:.1f}% of capital, max {m['exposure_max'] * 100:.1f}%"
    )
    for key, title in (("best_trade", "Best trade"), ("worst_trade", "Worst trade")):
        t = m[key]
        if t:
            lines.append(
                f"{title}: {_usd(t['pnl'], True)} ({t['return'] * 100:+.1f}%) in {_short(t['question'])}"
            )
    unfilled = m["orders_not_filled"]
    lines.append(
        f"Fills: {m['fills']}, settlements at resolution: {m['settlements']}, orders not filled: "
        f"{sum(unfilled.values())}" + (f" ({_counts(unfilled)})" if unfilled else "")
    )
    rej = m["risk_rejections"]
    lines.append(
        f"Risk manager: {m['intents']} intents, {sum(rej.values())} rejected"
        + (f" ({_counts(rej)})" if rej else "")
        + f", {m['risk_resized']} resized"
    )
    d = m["data"]
    lines.append(
        f"Data: {d['snapshot_rows']:,} snapshot rows, {d['backfilled_fraction'] * 100:.1f}% backfilled "
        f"(price history without a recorded book: traded on a synthesised book), "
        f"{d['fills_on_backfilled_books']} fills on backfilled books"
    )
    lines.append(f"Sharpe formula: {m['sharpe_formula']}")
    if m["trades_per_market"]:
        lines.append("Trades per market:")
        for i, v in enumerate(m["trades_per_market"].values()):
            if i == 10:
                lines.append(f"  … and {len(m['trades_per_market']) - 10} more markets (see the JSON report)")
                break
            lines.append(f"  {_short(v['question'])}: {v['trades']} trades, {_usd(v['pnl'], True)}")
    lines.append("")
    lines += verdict_lines(m)
    if json_path is not None:
        lines.append(f"Report: {json_path}" + (f", chart: {png_path}" if png_path else ""))
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "unknown" if x is None else f"{x * 100:.1f}%"


def _interval(ci: Sequence[float] | None, kind: str) -> str:
    """``kind``: "return" (signed %), "share" (unsigned %) or "ratio"."""
    if not ci:
        return "n/a (too few days)"
    lo, hi = ci
    if kind == "return":
        return f"[{lo * 100:+.1f}%, {hi * 100:+.1f}%]"
    if kind == "share":
        return f"[{lo * 100:.1f}%, {hi * 100:.1f}%]"
    return f"[{lo:.2f}, {hi:.2f}]"


def verdict_lines(m: dict[str, Any]) -> list[str]:
    """The acceptance criteria, the statistical floor, the evidence, then the reasons and, last,
    the verdict line (PASS / FAIL / INSUFFICIENT_DATA)."""
    t = m.get("thresholds") or {}
    lines = ["Acceptance criteria (checklist; thresholds from backtest: in config.yaml):"]
    for c in m["criteria"]:
        lines.append(f"  {'✓' if c['passed'] else '✗'} {c['name']}: {c['value']}")
    min_psr = t.get("min_psr", 0.95)
    lines.append(
        f"  {'✓' if m['psr'] >= min_psr else '✗'} Probabilistic Sharpe ratio ≥ {min_psr:g}: {m['psr']:.2f}"
    )
    if m.get("dsr") is not None:
        lines.append(
            f"  {'✓' if m['dsr'] >= min_psr else '✗'} Deflated Sharpe ratio ({m['n_trials']} parameter sets) "
            f"≥ {min_psr:g}: {m['dsr']:.2f}"
        )
    n = m["total_trades"]
    lines.append(
        f"Evidence: {n} closed trades (min {t.get('min_trades', '?')}), data coverage {_pct(m.get('coverage'))} "
        f"of the window (min {_pct(t.get('min_coverage'))}), recorded books {_pct(m.get('recorded_share'))} "
        f"of the rows ({'unknown' if m.get('recorded_days') is None else format(m['recorded_days'], '.1f')} "
        f"days; go-live needs {t.get('min_recorded_days', 7):g}), fills on backfilled books "
        f"{_pct(m.get('fills_on_backfilled_books'))}"
    )
    ci = m.get("confidence_intervals") or {}
    lines.append(
        f"95% intervals (bootstrap over whole days, {t.get('bootstrap_samples', 2000)} resamples): "
        f"total return {_interval(ci.get('total_return'), 'return')}, "
        f"Sharpe {_interval(ci.get('sharpe'), 'ratio')}, win rate {_interval(ci.get('win_rate'), 'share')}"
    )
    for r in m.get("reasons") or []:
        lines.append(f"  - {r}")
    lines.append(m["verdict"])
    return lines


def _short(text: str, width: int = 60) -> str:
    text = (text or "").strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _counts(c: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


VERDICT_KEYS = (
    "verdict",
    "reasons",
    "coverage",
    "recorded_share",
    "recorded_days",
    "backfilled_share",
    "fills_on_backfilled_books",
    "confidence_intervals",
    "psr",
    "dsr",
    "n_trials",
    "total_trades",
    "thresholds",
)


def write_json(
    path: Path, res: BacktestResult, m: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    data = {
        "generated_at": iso_seconds(time.time()),
        "start_date": utc_day(res.start_ts),
        "end_date": utc_day(res.end_ts),
        "strategy": {"name": res.strategy, "params": res.params},
        **(extra or {}),
        # the verdict and its evidence at the top level (pre_launch_check.py reads these)
        **{k: m.get(k) for k in VERDICT_KEYS if k in m},
        "metrics": {k: v for k, v in m.items() if k not in ("daily_equity", "trades_per_market")},
        "trades_per_market": m["trades_per_market"],
        "daily_equity": m["daily_equity"],
        "trades": [t.to_dict() for t in res.ledger.closed_trips],
    }
    if data["metrics"].get("profit_factor") == math.inf:
        data["metrics"]["profit_factor"] = "inf"
    _atomic_write(path, json.dumps(data, indent=2, default=str))


def write_png(path: Path, res: BacktestResult, m: dict[str, Any]) -> None:
    """The equity and drawdown chart of the run (the one chart of polybot/analysis/equity_chart.py)."""
    series = [(int(res.start_ts), int(res.capital_micro))]
    series += [(int(t), int(e)) for t, e in zip(res.curve_ts, res.curve_equity, strict=True)]
    png = equity_drawdown_png(
        series if len(series) > 1 else series * 2,  # a one-step window still gets a (flat) chart
        int(res.capital_micro),
        title=(
            f"Backtest {res.strategy}: {utc_day(res.start_ts)} to {utc_day(res.end_ts)} — "
            f"{m['verdict']} (return {m['total_return'] * 100:+.2f}%, Sharpe {m['sharpe_ratio']:.2f}, "
            f"max DD {m['max_drawdown'] * 100:.1f}%)"
        ),
        label="equity (marked at the bid)",
        drawdown_in_title=False,
        figsize=(11, 6.5),
        dpi=110,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    tmp.write_bytes(png or b"")  # never None: two points at least
    os.replace(tmp, path)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
