"""The statistics behind the backtest verdict: bootstrap intervals, PSR and DSR.

Pure numpy + the standard library (``statistics.NormalDist`` for Φ and Φ⁻¹); no scipy.

- :func:`block_bootstrap_ci` — percentile interval of any statistic of a daily series,
  resampling **whole days** (blocks of ``block_days`` consecutive days, circular). Why days and
  not trades: trades of one day share that day's market moves (a pairs strategy holds several
  positions in correlated markets at once), so trades are not independent draws; days are much
  closer to it, and the daily equity return is the unit the Sharpe ratio is measured in. With
  ``block_days > 1`` consecutive days stay together, which keeps autocorrelation up to that lag
  (use it when positions are held for several days).
- :func:`probabilistic_sharpe_ratio` — Bailey & López de Prado (2012), "The Sharpe Ratio
  Efficient Frontier", J. of Risk 15(2): the probability that the true Sharpe ratio exceeds a
  benchmark, given the sample's length, skewness and kurtosis:
  ``PSR(SR*) = Φ( (SR̂ − SR*) √(n − 1) / √(1 − γ₃ SR̂ + (γ₄ − 1)/4 · SR̂²) )``
  with SR̂ the **per-period** (here: daily, not annualised) Sharpe ratio, γ₃ the skewness and γ₄
  the (non-excess) kurtosis of the returns.
- :func:`expected_max_sharpe` / :func:`deflated_sharpe_ratio` — Bailey & López de Prado (2014),
  "The Deflated Sharpe Ratio", J. of Portfolio Management 40(5): when N parameter sets were tried,
  the best one's Sharpe ratio is inflated by selection. The expected maximum of N unskilled
  trials' Sharpe ratios is
  ``E[max SR] ≈ √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))`` (γ = Euler–Mascheroni,
  V = variance of the trials' per-period Sharpe ratios), and ``DSR = PSR(SR* = E[max SR])``.

Degenerate inputs (fewer than 2 returns, no variation) give the answer that cannot lead to a
PASS: PSR/DSR 0.0 and a (nan, nan) interval — "no evidence", never "certain".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def _phi(x: float) -> float:
    return _N.cdf(x)


def _phi_inv(p: float) -> float:
    return _N.inv_cdf(p)


def block_bootstrap_ci(
    daily_returns: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    n_boot: int = 2000,
    block_days: int = 1,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile ``1 − alpha`` interval of ``statistic`` over day-block bootstrap resamples.

    ``daily_returns`` is one row per day: a 1-D array of daily returns, or a 2-D array whose rows
    are days (e.g. ``[wins, trades]`` per day for a win-rate interval) — rows are resampled
    whole, in circular blocks of ``block_days`` consecutive days, to the original number of days.
    ``statistic`` receives the resampled array (same shape as the input) and returns a float;
    non-finite results are dropped. Seeded: the same input gives the same interval.
    Returns ``(nan, nan)`` for fewer than 2 days or no finite resample.
    """
    x = np.asarray(daily_returns, dtype=np.float64)
    n = len(x)
    if n < 2:
        return (math.nan, math.nan)
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    if n_boot < 1 or block_days < 1:
        raise ValueError("n_boot and block_days must be at least 1")
    rng = np.random.default_rng(seed)
    b = min(int(block_days), n)
    n_blocks = -(-n // b)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = ((starts[:, :, None] + np.arange(b)[None, None, :]) % n).reshape(n_boot, -1)[:, :n]
    vals = np.fromiter((statistic(x[row]) for row in idx), dtype=np.float64, count=n_boot)
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return (math.nan, math.nan)
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def _moments(returns: Sequence[float] | np.ndarray) -> tuple[int, float, float, float]:
    """(n, per-period Sharpe with ddof=1, skewness, non-excess kurtosis); Sharpe nan if undefined."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = len(r)
    if n < 2:
        return n, math.nan, 0.0, 3.0
    sd = float(np.std(r, ddof=1))
    if sd <= 1e-15:
        return n, math.nan, 0.0, 3.0
    sr = float(np.mean(r)) / sd
    c = r - r.mean()
    m2 = float(np.mean(c**2))
    skew = float(np.mean(c**3)) / m2**1.5
    kurt = float(np.mean(c**4)) / m2**2
    return n, sr, skew, kurt


def probabilistic_sharpe_ratio(
    returns: Sequence[float] | np.ndarray, sr_benchmark: float = 0.0, *, skew_credit: bool = True
) -> float:
    """P(true per-period Sharpe > ``sr_benchmark``) — Bailey & López de Prado (2012).

    ``returns`` are per-period (daily) returns and ``sr_benchmark`` is per period too (an
    annual Sharpe S is S / √365 per day). 0.0 when there is no evidence (fewer than 2 returns,
    or no variation).

    ``skew_credit=False`` (what the verdict uses) lets skewness only widen the uncertainty,
    never narrow it: the term −γ₃·SR̂ is dropped when it is negative. The paper's formula is
    asymptotic; on 30 daily returns with a few active days it rewards a lucky day — one winning
    day among 29 flat ones has skewness 5.2 and scores PSR 0.97 with the credit, 0.81 without.
    """
    n, sr, skew, kurt = _moments(returns)
    if math.isnan(sr):
        return 0.0
    skew_term = -skew * sr if skew_credit else max(0.0, -skew * sr)
    var = 1.0 + skew_term + (kurt - 1.0) / 4.0 * sr * sr
    # the variance term can turn ≤ 0 for extreme skew; the floor keeps PSR defined and cautious
    var = max(var, 1e-12)
    z = (sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(var)
    return float(_phi(z))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Expected maximum per-period Sharpe ratio of ``n_trials`` unskilled trials whose Sharpe
    ratios have ``variance`` across trials — Bailey & López de Prado (2014). 0 for one trial."""
    n = int(n_trials)
    if n < 1:
        raise ValueError("n_trials must be at least 1")
    if n == 1 or not variance or variance <= 0:
        return 0.0
    return math.sqrt(variance) * (
        (1 - EULER_GAMMA) * _phi_inv(1 - 1 / n) + EULER_GAMMA * _phi_inv(1 - 1 / (n * math.e))
    )


def deflated_sharpe_ratio(
    returns: Sequence[float] | np.ndarray,
    n_trials: int,
    sr_trials_variance: float,
    *,
    skew_credit: bool = True,
) -> float:
    """PSR against the expected best Sharpe of ``n_trials`` unskilled trials (per-period units).

    ``sr_trials_variance`` is the variance of the per-period Sharpe ratios of all the trials
    (e.g. every parameter set of a sweep); equal to PSR(0) for one trial.
    """
    return probabilistic_sharpe_ratio(
        returns, expected_max_sharpe(n_trials, sr_trials_variance), skew_credit=skew_credit
    )


# ---- statistics of a day-resampled array, for block_bootstrap_ci
ANNUAL = math.sqrt(365.0)


def total_return_of(daily: np.ndarray) -> float:
    """Compounded return of a series of daily returns."""
    return float(np.prod(1.0 + daily) - 1.0)


def sharpe_of(daily: np.ndarray) -> float:
    """Annualised Sharpe (mean / stdev ddof=1 × √365) of daily returns; 0 with no variation —
    the same formula as the report's Sharpe ratio."""
    if len(daily) < 2:
        return 0.0
    sd = float(np.std(daily, ddof=1))
    return 0.0 if sd <= 1e-15 else float(np.mean(daily)) / sd * ANNUAL


def mean_of(daily: np.ndarray) -> float:
    return float(np.mean(daily))


def win_rate_of(wins_trades: np.ndarray) -> float:
    """Win rate of rows ``[wins, trades]`` per day (nan when the resample has no trade)."""
    trades = float(wins_trades[:, 1].sum())
    return float(wins_trades[:, 0].sum()) / trades if trades else math.nan
