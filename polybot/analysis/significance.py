"""Is a correlation real? Shared moves, effective sample size, p-values, FDR (numpy only).

Used by the correlation report and by the pairs strategy, so both call a pair
"strong" by the same rule (:func:`pair_statistics` → :class:`PairStats`):

1. **Shared moves** — the number of steps where BOTH series changed (a non-zero
   change in each). Prediction-market prices sit still for hours and then jump;
   two series that each moved 6 times in 2,016 steps and happened to jump
   together once reach r = 0.7 by coincidence. A pair needs at least
   ``min_shared_moves`` (default 20) before it is tested at all; below that it
   gets p = 1.
2. **Effective sample size** — price changes are autocorrelated (bid-ask bounce
   gives negative lag-1 autocorrelation, slow repricing positive), so the n
   changes are not n independent observations. We use Bartlett's (1935)
   first-order adjustment for the correlation of two AR(1)-like series
   (Bayley & Hammersley 1946; Pyper & Peterman 1998)::

       n_bartlett = n · (1 − ρ_a ρ_b) / (1 + ρ_a ρ_b)

   where ρ_a, ρ_b are the lag-1 autocorrelations of each series' changes and n
   the changes both have. Then ``n_eff = min(n_bartlett, shared moves)``: the
   sum behind r has only ``shared`` non-zero terms, and with sparse jumps the
   normal approximation below cannot honestly claim more information than that
   (a deliberate, conservative cap).
3. **p-value** — Fisher's z: z = atanh(r) · √(n_eff − 3), two-sided
   p = erfc(|z| / √2). Negative correlations are tested the same way (|r|).
4. **False discovery rate** — Benjamini & Hochberg (1995) q-values over ALL
   pairs examined (K·(K−1)/2, including the ones that failed the shared-moves
   floor, with p = 1): a pair is *significant* when q ≤ ``fdr_q`` (default 0.05),
   so of the pairs declared significant, at most about 5 % are expected to be
   coincidences, however many markets were scanned.
5. **Not one move** — a pair whose co-movement comes mostly from ONE step (that
   step's |ΔA·ΔB| is more than ``max_move_share``, default 50 %, of the sum over
   all steps) is not significant whatever its p-value: one news day moving two
   unrelated safe-state markets is one observation, not a relationship. On the
   2024 election series the real co-movements (swing states) have shares of
   10–26 %, the coincidences (e.g. a Senate race with a governor race, r = −0.99)
   54–96 %. This filter only removes pairs after the BH step, so the false
   discovery rate stays controlled.
6. **Strong** = significant AND |r| ≥ the threshold (default 0.7). Groups (the
   risk manager's correlated-exposure cap) are connected components of strong
   pairs, by |r|: two outcomes of one decision that move against each other are
   one risk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stats import components, upper_pairs

MIN_SHARED_MOVES = 20
FDR_Q = 0.05
MAX_MOVE_SHARE = 0.5
STRONG_R = 0.7
MOVE_EPS = 1e-9  # a change smaller than this is "no move" (float noise of equal prices)

METHOD = (
    "p-values: Fisher z with an effective sample size n_eff = min(n·(1−ρa·ρb)/(1+ρa·ρb) [Bartlett, "
    "lag-1 autocorrelations ρ of each series' changes], shared moves); Benjamini–Hochberg q-values over "
    "all {m} pairs examined; a pair needs ≥ {min_shared} steps where both prices moved, and no single "
    "step may carry more than {share:.0%} of its co-movement"
)


@dataclass
class PairStats:
    """Square (k, k) matrices, symmetric; the diagonal is meaningless."""

    r: np.ndarray
    n: np.ndarray  # changes both series have
    shared: np.ndarray  # steps where both moved
    n_eff: np.ndarray
    p: np.ndarray  # two-sided, 1.0 where not tested
    q: np.ndarray  # Benjamini–Hochberg q-value over all pairs
    m: int  # pairs examined (the BH family size)
    min_shared_moves: int
    fdr_q: float
    move_share: np.ndarray | None = None  # largest one-step share of the co-movement (NaN where not computed)
    max_move_share: float = MAX_MOVE_SHARE

    def significant(self) -> np.ndarray:
        ok = (self.q <= self.fdr_q) & (self.shared >= self.min_shared_moves) & ~np.isnan(self.r)
        if self.move_share is not None:
            ok &= ~(self.move_share > self.max_move_share)
        np.fill_diagonal(ok, False)
        return ok

    def strong(self, threshold: float = STRONG_R) -> np.ndarray:
        """Significant after BH and |r| ≥ threshold (negative correlations count)."""
        return self.significant() & (np.abs(np.nan_to_num(self.r)) >= threshold)

    def why_not(self, i: int, j: int) -> str:
        """Why pair (i, j) is not significant ('' when it is)."""
        if self.shared[i, j] < self.min_shared_moves:
            k = int(self.shared[i, j])
            return f"only {k} shared move{'' if k == 1 else 's'} (need {self.min_shared_moves})"
        if not self.q[i, j] <= self.fdr_q:
            return f"q {self.q[i, j]:.2g} > {self.fdr_q:g} after the false-discovery control"
        if self.move_share is not None and self.move_share[i, j] > self.max_move_share:
            return f"one step carries {self.move_share[i, j]:.0%} of the co-movement"
        return ""

    def method(self) -> str:
        return METHOD.format(m=self.m, min_shared=self.min_shared_moves, share=self.max_move_share)


def lag1_autocorr(D: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of each column (NaN rows skipped pairwise); 0 where undefined."""
    D = np.asarray(D, dtype=np.float64)
    if D.ndim == 1:
        D = D[:, None]
    if D.shape[0] < 3:
        return np.zeros(D.shape[1])
    x, y = D[:-1], D[1:]
    ok = ~np.isnan(x) & ~np.isnan(y)
    cnt = ok.sum(axis=0)
    xs = np.where(ok, x, 0.0)
    ys = np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xs.sum(axis=0) / cnt
        my = ys.sum(axis=0) / cnt
        xc = np.where(ok, x - mx, 0.0)
        yc = np.where(ok, y - my, 0.0)
        rho = (xc * yc).sum(axis=0) / np.sqrt((xc * xc).sum(axis=0) * (yc * yc).sum(axis=0))
    rho = np.where((cnt >= 3) & np.isfinite(rho), rho, 0.0)
    return np.clip(rho, -0.99, 0.99)


def shared_moves(D: np.ndarray, eps: float = MOVE_EPS) -> np.ndarray:
    """(k, k): steps where both columns have a non-zero change (|Δ| > eps)."""
    D = np.asarray(D, dtype=np.float64)
    moved = (np.abs(np.nan_to_num(D, nan=0.0)) > eps).astype(np.float64)
    return np.rint(moved.T @ moved).astype(np.int64)


def effective_n(n: np.ndarray, rho: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """Bartlett's adjustment of n for the lag-1 autocorrelations ``rho``, capped by ``shared``:
    min(n·(1 − ρa ρb)/(1 + ρa ρb), n, shared), computed in place (one k × k buffer)."""
    rr = np.multiply.outer(rho, rho)
    nb = 1.0 - rr
    nb *= n
    rr += 1.0
    nb /= rr
    np.minimum(nb, n, out=nb)
    np.minimum(nb, shared, out=nb)
    return nb


def fisher_p(r: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    """Two-sided p-value of H0: ρ = 0 by Fisher's z with ``n_eff`` observations (1.0 where n_eff ≤ 3 or r NaN)."""
    r = np.asarray(r, dtype=np.float64)
    n_eff = np.asarray(n_eff, dtype=np.float64)
    ok = ~np.isnan(r) & (n_eff > 3)
    rc = np.clip(np.where(ok, r, 0.0), -0.999999, 0.999999)
    z = np.abs(np.arctanh(rc)) * np.sqrt(np.where(ok, n_eff - 3.0, 0.0))
    p = np.ones(r.shape)
    if ok.any():  # math.erfc element by element (numpy has none): only where a p is defined
        x = (z[ok] / math.sqrt(2.0)).tolist()
        p[ok] = np.fromiter(map(math.erfc, x), dtype=np.float64, count=len(x))
    return p


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values) of a 1-d array of p-values."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    # any sort order will do: tied p-values get the same q whatever their order (the running
    # minimum from the top reaches the last of the ties, whose p·m/rank is the smallest)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def move_shares(D: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every pair (a[k], b[k]) of columns of ``D``: the largest single step's share of
    Σ|(ΔA − mean)(ΔB − mean)| over the steps both have (NaN with fewer than 2 such steps or
    no co-movement at all)."""
    X, Y = D[:, a], D[:, b]
    ok = ~np.isnan(X) & ~np.isnan(Y)
    cnt = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(ok, X, 0.0).sum(axis=0) / cnt
        my = np.where(ok, Y, 0.0).sum(axis=0) / cnt
        pr = np.where(ok, np.abs((X - mx) * (Y - my)), 0.0)
        tot = pr.sum(axis=0)
        share = pr.max(axis=0, initial=0.0) / tot
    return np.where((cnt >= 2) & (tot > 0), share, np.nan)


def pair_statistics(
    D: np.ndarray,
    r: np.ndarray,
    n: np.ndarray,
    *,
    min_shared_moves: int = MIN_SHARED_MOVES,
    fdr_q: float = FDR_Q,
    max_move_share: float = MAX_MOVE_SHARE,
) -> PairStats:
    """Statistics of every pair of columns of the change matrix ``D`` (NaN = missing),
    given their pairwise correlation ``r`` and overlap ``n`` (:func:`~.stats.corr_pairwise`)."""
    D = np.asarray(D, dtype=np.float64)
    k = D.shape[1] if D.ndim == 2 else 0
    shared = shared_moves(D) if k else np.zeros((0, 0), dtype=np.int64)
    rho = lag1_autocorr(D) if k else np.zeros(0)
    n_eff = effective_n(np.asarray(n, dtype=np.float64), rho, shared) if k else np.zeros((0, 0))
    p = np.ones((k, k))
    q = np.ones((k, k))
    m = k * (k - 1) // 2
    ia = ja = np.zeros(0, dtype=np.int64)
    if m:  # each pair once (the upper triangle), Fisher's p only where tested: erfc is per element
        iu, ju, upper, lower = upper_pairs(k)
        r_u = np.take(r, upper)
        tested = (np.take(shared, upper) >= min_shared_moves) & ~np.isnan(r_u)
        sel = np.flatnonzero(tested)
        pv = np.ones(m)
        pv[sel] = fisher_p(r_u[sel], np.take(n_eff, upper[sel]))
        p_flat, q_flat = p.reshape(-1), q.reshape(-1)  # views: p and q are new C-ordered arrays
        p_flat[upper] = pv
        p_flat[lower] = pv
        qv = bh_qvalues(pv)
        q_flat[upper] = qv
        q_flat[lower] = qv
        kept = np.flatnonzero(tested & (qv <= fdr_q))  # only the pairs BH kept
        ia, ja = iu[kept], ju[kept]
    if k:
        np.fill_diagonal(p, 0.0)
        np.fill_diagonal(q, 0.0)
    share = np.full((k, k), np.nan)
    if len(ia):
        share[ia, ja] = share[ja, ia] = move_shares(D, ia, ja)
    return PairStats(
        r,
        np.asarray(n),
        shared,
        n_eff,
        p,
        q,
        m,
        int(min_shared_moves),
        float(fdr_q),
        share,
        float(max_move_share),
    )


def abs_clusters(mask: np.ndarray) -> list[list[int]]:
    """Connected components (≥ 2 members) of the boolean adjacency ``mask`` (strong pairs by |r|),
    each sorted, largest first."""
    return components(mask)
