"""The correlation heatmap (matplotlib, Agg backend; numpy-only clustered order)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .correlation import CorrelationResult
from .stats import cluster_order


def select_markets(res: CorrelationResult, max_markets: int) -> np.ndarray:
    """Indices of at most ``max_markets`` markets: the most significant links first (pairs that pass
    the false-discovery control), then the most strongly connected (Σ |r| over the others), ties by
    market id."""
    k = len(res.market_ids)
    if k <= max_markets:
        return np.arange(k)
    a = np.abs(np.nan_to_num(res.r, nan=0.0))
    np.fill_diagonal(a, 0.0)
    strength = a.sum(axis=1)
    links = res.significant_mask().sum(axis=1)
    order = sorted(range(k), key=lambda i: (-links[i], -strength[i], res.market_ids[i]))
    return np.asarray(sorted(order[:max_markets]))


def heatmap(
    res: CorrelationResult, path: Path, *, max_markets: int = 60, title_days: float | None = None
) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = select_markets(res, max_markets)
    sub = res.r[np.ix_(idx, idx)]
    order = cluster_order(sub)
    sub = sub[np.ix_(order, order)]
    full = [(res.questions[idx[i]] or "").strip() for i in order]
    prefix = _common_prefix(full)
    labels = [_short(q[len(prefix) :] if prefix and q.startswith(prefix) else q) for q in full]
    k = len(labels)
    size = min(22, max(6, 0.28 * k + 3))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    masked = np.ma.masked_invalid(sub)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")
    im = ax.imshow(masked, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    fs = 8 if k <= 30 else 6 if k <= 60 else 4
    ax.set_xticklabels(labels, rotation=90, fontsize=fs)
    ax.set_yticklabels(labels, fontsize=fs)
    # significance: a dot on every pair significant after the false-discovery control (BH q ≤ fdr_q,
    # ≥ min_shared_moves shared moves); small matrices also print r and q in each cell
    sig_full = res.significant_mask()
    sig = sig_full[np.ix_(idx, idx)][np.ix_(order, order)] if sig_full.size else np.zeros((k, k), bool)
    q_full = res.stats.q if res.stats is not None else np.ones_like(res.r)
    qs = q_full[np.ix_(idx, idx)][np.ix_(order, order)]
    if k <= 15:
        for i in range(k):
            for j in range(k):
                if not np.isnan(sub[i, j]) and i != j:
                    ax.text(
                        j,
                        i,
                        f"{sub[i, j]:.2f}\nq={_q(qs[i, j])}" + (" *" if sig[i, j] else ""),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if abs(sub[i, j]) > 0.6 else "black",
                    )
    else:
        yy, xx = np.nonzero(sig)
        ax.scatter(xx, yy, s=max(4, 600 / k), c="black", marker="o", linewidths=0)
    # not significant: washed out, so the colours that remain are the correlations that are real
    veil = np.zeros((k, k, 4))
    veil[..., :3] = 1.0
    veil[..., 3] = np.where(sig | np.eye(k, dtype=bool), 0.0, 0.65)
    ax.imshow(veil, interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label(f"Pearson r of {res.change_minutes}-minute price changes")
    days = f"{title_days:g}-day " if title_days else ""
    st = res.stats
    sig_note = (
        (
            f";\n* / dot = significant (BH q ≤ {st.fdr_q:g} over {st.m} pairs, ≥ {st.min_shared_moves} "
            f"shared moves), pale = not significant"
        )
        if st is not None
        else ""
    )
    pre = f'; labels without "{prefix.strip()} …"' if prefix else ""
    ax.set_title(
        f"{days}market correlation ({k} of {len(res.market_ids)} markets, clustered; grey = too "
        f"little overlap{pre}{sig_note})",
        fontsize=9,
        wrap=True,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return k


def _common_prefix(texts: list[str], min_len: int = 8) -> str:
    """The leading words most labels share (at least half of them), so 'Will a Democrat win Arizona …'
    shows as 'Arizona …'; '' when that is shorter than ``min_len`` characters."""
    if len(texts) < 2:
        return ""
    best = ""
    words = [t.split(" ") for t in texts]
    for n in range(1, 8):
        heads: dict[str, int] = {}
        for w in words:
            if len(w) > n:
                heads[" ".join(w[:n]) + " "] = heads.get(" ".join(w[:n]) + " ", 0) + 1
        if not heads:
            break
        head, count = max(heads.items(), key=lambda kv: (kv[1], kv[0]))
        if count * 2 < len(texts):
            break
        best = head
    return best if len(best) >= min_len else ""


def _q(x: float) -> str:
    return "<1e-4" if x < 1e-4 else f"{x:.2g}"


def _short(q: str, width: int = 32) -> str:
    q = (q or "").strip()
    return q if len(q) <= width else q[: width - 1] + "…"
