"""Numeric helpers shared by the correlation report and the strategies (numpy only).

- :func:`ffill_limited` — forward-fill NaN gaps of at most ``limit`` points;
- :func:`corr_pairwise` — Pearson correlation of the columns of a matrix with NaNs,
  on pairwise-complete rows, NaN where fewer than ``min_overlap`` rows overlap or
  a series is constant (five matrix products: fast for 1,000 columns);
- :func:`changes` — first differences (price changes);
- :func:`clusters` — connected groups of columns with r > threshold;
- :func:`cluster_order` — a numpy-only hierarchical (average-linkage) ordering for
  heatmaps (scipy is not installed).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def ffill_limited(M: np.ndarray, limit: int) -> np.ndarray:
    """Forward-fill NaNs down each column, at most ``limit`` consecutive points.

    A value older than ``limit`` points is not carried: a long gap stays NaN.
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim == 1:
        return ffill_limited(M[:, None], limit)[:, 0]
    n = M.shape[0]
    valid = ~np.isnan(M)
    if n == 0 or limit <= 0 or valid.all():
        return M.copy()
    rows = np.arange(n)[:, None]
    last = np.where(valid, rows, -1)
    np.maximum.accumulate(last, axis=0, out=last)
    cols = np.broadcast_to(np.arange(M.shape[1]), M.shape)
    filled = M[np.maximum(last, 0), cols]
    ok = (last >= 0) & ((rows - last) <= limit)
    return np.where(ok, filled, np.nan)


@lru_cache(maxsize=8)
def upper_pairs(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each pair (i < j) of k columns once, row by row: (i, j) as ``np.triu_indices(k, 1)``,
    and the flat positions of [i, j] and of [j, i] in a C-ordered k × k matrix (a flat
    ``take``/assignment is several times faster than indexing with two arrays). Cached,
    read-only: a strategy asks for the same k at every reselection."""
    iu, ju = np.triu_indices(k, 1)
    out = (iu, ju, iu * k + ju, ju * k + iu)
    for a in out:
        a.flags.writeable = False
    return out


def changes(M: np.ndarray) -> np.ndarray:
    """Point-to-point changes of each column (NaN where either end is NaN)."""
    M = np.asarray(M, dtype=np.float64)
    return M[1:] - M[:-1]


def corr_pairwise(X: np.ndarray, min_overlap: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(r, n): Pearson correlation of every pair of columns of ``X`` over the rows where
    both are present, and the number of such rows. r is NaN when n < ``min_overlap``
    or either series is constant over the overlap. The diagonal is 1 where defined."""
    X = np.asarray(X, dtype=np.float64)
    if not np.isnan(X).any():  # no gaps: every pair overlaps on every row
        return _corr_complete(X, min_overlap)
    present = ~np.isnan(X)
    W = present.astype(np.float64)
    Z = np.where(present, X, 0.0)
    n = W.T @ W
    sx = Z.T @ W  # sx[i, j] = Σ x_i over rows where i and j are present
    sxx = (Z * Z).T @ W
    sxy = Z.T @ Z
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.T / n
        vx = sxx - sx * sx / n
        vy = vx.T
        r = cov / np.sqrt(vx * vy)
    tiny = 1e-12
    bad = (n < max(2, min_overlap)) | (vx <= tiny) | (vy <= tiny) | ~np.isfinite(r)
    r = np.where(bad, np.nan, np.clip(r, -1.0, 1.0))
    return r, n.astype(np.int64)


def _corr_complete(X: np.ndarray, min_overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`corr_pairwise` of a matrix without gaps: every pair overlaps on every row,
    so one matrix product and per-column sums give the same figures, bit for bit, as the
    general path (each term is the same operation on the same numbers)."""
    rows, k = X.shape
    n = float(rows)
    sx = X.sum(axis=0)
    sxy = X.T @ X
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - np.multiply.outer(sx, sx) / n
        vx = (X * X).sum(axis=0) - sx * sx / n
        r = cov / np.sqrt(np.multiply.outer(vx, vx))
    if rows < max(2, min_overlap):
        r = np.full((k, k), np.nan)
    else:
        flat = vx <= 1e-12
        bad = ~np.isfinite(r)
        if flat.any():
            bad |= flat[:, None] | flat[None, :]
        r = np.where(bad, np.nan, np.clip(r, -1.0, 1.0))
    return r, np.full((k, k), rows, dtype=np.int64)


def clusters(r: np.ndarray, threshold: float) -> list[list[int]]:
    """Connected components of the graph 'r > threshold' (singletons omitted),
    each sorted, largest first."""
    return components(np.nan_to_num(r, nan=-2.0) > threshold)


def components(mask: np.ndarray) -> list[list[int]]:
    """Connected components (≥ 2 members) of the boolean adjacency ``mask`` (made symmetric,
    diagonal ignored), each sorted, largest first."""
    k = mask.shape[0]
    adj = mask.copy()
    np.fill_diagonal(adj, False)
    adj = adj | adj.T
    seen = np.zeros(k, dtype=bool)
    out = []
    for s in range(k):
        if seen[s] or not adj[s].any():
            continue
        comp, stack = [], [s]
        seen[s] = True
        while stack:
            v = stack.pop()
            comp.append(v)
            for w in np.flatnonzero(adj[v] & ~seen):
                seen[w] = True
                stack.append(int(w))
        out.append(sorted(comp))
    out.sort(key=lambda c: (-len(c), c[0]))
    return out


def cluster_order(r: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage agglomerative clustering on distance 1 − r
    (NaN counts as r = 0), so correlated markets sit next to each other."""
    k = r.shape[0]
    if k <= 2:
        return np.arange(k)
    D = 1.0 - np.nan_to_num(r, nan=0.0)
    np.fill_diagonal(D, np.inf)
    members: dict[int, list[int]] = {i: [i] for i in range(k)}
    active = np.ones(k, dtype=bool)
    size = np.ones(k)
    D = D.copy()
    for _ in range(k - 1):
        i, j = (int(x) for x in np.unravel_index(np.argmin(D), D.shape))  # inactive rows/cols are inf
        if i > j:
            i, j = j, i
        # merge j into i (average linkage: size-weighted mean of distances)
        new = (D[i] * size[i] + D[j] * size[j]) / (size[i] + size[j])
        new[~active] = np.inf
        D[i, :] = new
        D[:, i] = new
        D[i, i] = np.inf
        active[j] = False
        D[j, :] = np.inf
        D[:, j] = np.inf
        size[i] += size[j]
        members[i] = members[i] + members.pop(j)
    (root,) = [m for m in members.values()]
    return np.asarray(root, dtype=np.int64)
