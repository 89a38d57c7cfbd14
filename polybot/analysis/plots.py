"""The correlation heatmap (matplotlib, Agg backend; numpy-only clustered order)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .correlation import CorrelationResult
from .stats import cluster_order


def select_markets(res: CorrelationResult, max_markets: int) -> np.ndarray:
    """Indices of at most ``max_markets`` markets: the most strongly connected first
    (Σ |r| over the others), ties by market id."""
    k = len(res.market_ids)
    if k <= max_markets:
        return np.arange(k)
    a = np.abs(np.nan_to_num(res.r, nan=0.0))
    np.fill_diagonal(a, 0.0)
    strength = a.sum(axis=1)
    order = sorted(range(k), key=lambda i: (-strength[i], res.market_ids[i]))
    return np.asarray(sorted(order[:max_markets]))


def heatmap(res: CorrelationResult, path: Path, *, max_markets: int = 60, title_days: float | None = None) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = select_markets(res, max_markets)
    sub = res.r[np.ix_(idx, idx)]
    order = cluster_order(sub)
    sub = sub[np.ix_(order, order)]
    labels = [_short(res.questions[idx[i]]) for i in order]
    k = len(labels)
    size = min(22, max(6, 0.28 * k + 3))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    masked = np.ma.masked_invalid(sub)
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("#dddddd")
    im = ax.imshow(masked, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    fs = 8 if k <= 30 else 6 if k <= 60 else 4
    ax.set_xticklabels(labels, rotation=90, fontsize=fs)
    ax.set_yticklabels(labels, fontsize=fs)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                if not np.isnan(sub[i, j]):
                    ax.text(j, i, f"{sub[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(sub[i, j]) > 0.6 else "black")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label(f"Pearson r of {res.change_minutes}-minute price changes")
    days = f"{title_days:g}-day " if title_days else ""
    ax.set_title(f"{days}market correlation ({k} of {len(res.market_ids)} markets, clustered; grey = too "
                 f"little overlap)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return k


def _short(q: str, width: int = 32) -> str:
    q = (q or "").strip()
    return q if len(q) <= width else q[: width - 1] + "…"
