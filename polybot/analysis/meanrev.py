"""Does a spread mean-revert? Augmented Dickey–Fuller test and AR(1) half-life (numpy only).

The pairs strategy bets that a stretched spread comes back. That bet only makes
sense when the spread, in sample, actually came back: a spread that wanders like
a random walk is stretched as often as not and never "converges".

- :func:`adf_test` — regression Δs_t = α + γ·s_{t−1} + Σ_{i=1..p} φ_i·Δs_{t−i} + e
  (constant, no trend); the t-statistic of γ against MacKinnon's (2010)
  response-surface critical values for the constant-only case (one series):
  crit(T) = β∞ + β1/T + β2/T² + β3/T³. Stationary (mean-reverting) when
  t ≤ crit at the chosen level (1 %, 5 % or 10 %).
- :func:`half_life` — AR(1) fit s_t = c + φ·s_{t−1} + e; half-life = −ln 2 / ln φ
  steps for 0 < φ < 1, infinite otherwise (no reversion, or oscillation φ ≤ 0
  is treated as noise around a constant: half-life 0 is returned for φ ≤ 0).
- :func:`degenerate` — a series whose z-score would be meaningless: too few
  points, too few distinct values or a near-zero standard deviation (a flat
  spread that then jumps once gives z = +47). :func:`degenerate_columns` is the
  same rule for every column of a matrix at once (the pairs strategy asks it of
  every pair at every step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# MacKinnon (2010), "Critical values for cointegration tests", Table 2, case "c" (constant), N = 1:
# (β∞, β1, β2, β3) — the same coefficients statsmodels' adfuller uses (tau_c, N = 1).
MACKINNON_C = {
    0.01: (-3.43035, -6.5393, -16.786, -79.433),
    0.05: (-2.86154, -2.8903, -4.234, -40.040),
    0.10: (-2.56677, -1.5384, -2.809, 0.0),
}
# ... N = 2: the Engle–Granger test, ADF on the residual of a regression of one series on another whose
# coefficient was ESTIMATED (the estimate makes the residual look more stationary, so the bar is lower).
MACKINNON_C2 = {
    0.01: (-3.89644, -10.9519, -22.527, 0.0),
    0.05: (-3.33613, -6.1101, -6.823, 0.0),
    0.10: (-3.04445, -4.2412, -2.720, 0.0),
}


def adf_critical(nobs: int, level: float = 0.05, n_series: int = 1) -> float:
    """MacKinnon's critical value of the ADF t-statistic (constant, no trend) for ``nobs`` observations;
    ``n_series=2`` for the residual of an estimated two-series regression (Engle–Granger)."""
    table = MACKINNON_C2 if n_series == 2 else MACKINNON_C
    if level not in table:
        raise ValueError(f"ADF level must be one of {sorted(table)}, not {level}")
    b0, b1, b2, b3 = table[level]
    t = float(max(nobs, 1))
    return b0 + b1 / t + b2 / t**2 + b3 / t**3


@dataclass(frozen=True)
class ADFResult:
    stat: float  # t-statistic of γ (NaN when not computable)
    critical: float  # MacKinnon critical value at ``level``
    level: float
    nobs: int
    lags: int

    @property
    def stationary(self) -> bool:
        return not math.isnan(self.stat) and self.stat <= self.critical


def adf_test(s: np.ndarray, lags: int = 1, level: float = 0.05, n_series: int = 1) -> ADFResult:
    """Augmented Dickey–Fuller test of a unit root in ``s`` (NaNs dropped first); ``n_series=2`` when
    ``s`` is the residual of an estimated hedge regression (Engle–Granger critical values)."""
    s = np.asarray(s, dtype=np.float64)
    s = s[~np.isnan(s)]
    lags = max(0, int(lags))
    ds = np.diff(s)
    nobs = len(ds) - lags
    if nobs < lags + 5:
        return ADFResult(float("nan"), adf_critical(max(nobs, 1), level, n_series), level, max(nobs, 0), lags)
    y = ds[lags:]
    cols = [np.ones(nobs), s[lags:-1]]
    for i in range(1, lags + 1):
        cols.append(ds[lags - i : -i])
    X = np.column_stack(cols)
    coef, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    if rank < X.shape[1]:
        return ADFResult(float("nan"), adf_critical(nobs, level, n_series), level, nobs, lags)
    resid = y - X @ coef
    dof = nobs - X.shape[1]
    sigma2 = float(resid @ resid) / dof if dof > 0 else float("nan")
    try:
        cov = sigma2 * np.linalg.inv(X.T @ X)
    except np.linalg.LinAlgError:
        return ADFResult(float("nan"), adf_critical(nobs, level, n_series), level, nobs, lags)
    se = math.sqrt(cov[1, 1]) if cov[1, 1] > 0 else float("nan")
    stat = float(coef[1] / se) if se and not math.isnan(se) else float("nan")
    return ADFResult(stat, adf_critical(nobs, level, n_series), level, nobs, lags)


def hedge_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """β of the least-squares levels regression a = c + β·b on the rows where both exist (NaN if b is flat)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = ~np.isnan(a) & ~np.isnan(b)
    if ok.sum() < 4:
        return float("nan")
    a, b = a[ok], b[ok]
    bc = b - b.mean()
    vb = float(bc @ bc)
    return float(bc @ (a - a.mean()) / vb) if vb > 1e-18 else float("nan")


def ar1_coefficient(s: np.ndarray) -> float:
    """φ of the least-squares fit s_t = c + φ·s_{t−1} (NaN when not computable)."""
    s = np.asarray(s, dtype=np.float64)
    s = s[~np.isnan(s)]
    if len(s) < 4:
        return float("nan")
    x, y = s[:-1], s[1:]
    xc = x - x.mean()
    vx = float(xc @ xc)
    if vx <= 1e-18:
        return float("nan")
    return float(xc @ (y - y.mean()) / vx)


def half_life(s: np.ndarray) -> float:
    """Steps for a deviation to halve under the AR(1) fit; inf when φ ≥ 1 or not computable."""
    phi = ar1_coefficient(s)
    if math.isnan(phi) or phi >= 1.0:
        return math.inf
    if phi <= 0.0:
        return 0.0
    return -math.log(2.0) / math.log(phi)


def degenerate(
    s: np.ndarray, *, min_points: int = 10, min_distinct: int = 5, min_std: float = 0.002, decimals: int = 6
) -> str | None:
    """Why a z-score of ``s`` would be meaningless, or None when it is usable."""
    s = np.asarray(s, dtype=np.float64)
    s = s[~np.isnan(s)]
    if len(s) < min_points:
        return f"{len(s)} points (need {min_points})"
    distinct = len(np.unique(np.round(s, decimals)))
    if distinct < min_distinct:
        return f"{distinct} distinct values (need {min_distinct})"
    sd = float(np.std(s))
    if sd < min_std:
        return f"standard deviation {sd:.5f} < {min_std}"
    return None


def degenerate_columns(
    S: np.ndarray,
    *,
    min_points: int = 10,
    min_distinct: int = 5,
    min_std: float = 0.002,
    decimals: int = 6,
    std: np.ndarray | None = None,
    complete: bool | None = None,
) -> np.ndarray:
    """For each column of ``S`` (NaN = missing): True where :func:`degenerate` of that
    column would give a reason (too few points, too few distinct values after rounding to
    ``decimals``, or a standard deviation below ``min_std``) — one vectorised pass.
    ``std``: each column's standard deviation (ddof 0, NaNs skipped) when the caller has
    it already (NaN counts as too small). ``complete``: the caller knows whether ``S``
    has any NaN (None: look)."""
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2:
        raise ValueError("degenerate_columns expects a 2-D array (points × series)")
    n, k = S.shape
    if k == 0:
        return np.zeros(0, dtype=bool)
    if complete is None:
        complete = not np.isnan(S).any()
    if complete:  # the usual window: no gaps, so no masks below
        if n < min_points:
            return np.ones(k, dtype=bool)
        cnt = np.full(k, n)
        valid = None
    else:
        valid = ~np.isnan(S)
        cnt = valid.sum(axis=0)
    distinct = _distinct_counts(S, cnt, complete, decimals, min_distinct)
    if std is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            if valid is None:
                std = np.sqrt(((S - S.sum(axis=0) / n) ** 2).sum(axis=0) / n)
            else:
                Z = np.where(valid, S, 0.0)
                mean = Z.sum(axis=0) / cnt
                std = np.sqrt((np.where(valid, S - mean, 0.0) ** 2).sum(axis=0) / cnt)
    if valid is None:  # every column has n ≥ min_points points
        return (distinct < min_distinct) | ~(std >= min_std)
    return (cnt < min_points) | (distinct < min_distinct) | ~(std >= min_std)


def _distinct_counts(
    S: np.ndarray, cnt: np.ndarray, complete: bool, decimals: int, enough: int
) -> np.ndarray:
    """Distinct values of each column after rounding (NaNs skipped), or a lower bound of at
    least ``enough`` for every column when a few evenly spread rows already show that many:
    a spread that moves is settled without sorting the whole window."""
    n = S.shape[0]
    if complete and n > 4 * enough:
        few = np.sort(np.round(S[:: n // (2 * enough)], decimals), axis=0)
        at_least = 1 + (few[1:] != few[:-1]).sum(axis=0)
        if (at_least >= enough).all():
            return at_least
    if n < 2:
        return cnt.copy()
    R = np.sort(np.round(S, decimals), axis=0)  # NaNs sort last: the first cnt rows are the values
    if complete:
        return 1 + (R[1:] != R[:-1]).sum(axis=0)
    inside = np.arange(1, n)[:, None] < cnt[None, :]  # both ends of the step are values
    return np.where(cnt > 0, 1 + ((R[1:] != R[:-1]) & inside).sum(axis=0), 0)
